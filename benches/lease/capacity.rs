//! Capacity arithmetic: a DynamoDB item's size as DynamoDB bills it, capacity
//! units per rotation from the calls the proxy counted, and the replicas ×
//! policies table against the on-demand limits.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::proxy::{Counts, calls, calls_on};

/// A new on-demand table serves this much at once (read, write units/s).
pub const NEW_TABLE: (f64, f64) = (12_000.0, 4_000.0);
/// The default per-table quota (read, write units/s).
pub const TABLE_QUOTA: (f64, f64) = (40_000.0, 40_000.0);
/// The lease period: the daemon queries expired leases and beats its heartbeat once per period.
pub const LEASE_S: f64 = 30.0;
/// Catch-up: every policy rotates within this many seconds.
pub const CATCH_UP_S: f64 = 3600.0;

/// An item's billed size: attribute names plus values (strings by UTF-8
/// length, numbers by about one byte per two significant digits plus one).
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    (item.iter())
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => {
            let digits = n.trim_start_matches('-').replace('.', "");
            let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
            significant.div_ceil(2) + 1
        }
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        _ => 0,
    }
}

/// Units of a consistent read (4 KB each) and of a write (1 KB each).
pub fn read_units(size: usize) -> f64 {
    size.div_ceil(4096).max(1) as f64
}

pub fn write_units(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// Item sizes the arithmetic uses, in bytes.
#[derive(Clone, Copy)]
pub struct Sizes {
    /// A journal item with a full history (20 entries).
    pub journal: usize,
    pub lease: usize,
}

/// Capacity units one rotation uses, from the calls counted per rotation.
#[derive(Clone, Copy, Default)]
pub struct PerRotation {
    pub read: f64,
    pub write: f64,
}

impl PerRotation {
    /// Journal reads at the full journal's size; every TransactWriteItems is
    /// the journal Put plus the ConditionCheck on the lease item, each
    /// billed twice (transactional).
    pub fn of(counts: &Counts, rotations: usize, sizes: Sizes) -> PerRotation {
        let per = |n: u64| n as f64 / rotations as f64;
        let (journal_r, lease_r) = (read_units(sizes.journal), read_units(sizes.lease));
        let (journal_w, lease_w) = (write_units(sizes.journal), write_units(sizes.lease));
        let read = per(calls_on(counts, "GetItem", "journal")) * journal_r
            + per(calls_on(counts, "GetItem", "lease")) * lease_r;
        let write = per(calls_on(counts, "UpdateItem", "lease")) * lease_w
            + per(calls(counts, "PutItem")) * journal_w
            + per(calls(counts, "TransactWriteItems")) * 2.0 * (journal_w + lease_w);
        PerRotation { read, write }
    }
}

/// An in-region consistent GetItem, assumed (moto's own latency here says
/// nothing about DynamoDB's): a replica's first pass after it starts loads
/// every journal once, one after another.
pub const GET_ITEM_S: f64 = 0.005;

/// An item of the sparse index (`pk`, `idx`, `owner`, `expires_at_ms`), in
/// bytes: a lease while it is held, a replica's heartbeat.
pub const INDEX_ITEM: usize = 100;

/// Per replica per lease period: 1 Query of the expired leases and, for the
/// heartbeat, 1 PutItem and 1 Query of the live replicas.
pub const QUERIES_PER_PERIOD: f64 = 2.0;
pub const PUTS_PER_PERIOD: f64 = 1.0;

/// One row of the capacity table.
struct Load {
    start_s: f64,
    start_read: f64,
    steady_read: f64,
    steady_write: f64,
    catch_up_read: f64,
    catch_up_write: f64,
}

fn load(replicas: f64, policies: f64, sizes: Sizes, rotation: PerRotation) -> Load {
    let (journal_r, lease_r) = (read_units(sizes.journal), read_units(sizes.lease));
    // A Query reads at most every item of its index partition: the leases
    // held right now (at most one per policy rotating) or the replicas.
    let query_r = read_units(INDEX_ITEM * replicas as usize);
    // The heartbeat is also written to the index: twice its units.
    let heartbeat_w = 2.0 * write_units(INDEX_ITEM);
    let lease_scan_read = replicas * QUERIES_PER_PERIOD * query_r / LEASE_S;
    let lease_scan_write = replicas * PUTS_PER_PERIOD * heartbeat_w / LEASE_S;
    // Rotations due on schedule (max_age 30 d): the only journals read in
    // steady state, each by the replica whose index says it is due.
    let scheduled = policies / (30.0 * 86_400.0);
    let rate = policies / CATCH_UP_S;
    // The replicas that lose the race for a lease read it once more, and
    // the journal once after the winner's rotation ends.
    let losers = (replicas - 1.0) * rate * (lease_r + journal_r);
    Load {
        start_s: policies * GET_ITEM_S,
        start_read: replicas * journal_r / GET_ITEM_S,
        steady_read: lease_scan_read + scheduled * rotation.read,
        steady_write: lease_scan_write + scheduled * rotation.write,
        catch_up_read: lease_scan_read + rate * rotation.read + losers,
        catch_up_write: lease_scan_write + rate * rotation.write,
    }
}

/// What `read` and `write` units/s exceed, or "within limits".
fn exceeds(read: f64, write: f64) -> String {
    let mut over = Vec::new();
    for (what, rate, (new_table, quota)) in [
        ("reads", read, (NEW_TABLE.0, TABLE_QUOTA.0)),
        ("writes", write, (NEW_TABLE.1, TABLE_QUOTA.1)),
    ] {
        if rate > quota {
            over.push(format!("{what} > {quota:.0}/s table quota"));
        } else if rate > new_table {
            over.push(format!("{what} > new table's {new_table:.0}/s"));
        }
    }
    if over.is_empty() {
        "within limits".into()
    } else {
        over.join(", ")
    }
}

/// The row's verdict: the busiest of start (all replicas at once), steady
/// state and catch-up.
fn verdict(load: &Load) -> String {
    let read = (load.catch_up_read.max(load.steady_read)).max(load.start_read);
    let write = load.catch_up_write.max(load.steady_write);
    exceeds(read, write)
}

pub fn print_table(sizes: Sizes, rotation: PerRotation) {
    println!(
        "Capacity per table (lease {LEASE_S:.0} s). Per replica per lease period: 1 Query of the expired leases + \
         1 PutItem and 1 Query for the heartbeat (sparse index, items ~{INDEX_ITEM} B); journals are read only \
         when due, plus once per policy when a replica starts (one consistent GetItem after another, assumed {:.0} ms each)",
        GET_ITEM_S * 1000.0
    );
    println!(
        "  journal item after 20 history entries {} B = {} RCU per consistent read, {} WCU per write; lease item {} B",
        sizes.journal,
        read_units(sizes.journal),
        write_units(sizes.journal),
        sizes.lease,
    );
    println!(
        "  one rotation (measured calls) = {:.1} RCU + {:.1} WCU; a TransactWriteItems is billed 2 x (journal + lease) WCU",
        rotation.read, rotation.write,
    );
    println!(
        "  steady = lease queries + heartbeats + rotations due on a 30 d max_age; catch-up = all N rotate within 1 h \
         (the R-1 replicas that lose a lease read it and, after the rotation, the journal once); \
         start = all R replicas start at once (\"start s\" long)"
    );
    println!(
        "  limits: a new on-demand table serves {:.0} RCU/s and {:.0} WCU/s at once; the default table quota is {:.0} each",
        NEW_TABLE.0, NEW_TABLE.1, TABLE_QUOTA.0,
    );
    println!(
        "{:>3} {:>6} {:>8} {:>12} {:>12} {:>12} {:>13} {:>13}  verdict",
        "R",
        "N",
        "start s",
        "start RCU/s",
        "steady RCU/s",
        "steady WCU/s",
        "catch-up RCU",
        "catch-up WCU",
    );
    for replicas in [1, 3, 5] {
        for policies in [10, 1_000, 10_000] {
            let l = load(f64::from(replicas), f64::from(policies), sizes, rotation);
            println!(
                "{:>3} {:>6} {:>8.2} {:>12.2} {:>12.3} {:>12.3} {:>13.2} {:>13.2}  {}",
                replicas,
                policies,
                l.start_s,
                l.start_read,
                l.steady_read,
                l.steady_write,
                l.catch_up_read,
                l.catch_up_write,
                verdict(&l)
            );
        }
    }
    println!(
        "  steady cost per replica does not grow with N: the index in memory says which journal is due; \
         a replica that starts reads each journal once ({:.0} ms each here, so {:.0} s for 10 000 policies).",
        GET_ITEM_S * 1000.0,
        10_000.0 * GET_ITEM_S
    );
}

/// The steady-state table calls per second the model predicts with nothing
/// due: (journal GetItem, Query, PutItem).
pub fn predicted_per_s(replicas: f64, lease_s: f64) -> (f64, f64, f64) {
    (
        0.0,
        replicas * QUERIES_PER_PERIOD / lease_s,
        replicas * PUTS_PER_PERIOD / lease_s,
    )
}
