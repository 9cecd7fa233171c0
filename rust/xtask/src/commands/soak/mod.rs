//! `cargo xtask soak [--seconds N]`: every node at once in one headless Godot scene
//! (`tests/soak/soak.tscn`) against real services, while this harness injects faults
//! ([`faults`]) and the testbed's `soak-load` (rust/testbed/src/soak_load/) puts load on it:
//!
//! - redis-server killed (SIGKILL) and restarted on the same port 20 times per 120 s (scaled to
//!   the duration, at least once) while a publisher publishes every 5 ms, counting what Redis
//!   delivered to our subscriber;
//! - the icecast source (ffmpeg) killed and restarted, and the WebSocket echo server killed and
//!   restarted, 5 times each per 120 s (at least once), while the scene sends every frame and
//!   the server records what it receives;
//! - bursts of 1000 TCP clients connecting at once, one line each, then all disconnecting;
//!   20 slowloris clients sending a byte every 2.5 s; 100 MB of random bytes (scaled down
//!   below 120 s) to the spawner's port;
//! - the scene itself stalls its main thread 250 ms at random (every 3 s on average);
//! - HttpSession downloads with resume through tinyproxy from nginx, each killed and restarted
//!   mid-body, and HttpServer under real, slow and aborting HTTP clients ([`http`]).
//!
//! Then, for as long again, the stream step ([`streams`]): a Godot process running a
//! RedisStreamConsumer against a six-node Redis Cluster, killed with SIGKILL and restarted
//! several times while the testbed's `stream-load` adds entries and a master is killed once;
//! every entry added with WAIT must be handled and acknowledged.
//!
//! Every kill lands while traffic flows: nothing is paused or drained first. The scene and the
//! harness talk through files in `target/soak-work/` (see soak.gd). At the end the harness
//! judges each node against its protocol's promise ([`promises`]), from what it counted itself
//! (the publisher's replies, the echo server's record, the TCP clients' `OK <name>` replies):
//! messages lost, in flight when a connection died, and outside the promise; and the Godot
//! process's open descriptors and RSS from /proc at the start and the end ([`sample`]). It
//! prints a summary and writes `target/soak.json` ([`judge`]). Lost messages, frames over
//! 50 ms, too little traffic, memory growth, descriptors not back, radio skips outside the
//! source's outages, an `ERROR` no fault explains, a crash, a script error or an unexpected
//! panic fail the run.

mod faults;
mod http;
mod judge;
mod promises;
mod sample;
mod streams;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::build::{self, Profile};
use crate::cli::Args;
use crate::env_contract as env;
use crate::godot::Godot;
use crate::paths::{self, Project};
use crate::services::{self, Service};
use crate::{apt, godot, media, process, python, testbed};
use faults::{Faulted, Plan};
use sample::Sample;

/// Default length of `cargo xtask soak`.
pub const DEFAULT_SECONDS: u64 = 120;

/// Time allowed for the scene to connect everything, and later to drain and report; and for the
/// soak load to report once stopped.
const SCENE_LIMIT: Duration = Duration::from_secs(90);

/// `cargo xtask soak [--seconds N] [--release]`.
pub fn main(mut args: Args) -> Result<ExitCode> {
    let seconds = args.number("--seconds")?.unwrap_or(DEFAULT_SECONDS);
    let release = args.flag("--release");
    args.finish()?;
    apt::ensure(services::TEST_REQUIREMENTS)?;
    let godot = godot::find()?;
    build::build(Profile::Debug, &[Project::Tests], &godot)?;
    // What a shipped game runs: frame times of the optimized library.
    let _slot = if release {
        build::build(Profile::Release, &[], &godot)?;
        Some(build::ReleaseInDebugSlot::install("the soak")?)
    } else {
        None
    };
    let library = if release { Profile::Release } else { Profile::Debug };
    let outcome = run(&godot, Duration::from_secs(seconds.max(10)), library)?;
    Ok(if outcome.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A finished soak: its report (also in `target/soak.json`) and what failed it.
pub struct Outcome {
    /// The JSON report.
    pub report: Value,
    /// Reasons the run failed; empty when it passed.
    pub problems: Vec<String>,
}

/// The harness's stop signal: set once, and waited on with a time limit by every harness thread.
#[derive(Clone, Default)]
struct Stop(Arc<(Mutex<bool>, Condvar)>);

impl Stop {
    fn set(&self) {
        let (stopped, changed) = &*self.0;
        *stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        changed.notify_all();
    }

    fn is_set(&self) -> bool {
        *self.0.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps `total`, waking early (→ false) when the stop is set.
    fn sleep(&self, total: Duration) -> bool {
        let (stopped, changed) = &*self.0;
        let guard = stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) =
            changed.wait_timeout_while(guard, total, |stopped| !*stopped).unwrap_or_else(PoisonError::into_inner);
        !*guard
    }
}

/// Runs the soak for `duration` with the library already in the debug slot (`library` says
/// which build that is, for the report); prints and writes the report.
pub fn run(godot: &Godot, duration: Duration, library: Profile) -> Result<Outcome> {
    let work = paths::target_dir()?.join("soak-work");
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let python = python::venv(services::TEST_PYTHON_PACKAGES)?;
    let tone = media::tone_mp3()?;
    let testbed = testbed::build(Profile::Debug)?;

    let redis_port = services::free_port()?;
    let redis = services::start_redis_on("soak-redis", None, redis_port)?;
    let ws_port = services::free_port()?;
    let ws_record = work.join("ws-record.txt");
    let ws = faults::start_ws(&python, ws_port, &ws_record)?;
    let (icecast, icecast_port) = services::start_icecast("soak-icecast")?;
    let source = faults::start_source(&tone, icecast_port, None)?;
    let tcp_port = services::free_port()?;
    let http = http::Http::start(&work, &testbed)?;
    let channel = format!("soak:{}:{}", std::process::id(), rand::random::<u64>());
    let scale = duration.as_secs_f64() / DEFAULT_SECONDS as f64;

    let mut cmd = godot.command();
    cmd.args(["--headless", "--path"]).arg(Project::Tests.dir()).args(["--scene", "res://soak/soak.tscn"]);
    cmd.envs([
        (env::SOAK_DIR, work.display().to_string()),
        (env::SOAK_REDIS_PORT, redis_port.to_string()),
        (env::SOAK_CHANNEL, channel.clone()),
        (env::SOAK_WS_URL, format!("ws://127.0.0.1:{ws_port}/")),
        (env::SOAK_RADIO_URL, format!("http://127.0.0.1:{icecast_port}{}", services::ICECAST_TEST_MOUNT)),
        (env::SOAK_TCP_PORT, tcp_port.to_string()),
        (env::SOAK_STALL_EVERY_SEC, "3".to_string()),
    ]);
    eprintln!("xtask: {} ({} s of faults)", process::describe(&cmd), duration.as_secs());
    let limit = duration + SCENE_LIMIT * 3;
    let scene = thread::spawn(move || process::stream(cmd, Some(limit)));

    let started = Instant::now();
    let pid = match wait_for_file(&work.join("ready.json"), SCENE_LIMIT, &scene) {
        Ok(text) => serde_json::from_str::<Value>(&text)?["pid"].as_u64().context("ready.json has no pid")? as u32,
        Err(err) => {
            let _ = fs::write(work.join("quit"), "");
            let log = scene.join().ok().and_then(|r| r.ok()).map(|f| f.log).unwrap_or_default();
            bail!("the soak scene never got every node connected: {err:#}\n{}", tail(&log, 40));
        }
    };
    let start_sample = Sample::settled(pid);
    eprintln!(
        "xtask: soak scene ready after {:.1} s (pid {pid}, {} descriptors, {} KiB RSS); faults for {} s",
        started.elapsed().as_secs_f64(),
        start_sample.fds,
        start_sample.rss_kib,
        duration.as_secs()
    );

    let load = Load::start(&testbed, &work, duration, redis_port, &channel, tcp_port)?;
    let stop = Stop::default();
    // When each fault happens: `count` per DEFAULT_SECONDS, scaled to the run (at least one).
    let plan = |count: f64| Plan::new((count * scale).round().max(1.0) as u32, duration);
    let threads = Threads {
        redis: {
            let stop = stop.clone();
            let plan = plan(20.0);
            thread::spawn(move || faults::redis_faults(redis, redis_port, plan, &stop))
        },
        ws: {
            let (stop, record, python) = (stop.clone(), ws_record.clone(), python.clone());
            let plan = plan(5.0);
            thread::spawn(move || faults::ws_faults(ws, &python, ws_port, &record, plan, &stop))
        },
        radio: {
            let stop = stop.clone();
            let plan = plan(5.0);
            thread::spawn(move || faults::radio_faults(source, &tone, icecast_port, plan, &stop))
        },
        sampler: {
            let stop = stop.clone();
            thread::spawn(move || sample::peak_samples(pid, &stop))
        },
    };
    let http = http.run([plan(http::KILLS), plan(http::KILLS)], &stop)?;
    let fault_end = Instant::now() + duration;
    while Instant::now() < fault_end && !scene.is_finished() {
        thread::sleep(Duration::from_millis(100));
    }
    stop.set();
    let results = threads.join(load.finish());
    let http = http.stop();

    fs::write(work.join("finish"), "")?;
    let scene_report = wait_for_file(&work.join("report.json"), SCENE_LIMIT, &scene);
    let end_sample = Sample::settled(pid);
    fs::write(work.join("quit"), "")?;
    let run = scene.join().map_err(|_| anyhow::anyhow!("the scene thread panicked"))??;
    drop(icecast);

    let scene_report: Value = match scene_report {
        Ok(text) => serde_json::from_str(&text).context("parsing report.json")?,
        Err(err) => json!({ "missing": format!("{err:#}") }),
    };
    let spawned = fs::read_to_string(work.join("spawned.txt")).unwrap_or_default();
    let ws_record = fs::read_to_string(&ws_record).unwrap_or_default();
    let mut outcome = judge::judge(&judge::Judged {
        duration,
        library,
        scene: &scene_report,
        spawned: spawned.lines().collect(),
        ws_record: promises::parse_ws_record(&ws_record),
        results: &results,
        start: start_sample,
        end: end_sample,
        run: &run,
        http_killed: http.killed(),
    });
    http.verdict_into(&mut outcome, &scene_report["http"], duration);
    // RedisStreamConsumer's promise, in processes of its own: killed and restarted.
    match streams::run(godot, &testbed, duration, &work) {
        Ok((report, problems)) => {
            outcome.report["nodes"]["RedisStreamConsumer"] = report["node"].clone();
            outcome.report["streams"] = report;
            outcome.problems.extend(problems);
        }
        Err(err) => outcome.problems.push(format!("the stream step did not run: {err:#}")),
    }
    outcome.report["passed"] = json!(outcome.problems.is_empty());
    outcome.report["problems"] = json!(outcome.problems);
    judge::print_summary(&outcome);
    let out = paths::target_dir()?.join("soak.json");
    fs::write(&out, serde_json::to_string_pretty(&outcome.report)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(outcome)
}

/// The testbed's `soak-load` while it runs: a publisher, TCP bursts, slowloris and garbage.
struct Load {
    service: Service,
    stop_file: PathBuf,
    report: PathBuf,
}

impl Load {
    /// Starts the load of a run of `duration`.
    fn start(
        testbed: &Path,
        work: &Path,
        duration: Duration,
        redis_port: u16,
        channel: &str,
        tcp_port: u16,
    ) -> Result<Load> {
        let (stop_file, report) = (work.join("load-stop"), work.join("load.json"));
        let mut cmd = testbed::command(testbed, "soak-load");
        cmd.arg("--out").arg(&report).arg("--stop-file").arg(&stop_file);
        cmd.args(["--seconds", &duration.as_secs().to_string(), "--channel", channel]);
        cmd.args(["--redis-port", &redis_port.to_string(), "--tcp-port", &tcp_port.to_string()]);
        Ok(Load { service: Service::start("soak-load", cmd)?, stop_file, report })
    }

    /// Stops the load and returns its report, or `{"missing": why}`.
    fn finish(mut self) -> Value {
        self.stop_and_read().unwrap_or_else(|err| json!({ "missing": format!("{err:#}") }))
    }

    fn stop_and_read(&mut self) -> Result<Value> {
        fs::write(&self.stop_file, "")?;
        let start = Instant::now();
        while !self.report.exists() {
            if start.elapsed() > SCENE_LIMIT {
                bail!("no {} within {SCENE_LIMIT:?} of the stop:\n{}", self.report.display(), self.service.log_text());
            }
            // It exits once the report is written: look again before calling that a failure.
            if let Err(err) = self.service.check_running()
                && !self.report.exists()
            {
                return Err(err);
            }
            thread::sleep(Duration::from_millis(20));
        }
        let text = fs::read_to_string(&self.report)?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", self.report.display()))
    }
}

/// The harness threads of one run.
struct Threads {
    redis: JoinHandle<Result<Faulted>>,
    ws: JoinHandle<Result<Faulted>>,
    radio: JoinHandle<Result<Faulted>>,
    sampler: JoinHandle<Sample>,
}

/// What the harness threads and the load returned.
struct Results {
    redis: Result<Faulted>,
    ws: Result<Faulted>,
    radio: Result<Faulted>,
    /// The soak load's report, or `{"missing": why}`.
    load: Value,
    peak: Sample,
}

impl Threads {
    fn join(self, load: Value) -> Results {
        fn fault<T>(handle: JoinHandle<Result<T>>) -> Result<T> {
            handle.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the fault thread panicked")))
        }
        Results {
            redis: fault(self.redis),
            ws: fault(self.ws),
            radio: fault(self.radio),
            load,
            peak: self.sampler.join().unwrap_or_default(),
        }
    }
}

// --- files shared with the scene ----------------------------------------------------------------

/// Waits until `path` exists and returns its text; fails early when the scene has exited.
fn wait_for_file(path: &Path, limit: Duration, scene: &JoinHandle<Result<process::Finished>>) -> Result<String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(text) = fs::read_to_string(path) {
            return Ok(text);
        }
        if scene.is_finished() {
            bail!("the soak scene exited before writing {}", path.display());
        }
        thread::sleep(Duration::from_millis(20));
    }
    bail!("no {} after {limit:?}", path.display())
}

fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
