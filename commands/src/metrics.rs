//! A small Prometheus registry: counters, gauges and histograms keyed by name and labels,
//! rendered as the text exposition format at `/metrics`. One process-wide instance.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{LazyLock, Mutex};

/// Latency buckets in seconds (1 ms … 10 s).
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct HistogramData {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    help: BTreeMap<&'static str, (&'static str, &'static str)>,
    counters: BTreeMap<(&'static str, String), f64>,
    gauges: BTreeMap<(&'static str, String), f64>,
    histograms: BTreeMap<(&'static str, String), HistogramData>,
}

#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

pub static METRICS: LazyLock<Registry> = LazyLock::new(Registry::default);

fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let _ = write!(out, "{k}=\"{v}\"");
    }
    out
}

impl Registry {
    pub fn describe(&self, name: &'static str, kind: &'static str, help: &'static str) {
        self.inner.lock().expect("metrics").help.insert(name, (kind, help));
    }

    pub fn inc(&self, name: &'static str, pairs: &[(&str, &str)], by: f64) {
        *self.inner.lock().expect("metrics").counters.entry((name, labels(pairs))).or_default() += by;
    }

    pub fn set(&self, name: &'static str, pairs: &[(&str, &str)], value: f64) {
        self.inner.lock().expect("metrics").gauges.insert((name, labels(pairs)), value);
    }

    pub fn observe(&self, name: &'static str, pairs: &[(&str, &str)], seconds: f64) {
        let mut inner = self.inner.lock().expect("metrics");
        let h = inner.histograms.entry((name, labels(pairs))).or_default();
        if h.counts.is_empty() {
            h.counts = vec![0; BUCKETS.len()];
        }
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let inner = self.inner.lock().expect("metrics");
        let mut out = String::new();
        let mut described = std::collections::HashSet::new();
        let mut header = |out: &mut String, name: &'static str, default_kind: &str| {
            if described.insert(name) {
                let (kind, help) = inner.help.get(name).copied().unwrap_or((default_kind, ""));
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} {kind}");
            }
        };
        let series = |name: &str, l: &str| if l.is_empty() { name.to_string() } else { format!("{name}{{{l}}}") };
        for ((name, l), v) in &inner.counters {
            header(&mut out, name, "counter");
            let _ = writeln!(out, "{} {v}", series(name, l));
        }
        for ((name, l), v) in &inner.gauges {
            header(&mut out, name, "gauge");
            let _ = writeln!(out, "{} {v}", series(name, l));
        }
        for ((name, l), h) in &inner.histograms {
            header(&mut out, name, "histogram");
            let sep = if l.is_empty() { "" } else { "," };
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"{bound}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{} {}", series(&format!("{name}_sum"), l), h.sum);
            let _ = writeln!(out, "{} {}", series(&format!("{name}_count"), l), h.count);
        }
        out
    }
}
