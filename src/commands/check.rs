//! The part of `rekey check` past the config's shape: whether every
//! credential reference can be read and, with `--online`, whether each
//! provider entry and store answers one authenticated, read-only call, and
//! whether a DynamoDB state table exists with rekey's key schema
//! (DescribeTable; offline only its name and settings are checked, by the
//! config's validation).
//!
//! Offline, `env:` and `file:` references are read (never printed);
//! `aws-sm:` ones need the network and are only listed. Every problem is
//! named at once by its config path; any one makes `check` exit 1 (a
//! runtime failure: a restart, or `ExecStartPre` retried by systemd, may
//! find the variable set or the file mounted), never 2.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::config::secret_ref;
use crate::config::{Config, SecretRef, StateLocation};
use crate::policy::Policy;
use crate::providers::{self, Provider};
use crate::state::dynamodb::DynamoStateStore;
use crate::stores;

/// Each online call gets this long.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Checks every credential reference (and, `online`, every provider and
/// store); prints one line each. `true` when nothing failed.
pub(super) async fn run(config: &Config, online: bool) -> bool {
    let (readable, credentials_ok) = references(config, online).await;
    if !online {
        if let StateLocation::DynamoDb(table) = &config.daemon.state {
            crate::outln!(
                "daemon.state: dynamodb:{} in {}: not checked offline (use --online)",
                table.table,
                table.region
            );
        }
        return credentials_ok;
    }
    let providers_ok = providers(config, &readable).await;
    let stores_ok = stores(config).await;
    let state_ok = state(config).await;
    credentials_ok && providers_ok && stores_ok && state_ok
}

/// One DescribeTable of a DynamoDB state table: missing, another key
/// schema, or access denied is named (nothing is created, whatever
/// `create_table` says: `check` changes nothing).
async fn state(config: &Config) -> bool {
    let StateLocation::DynamoDb(table) = &config.daemon.state else {
        return true;
    };
    let answer = bounded(DynamoStateStore::check(table)).await;
    report("daemon.state", answer)
}

/// Reads each reference it may (all of them `online`); the values read by
/// config path, and whether none failed.
async fn references(config: &Config, online: bool) -> (BTreeMap<String, SecretString>, bool) {
    let references = secret_ref::references(config);
    if !references.is_empty() {
        crate::outln!("credentials:");
    }
    let mut readable = BTreeMap::new();
    let mut ok = true;
    for (path, reference) in references {
        if matches!(reference, SecretRef::AwsSm { .. }) && !online {
            crate::outln!("  {path}: aws-sm: not checked offline (use --online)");
            continue;
        }
        match secret_ref::resolve(reference).await {
            Ok(value) => {
                crate::outln!("  {path}: readable");
                readable.insert(path, value);
            }
            Err(message) => {
                crate::errln!("error: {path}: {message}");
                ok = false;
            }
        }
    }
    (readable, ok)
}

/// One management read (list keys) per provider entry whose key could be
/// read, scoped the way its first policy uses it (OpenAI lists a project's keys).
async fn providers(config: &Config, readable: &BTreeMap<String, SecretString>) -> bool {
    crate::outln!("online:");
    let mut ok = true;
    for (name, entry) in &config.providers {
        let what = format!("providers.{name}");
        let Some(key) = readable.get(&format!("{what}.management_key")) else {
            crate::outln!("  {what}: not checked (its management key cannot be read)");
            continue;
        };
        let answer = match providers::build(entry, key.clone()) {
            Ok(shared) => {
                let client = scoped(config, name, shared);
                bounded(client.list_keys()).await
            }
            Err(e) => Err(e.to_string()),
        };
        ok &= report(&what, answer.map(|keys| keys_visible(keys.len())));
    }
    ok
}

/// The provider client as the first policy naming `entry` uses it.
fn scoped(config: &Config, entry: &str, shared: Arc<dyn Provider>) -> Arc<dyn Provider> {
    match config.policies.iter().find(|p| p.provider == entry) {
        Some(policy) => shared.for_policy(policy).unwrap_or(shared),
        None => shared,
    }
}

/// One read of the current value of the first secret each store holds for
/// a policy (a store no policy uses is not asked).
async fn stores(config: &Config) -> bool {
    let mut ok = true;
    for (name, entry) in &config.stores {
        let what = format!("stores.{name}");
        let Some(policy) = first_user(&config.policies, name) else {
            crate::outln!("  {what}: not used by any policy; not checked");
            continue;
        };
        let target = &policy.target;
        let answer = match stores::build(entry).await {
            Ok(store) => bounded(store.read_current(target)).await,
            Err(e) => Err(e.to_string()),
        };
        let read = answer.map(|value| match value {
            Some(_) => format!("read secret {}", target.secret_id),
            None => format!("secret {} holds no key yet", target.secret_id),
        });
        ok &= report(&what, read);
    }
    ok
}

fn first_user<'a>(policies: &'a [Policy], store: &str) -> Option<&'a Policy> {
    policies.iter().find(|p| p.target.store == store)
}

/// Prints `what: ok (detail)` or `error: what: why`; `true` when ok.
fn report(what: &str, answer: Result<String, String>) -> bool {
    match answer {
        Ok(detail) => {
            crate::outln!("  {what}: ok ({detail})");
            true
        }
        Err(why) => {
            crate::errln!("error: {what}: {why}");
            false
        }
    }
}

fn keys_visible(n: usize) -> String {
    format!(
        "management key works, {} visible",
        crate::text::plural(n, "key", "keys")
    )
}

async fn bounded<T, E: std::fmt::Display>(
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    crate::daemon::probe::within(CALL_TIMEOUT, call).await
}
