//! `testbed soak-load`: the load that `cargo xtask soak` puts on the soak scene from outside
//! Godot, while xtask kills and restarts the services (rust/xtask/src/commands/soak/):
//!
//! - a Redis publisher: `PUBLISH`es numbered messages to the soak channel every
//!   [`PUBLISH_EVERY`], on and on while xtask kills redis-server at random moments (each
//!   delivered number carries the time it was sent, so the harness can tell the ones in flight
//!   at a kill from lost ones);
//! - bursts of [`BURST_CLIENTS`] TCP clients every [`BURST_EVERY`] that connect at once, send
//!   one line each, read the reply and disconnect;
//! - [`SLOW_CLIENTS`] slowloris clients sending a byte every [`SLOW_EVERY`];
//! - [`GARBAGE_BYTES`] of random bytes to the spawner's port over 90 % of the run (scaled down
//!   below [`FULL_GARBAGE_RUN`]).
//!
//! `testbed soak-load --out FILE --stop-file F --seconds D --redis-port R
//! --channel C --tcp-port T [--max-sec S] [--parent PID]` runs them (see [`clients`]) until F
//! exists, S seconds (default D + 120) have passed or process PID is gone, then writes what each
//! client saw to FILE as JSON (through a temporary file and a rename) and exits:
//! `{"published": {"delivered": [0, 1, ...], "delivered_sent_ms": [unix ms, ...], "no_receiver",
//! "extra_receivers", "failed": [numbers]},
//! "bursts": {"bursts", "clients", "acked": [names], "errors": {reply: n}, "io_failures"},
//! "slow": {"clients", "connects", "bytes", "acked", "errors", "closed"},
//! "garbage": {"bytes", "connections", "replies": {kind: n}}}`.

mod clients;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lexopt::prelude::*;
use serde_json::{Value, json};

use crate::files::write_atomically;
use crate::lifetime::Lifetime;
use clients::Flag;

/// How often the publisher publishes.
const PUBLISH_EVERY: Duration = Duration::from_millis(5);

/// TCP clients per burst, and the pause between bursts.
const BURST_CLIENTS: usize = 1000;
const BURST_EVERY: Duration = Duration::from_secs(3);

/// Slowloris clients and the pause between their bytes.
const SLOW_CLIENTS: usize = 20;
const SLOW_EVERY: Duration = Duration::from_millis(2500);

/// Random bytes sent to the spawner in a run of [`FULL_GARBAGE_RUN`] or longer.
const GARBAGE_BYTES: u64 = 100 * 1000 * 1000;
const FULL_GARBAGE_RUN: Duration = Duration::from_secs(120);

/// How often the stop conditions are looked at.
const WATCH: Duration = Duration::from_millis(5);

/// What one run is told.
struct Options {
    out: PathBuf,
    seconds: Duration,
    redis_port: u16,
    channel: String,
    tcp_port: u16,
    lifetime: Lifetime,
}

impl Options {
    fn parse(args: Vec<OsString>) -> Result<Options> {
        let (mut out, mut stop_file, mut seconds, mut max) = (None, None, None, None);
        let (mut redis_port, mut channel, mut tcp_port, mut parent) = (None, None, None, None);
        let mut parser = lexopt::Parser::from_args(args);
        while let Some(arg) = parser.next()? {
            match arg {
                Long("out") => out = Some(PathBuf::from(parser.value()?)),
                Long("stop-file") => stop_file = Some(PathBuf::from(parser.value()?)),
                Long("seconds") => seconds = Some(Duration::from_secs(parser.value()?.parse()?)),
                Long("max-sec") => max = Some(Duration::from_secs(parser.value()?.parse()?)),
                Long("redis-port") => redis_port = Some(parser.value()?.parse()?),
                Long("channel") => channel = Some(parser.value()?.string()?),
                Long("tcp-port") => tcp_port = Some(parser.value()?.parse()?),
                Long("parent") => parent = Some(parser.value()?.parse()?),
                _ => return Err(arg.unexpected().into()),
            }
        }
        let seconds: Duration = seconds.context("--seconds is required")?;
        let max = max.unwrap_or(seconds + Duration::from_secs(120));
        Ok(Options {
            out: out.context("--out is required")?,
            seconds,
            redis_port: redis_port.context("--redis-port is required")?,
            channel: channel.context("--channel is required")?,
            tcp_port: tcp_port.context("--tcp-port is required")?,
            lifetime: Lifetime {
                stop_file: Some(stop_file.context("--stop-file is required")?),
                deadline: Some(Instant::now() + max),
                parent,
            },
        })
    }
}

/// `testbed soak-load ...` (see the module docs).
pub fn main(args: Vec<OsString>) -> Result<ExitCode> {
    let o = Options::parse(args)?;
    let stop: Flag = Arc::new(AtomicBool::new(false));
    let scale = (o.seconds.as_secs_f64() / FULL_GARBAGE_RUN.as_secs_f64()).min(1.0);
    let garbage_bytes = (GARBAGE_BYTES as f64 * scale) as u64;
    let garbage_over = o.seconds.mul_f64(0.9);
    let (redis_port, tcp_port, channel) = (o.redis_port, o.tcp_port, o.channel.clone());
    let publisher = {
        let stop = stop.clone();
        thread::spawn(move || clients::publisher(redis_port, channel, PUBLISH_EVERY, stop))
    };
    let bursts = {
        let stop = stop.clone();
        thread::spawn(move || clients::tcp_bursts(tcp_port, BURST_CLIENTS, BURST_EVERY, stop))
    };
    let slow = {
        let stop = stop.clone();
        thread::spawn(move || clients::slowloris(tcp_port, SLOW_CLIENTS, SLOW_EVERY, stop))
    };
    let garbage = {
        let stop = stop.clone();
        thread::spawn(move || clients::garbage(tcp_port, garbage_bytes, garbage_over, stop))
    };
    eprintln!("testbed soak-load: loading 127.0.0.1:{tcp_port} and publishing to 127.0.0.1:{redis_port}");

    while o.lifetime.ended().is_none() {
        thread::sleep(WATCH);
    }
    stop.store(true, Ordering::SeqCst);
    // A client thread that panicked reports nothing rather than ending the run without a report.
    let published = publisher.join().unwrap_or_default();
    let bursts = bursts.join().unwrap_or_default();
    let slow = slow.join().unwrap_or_default();
    let garbage = garbage.join().unwrap_or_default();
    let report = report(&published, &bursts, &slow, &garbage);
    write_atomically(&o.out, &(report.to_string() + "\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// The JSON report of a run (see the module docs).
fn report(
    published: &clients::Published,
    bursts: &clients::Bursts,
    slow: &clients::Slow,
    garbage: &clients::Garbage,
) -> Value {
    json!({
        "published": {
            "delivered": published.delivered,
            "delivered_sent_ms": published.delivered_sent_ms,
            "no_receiver": published.no_receiver,
            "extra_receivers": published.extra_receivers,
            "failed": published.failed,
        },
        "bursts": {
            "bursts": bursts.bursts,
            "clients": bursts.clients,
            "acked": bursts.acked,
            "errors": bursts.errors,
            "io_failures": bursts.io_failures,
        },
        "slow": {
            "clients": SLOW_CLIENTS,
            "connects": slow.connects,
            "bytes": slow.bytes,
            "acked": slow.acked,
            "errors": slow.errors,
            "closed": slow.closed,
        },
        "garbage": {
            "bytes": garbage.bytes,
            "connections": garbage.connections,
            "replies": garbage.replies,
        },
    })
}
