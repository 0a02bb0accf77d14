//! `rekey audit`: every key at every configured provider entry against the
//! journals (classes in `inventory.rs`), as a table or one JSON object;
//! exit 0 clean, 1 findings (orphan, overdue, missing), 2 bad usage, 3
//! incomplete (a provider, store or journal did not answer).
//! `--delete-orphans` lists the orphans it would delete; with `--yes` it
//! deletes each, after reading again, right before, that its policy's
//! journal still does not know it and that no store of that provider entry
//! holds a value it could be.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{FAILURE, OK, USAGE, build, load};
use crate::app::App;
use crate::inventory::{self, AuditedKey, Journals, KeyClass, PolicyClass};
use crate::names::PolicyName;
use crate::policy::Policy;
use crate::providers::{KeyInfo, Provider};
use crate::secret::label_matches;
use crate::state::PolicyState;

/// Exit code of an audit that could not see everything.
pub const INCOMPLETE: u8 = 3;

#[derive(Debug, Clone, Default)]
pub struct AuditArgs {
    pub json: bool,
    pub idle: Option<Duration>,
    pub delete_orphans: bool,
    pub yes: bool,
}

pub async fn audit(path: &Path, args: AuditArgs) -> ExitCode {
    if args.yes && !args.delete_orphans {
        crate::errln!("error: --yes only goes with --delete-orphans");
        return ExitCode::from(USAGE);
    }
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let app = match build(config).await {
        Ok(app) => app,
        Err(code) => return code,
    };
    let now = chrono::Utc::now();
    let mut errors = Vec::new();
    let (journals, states) = match read_journals(&app).await {
        Ok(read) => read,
        Err(e) => {
            errors.push(json!({"store": "daemon.state", "error": e}));
            Default::default()
        }
    };
    let mut keys = Vec::new();
    let mut listed: BTreeMap<String, Vec<KeyInfo>> = BTreeMap::new();
    // The client that listed each key deletes it (OpenAI: its project).
    let mut listed_by: HashMap<String, Arc<dyn Provider>> = HashMap::new();
    let mut unanswered = BTreeSet::new();
    for (entry, shared) in &app.providers {
        let users: Vec<&Policy> = (app.config.policies.iter())
            .filter(|p| p.provider == *entry)
            .collect();
        let mut seen = HashSet::new();
        for client in clients(shared, &users) {
            match client.list_keys().await {
                Ok(found) => {
                    for key in found.into_iter().filter(|k| seen.insert(k.id.clone())) {
                        listed_by.insert(key.id.clone(), client.clone());
                        let idle = args.idle;
                        keys.push(inventory::classify(
                            entry, &key, &users, &journals, idle, now,
                        ));
                        listed.entry(entry.to_string()).or_default().push(key);
                    }
                }
                Err(e) => {
                    unanswered.insert(entry.to_string());
                    errors.push(json!({"provider": entry.to_string(), "error": e.to_string()}));
                }
            }
        }
    }
    let mut policies = Vec::new();
    for policy in &app.config.policies {
        let Some(state) = states.get(policy.name.as_str()) else {
            continue;
        };
        let entry = policy.provider.to_string();
        let keys_there = (!unanswered.contains(&entry))
            .then(|| listed.get(&entry).map_or(&[][..], Vec::as_slice));
        let class = inventory::policy_class(policy, state, keys_there, now);
        policies.push((policy.name.to_string(), class));
    }
    let summary = inventory::summary(&keys, &policies);
    if args.json {
        let body = json!({
            "keys": keys,
            "policies": policies.iter().map(|(p, c)| json!({"policy": p, "class": c})).collect::<Vec<_>>(),
            "errors": errors,
            "summary": summary,
        });
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&body).expect("audit serializes")
        );
    } else {
        print_table(&keys, &policies, &summary, &errors);
    }
    if args.delete_orphans && args.yes && !errors.is_empty() {
        crate::errln!(
            "not deleting any orphan: the audit is incomplete (a provider, the state or a store did not answer), so a key may only look orphaned"
        );
    } else if args.delete_orphans {
        let failed = delete_orphans(&app, &keys, &listed_by, args.yes, args.json).await;
        if failed {
            return ExitCode::from(FAILURE);
        }
    }
    let findings = keys.iter().any(|k| k.class == KeyClass::Orphan)
        || policies.iter().any(|(_, c)| *c != PolicyClass::Ok);
    ExitCode::from(match () {
        _ if !errors.is_empty() => INCOMPLETE,
        _ if findings => FAILURE,
        _ => OK,
    })
}

/// The clients that together see every key of one entry: one per OpenAI
/// project its policies name (a client sees one project), else the entry's.
fn clients(shared: &Arc<dyn Provider>, users: &[&Policy]) -> Vec<Arc<dyn Provider>> {
    let mut projects = BTreeSet::new();
    let scoped: Vec<Arc<dyn Provider>> = (users.iter())
        .filter(|p| projects.insert(p.project_id.clone()))
        .filter_map(|p| shared.for_policy(p))
        .collect();
    if scoped.is_empty() {
        vec![shared.clone()]
    } else {
        scoped
    }
}

fn print_table(
    keys: &[AuditedKey],
    policies: &[(String, PolicyClass)],
    summary: &BTreeMap<String, usize>,
    errors: &[serde_json::Value],
) {
    crate::outln!(
        "{:<12} {:<28} {:<24} {:<10} {:<20} ROTATION",
        "PROVIDER",
        "KEY ID",
        "LABEL",
        "CLASS",
        "POLICY"
    );
    for k in keys {
        crate::outln!(
            "{:<12} {:<28} {:<24} {:<10} {:<20} {}",
            k.provider,
            k.key_id,
            k.label,
            k.class.as_str(),
            k.policy.as_deref().unwrap_or("-"),
            k.rotation_id.as_deref().unwrap_or("-")
        );
    }
    crate::outln!();
    crate::outln!("{:<24} CLASS", "POLICY");
    for (policy, class) in policies {
        crate::outln!("{:<24} {}", policy, class.as_str());
    }
    let counts: Vec<String> = summary.iter().map(|(c, n)| format!("{c} {n}")).collect();
    crate::outln!();
    crate::outln!("summary: {}", counts.join(", "));
    for e in errors {
        let source = e["provider"]
            .as_str()
            .or(e["store"].as_str())
            .unwrap_or("?");
        crate::errln!(
            "incomplete: {source}: {}",
            e["error"].as_str().unwrap_or("")
        );
    }
}

/// Deletes (with `yes`) or lists the orphans; `true` when a delete failed.
async fn delete_orphans(
    app: &App,
    keys: &[AuditedKey],
    listed_by: &HashMap<String, Arc<dyn Provider>>,
    yes: bool,
    json: bool,
) -> bool {
    let say = |line: String| {
        if json {
            crate::errln!("{line}");
        } else {
            crate::outln!("{line}");
        }
    };
    let mut failed = false;
    for key in keys.iter().filter(|k| k.class == KeyClass::Orphan) {
        let what = format!("orphan {} ({}) at {}", key.key_id, key.label, key.provider);
        if !yes {
            say(format!("would delete {what} (add --yes to delete)"));
            continue;
        }
        match still_orphan(app, key).await {
            Ok(None) => {}
            Ok(Some(why)) => {
                say(format!("not deleting {what}: {why}"));
                continue;
            }
            Err(e) => {
                say(format!("not deleting {what}: {e}"));
                failed = true;
                continue;
            }
        }
        let Some(client) = listed_by.get(&key.key_id) else {
            continue;
        };
        match client.delete_key(&key.key_id).await {
            Ok(_) => say(format!("deleted {what}")),
            Err(e) => {
                say(format!("could not delete {what}: {e}"));
                failed = true;
            }
        }
    }
    failed
}

/// Every journal in the state (configured policies and any other, such as
/// a removed one's), and the configured policies' states by name.
async fn read_journals(app: &App) -> Result<(Journals, BTreeMap<String, PolicyState>), String> {
    let mut journals = Journals::default();
    let mut states = BTreeMap::new();
    let stored = app.state.policies().await.map_err(|e| e.to_string())?;
    let mut names: BTreeSet<PolicyName> = stored.into_iter().collect();
    names.extend(app.config.policies.iter().map(|p| p.name.clone()));
    for name in names {
        let state = app.state.load(&name).await;
        let state = state.map_err(|e| format!("journal of {name}: {e}"))?;
        journals.add(&state);
        states.insert(name.to_string(), state);
    }
    Ok((journals, states))
}

/// Read again right before a delete: `Some(why)` when the key may be in
/// use after all (its journal now knows its rotation, or a store of its
/// provider entry holds a value it could be).
async fn still_orphan(app: &App, key: &AuditedKey) -> Result<Option<String>, String> {
    let Some(owner) = key.policy.as_deref().and_then(|p| app.config.policy(p)) else {
        return Ok(Some("its policy is gone from the config".into()));
    };
    if !key.label.contains("...") {
        return Ok(Some(
            "its label cannot be compared with the stores' values".into(),
        ));
    }
    // Every journal again: a rotation begun since the listing may own it.
    let (journals, _) = read_journals(app).await?;
    let rotation = key.rotation_id.as_deref().unwrap_or("");
    if journals.knows_rotation(rotation) {
        return Ok(Some("its rotation is in a journal now".into()));
    }
    for policy in (app.config.policies.iter()).filter(|p| p.provider == owner.provider) {
        let store = &app.stores[&policy.target.store];
        let current = store.read_current(&policy.target).await;
        let current = current.map_err(|e| format!("store {}: {e}", policy.target.store))?;
        if current.is_some_and(|value| label_matches(&key.label, &value)) {
            return Ok(Some(format!(
                "the store of policy {} holds a value with its label",
                policy.name
            )));
        }
    }
    Ok(None)
}
