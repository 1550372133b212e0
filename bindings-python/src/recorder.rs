//! An opt-in metrics recorder for Python hosts: `fundcore.enable_metrics()` installs it for the
//! process (a library installs nothing by itself), `fundcore.metrics()` reads what the engine
//! recorded. Counters are totals; durations are cumulative histogram buckets, so a host can
//! export them in the Prometheus format.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use ::metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use metrics_util::registry::{Registry, Storage};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// Upper bounds of the duration buckets, in seconds; a last bucket (+Inf) counts every sample.
const BUCKET_BOUNDS_SECONDS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// What a histogram has seen so far: samples per bucket (not cumulative), their sum and count.
#[derive(Clone, Default)]
struct Distribution {
    per_bucket: [u64; BUCKET_BOUNDS_SECONDS.len()],
    sum: f64,
    count: u64,
}

impl Distribution {
    fn observe(&mut self, value: f64) {
        if let Some(bucket) = BUCKET_BOUNDS_SECONDS
            .iter()
            .position(|bound| value <= *bound)
        {
            self.per_bucket[bucket] += 1;
        }
        self.sum += value;
        self.count += 1;
    }
}

/// A histogram kept as its bucket counts, so its memory stays the same however many samples
/// arrive between two reads (a host may never read them).
#[derive(Default)]
struct Buckets(Mutex<Distribution>);

impl HistogramFn for Buckets {
    fn record(&self, value: f64) {
        self.0.lock().observe(value);
    }
}

/// Atomic counters and gauges, bucketed histograms.
struct HostStorage;

impl<K> Storage<K> for HostStorage {
    type Counter = Arc<AtomicU64>;
    type Gauge = Arc<AtomicU64>;
    type Histogram = Arc<Buckets>;

    fn counter(&self, _: &K) -> Self::Counter {
        Arc::new(AtomicU64::new(0))
    }

    fn gauge(&self, _: &K) -> Self::Gauge {
        Arc::new(AtomicU64::new(0))
    }

    fn histogram(&self, _: &K) -> Self::Histogram {
        Arc::new(Buckets::default())
    }
}

struct HostRecorder {
    registry: Registry<Key, HostStorage>,
}

impl Recorder for HostRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.registry
            .get_or_create_counter(key, |counter| Counter::from_arc(Arc::clone(counter)))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.registry
            .get_or_create_gauge(key, |gauge| Gauge::from_arc(Arc::clone(gauge)))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.registry
            .get_or_create_histogram(key, |histogram| Histogram::from_arc(Arc::clone(histogram)))
    }
}

static RECORDER: OnceLock<&'static HostRecorder> = OnceLock::new();
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Installs fundcore's metrics recorder for this process; `True` when it is the process's
/// recorder (now or since an earlier call), `False` when another recorder was installed first
/// (then `metrics()` stays empty).
#[pyfunction]
pub fn enable_metrics() -> bool {
    *INSTALLED.get_or_init(|| {
        let recorder: &'static HostRecorder = Box::leak(Box::new(HostRecorder {
            registry: Registry::new(HostStorage),
        }));
        let installed = ::metrics::set_global_recorder(recorder).is_ok();
        if installed {
            let _ = RECORDER.set(recorder);
        }
        installed
    })
}

/// What the engine recorded since `enable_metrics()`: a list of
/// `{"name", "type": "counter", "labels", "value"}` and
/// `{"name", "type": "histogram", "labels", "buckets": [(upper bound, cumulative count), ...,
/// (inf, count)], "sum", "count"}`. Empty when metrics are not enabled.
#[pyfunction]
pub fn metrics(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let out = PyList::empty(py);
    let Some(recorder) = RECORDER.get() else {
        return Ok(out);
    };
    let labels = |key: &Key| -> PyResult<Bound<'_, PyDict>> {
        let dict = PyDict::new(py);
        for label in key.labels() {
            dict.set_item(label.key(), label.value())?;
        }
        Ok(dict)
    };
    let mut counters = Vec::new();
    recorder.registry.visit_counters(|key, counter| {
        counters.push((
            key.clone(),
            counter.load(std::sync::atomic::Ordering::Relaxed),
        ));
    });
    for (key, value) in counters {
        let item = PyDict::new(py);
        item.set_item("name", key.name())?;
        item.set_item("type", "counter")?;
        item.set_item("labels", labels(&key)?)?;
        item.set_item("value", value)?;
        out.append(item)?;
    }
    let mut histograms = Vec::new();
    recorder.registry.visit_histograms(|key, histogram| {
        histograms.push((key.clone(), histogram.0.lock().clone()));
    });
    for (key, distribution) in &histograms {
        let item = PyDict::new(py);
        item.set_item("name", key.name())?;
        item.set_item("type", "histogram")?;
        item.set_item("labels", labels(key)?)?;
        let mut cumulative = 0;
        let mut buckets: Vec<(f64, u64)> = Vec::new();
        for (bound, count) in BUCKET_BOUNDS_SECONDS.iter().zip(distribution.per_bucket) {
            cumulative += count;
            buckets.push((*bound, cumulative));
        }
        buckets.push((f64::INFINITY, distribution.count));
        item.set_item("buckets", buckets)?;
        item.set_item("sum", distribution.sum)?;
        item.set_item("count", distribution.count)?;
        out.append(item)?;
    }
    Ok(out)
}
