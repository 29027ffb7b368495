//! Merging run results and printing the Markdown table.

use serde_json::Value;

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_f64().unwrap_or(f64::NAN)
}

/// The Markdown table of a list of run results.
pub fn table(runs: &[Value]) -> String {
    let mut out = String::from(
        "| target | scenario | conc | ops/s | p50 ms | p90 ms | p99 ms | max ms | server CPU s/1000 ops | server cores | server peak RSS MiB | loadgen CPU s/1000 ops | errors |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in runs {
        let rss = num(r, &["server", "rss_kib_peak_sampled"]) / 1024.0;
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} | {:.2} | {:.1} | {:.3} | {} |\n",
            r["target"].as_str().unwrap_or("?"),
            r["scenario"].as_str().unwrap_or("?"),
            r["concurrency"],
            num(r, &["ops_per_s"]),
            num(r, &["latency_ms", "p50"]),
            num(r, &["latency_ms", "p90"]),
            num(r, &["latency_ms", "p99"]),
            num(r, &["latency_ms", "max"]),
            num(r, &["server", "cpu_s_per_1000_ops"]),
            num(r, &["server", "cpu_util_cores"]),
            rss,
            num(r, &["loadgen", "cpu_s_per_1000_ops"]),
            r["errors_total"],
        ));
    }
    out
}

/// Flattens result files: a single run, a `{"runs": [...]}` file, or a list.
pub fn runs_of(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        Value::Object(ref o) if o.contains_key("runs") => o["runs"].as_array().cloned().unwrap_or_default(),
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_and_tabulates() {
        let run = json!({"target": "t", "scenario": "cc-mtls", "concurrency": 16, "ops_per_s": 1000.0,
            "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 3.0, "max": 4.0},
            "server": {"cpu_s_per_1000_ops": 0.1, "cpu_util_cores": 0.5, "rss_kib_peak_sampled": 20480},
            "loadgen": {"cpu_s_per_1000_ops": 0.05}, "errors_total": 0});
        let runs = runs_of(json!({"runs": [run.clone(), run.clone()]}));
        assert_eq!(runs.len(), 2);
        assert_eq!(runs_of(run.clone()).len(), 1);
        let t = table(&runs);
        assert!(
            t.contains("| t | cc-mtls | 16 | 1000 | 1.00 | 2.00 | 3.00 | 4.00 | 0.100 | 0.50 | 20.0 | 0.050 | 0 |"),
            "{t}"
        );
    }
}
