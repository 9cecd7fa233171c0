//! `cargo xtask soak [--seconds N]`: every node at once in one headless Godot scene
//! (`tests/soak/soak.tscn`) against real services, while this harness injects faults and load:
//!
//! - redis-server killed (SIGKILL) and restarted on the same port 20 times per 120 s (scaled to
//!   the duration, at least once), with a publisher counting what Redis delivered to our
//!   subscriber;
//! - the icecast source (ffmpeg) killed and restarted, and the WebSocket echo server killed and
//!   restarted, 5 times each per 120 s (at least once);
//! - bursts of 1000 TCP clients connecting at once, one line each, then all disconnecting;
//!   20 slowloris clients sending a byte every 2.5 s; 100 MB of random bytes (scaled down
//!   below 120 s) to the spawner's port;
//! - the scene itself stalls its main thread 250 ms at random (every 3 s on average).
//!
//! The scene and the harness talk through files in `target/soak-work/` (see soak.gd). At the
//! end the harness compares both sides: messages lost (Redis numbers delivered but not
//! received, WebSocket sequence numbers not echoed or out of order, TCP lines acknowledged
//! `OK <name>` with no node spawned), and the Godot process's open descriptors and RSS from
//! /proc at the start and the end. It prints a summary and writes `target/soak.json`. Lost
//! messages, descriptor growth, a crash, a script error or an unexpected panic fail the run.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::build::{self, Profile};
use crate::cli::Args;
use crate::godot::Godot;
use crate::paths::{self, Project};
use crate::services::{self, Service};
use crate::soak_load::{self as load, Flag, Rng, is_set, sleep_unless};
use crate::{apt, godot, log_check, media, process, python};

/// Default length of `cargo xtask soak`.
pub const DEFAULT_SECONDS: u64 = 120;

/// TCP clients per burst.
const BURST_CLIENTS: usize = 1000;

/// Slowloris clients and the pause between their bytes.
const SLOW_CLIENTS: usize = 20;
const SLOW_EVERY: Duration = Duration::from_millis(2500);

/// Random bytes sent to the spawner in a run of [`DEFAULT_SECONDS`] or longer.
const GARBAGE_BYTES: u64 = 100 * 1000 * 1000;

/// Time allowed for the scene to connect everything, and later to drain and report.
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

    let redis_port = services::free_port()?;
    let redis = services::start_redis_on("soak-redis", None, redis_port)?;
    let ws_port = services::free_port()?;
    let ws = start_ws(&python, ws_port)?;
    let (icecast, icecast_port) = services::start_icecast("soak-icecast")?;
    let source = start_source(&tone, icecast_port, None)?;
    let tcp_port = services::free_port()?;
    let channel = format!("soak:{}:{}", std::process::id(), Rng::new(0).next());
    let scale = duration.as_secs_f64() / DEFAULT_SECONDS as f64;

    let mut cmd = godot.command();
    cmd.args(["--headless", "--path"]).arg(Project::Tests.dir()).args(["--scene", "res://soak/soak.tscn"]);
    let env = [
        ("ASYNC_NET_SOAK_DIR", work.display().to_string()),
        ("ASYNC_NET_SOAK_REDIS_PORT", redis_port.to_string()),
        ("ASYNC_NET_SOAK_CHANNEL", channel.clone()),
        ("ASYNC_NET_SOAK_WS_URL", format!("ws://127.0.0.1:{ws_port}/")),
        ("ASYNC_NET_SOAK_RADIO_URL", format!("http://127.0.0.1:{icecast_port}{}", services::ICECAST_TEST_MOUNT)),
        ("ASYNC_NET_SOAK_TCP_PORT", tcp_port.to_string()),
        ("ASYNC_NET_SOAK_STALL_EVERY_SEC", "3".to_string()),
    ];
    cmd.envs(env);
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

    let stop: Flag = Arc::new(AtomicBool::new(false));
    let redis_pause: Flag = Arc::new(AtomicBool::new(false));
    // When each fault happens: `count` per DEFAULT_SECONDS, scaled to the run (at least one).
    let plan = |count: f64, salt: u64| Plan::new((count * scale).round().max(1.0) as u32, duration, salt);
    let threads = Threads {
        redis: {
            let (stop, pause) = (stop.clone(), redis_pause.clone());
            let plan = plan(20.0, 1);
            thread::spawn(move || redis_faults(redis, redis_port, plan, &pause, &stop))
        },
        ws: {
            let (stop, dir, python) = (stop.clone(), work.clone(), python.clone());
            let plan = plan(5.0, 2);
            thread::spawn(move || ws_faults(ws, &python, ws_port, &dir, plan, &stop))
        },
        radio: {
            let stop = stop.clone();
            let plan = plan(5.0, 3);
            thread::spawn(move || radio_faults(source, &tone, icecast_port, plan, &stop))
        },
        publisher: {
            let (stop, pause) = (stop.clone(), redis_pause.clone());
            thread::spawn(move || load::publisher(redis_port, channel, Duration::from_millis(5), pause, stop))
        },
        bursts: {
            let stop = stop.clone();
            thread::spawn(move || load::tcp_bursts(tcp_port, BURST_CLIENTS, Duration::from_secs(3), stop))
        },
        slow: {
            let stop = stop.clone();
            thread::spawn(move || load::slowloris(tcp_port, SLOW_CLIENTS, SLOW_EVERY, stop))
        },
        garbage: {
            let stop = stop.clone();
            let bytes = (GARBAGE_BYTES as f64 * scale.min(1.0)) as u64;
            let over = duration.mul_f64(0.9);
            thread::spawn(move || load::garbage(tcp_port, bytes, over, stop))
        },
        sampler: {
            let stop = stop.clone();
            thread::spawn(move || peak_samples(pid, &stop))
        },
    };
    let fault_end = Instant::now() + duration;
    while Instant::now() < fault_end && !scene.is_finished() {
        thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::SeqCst);
    let results = threads.join();

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
    let outcome = judge(&Judged {
        duration,
        library,
        scene: &scene_report,
        spawned: spawned.lines().collect(),
        results: &results,
        start: start_sample,
        end: end_sample,
        run: &run,
    });
    print_summary(&outcome);
    let out = paths::target_dir()?.join("soak.json");
    fs::write(&out, serde_json::to_string_pretty(&outcome.report)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(outcome)
}

/// The harness threads of one run.
struct Threads {
    redis: JoinHandle<Result<Faulted>>,
    ws: JoinHandle<Result<WsFaults>>,
    radio: JoinHandle<Result<Faulted>>,
    publisher: JoinHandle<load::Published>,
    bursts: JoinHandle<load::Bursts>,
    slow: JoinHandle<load::Slow>,
    garbage: JoinHandle<load::Garbage>,
    sampler: JoinHandle<Sample>,
}

/// What the harness threads returned.
struct Results {
    redis: Result<Faulted>,
    ws: Result<WsFaults>,
    radio: Result<Faulted>,
    published: load::Published,
    bursts: load::Bursts,
    slow: load::Slow,
    garbage: load::Garbage,
    peak: Sample,
}

impl Threads {
    fn join(self) -> Results {
        fn get<T: Default>(handle: JoinHandle<T>) -> T {
            handle.join().unwrap_or_default()
        }
        fn fault<T>(handle: JoinHandle<Result<T>>) -> Result<T> {
            handle.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the fault thread panicked")))
        }
        Results {
            redis: fault(self.redis),
            ws: fault(self.ws),
            radio: fault(self.radio),
            published: get(self.publisher),
            bursts: get(self.bursts),
            slow: get(self.slow),
            garbage: get(self.garbage),
            peak: get(self.sampler),
        }
    }
}

// --- faults -----------------------------------------------------------------------------------

/// When the faults of one kind happen: `count` times over the run, one at a random moment in
/// the middle half of each of `count` equal slots.
struct Plan {
    times: std::vec::IntoIter<Instant>,
    rng: Rng,
}

impl Plan {
    fn new(count: u32, over: Duration, salt: u64) -> Plan {
        let mut rng = Rng::new(salt);
        let (start, slot) = (Instant::now(), over / count);
        let times: Vec<Instant> = (0..count).map(|k| start + slot * k + rng.between(slot / 4, slot * 3 / 4)).collect();
        Plan { times: times.into_iter(), rng }
    }

    /// Sleeps until the next planned time (→ true), or returns false when the plan is done or
    /// `stop` is set.
    fn wait_next(&mut self, stop: &Flag) -> bool {
        self.times.next().is_some_and(|at| sleep_unless(stop, at.saturating_duration_since(Instant::now())))
    }
}

/// A service that was killed and restarted `kills` times, running again (the scene reconnects
/// to it before it reports).
struct Faulted {
    kills: u64,
    #[allow(dead_code, reason = "held so that the service runs until the scene has reported")]
    service: Service,
}

/// At each planned time: holds the publisher, kills redis-server, restarts it on the same port
/// after 0.2-1.5 s.
fn redis_faults(mut server: Service, port: u16, mut plan: Plan, pause: &Flag, stop: &Flag) -> Result<Faulted> {
    let mut kills = 0;
    while plan.wait_next(stop) {
        pause.store(true, Ordering::SeqCst);
        // A publish in flight completes, and Redis writes it to the subscriber's socket.
        thread::sleep(Duration::from_millis(150));
        drop(server);
        kills += 1;
        thread::sleep(plan.rng.between(Duration::from_millis(200), Duration::from_millis(1500)));
        server = services::start_redis_on("soak-redis", None, port)?;
        pause.store(false, Ordering::SeqCst);
    }
    Ok(Faulted { kills, service: server })
}

/// The WebSocket server's faults.
struct WsFaults {
    faulted: Faulted,
    /// Times the scene did not answer the pause handshake in time (the server was killed anyway).
    handshake_timeouts: u64,
}

fn start_ws(python: &Path, port: u16) -> Result<Service> {
    let mut service = Service::start("soak-ws-echo", services::ws_server_command(python, port))?;
    service.wait_for_port(port, Duration::from_secs(30))?;
    Ok(service)
}

/// At each planned time: asks the scene to pause its sends (`ws-pause`), waits until everything it
/// sent was echoed (`ws-paused`), kills the server, waits until WsEcho noticed (`ws-down`: the
/// scene sends on, into WsEcho's queue), and restarts the server after 0.5-2 s.
fn ws_faults(
    mut server: Service,
    python: &Path,
    port: u16,
    dir: &Path,
    mut plan: Plan,
    stop: &Flag,
) -> Result<WsFaults> {
    let (mut kills, mut handshake_timeouts) = (0, 0);
    let limit = Duration::from_secs(20);
    while plan.wait_next(stop) {
        fs::write(dir.join("ws-pause"), "")?;
        handshake_timeouts += u64::from(!wait_quietly(&dir.join("ws-paused"), limit));
        drop(server);
        kills += 1;
        handshake_timeouts += u64::from(!wait_quietly(&dir.join("ws-down"), limit));
        for file in ["ws-pause", "ws-paused", "ws-down"] {
            let _ = fs::remove_file(dir.join(file));
        }
        thread::sleep(plan.rng.between(Duration::from_millis(500), Duration::from_millis(2000)));
        server = start_ws(python, port)?;
    }
    Ok(WsFaults { faulted: Faulted { kills, service: server }, handshake_timeouts })
}

/// The ffmpeg source feeding the soak's icecast mount; waits until the mount is live.
fn start_source(tone: &Path, port: u16, icecast: Option<&mut Service>) -> Result<Service> {
    let mount = services::ICECAST_TEST_MOUNT;
    let mut source = services::start_icecast_source("soak-icecast-source", tone, port, mount)?;
    let mut waiting: Vec<&mut Service> = vec![&mut source];
    waiting.extend(icecast);
    services::wait_for_mount(port, mount, &mut waiting)?;
    Ok(source)
}

/// At each planned time: kills the icecast source (the mount goes away, listeners are dropped)
/// and restarts it after 0.5-2 s.
fn radio_faults(mut source: Service, tone: &Path, port: u16, mut plan: Plan, stop: &Flag) -> Result<Faulted> {
    let mut kills = 0;
    while plan.wait_next(stop) {
        drop(source);
        kills += 1;
        thread::sleep(plan.rng.between(Duration::from_millis(500), Duration::from_millis(2000)));
        source = start_source(tone, port, None)?;
    }
    Ok(Faulted { kills, service: source })
}

// --- the Godot process from /proc --------------------------------------------------------------

/// Open descriptors and resident memory of a process.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    fds: u64,
    rss_kib: u64,
}

impl Sample {
    fn take(pid: u32) -> Option<Sample> {
        let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kib = status_kib(&status, "VmRSS:")?;
        Some(Sample { fds, rss_kib })
    }

    /// The fewest descriptors over one second (a socket being opened or closed at that very
    /// moment is not a leak), and the RSS of that moment.
    fn settled(pid: u32) -> Sample {
        let mut best: Option<Sample> = None;
        for _ in 0..10 {
            if let Some(s) = Sample::take(pid) {
                best = Some(best.map_or(s, |b| if s.fds < b.fds { s } else { b }));
            }
            thread::sleep(Duration::from_millis(100));
        }
        best.unwrap_or_default()
    }
}

/// A `Name:   1234 kB` line of /proc/PID/status, in KiB.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix(name))?.split_whitespace().next()?.parse().ok()
}

/// The most descriptors and RSS seen, sampled every 500 ms until `stop`.
fn peak_samples(pid: u32, stop: &Flag) -> Sample {
    let mut peak = Sample::default();
    while !is_set(stop) {
        if let Some(s) = Sample::take(pid) {
            peak.fds = peak.fds.max(s.fds);
            peak.rss_kib = peak.rss_kib.max(s.rss_kib);
        }
        sleep_unless(stop, Duration::from_millis(500));
    }
    peak
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

/// Waits until `path` exists (→ true) or `limit` passed (→ false).
fn wait_quietly(path: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if path.exists() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}

fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// --- judging --------------------------------------------------------------------------------

struct Judged<'a> {
    duration: Duration,
    library: Profile,
    scene: &'a Value,
    spawned: HashSet<&'a str>,
    results: &'a Results,
    start: Sample,
    end: Sample,
    run: &'a process::Finished,
}

fn judge(j: &Judged) -> Outcome {
    let mut problems = Vec::new();
    let r = j.results;
    let scene = j.scene;
    if let Some(missing) = scene.get("missing") {
        problems.push(format!("the scene wrote no report: {}", missing.as_str().unwrap_or("")));
    }

    // Redis: every number Redis delivered to our subscriber must have arrived, once, in order.
    let received: Vec<u64> =
        scene["redis"]["received"].as_array().map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_u64).collect());
    let received_set: HashSet<u64> = received.iter().copied().collect();
    let redis_lost = r.published.delivered.iter().filter(|n| !received_set.contains(n)).count();
    let redis_duplicates = received.len() - received_set.len();
    let redis_out_of_order = received.windows(2).filter(|w| w[1] <= w[0]).count();

    // WebSocket: every message sent was echoed, in order.
    let ws_sent = scene["ws"]["sent"].as_u64().unwrap_or(0);
    let ws_lost = ws_sent.saturating_sub(scene["ws"]["echoed"].as_u64().unwrap_or(0));
    let ws_out_of_order = scene["ws"]["out_of_order"].as_u64().unwrap_or(0);

    // TCP: every line acknowledged `OK <name>` spawned a node of that name.
    let acked = r.bursts.acked.iter().chain(&r.slow.acked);
    let tcp_lost = acked.clone().filter(|name| !j.spawned.contains(name.as_str())).count();

    let lost =
        redis_lost + redis_duplicates + redis_out_of_order + ws_lost as usize + ws_out_of_order as usize + tcp_lost;
    if lost > 0 {
        problems.push(format!(
            "messages lost: redis {redis_lost} (+{redis_duplicates} duplicated, {redis_out_of_order} out of order), \
             websocket {ws_lost} (+{ws_out_of_order} out of order), tcp {tcp_lost}"
        ));
    }
    if r.published.extra_receivers > 0 {
        problems.push(format!("{} publishes reached more than one subscriber", r.published.extra_receivers));
    }
    let fd_growth = j.end.fds as i64 - j.start.fds as i64;
    if fd_growth > 0 {
        problems.push(format!("open descriptors grew from {} to {}", j.start.fds, j.end.fds));
    }
    let mut faults = json!({});
    for (name, result) in [("redis_kills", &r.redis), ("radio_source_kills", &r.radio)] {
        match result {
            Ok(f) => faults[name] = json!(f.kills),
            Err(err) => problems.push(format!("{name}: {err:#}")),
        }
    }
    match &r.ws {
        Ok(ws) => {
            faults["ws_server_kills"] = json!(ws.faulted.kills);
            if ws.handshake_timeouts > 0 {
                problems.push(format!("the scene missed {} WebSocket pause handshakes", ws.handshake_timeouts));
            }
        }
        Err(err) => problems.push(format!("ws faults: {err:#}")),
    }
    if scene.get("all_connected").and_then(Value::as_bool) == Some(false) {
        problems.push("not every node was connected again at the end".into());
    }
    let log = log_check::godot_report(&j.run.log);
    problems.extend(log.problems.iter().map(|p| format!("scene log: {p}")));
    if !j.run.success() {
        problems.push(format!("the soak scene {}", j.run.describe()));
    }

    let report = json!({
        "date": super::bench::utc_now(),
        "seconds": j.duration.as_secs(),
        "library": j.library.name(),
        "passed": problems.is_empty(),
        "problems": problems,
        "faults": faults,
        "stalls_injected": scene["stalls"],
        "load": {
            "tcp_bursts": r.bursts.bursts,
            "tcp_burst_clients": r.bursts.clients,
            "tcp_lines_acked": r.bursts.acked.len() + r.slow.acked.len(),
            "tcp_errors": r.bursts.errors,
            "tcp_io_failures": r.bursts.io_failures,
            "slowloris_clients": SLOW_CLIENTS,
            "slowloris_bytes": r.slow.bytes,
            "slowloris_closed": r.slow.closed,
            "slowloris_replies": r.slow.errors,
            "garbage_bytes": r.garbage.bytes,
            "garbage_connections": r.garbage.connections,
            "garbage_replies": r.garbage.replies,
            "redis_published": r.published.delivered.len() as u64 + r.published.no_receiver + r.published.failed,
            "redis_delivered": r.published.delivered.len(),
            "redis_no_receiver": r.published.no_receiver,
            "redis_publish_failed": r.published.failed,
            "ws_sent": ws_sent,
        },
        "lost": {
            "redis": redis_lost,
            "redis_duplicates": redis_duplicates,
            "redis_out_of_order": redis_out_of_order,
            "websocket": ws_lost,
            "websocket_out_of_order": ws_out_of_order,
            "tcp": tcp_lost,
        },
        "frames": {
            "count": scene["frames"],
            "longer_than_50ms": scene["long_frames"],
            "max_usec": scene["max_frame_usec"],
            "mean_usec": scene["mean_frame_usec"],
            "max_hub_step_usec": scene["max_hub_step_usec"],
            "slowest_task": scene["slowest_task"],
        },
        "reconnects": {
            "redis": scene["redis"]["stats"]["reconnects"],
            "websocket": scene["ws"]["stats"]["reconnects"],
            "radio": scene["radio"]["reconnects"],
        },
        "radio": scene["radio"],
        "node_errors": scene["node_errors"],
        "error_samples": scene["error_samples"],
        "process": {
            "fds_start": j.start.fds,
            "fds_end": j.end.fds,
            "fds_peak": r.peak.fds.max(j.end.fds),
            "rss_kib_start": j.start.rss_kib,
            "rss_kib_end": j.end.rss_kib,
            "rss_kib_peak": r.peak.rss_kib.max(j.end.rss_kib),
        },
    });
    Outcome { report, problems }
}

fn print_summary(outcome: &Outcome) {
    let r = &outcome.report;
    println!("\nsoak: {} s, {} library", r["seconds"], r["library"].as_str().unwrap_or("?"));
    for key in ["faults", "load", "lost", "frames", "reconnects", "process", "node_errors"] {
        println!("  {key}: {}", r[key]);
    }
    println!(
        "  radio: skips {} underruns {} decode_errors {}",
        r["radio"]["skips"], r["radio"]["underruns"], r["radio"]["decode_errors"]
    );
    if outcome.problems.is_empty() {
        println!("soak: passed");
    } else {
        println!("soak: FAILED");
        outcome.problems.iter().for_each(|p| println!("  {p}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_status_lines() {
        let status = "Name:\tgodot\nVmHWM:\t  20480 kB\nVmRSS:\t  10240 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(10240));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn samples_this_process() {
        let s = Sample::take(std::process::id()).unwrap();
        assert!(s.fds >= 3 && s.rss_kib > 0);
    }
}
