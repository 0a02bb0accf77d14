//! A metric family (one metric per label set) whose series come out sorted
//! by label set, and whose HELP and TYPE come out even before its first
//! series.
//!
//! prometheus-client's own `Family` would do for counting, but not for
//! this contract: it keeps its series in a `HashMap` (the order of a scrape
//! changes as series come and go), it leaves a family without series out of
//! the scrape altogether, and it cannot drop every series of a forgotten
//! policy without being told each full label set (it has `remove`, no
//! `retain`). This is the same container over a `BTreeMap`; the series are
//! still the crate's metrics (`Counter`, `Gauge`, `Histogram`), written by
//! the crate's encoders, so both exposition formats stay the crate's.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::{MetricType, TypedMetric};

pub struct SortedFamily<S, M> {
    /// Shared with the clone the registry holds for encoding.
    series: Arc<Mutex<BTreeMap<S, M>>>,
    new: fn() -> M,
}

impl<S: Ord + Clone, M: Clone> SortedFamily<S, M> {
    /// A family whose new series are made by `new` (a histogram with its buckets).
    pub fn with_constructor(new: fn() -> M) -> Self {
        SortedFamily {
            series: Arc::default(),
            new,
        }
    }

    /// The metric of `labels`, created by the family's constructor if it is
    /// new. Metrics are handles: updating the one returned updates the family.
    pub fn get_or_create(&self, labels: &S) -> M {
        let mut series = self.lock();
        match series.get(labels) {
            Some(metric) => metric.clone(),
            None => {
                let metric = (self.new)();
                series.insert(labels.clone(), metric.clone());
                metric
            }
        }
    }

    /// Keeps only the series whose label set passes `keep`.
    pub fn retain(&self, mut keep: impl FnMut(&S) -> bool) {
        self.lock().retain(|labels, _| keep(labels));
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<S, M>> {
        // A panic while holding the lock leaves plain numbers behind: keep using them.
        self.series.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S: Ord + Clone, M: Clone + Default> Default for SortedFamily<S, M> {
    fn default() -> Self {
        Self::with_constructor(M::default)
    }
}

impl<S, M> Clone for SortedFamily<S, M> {
    fn clone(&self) -> Self {
        SortedFamily {
            series: self.series.clone(),
            new: self.new,
        }
    }
}

impl<S, M> fmt::Debug for SortedFamily<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let series = self.series.lock().map_or(0, |s| s.len());
        f.debug_struct("SortedFamily")
            .field("series", &series)
            .finish()
    }
}

impl<S, M> EncodeMetric for SortedFamily<S, M>
where
    S: Ord + Clone + EncodeLabelSet,
    M: Clone + EncodeMetric + TypedMetric,
{
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        for (labels, metric) in self.lock().iter() {
            metric.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }

    // `is_empty` stays `false`: a family is listed (HELP, TYPE) before its first series.
}
