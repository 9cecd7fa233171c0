//! The soak's verdict: what the scene received against what the load sent and the services
//! delivered, descriptors at the start and the end, the faults that ran and the scene's log;
//! the report `target/soak.json` holds, and its summary.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::faults::{Faulted, Outage};
use super::promises::{self, Fault};
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
    /// What the WebSocket echo server received, on which connection, in order.
    pub ws_record: Vec<(String, u64)>,
    /// What the harness threads and the soak load returned.
    pub results: &'a Results,
    /// The scene's process once every node was connected, and at the end.
    pub start: Sample,
    pub end: Sample,
    /// The scene's run: exit status and log.
    pub run: &'a process::Finished,
    /// Whether nginx or tinyproxy was killed ([`super::http`]).
    pub http_killed: bool,
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

/// The fault threads' outages, or none (with a problem) when a thread failed.
fn outages<'a>(name: &str, result: &'a anyhow::Result<Faulted>, problems: &mut Vec<String>) -> &'a [Outage] {
    match result {
        Ok(f) => &f.outages,
        Err(err) => {
            problems.push(format!("{name}: {err:#}"));
            &[]
        }
    }
}

fn outages_json(outages: &[Outage]) -> Value {
    outages.iter().map(|o| json!({ "killed_ms": o.killed_ms, "back_ms": o.back_ms })).collect()
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
    let redis_outages = outages("redis faults", &r.redis, &mut problems);
    let ws_outages = outages("websocket faults", &r.ws, &mut problems);
    let radio_outages = outages("radio faults", &r.radio, &mut problems);

    // Redis: every number Redis delivered to our subscriber arrives, once, in order, unless it
    // was in flight at a kill.
    let published = &load["published"];
    let (delivered, sent_ms, failed) =
        (numbers(&published["delivered"]), numbers(&published["delivered_sent_ms"]), numbers(&published["failed"]));
    let received = numbers(&scene["redis"]["received"]);
    let side = promises::RedisSide {
        delivered: &delivered,
        delivered_sent_ms: &sent_ms,
        failed: &failed,
        no_receiver: published["no_receiver"].as_u64().unwrap_or(0),
    };
    let redis = promises::redis(&side, &received, redis_outages);

    // WebSocket: against the echo server's own record.
    let ws = &scene["ws"];
    let (missing, queued) = (numbers(&ws["missing"]), numbers(&ws["queued_while_down"]));
    let ws_scene = promises::WsScene {
        sent: ws["sent"].as_u64().unwrap_or(0),
        next_expected: ws["next_expected"].as_u64().unwrap_or(0),
        missing: &missing,
        queued_while_down: &queued,
        out_of_order: ws["out_of_order"].as_u64().unwrap_or(0),
    };
    let websocket = promises::websocket(&ws_scene, &j.ws_record);

    // TCP: every line acknowledged `OK <name>` spawned a node of that name.
    let acked: Vec<&str> = strings(&load["bursts"]["acked"]).chain(strings(&load["slow"]["acked"])).collect();
    let tcp = promises::Verdict {
        moved: acked.len() as u64,
        promised: acked.len() as u64,
        lost: acked.iter().filter(|name| !j.spawned.contains(*name)).count() as u64,
        ..promises::Verdict::default()
    };

    for (node, v) in [("redis", &redis), ("websocket", &websocket), ("tcp", &tcp)] {
        if v.lost > 0 || v.misordered > 0 {
            problems.push(format!(
                "{node}: {} of {} promised messages lost, {} duplicated or out of order ({} in flight at a kill, not promised)",
                v.lost, v.promised, v.misordered, v.in_flight
            ));
        }
        problems.extend(v.problems.iter().cloned());
    }
    let extra_receivers = published["extra_receivers"].as_u64().unwrap_or(0);
    if extra_receivers > 0 {
        problems.push(format!("{extra_receivers} publishes reached more than one subscriber"));
    }
    let fd_growth = j.end.fds as i64 - j.start.fds as i64;
    if fd_growth > 0 {
        problems.push(format!("open descriptors grew from {} to {}", j.start.fds, j.end.fds));
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
    for ((what, per_second), moved) in MIN_PER_SECOND.iter().zip([redis.moved, websocket.moved, tcp.moved]) {
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
    let underruns = numbers(&scene["radio_underruns"]);
    let unexplained = promises::unexplained_underruns(&underruns, radio_outages);
    if !unexplained.is_empty() {
        problems.push(format!(
            "radio: {} of {} underruns outside the source's outages (at Unix ms {:?}; outages {})",
            unexplained.len(),
            underruns.len(),
            unexplained,
            outages_json(radio_outages)
        ));
    }
    if scene.get("all_connected").and_then(Value::as_bool) == Some(false) {
        problems.push("not every node was connected again at the end".into());
    }
    let log = log_check::godot_report(&j.run.log);
    problems.extend(log.problems.iter().map(|p| format!("scene log: {p}")));
    let ran: Vec<Fault> =
        [(Fault::Redis, redis_outages), (Fault::WebSocket, ws_outages), (Fault::RadioSource, radio_outages)]
            .into_iter()
            .filter(|(_, o)| !o.is_empty())
            .map(|(f, _)| f)
            .chain(j.http_killed.then_some(Fault::Http))
            .chain((load["garbage"]["bytes"].as_u64().unwrap_or(0) > 0).then_some(Fault::Garbage))
            .collect();
    let unexpected = promises::unexpected_errors(&log.errors, &ran);
    if !unexpected.is_empty() {
        problems.push(format!(
            "{} ERROR lines in the scene's log that no fault explains, the first: {}",
            unexpected.len(),
            unexpected.iter().take(3).copied().collect::<Vec<_>>().join(" | ")
        ));
    }
    if !j.run.success() {
        problems.push(format!("the soak scene {}", j.run.describe()));
    }

    let report = json!({
        "date": utc_now(),
        "seconds": j.duration.as_secs(),
        "library": j.library.name(),
        "passed": problems.is_empty(),
        "problems": problems,
        "faults": {
            "redis_kills": redis_outages.len(),
            "ws_server_kills": ws_outages.len(),
            "radio_source_kills": radio_outages.len(),
            "outages": {
                "redis": outages_json(redis_outages),
                "websocket": outages_json(ws_outages),
                "radio_source": outages_json(radio_outages),
            },
        },
        "stalls_injected": scene["stalls"],
        "nodes": {
            "RedisSubscriber": redis.json(),
            "WsEcho": websocket.json(),
            "TcpSpawnerServer": tcp.json(),
            "RadioStream": {
                "seconds_played": played / rate,
                "underruns": underruns.len(),
                "underruns_outside_outages": unexplained.len(),
                "reconnects": scene["radio"]["reconnects"],
            },
        },
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
            "redis_published": delivered.len() + failed.len() + side.no_receiver as usize,
            "ws_sent": ws_scene.sent,
            "ws_refused": ws["refused"],
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
        "radio_underruns": { "at_ms": underruns, "context": scene["radio_underrun_context"] },
        "node_errors": scene["node_errors"],
        "error_samples": scene["error_samples"],
        "error_lines": { "logged": log.errors.len(), "unexpected": unexpected },
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

/// The columns of the table of nodes: (report key, heading).
const COLUMNS: [(&str, &str); 6] = [
    ("moved", "moved"),
    ("promised", "promised"),
    ("lost", "lost"),
    ("in_flight_at_kill", "in flight at a kill"),
    ("outside_promise", "outside the promise"),
    ("duplicated_or_out_of_order", "dup./order"),
];

/// The report's nodes that count messages, as a text table (one row per node).
pub fn node_table(nodes: &Value) -> String {
    let mut out = format!("  {:<22}", "node");
    for (_, heading) in COLUMNS {
        out += &format!("  {heading:>8}");
    }
    for (name, row) in nodes.as_object().into_iter().flatten().filter(|(_, row)| row.get("moved").is_some()) {
        out += &format!("\n  {name:<22}");
        for (key, heading) in COLUMNS {
            let cell = row.get(key).or_else(|| (key == "duplicated_or_out_of_order").then(|| &row["redelivered"]));
            let text = cell.filter(|v| !v.is_null()).map_or("-".to_string(), Value::to_string);
            out += &format!("  {text:>width$}", width = heading.len().max(8));
        }
    }
    out
}

/// Prints the report's main sections and the verdict.
pub fn print_summary(outcome: &Outcome) {
    let r = &outcome.report;
    println!("\nsoak: {} s, {} library", r["seconds"], r["library"].as_str().unwrap_or("?"));
    let f = &r["faults"];
    println!(
        "  faults: redis-server killed {}, WebSocket server killed {}, icecast source killed {}, main thread stalled {}",
        f["redis_kills"], f["ws_server_kills"], f["radio_source_kills"], r["stalls_injected"]
    );
    println!("{}", node_table(&r["nodes"]));
    let radio = &r["nodes"]["RadioStream"];
    println!(
        "  RadioStream: {:.1} s played, {} underruns ({} outside the source's outages)",
        radio["seconds_played"].as_f64().unwrap_or(0.0),
        radio["underruns"],
        radio["underruns_outside_outages"]
    );
    let (frames, process) = (&r["frames"], &r["process"]);
    println!(
        "  frames: {}, longest {:.1} ms, {} over {LONG_FRAME_MS} ms; slowest task {}",
        frames["count"],
        frames["max_usec"].as_f64().unwrap_or(0.0) / 1000.0,
        frames["longer_than_50ms"],
        frames["slowest_task"]
    );
    println!(
        "  memory: RSS {} -> {} KiB (peak {}); descriptors {} -> {} (peak {})",
        process["rss_kib_start"],
        process["rss_kib_end"],
        process["rss_kib_peak"],
        process["fds_start"],
        process["fds_end"],
        process["fds_peak"]
    );
    for key in ["load", "reconnects", "node_errors", "error_lines"] {
        println!("  {key}: {}", r[key]);
    }
    println!("  http: {}", super::http::summary(&r["http"]));
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
    fn the_table_has_a_row_per_counting_node() {
        let nodes = json!({
            "RedisSubscriber": {"moved": 10, "promised": 10, "lost": 0, "in_flight_at_kill": 1,
                "outside_promise": 2, "duplicated_or_out_of_order": 0},
            "RedisStreamConsumer": {"moved": 5, "promised": 5, "lost": 0, "in_flight_at_kill": 0,
                "outside_promise": 0, "redelivered": 3},
            "RadioStream": {"underruns": 1},
        });
        let table = node_table(&nodes);
        assert_eq!(table.lines().count(), 3, "{table}");
        assert!(table.contains("RedisSubscriber") && !table.contains("RadioStream"), "{table}");
        let streams = table.lines().find(|l| l.contains("RedisStreamConsumer")).unwrap();
        assert!(streams.trim_end().ends_with('3'), "redelivered in the last column: {table}");
    }
}
