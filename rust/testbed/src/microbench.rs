//! `testbed microbench`: the idle hub step measured in Rust, against a bare tokio step, in one
//! process. `cargo xtask bench` runs it from a release build of the testbed and reads its `BENCH`
//! rows.
//!
//! Why in Rust rather than inside Godot: the row compares the reactor's step with tokio's own
//! minimal step, and only Rust can run that baseline; measuring both with the same clock, in the
//! same process and interleaved, makes the ratio meaningful. Why a release build: a debug tokio is
//! several times slower than the release library Godot loads.
//!
//! Two rows: steps back to back (hot caches: the cost of the code itself), and steps 16.7 ms
//! apart (as in a game at 60 fps, where every step starts with cold caches and, on a VM, often
//! a sleeping vCPU). The Godot side of the same cost is the scene's "0 idle TCP clients" row.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_net_core::reactor::Reactor;
use lexopt::prelude::*;
use serde_json::json;

/// The step budget the hub gives the reactor by default (`AsyncHub.max_step_usec`).
const BUDGET: Duration = Duration::from_micros(2000);

/// One frame at 60 fps: the pause between steps of the paced measurement.
const FRAME: Duration = Duration::from_micros(16_667);

/// `testbed microbench [--rounds N] [--steps N] [--paced-steps N]`: prints two `BENCH {json}`
/// rows: back-to-back steps (hot caches), and steps one frame apart (as in a game at 60 fps).
pub fn main(args: Vec<OsString>) -> Result<ExitCode> {
    let (mut rounds, mut steps, mut paced) = (100usize, 1000usize, 200usize);
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("rounds") => rounds = parser.value()?.parse()?,
            Long("steps") => steps = parser.value()?.parse()?,
            Long("paced-steps") => paced = parser.value()?.parse()?,
            _ => return Err(arg.unexpected().into()),
        }
    }
    if cfg!(debug_assertions) {
        eprintln!(
            "microbench: warning: this is a debug build; run `cargo run --release -p testbed --features microbench -- microbench`"
        );
    }

    let reactor = Reactor::new().context("building the reactor")?;
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().context("building tokio")?;
    let bench = Pair { reactor: &reactor, tokio: &tokio };

    // Warm-up: caches, the allocator, the CPU's clock.
    bench.run(1, steps.max(1000), Duration::ZERO);
    let (hub, bare) = bench.run(rounds, steps, Duration::ZERO);
    row(
        "idle hub step, no tasks (Reactor::step, 2 ms budget), back to back",
        &hub,
        &bare,
        format!("{rounds} interleaved rounds of {steps} steps each"),
    );
    // One step per frame: the caches are cold again at every step, as in a game.
    let (hub, bare) = bench.run(paced.div_ceil(10), 10, FRAME);
    row(
        "idle hub step, no tasks (Reactor::step, 2 ms budget), one step per 16.7 ms",
        &hub,
        &bare,
        format!("{} interleaved rounds of 10 steps each, sleeping 16.7 ms before every step", paced.div_ceil(10)),
    );
    reactor.shutdown(Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}

/// The two runtimes being compared.
struct Pair<'a> {
    reactor: &'a Reactor,
    tokio: &'a tokio::runtime::Runtime,
}

impl Pair<'_> {
    /// `rounds` rounds of `steps` reactor steps then `steps` bare tokio steps (interleaved, so
    /// that noise from other processes hits both alike), sleeping `pause` before each step.
    fn run(&self, rounds: usize, steps: usize, pause: Duration) -> (Summary, Summary) {
        let (mut hub, mut bare) = (Samples::default(), Samples::default());
        for _ in 0..rounds {
            for _ in 0..steps {
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
                let start = Instant::now();
                let report = self.reactor.step(BUDGET);
                hub.push(start.elapsed());
                debug_assert_eq!(report.polls, 0, "the reactor has no tasks");
            }
            for _ in 0..steps {
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
                let start = Instant::now();
                self.tokio.block_on(tokio::task::yield_now());
                bare.push(start.elapsed());
            }
        }
        (hub.summary(), bare.summary())
    }
}

/// Prints one `BENCH` row: medians, with the spread in the detail.
fn row(metric: &str, hub: &Summary, bare: &Summary, how: String) {
    let row = json!({
        "metric": metric,
        "unit": "us/step",
        "ours": hub.median,
        "baseline": bare.median,
        "baseline_name": "bare tokio current-thread step: block_on(yield_now())",
        "lower_is_better": true,
        "detail": format!(
            "median of {} steps each, {how}; release build, measured in Rust, timed per step with Instant \
             (~20 ns of clock reads on both sides); p10/p90: ours {:.3}/{:.3} us, tokio {:.3}/{:.3} us",
            hub.count, hub.p10, hub.p90, bare.p10, bare.p90
        ),
    });
    println!("BENCH {row}");
}

/// Step durations in microseconds.
#[derive(Default)]
struct Samples(Vec<f64>);

/// Order statistics of [`Samples`], in microseconds.
struct Summary {
    count: usize,
    p10: f64,
    median: f64,
    p90: f64,
}

impl Samples {
    fn push(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1e6);
    }

    fn summary(mut self) -> Summary {
        self.0.sort_by(f64::total_cmp);
        let at = |q: f64| self.0.get(((self.0.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
        Summary { count: self.0.len(), p10: at(0.1), median: at(0.5), p90: at(0.9) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_order_statistics() {
        let mut s = Samples::default();
        for us in (1..=11).rev() {
            s.push(Duration::from_micros(us));
        }
        let sum = s.summary();
        assert_eq!(sum.count, 11);
        assert!((sum.median - 6.0).abs() < 1e-9);
        assert!((sum.p10 - 2.0).abs() < 1e-9);
        assert!((sum.p90 - 10.0).abs() < 1e-9);
    }
}
