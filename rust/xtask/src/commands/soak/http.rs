//! The HTTP part of `cargo xtask soak`: HttpSession and HttpServer in the soak scene
//! (tests/soak/soak_http.gd), judged against their own promises and counted here:
//!
//! - **HttpSession** downloads [`FILES`] random files of [`FILE_BYTES`] with `resume = true`,
//!   [`PARALLEL`] at a time, through tinyproxy from nginx, which paces each response
//!   ([`http_services::PACED_BYTES_PER_SEC`]) so that a kill lands mid-body. nginx and tinyproxy
//!   are each killed (SIGKILL) and restarted on their port [`KILLS`] times per 120 s, at random
//!   moments and never after a quiet period: at each planned moment the harness waits until a
//!   download is flowing through that server (an established connection on its port, read from
//!   /proc/net/tcp) and records how many were, and how many bytes the partial files held. The
//!   scene retries a failed download with `resume` until it completes and moves each completed
//!   one to `http/done/`, where a thread here compares it byte for byte with the original and
//!   deletes it. The run fails on a corrupt download, on one that never completed by the end
//!   (the scene drains before it reports), on a count that differs between the scene and the
//!   harness, on a kill that found nothing in flight, on kills that no download resumed from
//!   (nginx's own log counts the 206 answers), or on less traffic than [`MIN_BYTES_PER_SECOND`].
//! - **HttpServer** listens on a port chosen here (in `http.json`) under the testbed's
//!   `soak-http-load` (rust/testbed/src/soak_http_load.rs: kept-alive and one-shot hyper
//!   clients, slow heads, clients that abort). Its promise: every request it accepted gets an answer or is closed
//!   with an error status. The load's own count fails the run on a request lost (written
//!   completely, no status) or answered 2xx with the wrong body, or on fewer answers than
//!   [`MIN_ANSWERS_PER_SECOND`]; error statuses (408 to the slow heads that are too slow, 503)
//!   and the requests the load aborted itself are reported apart.
//!
//! In the table of nodes, HttpSession's row counts downloads (promised: every download begun;
//! lost: corrupt or never completed; in flight at a kill: downloads through the killed server)
//! and HttpServer's counts requests (promised: every request written completely; lost: no
//! status, or a wrong 2xx body; in flight at a kill: requests whose connection the load closed
//! before the answer; outside the promise: requests the load cut short before sending all of
//! them). Error statuses are within the promise and listed apart.
//!
//! [`mod@super`] wires it: [`Http::start`] before the scene starts (it writes `http.json`, which
//! the scene reads, and starts the load, which waits for the server: the scene's warm-up ends
//! once its first downloads completed and its server answered, see soak_http.gd's
//! `warmed_up()`), [`Http::run`] once the scene is ready, [`Running::stop`] when the faults end
//! (before `finish`), [`Stopped::verdict_into`] after the scene's report.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::faults::{Outage, Plan, kill_and_restart_when};
use super::promises::Verdict;
use super::{Load, Outcome, Stop};
use crate::http_services::{self, PROXY_PASSWORD, PROXY_USER};
use crate::services::{self, Service};
use crate::testbed;

/// Files the scene downloads in turn, and their size (2-3 s each at the paced rate).
pub const FILES: usize = 3;
pub const FILE_BYTES: usize = 3 * 1024 * 1024;
/// Downloads at once.
pub const PARALLEL: usize = 2;
/// Kills of nginx, and of tinyproxy, per 120 s (scaled to the run, at least one).
pub const KILLS: f64 = 8.0;

/// How long a planned kill may wait for a download to flow through the server.
const QUIET_LIMIT: Duration = Duration::from_secs(15);

/// The least traffic per second of the run. On this 2-core machine, with the rest of the soak
/// running, a 25 s run verified 34 downloads (102 MiB: downloads also run during the warm-up
/// and the drain) and had 2271 requests answered (91/s); a 120 s run 116 downloads (348 MiB,
/// 2.9 MiB/s) and 9135 answers (76/s). A fifth and a quarter of that leave room for a loaded
/// machine and still catch a node that stalls.
const MIN_BYTES_PER_SECOND: f64 = 0.5 * 1024.0 * 1024.0;
const MIN_ANSWERS_PER_SECOND: f64 = 20.0;

/// The load's client kinds, as named in its report.
const CLIENT_KINDS: [&str; 4] = ["keepalive", "close", "slow_in_time", "slow_too_slow"];

/// The HTTP servers of the soak, started before the scene.
pub struct Http {
    origin: http_services::Nginx,
    proxy: Service,
    proxy_port: u16,
    load: Load,
    files: Vec<(String, Vec<u8>)>,
    dir: PathBuf,
}

impl Http {
    /// Starts nginx and tinyproxy, writes the files nginx serves and `http.json` in `work`, and
    /// starts the testbed's load on the port the scene's HttpServer will listen on.
    pub fn start(work: &Path, testbed: &Path) -> Result<Http> {
        let dir = work.join("http");
        for sub in ["part", "done"] {
            fs::create_dir_all(dir.join(sub)).with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        let origin = http_services::start_nginx("soak-nginx", None, None)?;
        // Emptied, not removed: nginx has it open already (appending), and writes on into it.
        fs::write(origin.paced_log(), "").context("emptying nginx's paced log")?;
        let files: Vec<(String, Vec<u8>)> =
            (0..FILES).map(|k| (format!("soak-{k}.bin"), (0..FILE_BYTES).map(|_| rand::random()).collect())).collect();
        for (name, data) in &files {
            fs::write(origin.root.join(name), data).with_context(|| format!("writing {name}"))?;
        }
        let proxy_port = services::free_port()?;
        let proxy = http_services::start_tinyproxy_on("soak-tinyproxy", proxy_port)?;
        let server_port = services::free_port()?;
        let urls: Vec<String> =
            files.iter().map(|(name, _)| format!("http://127.0.0.1:{}/paced/{name}", origin.http_port)).collect();
        let config = json!({
            "urls": urls,
            "proxy": format!("http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{proxy_port}"),
            "server_port": server_port,
            "parallel": PARALLEL,
        });
        fs::write(work.join("http.json"), config.to_string())?;
        let (stop_file, report) = (dir.join("load-stop"), dir.join("load.json"));
        let mut cmd = testbed::command(testbed, "soak-http-load");
        cmd.args(["--port", &server_port.to_string()]).arg("--out").arg(&report);
        cmd.arg("--stop-file").arg(&stop_file);
        let load = Load { service: Service::start("soak-http-load", cmd)?, stop_file, report };
        Ok(Http { origin, proxy, proxy_port, load, files, dir })
    }

    /// Starts the kills of nginx and tinyproxy (one plan each) and the checker of completed
    /// downloads.
    pub fn run(self, plans: [Plan; 2], stop: &Stop) -> Result<Running> {
        let load = self.load;
        let [origin_plan, proxy_plan] = plans;
        let (origin_port, proxy_port, paced_log) = (self.origin.http_port, self.proxy_port, self.origin.paced_log());
        let part = self.dir.join("part");
        let origin = {
            let (stop, part) = (stop.clone(), part.clone());
            let server = self.origin.service;
            thread::spawn(move || {
                kill_and_restart(server, origin_port, origin_plan, &part, &stop, || {
                    Ok(http_services::start_nginx_on("soak-nginx", origin_port)?.service)
                })
            })
        };
        let proxy = {
            let (stop, server) = (stop.clone(), self.proxy);
            thread::spawn(move || {
                kill_and_restart(server, proxy_port, proxy_plan, &part, &stop, || {
                    http_services::start_tinyproxy_on("soak-tinyproxy", proxy_port)
                })
            })
        };
        let checker_stop = Stop::default();
        let checker = {
            let (stop, done, files) = (checker_stop.clone(), self.dir.join("done"), self.files);
            thread::spawn(move || {
                let mut checked = Checked::default();
                loop {
                    checked.scan(&done, &files);
                    if !stop.sleep(Duration::from_millis(500)) {
                        checked.scan(&done, &files);
                        return checked;
                    }
                }
            })
        };
        Ok(Running { load, origin, proxy, checker, checker_stop, paced_log })
    }
}

/// The HTTP part while the faults run.
pub struct Running {
    load: Load,
    origin: JoinHandle<Result<Killed>>,
    proxy: JoinHandle<Result<Killed>>,
    checker: JoinHandle<Checked>,
    checker_stop: Stop,
    paced_log: PathBuf,
}

impl Running {
    /// Once the harness's stop is set: stops the load and joins the kill threads (nginx and
    /// tinyproxy run again, for the scene's last downloads).
    pub fn stop(self) -> Stopped {
        let load = self.load.finish();
        let join = |h: JoinHandle<Result<Killed>>| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")));
        Stopped {
            load,
            origin: join(self.origin),
            proxy: join(self.proxy),
            checker: self.checker,
            checker_stop: self.checker_stop,
            paced_log: self.paced_log,
        }
    }
}

/// The HTTP part once the faults and the load have ended.
pub struct Stopped {
    load: Value,
    origin: Result<Killed>,
    proxy: Result<Killed>,
    checker: JoinHandle<Checked>,
    checker_stop: Stop,
    paced_log: PathBuf,
}

impl Stopped {
    /// Whether nginx or tinyproxy was killed at least once (their errors in the log are explained).
    pub fn killed(&self) -> bool {
        [&self.origin, &self.proxy].iter().any(|r| r.as_ref().is_ok_and(|k| !k.kills.is_empty()))
    }

    /// After the scene's report (`scene` is its `http` section): checks the last downloads,
    /// adds the two nodes' rows to the report's `nodes`, its details as `http`, and what failed
    /// the run to the problems.
    pub fn verdict_into(self, outcome: &mut Outcome, scene: &Value, duration: Duration) {
        self.checker_stop.set();
        let checked = self.checker.join().unwrap_or_default();
        let kills = |r: &Result<Killed>| r.as_ref().map(|k| k.kills.clone()).map_err(|e| format!("{e:#}"));
        let (mut report, problems) = judge(&Judged {
            seconds: duration.as_secs_f64().max(1.0),
            scene,
            load: &self.load,
            checked: &checked,
            origin_kills: kills(&self.origin),
            proxy_kills: kills(&self.proxy),
            paced: Paced::parse(&fs::read_to_string(&self.paced_log).unwrap_or_default()),
        });
        let nodes = report.as_object_mut().and_then(|r| r.remove("nodes"));
        for (node, row) in nodes.as_ref().and_then(Value::as_object).into_iter().flatten() {
            outcome.report["nodes"][node] = row.clone();
        }
        outcome.report["http"] = report;
        outcome.problems.extend(problems);
    }
}

// --- kills ---------------------------------------------------------------------------------------

/// One kill: when, and what was in flight through the server when it died.
#[derive(Clone, Debug, PartialEq)]
pub struct Kill {
    pub outage: Outage,
    /// Established connections on the server's port.
    pub connections: usize,
    /// Bytes in the scene's partial files.
    pub part_bytes: u64,
}

/// A server's kills, and the server running again.
struct Killed {
    kills: Vec<Kill>,
    #[allow(dead_code, reason = "held so that the server runs until the scene has reported")]
    service: Service,
}

/// At each planned moment: waits until a download flows through `port`, kills the server,
/// restarts it with `start` after 0.3-1.5 s.
fn kill_and_restart(
    service: Service,
    port: u16,
    plan: Plan,
    part: &Path,
    stop: &Stop,
    start: impl Fn() -> Result<Service>,
) -> Result<Killed> {
    // The kill follows the reading that found traffic at once (a download may end any moment).
    let in_flight = || {
        let waiting = Instant::now();
        let connections = loop {
            let now = established(port);
            if now > 0 || waiting.elapsed() > QUIET_LIMIT || !stop.sleep(Duration::from_millis(10)) {
                break now;
            }
        };
        (!stop.is_set()).then(|| (connections, part_bytes(part)))
    };
    let pause = (Duration::from_millis(300), Duration::from_millis(1500));
    let (kills, service) = kill_and_restart_when(service, plan, stop, pause, in_flight, start)?;
    let kills =
        kills.into_iter().map(|(outage, (connections, part_bytes))| Kill { outage, connections, part_bytes }).collect();
    Ok(Killed { kills, service })
}

/// Established TCP connections whose local port is `port` (the server's side of each).
fn established(port: u16) -> usize {
    established_in(&fs::read_to_string("/proc/net/tcp").unwrap_or_default(), port)
}

/// [`established`] over the text of /proc/net/tcp (`sl local rem st ...`, addresses
/// `HEXIP:HEXPORT`, state 01 = ESTABLISHED).
fn established_in(table: &str, port: u16) -> usize {
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1).and_then(|a| a.rsplit_once(':')).map(|(_, p)| u16::from_str_radix(p, 16));
            matches!(local, Some(Ok(p)) if p == port) && fields.get(3) == Some(&"01")
        })
        .count()
}

/// Bytes in the partial files of `dir`.
fn part_bytes(dir: &Path) -> u64 {
    let entries = fs::read_dir(dir).into_iter().flatten().flatten();
    entries.filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()
}

// --- completed downloads -------------------------------------------------------------------------

/// The completed downloads the harness compared with the originals.
#[derive(Debug, Default)]
pub struct Checked {
    /// Byte-identical to their original.
    pub verified: u64,
    pub bytes: u64,
    /// Names of those that were not (or whose original is unknown).
    pub corrupt: Vec<String>,
}

impl Checked {
    /// Compares each file of `done` (`SEQ-NAME`) with the original NAME, then deletes it.
    fn scan(&mut self, done: &Path, files: &[(String, Vec<u8>)]) {
        for entry in fs::read_dir(done).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(data) = fs::read(entry.path()) else { continue };
            let original = name.split_once('-').and_then(|(_, file)| files.iter().find(|(n, _)| n == file));
            match original {
                Some((_, bytes)) if *bytes == data => {
                    self.verified += 1;
                    self.bytes += data.len() as u64;
                }
                _ => self.corrupt.push(format!("{name} ({} bytes)", data.len())),
            }
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// What nginx's `/paced/` log says: answers by status, body bytes sent, answers the client
/// left before the end (the proxy killed, or the proxy's client gone).
#[derive(Debug, Default, PartialEq)]
pub struct Paced {
    pub statuses: BTreeMap<String, u64>,
    pub bytes: u64,
    pub interrupted: u64,
}

impl Paced {
    /// Reads the lines of [`http_services::Nginx::paced_log`].
    fn parse(log: &str) -> Paced {
        let mut paced = Paced::default();
        for line in log.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(status), Some(Ok(bytes))) = (fields.first(), fields.get(1).map(|b| b.parse::<u64>())) else {
                continue;
            };
            *paced.statuses.entry(status.to_string()).or_default() += 1;
            paced.bytes += bytes;
            paced.interrupted += u64::from(fields.get(2) != Some(&"OK"));
        }
        paced
    }
}

/// One line of the HTTP part's report (its `http` section), for the summary.
pub fn summary(http: &Value) -> String {
    let (session, server) = (&http["session"], &http["server"]);
    format!(
        "session: {} downloads ({:.1} MiB) byte-identical, {} corrupt, {} unfinished; {} attempts \
         interrupted, {} resumed with Range; kills origin {} / proxy {} with {} downloads in flight; \
         server: {} answered, {} lost, {} wrong, error statuses {}, aborted by the load {}",
        session["downloads_verified"],
        session["bytes_verified"].as_f64().unwrap_or(0.0) / 1048576.0,
        session["corrupt"].as_array().map_or(0, Vec::len),
        session["unfinished"],
        session["interrupted"],
        session["resumed"],
        session["kills"]["origin"]["kills"],
        session["kills"]["proxy"]["kills"],
        session["in_flight_at_kills"],
        server["answered_ok"],
        server["lost"],
        server["wrong"],
        server["error_statuses"],
        server["aborted_by_load"],
    )
}

// --- the verdict ---------------------------------------------------------------------------------

/// Everything the HTTP part is judged on.
struct Judged<'a> {
    seconds: f64,
    /// The scene's `http` section (soak_http.gd's report()), or null.
    scene: &'a Value,
    /// The soak-http-load's report, or `{"missing": why}`.
    load: &'a Value,
    checked: &'a Checked,
    origin_kills: Result<Vec<Kill>, String>,
    proxy_kills: Result<Vec<Kill>, String>,
    paced: Paced,
}

/// The `http` section of the report, and what fails the run.
fn judge(j: &Judged) -> (Value, Vec<String>) {
    let mut problems = Vec::new();
    let count = |v: &Value| v.as_u64().unwrap_or(0);

    // HttpSession: every completed download byte-identical, none left, every kill mid-flight.
    let scene = &j.scene["downloads"];
    if !scene.is_object() {
        problems.push("http: the scene's report has no http.downloads".into());
    }
    let c = j.checked;
    if !c.corrupt.is_empty() {
        problems.push(format!("http: {} downloads differ from the original: {:?}", c.corrupt.len(), c.corrupt));
    }
    let unfinished = count(&scene["unfinished"]);
    if unfinished > 0 {
        problems.push(format!("http: {unfinished} downloads never completed by the end of the run"));
    }
    let completed = count(&scene["completed"]);
    if completed != c.verified + c.corrupt.len() as u64 {
        problems.push(format!(
            "http: the scene completed {completed} downloads, the harness found {}",
            c.verified + c.corrupt.len() as u64
        ));
    }
    let mut kills_json = json!({});
    let (mut kills, mut in_flight) = (0, 0);
    for (name, result) in [("origin", &j.origin_kills), ("proxy", &j.proxy_kills)] {
        match result {
            Ok(list) => {
                kills += list.len();
                in_flight += list.iter().map(|k| k.connections).sum::<usize>();
                let quiet = list.iter().filter(|k| k.connections == 0).count();
                if quiet > 0 {
                    problems.push(format!("http: {quiet} kills of the {name} found no download in flight"));
                }
                let outages: Vec<Value> = list
                    .iter()
                    .map(|k| json!({"killed_ms": k.outage.killed_ms, "back_ms": k.outage.back_ms}))
                    .collect();
                kills_json[name] = json!({
                    "kills": list.len(),
                    "outages": outages,
                    "connections_in_flight": list.iter().map(|k| k.connections).collect::<Vec<_>>(),
                    "part_bytes_at_kill": list.iter().map(|k| k.part_bytes).collect::<Vec<_>>(),
                });
            }
            Err(err) => problems.push(format!("http: {name} kills: {err}")),
        }
    }
    let resumed = j.paced.statuses.get("206").copied().unwrap_or(0);
    if kills > 0 && resumed == 0 {
        problems.push(format!("http: {kills} kills mid-download, and no download resumed (no 206 from the origin)"));
    }
    let least_bytes = (MIN_BYTES_PER_SECOND * j.seconds) as u64;
    if c.bytes < least_bytes {
        problems.push(format!(
            "too little traffic: {} verified download bytes in {:.0} s (at least {least_bytes})",
            c.bytes, j.seconds
        ));
    }

    // HttpServer: every request written completely got a status, every 2xx the right body.
    let load = j.load;
    if let Some(missing) = load.get("missing") {
        problems.push(format!("http: the soak-http-load wrote no report: {}", missing.as_str().unwrap_or("")));
    }
    let total = |key: &str| CLIENT_KINDS.iter().map(|kind| count(&load[kind][key])).sum::<u64>();
    let (lost, wrong, ok) = (total("lost"), total("wrong"), total("ok"));
    let mut error_statuses: BTreeMap<String, u64> = BTreeMap::new();
    for kind in CLIENT_KINDS {
        for (status, n) in load[kind]["statuses"].as_object().into_iter().flatten() {
            *error_statuses.entry(status.clone()).or_default() += count(n);
        }
    }
    if lost > 0 || wrong > 0 {
        problems.push(format!(
            "http: HttpServer lost {lost} requests (no status) and answered {wrong} wrongly: {}",
            load["samples"]
        ));
    }
    let least_answers = (MIN_ANSWERS_PER_SECOND * j.seconds) as u64;
    if ok < least_answers {
        problems.push(format!(
            "too little traffic: {ok} HttpServer answers in {:.0} s (at least {least_answers})",
            j.seconds
        ));
    }

    let session_node = Verdict {
        moved: c.verified,
        promised: count(&scene["started"]),
        lost: c.corrupt.len() as u64 + unfinished,
        in_flight: in_flight as u64,
        ..Verdict::default()
    };
    let aborted = &load["aborted"];
    let server_node = Verdict {
        moved: ok,
        promised: total("sent"),
        lost: lost + wrong,
        in_flight: count(&aborted["waiting"]),
        outside_promise: count(&aborted["in_head"]) + count(&aborted["in_body"]),
        ..Verdict::default()
    };
    let report = json!({
        "nodes": { "HttpSession": session_node.json(), "HttpServer": server_node.json() },
        "session": {
            "downloads_verified": c.verified,
            "bytes_verified": c.bytes,
            "corrupt": c.corrupt,
            "unfinished": unfinished,
            "interrupted": count(&scene["failed"]) + count(&scene["non_2xx"]),
            "resumed": resumed,
            "in_flight_at_kills": in_flight,
            "kills": kills_json,
            "origin_answers": j.paced.statuses,
            "origin_bytes_sent": j.paced.bytes,
            "origin_answers_cut": j.paced.interrupted,
            "scene": scene,
        },
        "server": {
            "answered_ok": ok,
            "lost": lost,
            "wrong": wrong,
            "error_statuses": error_statuses,
            "not_sent": total("not_sent"),
            "slow_heads_cut": total("cut"),
            "connect_failed": total("connect_failed"),
            "aborted_by_load": load["aborted"],
            "clients": CLIENT_KINDS.iter().map(|k| (k.to_string(), load[k].clone())).collect::<serde_json::Map<_, _>>(),
            "scene": j.scene["server"],
        },
        "samples": j.scene["samples"],
    });
    (report, problems)
}

#[cfg(test)]
mod tests {
    use super::super::promises::{self, Fault};
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000
   2: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000
   3: 0100007F:1F90 0100007F:D432 06 00000000:00000000 00:00000000 00000000
";

    #[test]
    fn counts_the_servers_established_connections() {
        assert_eq!(established_in(TCP, 0x1F90), 1, "the listener, the client side and TIME_WAIT are not");
        assert_eq!(established_in(TCP, 0xD431), 1);
        assert_eq!(established_in("", 80), 0);
    }

    #[test]
    fn the_kills_explain_the_downloads_errors() {
        let task = "ERROR: async_net: task 'HttpSession.download GET http://127.0.0.1:42135/paced/soak-2.bin' of \
                    /root/Soak/Http/Downloads failed: GET http://127.0.0.1:42135/paced/soak-2.bin: ";
        let errors = [
            format!("{task}connection refused by the proxy 127.0.0.1:42135 (is it running?)"),
            format!("{task}the connection failed while the body arrived: error reading a body from connection"),
            format!("{task}the body ended after 10 of 20 bytes"),
        ];
        let unexpected = promises::unexpected_errors(&errors, &[Fault::Http]);
        assert_eq!(unexpected, [errors[2].as_str()], "a short body is not what a kill does here");
        assert_eq!(promises::unexpected_errors(&errors, &[Fault::Redis]).len(), 3);
    }

    #[test]
    fn reads_nginx_paced_log() {
        let paced = Paced::parse("200 3145728 OK\n206 1000 OK\n200 52000 \n500 10 OK\n\n");
        assert_eq!(paced.statuses.get("200"), Some(&2));
        assert_eq!(paced.statuses.get("206"), Some(&1));
        assert_eq!((paced.bytes, paced.interrupted), (3145728 + 1000 + 52000 + 10, 1));
    }

    fn passing(scene: &Value, load: &Value, checked: &Checked) -> (Value, Vec<String>) {
        let kill = Kill { outage: Outage { killed_ms: 1, back_ms: 2 }, connections: 2, part_bytes: 1000 };
        judge(&Judged {
            seconds: 10.0,
            scene,
            load,
            checked,
            origin_kills: Ok(vec![kill.clone()]),
            proxy_kills: Ok(vec![kill]),
            paced: Paced::parse("206 100 OK\n"),
        })
    }

    fn good_load() -> Value {
        json!({
            "keepalive": {"sent": 2000, "ok": 1990, "statuses": {"503": 10}, "lost": 0, "wrong": 0},
            "close": {"sent": 10, "ok": 10},
            "slow_in_time": {"sent": 3, "ok": 3},
            "slow_too_slow": {"sent": 0, "statuses": {"408": 3}, "cut": 1},
            "aborted": {"in_head": 1, "in_body": 1, "waiting": 1},
            "samples": [],
        })
    }

    #[test]
    fn a_clean_run_passes_and_reports_both_nodes() {
        let checked = Checked { verified: 3, bytes: 6 * 1024 * 1024, corrupt: vec![] };
        let scene = json!({"downloads": {"started": 3, "completed": 3, "unfinished": 0}, "server": {}});
        let (report, problems) = passing(&scene, &good_load(), &checked);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(report["server"]["answered_ok"], 2003);
        assert_eq!(report["server"]["error_statuses"], json!({"408": 3, "503": 10}));
        assert_eq!(report["session"]["kills"]["origin"]["connections_in_flight"], json!([2]));
        assert_eq!(report["session"]["in_flight_at_kills"], 4);
        let server = &report["nodes"]["HttpServer"];
        assert_eq!([&server["moved"], &server["promised"], &server["lost"]], [2003, 2013, 0]);
        assert_eq!([&server["in_flight_at_kill"], &server["outside_promise"]], [1, 2]);
        let session = &report["nodes"]["HttpSession"];
        assert_eq!([&session["moved"], &session["promised"], &session["in_flight_at_kill"]], [3, 3, 4]);
        let line = summary(&report);
        assert!(line.contains("3 downloads (6.0 MiB) byte-identical") && line.contains("2003 answered"), "{line}");
    }

    #[test]
    fn corrupt_unfinished_miscounted_and_lost_fail() {
        let checked = Checked { verified: 3, bytes: 6 * 1024 * 1024, corrupt: vec!["4-soak-1.bin".into()] };
        let scene = json!({"downloads": {"completed": 5, "unfinished": 1}});
        let mut load = good_load();
        load["close"]["lost"] = json!(1);
        load["keepalive"]["wrong"] = json!(2);
        let (_, problems) = passing(&scene, &load, &checked);
        let all = problems.join("\n");
        for expected in ["differ from the original", "never completed", "the harness found 4", "lost 1 requests"] {
            assert!(all.contains(expected), "{expected}: {all}");
        }
        assert!(all.contains("answered 2 wrongly"), "{all}");
    }

    #[test]
    fn quiet_kills_no_resume_little_traffic_and_missing_reports_fail() {
        let checked = Checked { verified: 1, bytes: 100, corrupt: vec![] };
        let (_, problems) = judge(&Judged {
            seconds: 10.0,
            scene: &Value::Null,
            load: &json!({"missing": "gone"}),
            checked: &checked,
            origin_kills: Ok(vec![Kill { outage: Outage { killed_ms: 1, back_ms: 2 }, connections: 0, part_bytes: 0 }]),
            proxy_kills: Err("tinyproxy did not restart".into()),
            paced: Paced::default(),
        });
        let all = problems.join("\n");
        for expected in [
            "no http.downloads",
            "found no download in flight",
            "proxy kills: tinyproxy did not restart",
            "no download resumed",
            "verified download bytes",
            "wrote no report",
            "HttpServer answers",
        ] {
            assert!(all.contains(expected), "{expected}: {all}");
        }
    }
}
