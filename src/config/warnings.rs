//! What a valid config may still get wrong, said by `rekey check` and by
//! the daemon when it loads the config: problems that do not stop a
//! rotation but may hurt the consumers of its key. A policy set's members
//! share their template, so a set is warned about once, not per member.

use std::collections::BTreeSet;

use super::bounds::human;
use super::{Config, ProviderKind};
use crate::policy::Policy;

/// Each warning as `<where>: <what>`, in config order.
pub fn warnings(config: &Config) -> Vec<String> {
    let mut sets_seen = BTreeSet::new();
    let mut found = Vec::new();
    for policy in &config.policies {
        let place = match policy.set_name() {
            Some(set) if !sets_seen.insert(set.to_string()) => continue,
            Some(set) => format!("policy set {set:?}"),
            None => format!("policy {:?}", policy.name.as_str()),
        };
        let kind = config.providers.get(&policy.provider).map(|p| p.kind);
        let weak_signal = idle_signal(policy, kind);
        if let Some(gap) = consumer_gap(policy)
            .filter(|_| policy.revoke.wait_idle.is_none() || weak_signal.is_some())
        {
            found.push(format!("{place}: {gap}"));
        }
        if let Some(weak) = weak_signal {
            found.push(format!("{place}: {weak}"));
        }
    }
    found
}

/// `revoke.wait_idle` at a provider whose keys say little or nothing about their use.
fn idle_signal(policy: &Policy, kind: Option<ProviderKind>) -> Option<String> {
    policy.revoke.wait_idle?;
    match kind? {
        ProviderKind::Anthropic => Some(format!(
            "revoke.wait_idle is set but provider {:?} (anthropic) gives no usage signal per key: \
             the old key is revoked when the grace ends, without waiting for it to go idle",
            policy.provider.as_str()
        )),
        ProviderKind::OpenRouter => Some(format!(
            "revoke.wait_idle at provider {:?} (openrouter) compares the key's spend counters \
             (usage + byok_usage) between reads: a weak signal, since calls to free models move \
             nothing; an old key used only for free models counts as idle",
            policy.provider.as_str()
        )),
        _ => None,
    }
}

/// The grace ends before every consumer has re-read the store once.
fn consumer_gap(policy: &Policy) -> Option<String> {
    let revoke = &policy.revoke;
    let refresh = revoke.consumer_refresh?;
    (revoke.grace < refresh).then(|| {
        format!(
            "revoke.grace ({}) is shorter than revoke.consumer_refresh ({}): a consumer that \
             re-reads the store every {} may still be using the old key when it is revoked; \
             make the grace at least {}",
            human(revoke.grace),
            human(refresh),
            human(refresh),
            human(refresh),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::load::{SourceFormat, load_str};

    fn config(revoke: &str) -> Result<Config, String> {
        let text = format!(
            "[daemon]\nstate = \"file:/s\"\n[providers.or]\nkind = \"openrouter\"\n\
             management_key = \"env:K\"\n[stores.f]\nkind = \"file\"\ndir = \"/d\"\n\
             [[policy]]\nname = \"a\"\nprovider = \"or\"\nmax_age = \"30d\"\n\
             target = {{ store = \"f\", secret_id = \"a\" }}\nrevoke = {revoke}\n"
        );
        load_str(&text, SourceFormat::Toml, Path::new("/")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_grace_shorter_than_the_consumers_refresh_is_named_with_both_values() {
        let short = config("{ grace = \"15m\", consumer_refresh = \"1h\" }").unwrap();
        assert_eq!(
            short.policies[0]
                .revoke
                .consumer_refresh
                .map(|d| d.as_secs()),
            Some(3600)
        );
        assert_eq!(
            warnings(&short),
            [
                "policy \"a\": revoke.grace (15m) is shorter than revoke.consumer_refresh (1h): \
              a consumer that re-reads the store every 1h may still be using the old key when \
              it is revoked; make the grace at least 1h"
            ]
        );
        for quiet in [
            "{ grace = \"1h\", consumer_refresh = \"1h\" }",
            "{ grace = \"5m\" }",
        ] {
            assert!(warnings(&config(quiet).unwrap()).is_empty(), "{quiet}");
        }
    }

    #[test]
    fn consumer_refresh_is_a_bounded_duration() {
        let err = config("{ consumer_refresh = \"91d\" }").unwrap_err();
        assert!(err.contains("policy[0].revoke.consumer_refresh"), "{err}");
        let err = config("{ consumer_refresh = \"soon\" }").unwrap_err();
        assert!(err.contains("policy[0].revoke.consumer_refresh"), "{err}");
        let err = config("{ grace = \"later\", consumer_refresh = \"soon\" }").unwrap_err();
        assert!(
            err.contains("policy[0].revoke.grace"),
            "both at once: {err}"
        );
        assert!(
            err.contains("policy[0].revoke.consumer_refresh"),
            "both at once: {err}"
        );
    }

    #[test]
    fn hooks_and_the_idle_wait_are_read_with_their_defaults() {
        let text = "{ grace = \"1h\", wait_idle = \"15m\" }\non_promote = [\
                    { exec = [\"systemctl\", \"restart\", \"gw\"] },\
                    { http = \"env:RELOAD_URL\", method = \"PUT\", expect = 204, timeout = \"3s\" }]";
        let config = config(text).unwrap();
        let policy = &config.policies[0];
        assert_eq!(
            policy.revoke.wait_idle,
            Some(std::time::Duration::from_secs(900))
        );
        assert_eq!(policy.revoke.max_wait.as_secs(), 86_400);
        assert_eq!(policy.revoke.on_busy, crate::policy::OnBusy::Revoke);
        assert_eq!(policy.on_promote.len(), 2);
        assert_eq!(policy.on_promote[0].timeout.as_secs(), 60);
        assert_eq!(
            policy.on_promote[0].describe(0),
            "on_promote[0] (exec systemctl)"
        );
        assert_eq!(policy.on_promote[1].timeout.as_secs(), 3);
        assert!(matches!(
            &policy.on_promote[1].action,
            crate::policy::HookAction::Http {
                expect: Some(204),
                method: crate::policy::HookMethod::Put,
                ..
            }
        ));
        let warned = warnings(&config);
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(warned[0].contains("weak signal"), "{warned:?}");
    }

    #[test]
    fn every_bad_hook_and_idle_setting_is_named() {
        let cases = [
            (
                "{}\non_promote = [{ exec = [] }]",
                "policy[0].on_promote[0].exec: must name a program",
            ),
            (
                "{}\non_promote = [{ exec = [\"a\"], http = \"env:U\" }]",
                "on_promote[0]: give exec or http, not both",
            ),
            (
                "{}\non_promote = [{ timeout = \"1s\" }]",
                "on_promote[0]: needs exec",
            ),
            (
                "{}\non_promote = [{ http = \"https://hooks.example/t0ken\" }]",
                "on_promote[0].http: must be a reference",
            ),
            (
                "{}\non_promote = [{ http = \"env:U\", expect = 700 }]",
                "on_promote[0].expect: must be an HTTP status",
            ),
            (
                "{}\non_promote = [{ http = \"env:U\", method = \"DELETE\" }]",
                "on_promote[0].method: \"DELETE\" is not one of",
            ),
            (
                "{}\non_promote = [{ exec = [\"a\"], expect = 200 }]",
                "on_promote[0].expect: only used with http hooks",
            ),
            (
                "{}\non_promote = [{ exec = [\"a\"], timeout = \"2h\" }]",
                "on_promote[0].timeout",
            ),
            (
                "{ on_busy = \"keep\" }",
                "revoke.on_busy: only used with revoke.wait_idle",
            ),
            (
                "{ wait_idle = \"1m\", on_busy = \"maybe\" }",
                "revoke.on_busy: \"maybe\" is not one of",
            ),
            ("{ wait_idle = \"91d\" }", "revoke.wait_idle"),
            (
                "{ wait_idle = \"1m\", max_wait = \"soon\" }",
                "revoke.max_wait",
            ),
        ];
        for (text, want) in cases {
            let err = config(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
            assert!(!err.contains("t0ken"), "{err}");
        }
        let many = vec!["{ exec = [\"a\"] }"; 17].join(", ");
        let err = config(&format!("{{}}\non_promote = [{many}]")).unwrap_err();
        assert!(err.contains("at most 16 hooks, got 17"), "{err}");
    }
}
