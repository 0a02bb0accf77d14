//! The ten per-policy gauges (key age, next rotation, due, in progress...)
//! as one row per policy, each gauge family a column of the table.
//!
//! As ten families of the crate's own gauges, each series was a label set,
//! an `Arc` around one number and a map slot: ~0.9 KiB per policy, 9 MiB
//! of an idle daemon's 10,000-policy heap. A row is ten optional numbers.
//! The scrape is unchanged: each column is registered as its family and
//! encoded by the crate's encoder, a series for each policy whose cell is
//! set, in the order of the policy names.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prometheus_client::encoding::{EncodeGaugeValue, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;

use super::families::PolicyLabels;

/// One policy's gauges: seconds (and Unix times) and whole numbers.
#[derive(Debug, Default, Clone, Copy)]
pub struct Row {
    seconds: [Option<f64>; 5],
    whole: [Option<i64>; 6],
}

type Rows = Arc<Mutex<BTreeMap<Arc<str>, Row>>>;

/// The rows of every policy, shared by the columns.
#[derive(Debug, Default, Clone)]
pub struct PolicyTable {
    rows: Rows,
}

impl PolicyTable {
    /// The `index`th seconds column (0 to 4).
    pub fn seconds(&self, index: usize) -> Column<f64> {
        assert!(index < 5, "a row has five seconds cells");
        self.column(index)
    }

    /// The `index`th whole-number column (0 to 5).
    pub fn whole(&self, index: usize) -> Column<i64> {
        assert!(index < 6, "a row has six whole-number cells");
        self.column(index)
    }

    fn column<T: Cell>(&self, index: usize) -> Column<T> {
        Column {
            rows: self.rows.clone(),
            index,
            kind: std::marker::PhantomData,
        }
    }

    /// Drops the policy's row: every one of its series goes.
    pub fn forget(&self, policy: &str) {
        lock(&self.rows).remove(policy);
    }
}

/// A number a row holds.
pub trait Cell: Copy + EncodeGaugeValue + fmt::Debug + Send + Sync + 'static {
    fn get(row: &Row, index: usize) -> Option<Self>;
    fn slot(row: &mut Row, index: usize) -> &mut Option<Self>;
}

impl Cell for f64 {
    fn get(row: &Row, index: usize) -> Option<f64> {
        row.seconds[index]
    }
    fn slot(row: &mut Row, index: usize) -> &mut Option<f64> {
        &mut row.seconds[index]
    }
}

impl Cell for i64 {
    fn get(row: &Row, index: usize) -> Option<i64> {
        row.whole[index]
    }
    fn slot(row: &mut Row, index: usize) -> &mut Option<i64> {
        &mut row.whole[index]
    }
}

/// One gauge family: a column of the table.
pub struct Column<T> {
    rows: Rows,
    index: usize,
    kind: std::marker::PhantomData<T>,
}

impl<T: Cell> Column<T> {
    pub fn set(&self, labels: &PolicyLabels, value: T) {
        let mut rows = lock(&self.rows);
        let row = rows.entry(labels.policy.clone()).or_default();
        *T::slot(row, self.index) = Some(value);
    }

    /// Sets the value, or with `None` drops the policy's series of this family.
    pub fn set_or_remove(&self, labels: &PolicyLabels, value: Option<T>) {
        match value {
            Some(value) => self.set(labels, value),
            None => {
                if let Some(row) = lock(&self.rows).get_mut(&labels.policy) {
                    *T::slot(row, self.index) = None;
                }
            }
        }
    }
}

impl<T> Clone for Column<T> {
    fn clone(&self) -> Self {
        Column {
            rows: self.rows.clone(),
            index: self.index,
            kind: std::marker::PhantomData,
        }
    }
}

impl<T> fmt::Debug for Column<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Column")
            .field("index", &self.index)
            .finish()
    }
}

impl<T: Cell> EncodeMetric for Column<T> {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        for (policy, row) in lock(&self.rows).iter() {
            if let Some(value) = T::get(row, self.index) {
                let labels = PolicyLabels {
                    policy: policy.clone(),
                };
                encoder.encode_family(&labels)?.encode_gauge(&value)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }

    // `is_empty` stays `false`: a family is listed (HELP, TYPE) before its first series.
}

fn lock(rows: &Rows) -> MutexGuard<'_, BTreeMap<Arc<str>, Row>> {
    // A panic while holding the lock leaves plain numbers behind: keep using them.
    rows.lock().unwrap_or_else(PoisonError::into_inner)
}
