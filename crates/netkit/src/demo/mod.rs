//! `netkit demo`: start every server on loopback ephemeral ports inside this
//! process, drive every client against it, and print one line per system.

mod capture;
mod chat;
mod mail;
mod ping;
mod proxy;
mod udping;
mod upper;
mod web;

use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

/// No single system may hold up the demo for longer than this.
const PER_SYSTEM: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print one JSON object per system (system, ok, detail, elapsed_ms),
    /// then a summary object
    #[arg(long)]
    json: bool,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut summary = Summary {
        json: args.json,
        ..Summary::default()
    };
    summary.check("upper", upper::check()).await;
    summary.check("ping", ping::check()).await;
    summary.check("udping", udping::check()).await;
    summary.check("heartbeat", udping::check_heartbeat()).await;
    summary.check("mail", mail::check()).await;
    summary.check("web", web::check()).await;
    summary.check("proxy", proxy::check()).await;
    summary.check("chat", chat::check()).await;
    summary.check("capture", capture::check()).await;
    Ok(summary.finish(started.elapsed()))
}

#[derive(Debug, Default)]
struct Summary {
    json: bool,
    passed: usize,
    failed: usize,
}

impl Summary {
    async fn check<F>(&mut self, system: &str, check: F)
    where
        F: Future<Output = anyhow::Result<String>>,
    {
        let started = Instant::now();
        let outcome = tokio::time::timeout(PER_SYSTEM, check).await;
        let took = started.elapsed().as_secs_f64() * 1e3;
        if self.json {
            let (ok, detail) = match outcome {
                Ok(Ok(checked)) => (true, checked),
                Ok(Err(err)) => (false, crate::error_chain(&err)),
                Err(_) => (false, format!("no result within {PER_SYSTEM:?}")),
            };
            if ok {
                self.passed += 1;
            } else {
                self.failed += 1;
            }
            let _ = crate::json::print_line(&serde_json::json!({
                "type": "system",
                "system": system,
                "ok": ok,
                "detail": detail,
                "elapsed_ms": took,
            }));
            return;
        }
        match outcome {
            Ok(Ok(checked)) => {
                self.passed += 1;
                println!("{system:<10} ok    {checked} ({took:.0} ms)");
            }
            Ok(Err(err)) => {
                self.failed += 1;
                println!("{system:<10} FAIL  {}", crate::error_chain(&err));
            }
            Err(_) => {
                self.failed += 1;
                println!("{system:<10} FAIL  no result within {PER_SYSTEM:?}");
            }
        }
    }

    fn finish(self, took: Duration) -> ExitCode {
        let total = self.passed + self.failed;
        if self.json {
            let _ = crate::json::print_line(&serde_json::json!({
                "type": "summary",
                "systems": total,
                "passed": self.passed,
                "failed": self.failed,
                "elapsed_ms": crate::json::ms(took),
            }));
            return if self.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        let took = took.as_secs_f64();
        if self.failed == 0 {
            println!("demo: all {total} systems ok in {took:.1} s");
            ExitCode::SUCCESS
        } else {
            println!(
                "demo: {} of {total} systems failed ({took:.1} s)",
                self.failed
            );
            ExitCode::FAILURE
        }
    }
}
