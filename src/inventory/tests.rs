//! Classes by precedence, template matching and policy classes.

use super::*;

#[test]
fn a_rotation_id_is_found_only_in_a_name_the_template_makes() {
    let id = "0193a5b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b";
    let t = "rekey-{policy}-{rotation}";
    assert_eq!(
        rotation_in_name(t, "p", &format!("rekey-p-{id}")).as_deref(),
        Some(id)
    );
    assert_eq!(rotation_in_name(t, "q", &format!("rekey-p-{id}")), None);
    assert_eq!(rotation_in_name(t, "p", &format!("rekey-p-{id}-x")), None);
    assert_eq!(rotation_in_name(t, "p", "rekey-p-not-a-uuid"), None);
    let dated = "{date}/{policy}/{rotation}";
    let name = format!("20261201/p/{id}");
    assert_eq!(rotation_in_name(dated, "p", &name).as_deref(), Some(id));
    assert_eq!(
        rotation_in_name(dated, "p", &format!("2026-12-01/p/{id}")),
        None
    );
    assert_eq!(rotation_in_name("static-name", "p", "static-name"), None);
}

fn key(id: &str, name: &str) -> KeyInfo {
    KeyInfo {
        id: id.into(),
        name: name.into(),
        label: "sk-or-v1-abc...xyz".into(),
        disabled: false,
        created_at: Some("2026-01-01T00:00:00Z".parse().unwrap()),
        usage: None,
        limit_remaining: None,
        expires_at: None,
    }
}

fn with_policy() -> Policy {
    let text = "[daemon]\nstate = \"file:/s\"\n[providers.or]\nkind = \"openrouter\"\n\
                management_key = \"env:K\"\n[stores.f]\nkind = \"file\"\ndir = \"/d\"\n\
                [[policy]]\nname = \"p\"\nprovider = \"or\"\nmax_age = \"30d\"\n\
                target = { store = \"f\", secret_id = \"a\" }\n";
    let format = crate::config::load::SourceFormat::Toml;
    let config = crate::config::load::load_str(text, format, std::path::Path::new("/"));
    config.unwrap().policies.remove(0)
}

#[test]
fn each_key_gets_the_first_class_that_applies() {
    let policy = with_policy();
    let now: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
    let mut state = PolicyState::new(&policy.name);
    let known = "0193a5b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b";
    let lost = "0193a5b2-7c4d-7e8f-9a0b-000000000000";
    state.current = Some(crate::state::KeyRecord {
        id: Some("cur".into()),
        label: "l".into(),
        created_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        adopted: false,
    });
    state.push_history(crate::state::HistoryEntry {
        rotation_id: known.parse().unwrap(),
        trigger: crate::state::Trigger::Schedule,
        started_at: now,
        finished_at: now,
        kind: crate::state::OutcomeKind::Rotated,
        old_key: None,
        new_key: None,
        error: None,
    });
    let mut journals = Journals::default();
    journals.add(&state);
    let policies = [&policy];
    let class = |k: &KeyInfo, idle| classify("or", k, &policies, &journals, idle, now).class;
    let name = |r: &str| format!("rekey-p-{r}");
    assert_eq!(class(&key("cur", &name(known)), None), KeyClass::Current);
    assert_eq!(
        class(&key("x", &name(known)), None),
        KeyClass::Unmanaged,
        "a known rotation's leftover"
    );
    let mut lost_and_disabled = key("y", &name(lost));
    lost_and_disabled.disabled = true;
    assert_eq!(
        class(&lost_and_disabled, None),
        KeyClass::Orphan,
        "orphan before disabled"
    );
    let mut off = key("z", "by-hand");
    off.disabled = true;
    assert_eq!(class(&off, None), KeyClass::Disabled);
    let mut spent = key("o", "by-hand");
    spent.limit_remaining = Some(0.0);
    spent.expires_at = Some(now);
    assert_eq!(
        class(&spent, None),
        KeyClass::OverLimit,
        "over_limit before expiring"
    );
    let mut soon = key("e", "by-hand");
    soon.expires_at = Some(now + chrono::TimeDelta::days(6));
    assert_eq!(class(&soon, None), KeyClass::Expiring);
    soon.expires_at = Some(now + chrono::TimeDelta::days(8));
    soon.limit_remaining = Some(0.5);
    assert_eq!(class(&soon, None), KeyClass::Unmanaged);
    let mut used = key("u", "by-hand");
    let day = Duration::from_secs(86_400);
    used.usage = Some(crate::providers::KeyUsage::last_use(Some(
        now - chrono::TimeDelta::days(2),
    )));
    assert_eq!(class(&used, Some(day)), KeyClass::Idle);
    assert_eq!(class(&used, Some(3 * day)), KeyClass::Unmanaged);
    assert_eq!(
        class(&key("s", "by-hand"), Some(day)),
        KeyClass::Unmanaged,
        "no last-use signal: not idle"
    );

    assert_eq!(
        policy_class(&policy, &state, Some(&[key("cur", "n")]), now),
        PolicyClass::Overdue
    );
    assert_eq!(
        policy_class(&policy, &state, Some(&[]), now),
        PolicyClass::Missing
    );
    assert_eq!(
        policy_class(&policy, &state, None, now),
        PolicyClass::Overdue,
        "no listing: not missing"
    );
    let early: DateTime<Utc> = "2026-01-10T00:00:00Z".parse().unwrap();
    assert_eq!(
        policy_class(&policy, &state, Some(&[key("cur", "n")]), early),
        PolicyClass::Ok
    );
}

#[test]
fn a_name_with_wide_characters_is_matched_and_an_id_less_current_key_is_found_by_label() {
    let id = "0193a5b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b";
    let name = format!("clé-p-{id}");
    assert_eq!(
        rotation_in_name("clé-{policy}-{rotation}", "p", &name).as_deref(),
        Some(id)
    );
    let policy = with_policy();
    let mut state = PolicyState::new(&policy.name);
    state.current = Some(crate::state::KeyRecord {
        id: None,
        label: "sk-or-v1-abc...xyz".into(),
        created_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        adopted: true,
    });
    let mut journals = Journals::default();
    journals.add(&state);
    let now: DateTime<Utc> = "2026-01-02T00:00:00Z".parse().unwrap();
    let adopted = key("a", &format!("rekey-p-{id}"));
    let found = classify("or", &adopted, &[&policy], &journals, None, now);
    assert_eq!(found.class, KeyClass::Current, "not an orphan: {found:?}");
}
