//! The soak's verdict: what the scene received against what the load sent and the services
//! delivered, descriptors at the start and the end, the faults that ran and the scene's log;
//! the report `target/soak.json` holds, and its summary.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::sample::Sample;
use super::{Outcome, Results};
use crate::commands::bench::utc_now;
use crate::commands::build::Profile;
use crate::{log_check, process};

/// Everything a run is judged on.
pub struct Judged<'a> {
    /// How long the faults ran.
    pub duration: Duration,
    /// Which library the scene ran (for the report).
    pub library: Profile,
    /// The scene's `report.json`, or `{"missing": why}`.
    pub scene: &'a Value,
    /// The names of the nodes the scene spawned.
    pub spawned: HashSet<&'a str>,
    /// What the harness threads and the soak load returned.
    pub results: &'a Results,
    /// The scene's process once every node was connected, and at the end.
    pub start: Sample,
    pub end: Sample,
    /// The scene's run: exit status and log.
    pub run: &'a process::Finished,
}

/// A frame longer than this fails the run (a game at 60 fps has lost three frames).
const LONG_FRAME_MS: u64 = 50;

/// Resident memory may grow this much from the end of the warm-up (every node connected) to
/// the end of the run.
const MAX_RSS_GROWTH_KIB: u64 = 16 * 1024;

/// The least traffic each node must move per second of the run, so that a run in which a node
/// moved (almost) nothing cannot pass for one that lost nothing. A 120 s run on a 2-core
/// machine moved 143 Redis messages, 218 WebSocket echoes and 225 spawns per second, and
/// played 96 % of real time.
const MIN_PER_SECOND: [(&str, f64); 3] = [("redis messages", 10.0), ("websocket echoes", 10.0), ("tcp spawns", 10.0)];

/// The least share of real time the radio must have played (its source is killed and
/// restarted during the run).
const MIN_RADIO_SHARE: f64 = 0.25;

/// The numbers of a JSON array (none when it is not one).
fn numbers(value: &Value) -> Vec<u64> {
    value.as_array().map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_u64).collect())
}

/// The strings of a JSON array (none when it is not one).
fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value.as_array().into_iter().flatten().filter_map(Value::as_str)
}

/// Compares both sides of the run and lists what failed it.
pub fn judge(j: &Judged) -> Outcome {
    let mut problems = Vec::new();
    let r = j.results;
    let (scene, load) = (j.scene, &r.load);
    if let Some(missing) = scene.get("missing") {
        problems.push(format!("the scene wrote no report: {}", missing.as_str().unwrap_or("")));
    }
    if let Some(missing) = load.get("missing") {
        problems.push(format!("the soak load wrote no report: {}", missing.as_str().unwrap_or("")));
    } else {
        // A renamed key would otherwise read as nothing sent, and nothing could be lost.
        for (section, key) in [("published", "delivered"), ("bursts", "acked"), ("slow", "acked")] {
            if !load[section][key].is_array() {
                problems.push(format!("the soak load's report has no {section}.{key}"));
            }
        }
    }

    // Redis: every number Redis delivered to our subscriber must have arrived, once, in order.
    let delivered = numbers(&load["published"]["delivered"]);
    let received = numbers(&scene["redis"]["received"]);
    let received_set: HashSet<u64> = received.iter().copied().collect();
    let redis_lost = delivered.iter().filter(|n| !received_set.contains(n)).count();
    let redis_duplicates = received.len() - received_set.len();
    let redis_out_of_order = received.windows(2).filter(|w| w[1] <= w[0]).count();

    // WebSocket: every message sent was echoed, in order.
    let ws_sent = scene["ws"]["sent"].as_u64().unwrap_or(0);
    let ws_lost = ws_sent.saturating_sub(scene["ws"]["echoed"].as_u64().unwrap_or(0));
    let ws_out_of_order = scene["ws"]["out_of_order"].as_u64().unwrap_or(0);

    // TCP: every line acknowledged `OK <name>` spawned a node of that name.
    let acked: Vec<&str> = strings(&load["bursts"]["acked"]).chain(strings(&load["slow"]["acked"])).collect();
    let tcp_lost = acked.iter().filter(|name| !j.spawned.contains(*name)).count();

    let lost =
        redis_lost + redis_duplicates + redis_out_of_order + ws_lost as usize + ws_out_of_order as usize + tcp_lost;
    if lost > 0 {
        problems.push(format!(
            "messages lost: redis {redis_lost} (+{redis_duplicates} duplicated, {redis_out_of_order} out of order), \
             websocket {ws_lost} (+{ws_out_of_order} out of order), tcp {tcp_lost}"
        ));
    }
    let extra_receivers = load["published"]["extra_receivers"].as_u64().unwrap_or(0);
    if extra_receivers > 0 {
        problems.push(format!("{extra_receivers} publishes reached more than one subscriber"));
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
    // The game's budget: no frame over LONG_FRAME_MS (the slowest task is named).
    let long_frames = scene["long_frames"].as_u64().unwrap_or(0);
    if long_frames > 0 {
        let slowest = &scene["slowest_task"];
        problems.push(format!(
            "{long_frames} frames took longer than {LONG_FRAME_MS} ms (longest {} µs; slowest task: {} of {}, {} µs)",
            scene["max_frame_usec"], slowest["task"], slowest["owner"], slowest["usec"]
        ));
    }
    let rss_growth = j.end.rss_kib.saturating_sub(j.start.rss_kib);
    if rss_growth > MAX_RSS_GROWTH_KIB {
        problems.push(format!(
            "resident memory grew {} KiB from the end of the warm-up ({} KiB) to the end ({} KiB), more than {} KiB",
            rss_growth, j.start.rss_kib, j.end.rss_kib, MAX_RSS_GROWTH_KIB
        ));
    }
    let seconds = j.duration.as_secs_f64().max(1.0);
    let ws_echoed = scene["ws"]["echoed"].as_u64().unwrap_or(0);
    let moved = [received.len() as u64, ws_echoed, acked.len() as u64];
    for ((what, per_second), moved) in MIN_PER_SECOND.iter().zip(moved) {
        let least = (per_second * seconds) as u64;
        if moved < least {
            problems.push(format!("too little traffic: {moved} {what} in {seconds:.0} s (at least {least})"));
        }
    }
    let played = scene["radio"]["frames_pushed"].as_f64().unwrap_or(0.0);
    let rate = scene["radio"]["sample_rate"].as_f64().unwrap_or(44100.0);
    if played < MIN_RADIO_SHARE * rate * seconds {
        problems.push(format!(
            "too little radio: {played:.0} frames in {seconds:.0} s (at least {:.0}% of real time)",
            MIN_RADIO_SHARE * 100.0
        ));
    }
    if scene.get("all_connected").and_then(Value::as_bool) == Some(false) {
        problems.push("not every node was connected again at the end".into());
    }
    let log = log_check::godot_report(&j.run.log);
    problems.extend(log.problems.iter().map(|p| format!("scene log: {p}")));
    if !j.run.success() {
        problems.push(format!("the soak scene {}", j.run.describe()));
    }

    let published = &load["published"];
    let count = |v: &Value| v.as_u64().unwrap_or(0);
    let report = json!({
        "date": utc_now(),
        "seconds": j.duration.as_secs(),
        "library": j.library.name(),
        "passed": problems.is_empty(),
        "problems": problems,
        "faults": faults,
        "stalls_injected": scene["stalls"],
        "load": {
            "tcp_bursts": load["bursts"]["bursts"],
            "tcp_burst_clients": load["bursts"]["clients"],
            "tcp_lines_acked": acked.len(),
            "tcp_errors": load["bursts"]["errors"],
            "tcp_io_failures": load["bursts"]["io_failures"],
            "slowloris_clients": load["slow"]["clients"],
            "slowloris_bytes": load["slow"]["bytes"],
            "slowloris_closed": load["slow"]["closed"],
            "slowloris_replies": load["slow"]["errors"],
            "garbage_bytes": load["garbage"]["bytes"],
            "garbage_connections": load["garbage"]["connections"],
            "garbage_replies": load["garbage"]["replies"],
            "redis_published": delivered.len() as u64 + count(&published["no_receiver"]) + count(&published["failed"]),
            "redis_delivered": delivered.len(),
            "redis_no_receiver": published["no_receiver"],
            "redis_publish_failed": published["failed"],
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

/// Prints the report's main sections and the verdict.
pub fn print_summary(outcome: &Outcome) {
    let r = &outcome.report;
    println!("\nsoak: {} s, {} library", r["seconds"], r["library"].as_str().unwrap_or("?"));
    for key in ["faults", "load", "lost", "frames", "reconnects", "process", "node_errors", "streams"] {
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
