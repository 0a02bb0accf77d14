//! DynamoDB state store (`state = "dynamodb:TABLE"`): the journals and the
//! per-secret leases of N replicas in one table (partition key `pk`, S).
//! Journal items are in [`journal`], lease items in [`lease`] and
//! [`renewal`], the table
//! (client, errors, DescribeTable/CreateTable) in [`table`]; this file ties
//! them into a [`StateStore`] and remembers the last table failure for
//! `/readyz` ([`StateStore::unavailable`]).
//!
//! Table calls per rotation: acquire = 1 GetItem + 1 UpdateItem (only the
//! GetItem when another replica holds it; + 1 GetItem when the answer is
//! lost or refused), renew = 1 UpdateItem per lease/3 held, each journal
//! save = 1 TransactWriteItems (+ 1 GetItem when its answer is lost),
//! release = 1 UpdateItem.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{Lease, PolicyState, StateError, StateStore};
use crate::config::DynamoConfig;
use crate::names::{LeaseKey, PolicyName};

mod held;
mod journal;
mod lease;
mod renewal;
mod table;

pub use lease::DynamoLease;
pub use renewal::released;
use table::{Failure, Table};

/// One table item, as the SDK gives it.
type Item = HashMap<String, AttributeValue>;

pub struct DynamoStateStore {
    table: Arc<Table>,
    health: Arc<Health>,
    /// This replica, in every lease it takes: host, process id and a random
    /// part (two stores in one process are two owners). No secret in it.
    owner: String,
    lease: Duration,
}

impl DynamoStateStore {
    /// Connects and checks the table (DescribeTable); a missing one is
    /// created first when `create_table` says so, else an error naming the
    /// table, its region and the IAM actions rekey needs.
    pub async fn open(config: &DynamoConfig) -> Result<Self, StateError> {
        let table = Table::connect(config).await;
        table.open(config.create_table).await?;
        Ok(Self {
            table: Arc::new(table),
            health: Arc::new(Health::default()),
            owner: owner(),
            lease: config.lease,
        })
    }

    /// The store on a table that already exists, `None` when it does not
    /// (nothing is created): what `state migrate` plans against.
    pub async fn open_existing(config: &DynamoConfig) -> Result<Option<Self>, StateError> {
        let table = Table::connect(config).await;
        if !table.exists().await? {
            return Ok(None);
        }
        let config = DynamoConfig {
            create_table: false,
            ..config.clone()
        };
        Self::open(&config).await.map(Some)
    }

    /// `rekey check --online`: whether the table is there with rekey's key
    /// schema, or will be created (one DescribeTable; nothing is created).
    /// What was found, or why it will not do.
    pub async fn check(config: &DynamoConfig) -> Result<String, String> {
        let table = Table::connect(config).await;
        (table.check(config.create_table).await).map_err(|e| e.to_string())
    }

    /// Who holds this store's leases.
    pub fn owner(&self) -> &str {
        &self.owner
    }
}

#[async_trait]
impl StateStore for DynamoStateStore {
    async fn load(&self, policy: &PolicyName) -> Result<PolicyState, StateError> {
        journal::load(&self.table, &self.health, policy).await
    }

    async fn save(&self, state: &PolicyState, lease: &dyn Lease) -> Result<(), StateError> {
        journal::save(&self.table, &self.health, state, lease).await
    }

    /// `legacy_name` is a file-store lock name: no older rekey ever used a table.
    async fn try_lease(
        &self,
        key: &LeaseKey,
        _legacy_name: &str,
    ) -> Result<Option<Box<dyn Lease>>, StateError> {
        let held = lease::acquire(&self.table, &self.health, key, &self.owner, self.lease).await?;
        Ok(held.map(|l| Box::new(l) as Box<dyn Lease>))
    }

    async fn policies(&self) -> Result<Vec<PolicyName>, StateError> {
        journal::policies(&self.table, &self.health, false).await
    }

    async fn in_flight(&self) -> Result<Vec<PolicyName>, StateError> {
        journal::policies(&self.table, &self.health, true).await
    }

    /// `<lease key> held by <owner> until <RFC 3339>`, by key.
    async fn held_leases(&self) -> Result<Vec<String>, StateError> {
        let values = vec![
            (":prefix", s("lease#")),
            (":free", s("")),
            (":now", n(held::wall_ms())),
        ];
        let names = [("#pk", table::PK), ("#o", "owner"), ("#e", "expires_at_ms")];
        let filter = "begins_with(#pk, :prefix) AND #o <> :free AND #e >= :now";
        let items = journal::scan(
            &self.table,
            &self.health,
            filter,
            values,
            &names,
            "#pk, #o, #e",
        )
        .await?;
        let mut held: Vec<String> = (items.iter())
            .filter(|item| lease::held(item))
            .filter_map(|item| {
                let key = text(item, table::PK)?.strip_prefix("lease#")?;
                let until =
                    chrono::DateTime::from_timestamp_millis(number(item, "expires_at_ms")?)?;
                let owner = text(item, "owner")?;
                Some(format!(
                    "{key} held by {owner} until {}",
                    crate::clock::rfc3339(until)
                ))
            })
            .collect();
        held.sort();
        Ok(held)
    }

    async fn import(&self, state: &PolicyState) -> Result<bool, StateError> {
        journal::import(&self.table, &self.health, state).await
    }

    fn unavailable(&self) -> Option<String> {
        self.health.get()
    }

    fn lease_period(&self) -> Option<Duration> {
        Some(self.lease)
    }

    fn describe(&self) -> String {
        format!("dynamodb:{} ({})", self.table.name, self.table.region)
    }
}

/// The last table failure, until a call succeeds again.
#[derive(Default)]
struct Health(Mutex<Option<String>>);

impl Health {
    fn set(&self, value: Option<String>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = value;
    }

    fn ok(&self) {
        self.set(None);
    }

    fn failed(&self, why: String) {
        self.set(Some(why));
    }

    fn get(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records `failure` (a refusal is the table answering) and returns it
    /// as the error of the call on item `pk`.
    fn io(&self, table: &Table, pk: &str, failure: &Failure) -> StateError {
        match failure {
            Failure::Refused => self.ok(),
            Failure::Failed(why) | Failure::Unknown(why) => self.failed(why.clone()),
        }
        StateError::Io {
            path: table.at(pk),
            message: failure.message(),
        }
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// `<host>/<pid>/<random>`: enough to find the replica, nothing secret.
fn owner() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let host = if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end])
            .chars()
            .take(64)
            .collect()
    } else {
        "unknown-host".to_string()
    };
    format!(
        "{host}/{}/{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// An item by its key (consistent read); `None` when there is none.
async fn read_item(table: &Table, health: &Health, pk: &str) -> Result<Option<Item>, StateError> {
    let answer = (table.client.get_item())
        .table_name(&table.name)
        .key(table::PK, s(pk))
        .consistent_read(true)
        .send()
        .await;
    match answer {
        Ok(out) => {
            health.ok();
            Ok(out.item().cloned())
        }
        Err(e) => Err(health.io(table, pk, &table.failure("GetItem", &e))),
    }
}
