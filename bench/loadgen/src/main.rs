//! `strongroom-bench`: run a scenario against a target, merge results, print tables.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use strongroom_bench::scenarios::{self, Env, RunParams};
use strongroom_bench::{report, target::Target};

#[derive(Parser)]
#[command(about = "Strongroom's closed-loop load generator")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one scenario at one concurrency; prints the result JSON (and writes it with --out).
    Run {
        /// Target file (JSON).
        #[arg(long)]
        target: PathBuf,
        /// Scenario name in the target.
        #[arg(long)]
        scenario: String,
        /// Virtual clients (closed loop).
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Measured seconds.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Warm-up seconds (load that is not counted).
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        /// Tokio worker threads of the load generator.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Server PID (else the target's).
        #[arg(long)]
        server_pid: Option<u32>,
        /// Result file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Merge result files into one `{"runs": [...]}` file and print the Markdown table.
    Report {
        /// Merged output file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Extra JSON object merged into the top level (e.g. machine facts).
        #[arg(long)]
        meta: Option<String>,
        /// Result files.
        files: Vec<PathBuf>,
    },
    /// Print the public JWK of a signing key (PKCS#8 PEM or EC JWK).
    PublicJwk {
        /// Key file.
        key: PathBuf,
        /// Algorithm.
        #[arg(long, default_value = "ES256")]
        alg: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run { target, scenario, concurrency, duration, warmup, threads, server_pid, out } => {
            let t = Target::load(&target)?;
            let pid = match server_pid {
                Some(p) => p,
                None => t.pid()?,
            };
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads.max(1)).enable_all().build()?;
            let result = rt.block_on(async move {
                let env = Arc::new(Env::load(t).await.context("SETUP FAILED")?);
                scenarios::run(env, RunParams { scenario, concurrency, duration, warmup, pid, threads }).await
            });
            let result = match result {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("\n!!! SETUP FAILED: {e:#}\n");
                    std::process::exit(1);
                }
            };
            let text = serde_json::to_string_pretty(&result)?;
            if let Some(o) = out {
                std::fs::write(&o, &text).with_context(|| format!("writing {}", o.display()))?;
            } else {
                println!("{text}");
            }
            eprint!("{}", report::table(std::slice::from_ref(&result)));
            if result["errors_total"].as_u64().unwrap_or(0) > 0 {
                eprintln!(
                    "\n!!! {} ERRORS in {} / c={}: {}\n",
                    result["errors_total"],
                    result["scenario"],
                    result["concurrency"],
                    serde_json::to_string_pretty(&result["errors"])?
                );
                std::process::exit(2);
            }
        }
        Cmd::Report { out, meta, files } => {
            let mut runs = Vec::new();
            for f in &files {
                let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
                runs.extend(report::runs_of(serde_json::from_str(&text).with_context(|| format!("{}", f.display()))?));
            }
            let mut doc = serde_json::json!({});
            if let Some(m) = meta {
                doc = serde_json::from_str(&m).context("--meta must be a JSON object")?;
            }
            doc["runs"] = serde_json::Value::Array(runs.clone());
            if let Some(o) = out {
                std::fs::write(&o, serde_json::to_string_pretty(&doc)?)?;
            }
            print!("{}", report::table(&runs));
            let errors: u64 = runs.iter().map(|r| r["errors_total"].as_u64().unwrap_or(0)).sum();
            if errors > 0 {
                println!("\n**{errors} errors** — see the JSON for kinds and samples.");
            }
        }
        Cmd::PublicJwk { key, alg } => {
            let alg = strongroom_protocol::jose::JwsAlg::parse(&alg).context("algorithm")?;
            println!("{}", scenarios::public_jwk_of(&key, alg)?);
        }
    }
    Ok(())
}
