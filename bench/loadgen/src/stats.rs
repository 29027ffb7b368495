//! Latency statistics and error accounting.

use serde::Serialize;
use std::collections::BTreeMap;

/// Nearest-rank percentile (`p` in 0..=100) of sorted values; `None` when empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Summary of a set of latencies in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Number of samples.
    pub n: usize,
}

impl Latency {
    /// Summarises latencies (ms), any order.
    pub fn of(values: &mut [f64]) -> Latency {
        values.sort_by(|a, b| a.total_cmp(b));
        let n = values.len();
        if n == 0 {
            return Latency::default();
        }
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        Latency {
            p50: r(percentile(values, 50.0).unwrap_or(0.0)),
            p90: r(percentile(values, 90.0).unwrap_or(0.0)),
            p99: r(percentile(values, 99.0).unwrap_or(0.0)),
            max: r(values[n - 1]),
            mean: r(values.iter().sum::<f64>() / n as f64),
            n,
        }
    }
}

/// Errors by kind, with a few distinct sample bodies each.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Errors(pub BTreeMap<String, ErrorKind>);

/// One kind of error.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ErrorKind {
    /// How often.
    pub count: u64,
    /// Up to three distinct samples.
    pub samples: Vec<String>,
}

impl Errors {
    /// Counts one error of `kind` with a sample (kept when new and fewer than three).
    pub fn add(&mut self, kind: &str, sample: &str) {
        let e = self.0.entry(kind.to_string()).or_default();
        e.count += 1;
        let sample: String = sample.chars().take(400).collect();
        if e.samples.len() < 3 && !e.samples.contains(&sample) {
            e.samples.push(sample);
        }
    }
    /// Adds another tally into this one.
    pub fn merge(&mut self, other: Errors) {
        for (k, v) in other.0 {
            let e = self.0.entry(k).or_default();
            e.count += v.count;
            for s in v.samples {
                if e.samples.len() < 3 && !e.samples.contains(&s) {
                    e.samples.push(s);
                }
            }
        }
    }
    /// Total count.
    pub fn total(&self) -> u64 {
        self.0.values().map(|e| e.count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 90.0), Some(90.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        // 10 values: p99 is the largest, p50 the fifth.
        let w: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&w, 99.0), Some(10.0));
        assert_eq!(percentile(&w, 50.0), Some(5.0));
    }

    #[test]
    fn summary_sorts_and_means() {
        let mut v = vec![3.0, 1.0, 2.0, 4.0];
        let l = Latency::of(&mut v);
        assert_eq!((l.p50, l.max, l.mean, l.n), (2.0, 4.0, 2.5, 4));
        assert_eq!(Latency::of(&mut []), Latency::default());
    }

    #[test]
    fn errors_count_and_sample() {
        let mut e = Errors::default();
        for i in 0..5 {
            e.add("token: http 400", &format!("body {}", i % 4));
        }
        e.add("token: check cnf", "x");
        assert_eq!(e.total(), 6);
        assert_eq!(e.0["token: http 400"].samples.len(), 3);
        let mut f = Errors::default();
        f.add("token: check cnf", "y");
        e.merge(f);
        assert_eq!(e.0["token: check cnf"].count, 2);
        assert_eq!(e.0["token: check cnf"].samples, vec!["x".to_string(), "y".to_string()]);
    }
}
