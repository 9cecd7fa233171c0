//! The stream step of `cargo xtask soak`: the promise of RedisStreamConsumer, proven under
//! kills. A Godot process running the consumer (tests/soak/stream_consumer.tscn, against a
//! six-node Redis Cluster) is killed with SIGKILL at random moments and started again, several
//! times, while the testbed's `stream-load` adds entries (rust/testbed/src/stream_load.rs), and
//! the master that serves the stream is killed once. Afterwards:
//!
//! - every entry added with WAIT whose WAIT counted a replica (*promised*) must be in the
//!   scene's `handled.txt` (written and flushed by the handler before the entry is
//!   acknowledged), and nothing may be left pending in the group: lost promised entries or
//!   pending ones fail the run;
//! - plain XADDs (and adds whose WAIT counted no replica) are not promised across a failover:
//!   what of them is missing is reported apart, as are duplicates (at least once means an
//!   entry handled when its process was killed before the acknowledgement comes again).
//!
//! The count is the harness's own: ids from the producer's report against ids in the file,
//! and the group's pending list read back from Redis with redis-cli.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::promises::{self, Fault};
use crate::env_contract as env;
use crate::godot::Godot;
use crate::paths::Project;
use crate::redis_cluster::RedisCluster;
use crate::services::{Service, find_program};
use crate::{log_check, testbed};

/// Entries the producer adds per second.
const RATE: u32 = 200;
/// Every this many adds, one is a plain XADD (not promised across a failover).
const PLAIN_EVERY: u32 = 10;
/// Time allowed for a scene to connect, and at the end for the consumer to catch up.
const LIMIT: Duration = Duration::from_secs(60);
/// The consumer group the scene reads with (tests/soak/stream_consumer.gd).
const GROUP: &str = "soak";

/// Runs the step for `duration`, its files in `work`; returns its report and what failed it.
pub fn run(godot: &Godot, testbed: &Path, duration: Duration, work: &Path) -> Result<(Value, Vec<String>)> {
    let dir = work.join("stream");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let cluster = RedisCluster::start("soak-cluster")?;
    let stream = format!("soak-stream-{}", std::process::id());
    let urls = cluster.urls().join(",");
    let scene = Scene { godot, dir: dir.clone(), urls: urls.clone(), stream: stream.clone() };

    let (stop_file, load_report) = (dir.join("load-stop"), dir.join("load.json"));
    let mut load = testbed::command(testbed, "stream-load");
    load.args(["--urls", &urls, "--stream", &stream, "--rate", &RATE.to_string()]);
    load.args(["--plain-every", &PLAIN_EVERY.to_string()]);
    load.arg("--out").arg(&load_report).arg("--stop-file").arg(&stop_file);
    let mut load = Service::start("soak-stream-load", load)?;

    // Kills spread over the run, a random moment in the middle of each slot; the master halfway.
    let kills_planned = (duration.as_secs() / 8).max(3) as u32;
    let slot = duration / (kills_planned + 1);
    let start = Instant::now();
    let (mut runs, mut logs) = (0, Vec::new());
    let mut running = scene.start(&mut runs)?;
    let mut master_kill: Option<Result<f64>> = None;
    for k in 1..=kills_planned {
        let at = start + slot * k + rand::random_range(Duration::ZERO..slot / 2) - slot / 4;
        while Instant::now() < at {
            if master_kill.is_none() && start.elapsed() >= duration / 2 {
                master_kill = Some(kill_master(&cluster, &stream));
            }
            thread::sleep(Duration::from_millis(20));
        }
        // SIGKILL: what the handler wrote is flushed, what it acknowledged is in Redis, the rest is not.
        logs.push(running.log_text());
        drop(running);
        running = scene.start(&mut runs)?;
    }
    let master_kill = master_kill.unwrap_or_else(|| kill_master(&cluster, &stream));
    while start.elapsed() < duration {
        thread::sleep(Duration::from_millis(50));
    }
    fs::write(&stop_file, "")?;
    let added = wait_for_report(&load_report, &mut load)?;

    // Catch up: every promised entry handled and the pending list empty.
    let promised = ids(&added["promised"]);
    let caught_up = Instant::now();
    let mut pending = None;
    while caught_up.elapsed() < LIMIT {
        let handled = read_handled(&dir.join("handled.txt"));
        let seen: HashSet<&str> = handled.iter().map(String::as_str).collect();
        pending = pending_entries(&cluster, &stream).ok();
        if promised.iter().all(|id| seen.contains(id.as_str())) && pending == Some(0) {
            break;
        }
        running.check_running()?;
        thread::sleep(Duration::from_millis(200));
    }
    fs::write(dir.join("stream-quit"), "")?;
    let quit = Instant::now();
    while quit.elapsed() < Duration::from_secs(15) && running.check_running().is_ok() {
        thread::sleep(Duration::from_millis(50));
    }
    logs.push(running.log_text());
    drop(running);
    let handled = read_handled(&dir.join("handled.txt"));
    let stats: Value = fs::read_to_string(dir.join("stream-stats.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| json!({"missing": "the last scene wrote no stream-stats.json"}));

    let seen: HashSet<&str> = handled.iter().map(String::as_str).collect();
    let missing = |list: &[String]| list.iter().filter(|id| !seen.contains(id.as_str())).count();
    let (plain, unconfirmed) = (ids(&added["plain"]), ids(&added["unconfirmed"]));
    let lost = missing(&promised);
    let duplicates = handled.len() - seen.len();
    let mut problems = Vec::new();
    if lost > 0 {
        problems
            .push(format!("stream: {lost} of {} promised entries (added with WAIT 1) never handled", promised.len()));
    }
    match pending {
        Some(0) => {}
        Some(n) => problems.push(format!("stream: {n} entries still pending (handled but never acknowledged)")),
        None => problems.push("stream: the group's pending list could not be read back".into()),
    }
    if promised.len() < (duration.as_secs() as usize * RATE as usize) / 4 {
        problems.push(format!("stream: only {} promised adds in {} s", promised.len(), duration.as_secs()));
    }
    let master_kill_ms = match master_kill {
        Ok(ms) => json!(ms),
        Err(err) => {
            problems.push(format!("stream: killing the stream's master failed: {err:#}"));
            Value::Null
        }
    };
    for log in &logs {
        let report = log_check::godot_report(log);
        problems.extend(report.problems.iter().map(|p| format!("stream scene log: {p}")));
        let unexpected = promises::unexpected_errors(&report.errors, &[Fault::StreamMaster]);
        if let Some(first) = unexpected.first() {
            problems.push(format!(
                "stream scene log: {} ERROR lines no fault explains, the first: {first}",
                unexpected.len()
            ));
        }
    }
    let report = json!({
        // The row of the soak's table of nodes (see promises::Verdict::json): the promise is
        // every entry added with WAIT 1; an add whose reply never came was in flight at a kill;
        // plain adds (no WAIT) and unconfirmed ones Redis itself may lose in a failover. At
        // least once: duplicates are allowed.
        "node": {
            "moved": seen.len(),
            "promised": promised.len(),
            "lost": lost,
            "in_flight_at_kill": added["failed"],
            "outside_promise": plain.len() + unconfirmed.len(),
            "redelivered": duplicates,
        },
        "seconds": duration.as_secs(),
        "scene_kills": kills_planned,
        "scene_runs": runs,
        "master_kill_failover_ms": master_kill_ms,
        "promised_added": promised.len(),
        "promised_lost": lost,
        "plain_added": plain.len(),
        "plain_lost": missing(&plain),
        "unconfirmed_added": unconfirmed.len(),
        "unconfirmed_lost": missing(&unconfirmed),
        "adds_failed": added["failed"],
        "add_error_samples": added["error_samples"],
        "handled": handled.len(),
        "duplicates": duplicates,
        "pending_at_end": pending,
        "connection_errors_logged": logs.iter().map(|l| l.matches("STREAM-ERROR").count()).sum::<usize>(),
        "last_run_stats": stats,
    });
    Ok((report, problems))
}

/// How the scene is started.
struct Scene<'a> {
    godot: &'a Godot,
    dir: PathBuf,
    urls: String,
    stream: String,
}

impl Scene<'_> {
    /// Starts the scene (run number `runs` + 1) and waits until its consumer is connected.
    fn start(&self, runs: &mut u32) -> Result<Service> {
        *runs += 1;
        let ready = self.dir.join("stream-ready");
        let _ = fs::remove_file(&ready);
        let mut cmd = self.godot.command();
        cmd.args(["--headless", "--path"]).arg(Project::Tests.dir());
        cmd.args(["--scene", "res://soak/stream_consumer.tscn"]);
        cmd.envs([
            (env::SOAK_DIR, self.dir.display().to_string()),
            (env::SOAK_STREAM_URLS, self.urls.clone()),
            (env::SOAK_STREAM, self.stream.clone()),
        ]);
        let mut scene = Service::start(&format!("soak-stream-scene-{runs}"), cmd)?;
        let start = Instant::now();
        while !ready.exists() {
            scene.check_running()?;
            if start.elapsed() > LIMIT {
                bail!("the stream soak scene did not connect within {LIMIT:?}:\n{}", scene.log_text());
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(scene)
    }
}

/// Kills the master that serves `stream`; how long its replica took to take over, in ms.
fn kill_master(cluster: &RedisCluster, stream: &str) -> Result<f64> {
    let master = cluster.master_of_slot(cluster.keyslot(stream)?)?;
    let start = Instant::now();
    cluster.kill_master(master, LIMIT)?;
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

/// The producer's report, once it has written it.
fn wait_for_report(path: &Path, load: &mut Service) -> Result<Value> {
    let start = Instant::now();
    while !path.exists() {
        if start.elapsed() > LIMIT {
            bail!("no {} within {LIMIT:?}:\n{}", path.display(), load.log_text());
        }
        if load.check_running().is_err() && !path.exists() {
            bail!("the stream load ended without a report:\n{}", load.log_text());
        }
        thread::sleep(Duration::from_millis(20));
    }
    let text = fs::read_to_string(path)?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The ids of a JSON array.
fn ids(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect()
}

/// The ids in the scene's `handled.txt`, in order, repeats kept; a line a kill cut short is skipped.
fn read_handled(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let is_id = |line: &str| {
        line.split_once('-').is_some_and(|(ms, seq)| {
            [ms, seq].iter().all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    text.lines().filter(|line| is_id(line)).map(str::to_string).collect()
}

/// XPENDING's count for the soak's group, asked of any node that answers (following MOVED).
fn pending_entries(cluster: &RedisCluster, stream: &str) -> Result<u64> {
    let program = find_program("redis-cli").context("redis-cli is not installed")?;
    for port in cluster.ports() {
        let out = Command::new(&program)
            .args(["-c", "-h", "127.0.0.1", "-p", &port.to_string(), "XPENDING", stream, GROUP])
            .stdin(std::process::Stdio::null())
            .output();
        if let Ok(out) = out
            && out.status.success()
            && let Some(Ok(count)) = String::from_utf8_lossy(&out.stdout).lines().next().map(|l| l.trim().parse())
        {
            return Ok(count);
        }
    }
    bail!("no cluster node answered XPENDING")
}
