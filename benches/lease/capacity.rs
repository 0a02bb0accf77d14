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
/// The daemon passes over every policy once per lease period (at most 30 s).
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
/// nothing about DynamoDB's): a pass loads the journals one after another.
pub const GET_ITEM_S: f64 = 0.005;

/// One row of the capacity table.
struct Load {
    pass_s: f64,
    steady_read: f64,
    steady_write: f64,
    scan_read: f64,
    catch_up_read: f64,
    catch_up_write: f64,
}

fn load(replicas: f64, policies: f64, sizes: Sizes, rotation: PerRotation) -> Load {
    let journal_r = read_units(sizes.journal);
    // A pass reads every journal; the next starts a lease period after the
    // last began, or at once when the pass took longer than that.
    let pass_s = policies * GET_ITEM_S;
    let pass_read = replicas * policies * journal_r;
    let steady_passes = 1.0 / pass_s.max(LEASE_S);
    // In a catch-up every rotation task that ends (won or found busy) wakes
    // its replica for another pass; wake-ups during a pass coalesce.
    let catch_up_passes = 1.0 / pass_s.max(LEASE_S.min(CATCH_UP_S / policies));
    // Rotations due on schedule (max_age 30 d) are noise next to the passes.
    let scheduled = policies / (30.0 * 86_400.0);
    let rate = policies / CATCH_UP_S;
    // The replicas that lose the race for a lease read it once more.
    let losers = (replicas - 1.0) * rate * read_units(sizes.lease);
    // A whole-table consistent scan per replica per lease period, if one is wired.
    let table_bytes = policies * (sizes.journal + sizes.lease) as f64;
    Load {
        pass_s,
        steady_read: pass_read * steady_passes + scheduled * rotation.read,
        steady_write: scheduled * rotation.write,
        scan_read: replicas * (table_bytes / 4096.0).ceil() / LEASE_S,
        catch_up_read: pass_read * catch_up_passes + rate * rotation.read + losers,
        catch_up_write: rate * rotation.write,
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

/// The row's verdict as the daemon runs now, then with a whole-table scan.
fn verdict(load: &Load) -> String {
    let read = load.catch_up_read.max(load.steady_read);
    let write = load.catch_up_write.max(load.steady_write);
    format!(
        "{}; with scan: {}",
        exceeds(read, write),
        exceeds(read + load.scan_read, write)
    )
}

pub fn print_table(sizes: Sizes, rotation: PerRotation) {
    println!(
        "Capacity per table (lease {LEASE_S:.0} s). A pass of a replica reads every journal, one consistent GetItem after another \
         (assumed {:.0} ms each in-region): once per lease period, back to back when a pass takes longer (\"pass s\")",
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
        "  steady = passes + rotations due on a 30 d max_age; catch-up = all N rotate within 1 h: every rotation task \
         that ends (won, or lease busy on the R-1 others) wakes its replica for another pass (coalesced during one)"
    );
    println!(
        "  limits: a new on-demand table serves {:.0} RCU/s and {:.0} WCU/s at once; the default table quota is {:.0} each",
        NEW_TABLE.0, NEW_TABLE.1, TABLE_QUOTA.0,
    );
    println!(
        "{:>3} {:>6} {:>7} {:>12} {:>12} {:>13} {:>13} {:>13}  verdict",
        "R",
        "N",
        "pass s",
        "steady RCU/s",
        "steady WCU/s",
        "catch-up RCU",
        "catch-up WCU",
        "+scan RCU/s"
    );
    for replicas in [1, 3, 5] {
        for policies in [10, 1_000, 10_000] {
            let l = load(f64::from(replicas), f64::from(policies), sizes, rotation);
            println!(
                "{:>3} {:>6} {:>7.2} {:>12.2} {:>12.3} {:>13.2} {:>13.2} {:>13.2}  {}",
                replicas,
                policies,
                l.pass_s,
                l.steady_read,
                l.steady_write,
                l.catch_up_read,
                l.catch_up_write,
                l.scan_read,
                verdict(&l)
            );
        }
    }
    println!(
        "  pass s > {LEASE_S:.0}: that replica looks at each policy less often than once per lease period \
         (N above {:.0} at {:.0} ms per GetItem), so a crashed replica's rotation waits longer to be resumed.",
        LEASE_S / GET_ITEM_S,
        GET_ITEM_S * 1000.0
    );
    println!(
        "  +scan RCU/s: what a consistent whole-table Scan per replica per lease period would add \
         (the daemon on this commit makes none; the verdict says both)."
    );
}

/// The steady-state journal reads per second the model predicts.
pub fn predicted_get_items_per_s(replicas: f64, policies: f64, lease_s: f64) -> f64 {
    replicas * policies / lease_s
}
