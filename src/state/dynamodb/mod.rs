//! DynamoDB state store (`state = "dynamodb:TABLE"`): the journals and the
//! per-secret leases of N replicas in one table (partition key `pk`, S).
//! Journal items are in [`journal`], lease items in [`lease`] and
//! [`renewal`], replica heartbeats in [`replicas`], the table's index in
//! [`index`] and its Query in [`query`], the table (client, errors,
//! DescribeTable/CreateTable) in [`table`]; this file ties them into a
//! [`StateStore`] and remembers the last table failure for `/readyz`
//! ([`StateStore::unavailable`]).
//!
//! Table calls per rotation: acquire = 1 GetItem + 1 UpdateItem (only the
//! GetItem when another replica holds it; + 1 GetItem when the answer is
//! lost or refused), renew = 1 UpdateItem per lease/3 held, each journal
//! save = 1 TransactWriteItems (+ 1 GetItem when its answer is lost),
//! release = 1 UpdateItem. Per lease period, whatever the number of
//! policies: expired leases = 1 Query (one page per MB), heartbeat = 1
//! PutItem + 1 Query.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{Lease, PolicyState, StateError, StateStore};
use crate::config::DynamoConfig;
use crate::names::{LeaseKey, PolicyName};

mod held;
mod index;
mod journal;
mod lease;
mod query;
mod renewal;
mod replicas;
mod table;

pub use lease::DynamoLease;
pub use renewal::released;
use table::{Failure, Table};

/// One table item, as the SDK gives it.
type Item = HashMap<String, AttributeValue>;

/// The partition key, the table's only key attribute (and the index's sort key).
const PK: &str = "pk";

pub struct DynamoStateStore {
    table: Arc<Table>,
    health: Arc<Health>,
    /// This replica, in every lease it takes: host, process id and a random
    /// part (two stores in one process are two owners). No secret in it.
    owner: String,
    lease: Duration,
    /// A heartbeat was put: dropping the store retires it.
    beating: AtomicBool,
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
            beating: AtomicBool::new(false),
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

    /// `<lease key> held by <owner> until <RFC 3339>`, by key. A consistent
    /// Scan, not the index: `state migrate` refuses to move journals while
    /// any lease is held, and an index read may lag a lease taken a moment
    /// ago (or miss one taken by an older rekey, which sets no `idx`).
    async fn held_leases(&self) -> Result<Vec<String>, StateError> {
        let values = vec![
            (":prefix", s("lease#")),
            (":free", s("")),
            (":now", n(held::wall_ms())),
        ];
        let names = [("#pk", PK), ("#o", "owner"), ("#e", "expires_at_ms")];
        let filter = "begins_with(#pk, :prefix) AND #o <> :free AND #e >= :now";
        let projection = "#pk, #o, #e";
        let items = journal::scan(
            &self.table,
            &self.health,
            filter,
            values,
            &names,
            projection,
        )
        .await?;
        let mut held: Vec<String> = (items.iter())
            .filter(|item| lease::held(item))
            .filter_map(|item| {
                let key = lease::key_of(text(item, PK)?)?;
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

    /// One Query of the index's lease partition: the leases still owned
    /// (never released) whose expiry has passed by this replica's clock.
    async fn expired_leases(&self) -> Result<Vec<LeaseKey>, StateError> {
        let items = self.lapsed_leases().await?;
        let mut keys: Vec<LeaseKey> = (items.iter())
            .filter(|item| !lease::held(item))
            .filter_map(|item| lease::key_of(text(item, PK)?))
            .collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// 1 PutItem of this replica's heartbeat + 1 Query of the live ones.
    async fn heartbeat(&self) -> Result<Option<usize>, StateError> {
        self.beating.store(true, Ordering::SeqCst);
        replicas::heartbeat(&self.table, &self.health, &self.owner, self.lease)
            .await
            .map(Some)
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

impl DynamoStateStore {
    /// The lease items in the index still owned whose expiry has passed.
    async fn lapsed_leases(&self) -> Result<Vec<Item>, StateError> {
        let filter = "#o <> :free AND #e < :now";
        let values = vec![(":free", s("")), (":now", n(held::wall_ms()))];
        query::index(&self.table, &self.health, lease::INDEXED, filter, values).await
    }
}

impl Drop for DynamoStateStore {
    /// A store that put a heartbeat retires it on a task the exit waits
    /// for ([`released`]); without a runtime it simply expires.
    fn drop(&mut self) {
        if !self.beating.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let table = self.table.clone();
            let owner = self.owner.clone();
            runtime.spawn(
                renewal::RELEASES
                    .track_future(async move { replicas::retire(&table, &owner).await }),
            );
        }
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
        .key(PK, s(pk))
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
