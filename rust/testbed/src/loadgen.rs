//! `testbed loadgen`: the load generator of the benchmarks, a separate process so that the load
//! comes from outside Godot. Plain std threads and blocking sockets, loopback only, bounded in
//! connections, lines and time; it always exits by itself.
//!
//! Modes (every one needs `--port P --out FILE`; the result is JSON, written to FILE through a
//! temporary file and a rename, so a reader polling for FILE never sees half of it):
//!
//! - `idle --clients N [--hold-sec S] [--stop-file F]`: opens N connections that send nothing,
//!   writes `{"mode":"idle","connected":N,...}` once all are open, then holds them until F exists
//!   or S seconds have passed.
//! - `flood --clients C --lines L`: C clients each send L distinct lines (`c<client>_<n>\n`) as
//!   fast as the server reads them, while reading every reply; reports how many were answered
//!   `OK`/`ERR` and the wall time from the first send to the last reply.
//! - `rate --clients C --rate R --seconds D [--drain-ms MS] [--max-lag-ms M]`: C clients send R
//!   lines per second in total, on a fixed schedule, for D seconds, then wait up to MS
//!   milliseconds for the last replies. Each reply's lag is measured from its line's scheduled
//!   send time, so a server that stops reading shows up as lag even when TCP backpressure stalls
//!   the sender.
//!   `kept_up` is true when every line was answered and the median lag of the last 20 % of the
//!   schedule is at most M ms (a server that falls behind has a lag that grows with time).
//!
//! Every mode also takes `--max-sec S` (default 120, at most 600): past it the process writes a
//! failure report and exits, whatever happened. Counts are capped too ([`MAX_CLIENTS`],
//! [`MAX_LINES`]). Errors, bad options included, are reported in the JSON (`"ok": false`).
//! Clients connect one after the other with a pause (`--connect-pause-us`, default 3000): Godot's
//! `TCPServer` listens with a backlog of 8 and accepts once per frame, and a connection that
//! overflows the backlog waits a whole second for the kernel to retry its handshake.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lexopt::prelude::*;
use serde_json::{Value, json};

use crate::files::write_atomically;

/// How often a rate-mode sender wakes up to send the lines that fell due.
const RATE_TICK: Duration = Duration::from_millis(2);

/// Longest a single `connect` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads wake up at least this often to check their deadline.
const READ_POLL: Duration = Duration::from_millis(200);

/// Most connections one run opens.
pub const MAX_CLIENTS: u64 = 5000;

/// Most lines one run sends, all clients together.
pub const MAX_LINES: u64 = 20_000_000;

/// Longest a run may last.
const MAX_RUN: Duration = Duration::from_secs(600);

/// `testbed loadgen MODE OPTIONS...` (see the module docs).
pub fn main(mut args: Vec<OsString>) -> Result<ExitCode> {
    if args.is_empty() {
        bail!("usage: testbed loadgen idle|flood|rate --port P --out FILE [options] (see loadgen.rs)");
    }
    let mode = args.remove(0).to_string_lossy().into_owned();
    let out = out_file(&args).context("--out is required")?;
    let report = Options::parse(&mode, args)
        .and_then(|options| run(&mode, &options, &out))
        .unwrap_or_else(|err| json!({"mode": mode, "ok": false, "error": format!("{err:#}")}));
    write_report(&out, &report)?;
    Ok(ExitCode::SUCCESS)
}

/// `--out FILE` or `--out=FILE`, wherever it is among `args`: the report of bad options goes there.
fn out_file(args: &[OsString]) -> Option<PathBuf> {
    args.iter().enumerate().find_map(|(i, arg)| {
        let arg = arg.to_str()?;
        match arg.strip_prefix("--out=") {
            Some(value) => Some(PathBuf::from(value)),
            None if arg == "--out" => args.get(i + 1).map(PathBuf::from),
            None => None,
        }
    })
}

/// The options of one run, with their defaults.
#[derive(Debug, PartialEq)]
struct Options {
    port: Option<u16>,
    max: Duration,
    pause: Duration,
    clients: u64,
    /// `idle`.
    hold: Duration,
    stop_file: Option<PathBuf>,
    /// `flood`.
    lines: u64,
    /// `rate`.
    rate: Option<f64>,
    seconds: f64,
    drain: Duration,
    max_lag_ms: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: None,
            max: Duration::from_secs(120),
            pause: Duration::from_micros(3000),
            clients: 10,
            hold: Duration::from_secs(60),
            stop_file: None,
            lines: 1000,
            rate: None,
            seconds: 3.0,
            drain: Duration::from_millis(1500),
            max_lag_ms: 200.0,
        }
    }
}

impl Options {
    /// Parses the options of `mode`; an option of another mode is an error.
    fn parse(mode: &str, args: Vec<OsString>) -> Result<Options> {
        let mut o = Options::default();
        let mut parser = lexopt::Parser::from_args(args);
        while let Some(arg) = parser.next()? {
            match (mode, arg) {
                (_, Long("out")) => drop(parser.value()?),
                (_, Long("port")) => o.port = Some(parser.value()?.parse()?),
                (_, Long("max-sec")) => o.max = Duration::from_secs(parser.value()?.parse()?).min(MAX_RUN),
                (_, Long("connect-pause-us")) => o.pause = Duration::from_micros(parser.value()?.parse()?),
                (_, Long("clients")) => o.clients = parser.value()?.parse()?,
                ("idle", Long("hold-sec")) => o.hold = Duration::from_secs(parser.value()?.parse()?),
                ("idle", Long("stop-file")) => o.stop_file = Some(PathBuf::from(parser.value()?)),
                ("flood", Long("lines")) => o.lines = parser.value()?.parse()?,
                ("rate", Long("rate")) => o.rate = Some(parser.value()?.parse::<u64>()? as f64),
                ("rate", Long("seconds")) => o.seconds = parser.value()?.parse::<u64>()? as f64,
                ("rate", Long("drain-ms")) => o.drain = Duration::from_millis(parser.value()?.parse()?),
                ("rate", Long("max-lag-ms")) => o.max_lag_ms = parser.value()?.parse::<u64>()? as f64,
                (_, arg) => return Err(arg.unexpected().into()),
            }
        }
        Ok(o)
    }
}

/// Runs `mode` with `o`; the JSON report.
fn run(mode: &str, o: &Options, out: &Path) -> Result<Value> {
    let port = o.port.context("--port is required")?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + o.max;
    watchdog(o.max, out.to_path_buf(), mode.to_string());
    if !(1..=MAX_CLIENTS).contains(&o.clients) {
        bail!("--clients must be 1 to {MAX_CLIENTS}");
    }
    let clients = o.clients as usize;

    match mode {
        "idle" => idle(addr, clients, o.pause, o.hold.min(o.max), o.stop_file.as_deref(), out),
        "flood" => {
            if o.lines.saturating_mul(clients as u64) > MAX_LINES {
                bail!("--clients x --lines must be at most {MAX_LINES}");
            }
            flood(addr, clients, o.lines as usize, o.pause, deadline)
        }
        "rate" => {
            let rate = o.rate.context("--rate is required")?;
            if rate * o.seconds > MAX_LINES as f64 {
                bail!("--rate x --seconds must be at most {MAX_LINES}");
            }
            let plan = RatePlan { clients, rate, seconds: o.seconds, drain: o.drain, max_lag_ms: o.max_lag_ms };
            rate_mode(addr, &plan, o.pause, deadline)
        }
        other => bail!("unknown loadgen mode `{other}` (idle, flood or rate)"),
    }
}

/// Ends the process after `max`, leaving a report that says so.
fn watchdog(max: Duration, out: PathBuf, mode: String) {
    thread::spawn(move || {
        thread::sleep(max);
        let msg = format!("loadgen: time limit of {} s reached", max.as_secs());
        eprintln!("{msg}");
        let _ = write_report(&out, &json!({"mode": mode, "ok": false, "error": msg}));
        std::process::exit(3);
    });
}

/// Writes `report` to `out` as one line of JSON, atomically.
fn write_report(out: &Path, report: &Value) -> Result<()> {
    write_atomically(out, &(report.to_string() + "\n"))
}

/// Opens `count` connections one after the other, `pause` apart.
fn connect_all(addr: SocketAddr, count: usize, pause: Duration) -> Result<Vec<TcpStream>> {
    (0..count)
        .map(|i| {
            if i > 0 && !pause.is_zero() {
                thread::sleep(pause);
            }
            let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
                .with_context(|| format!("connecting client {i} to {addr}"))?;
            stream.set_nodelay(true)?;
            Ok(stream)
        })
        .collect()
}

/// `idle` mode: opens the connections, reports, holds them until told to stop or `hold` passed.
fn idle(
    addr: SocketAddr,
    clients: usize,
    pause: Duration,
    hold: Duration,
    stop: Option<&Path>,
    out: &Path,
) -> Result<Value> {
    let start = Instant::now();
    let streams = connect_all(addr, clients, pause)?;
    let connect_sec = start.elapsed().as_secs_f64();
    write_report(out, &json!({"mode": "idle", "ok": true, "connected": streams.len(), "connect_sec": connect_sec}))?;
    while start.elapsed() < hold && !stop.is_some_and(Path::exists) {
        thread::sleep(Duration::from_millis(20));
    }
    drop(streams);
    Ok(json!({"mode": "idle", "ok": true, "connected": clients, "connect_sec": connect_sec, "done": true}))
}

/// Counts the reply lines of one client as they arrive.
#[derive(Default)]
struct Replies {
    ok: u64,
    err: u64,
    /// The first `ERR` line, for diagnostics.
    first_err: Option<String>,
    /// Bytes of the line being received.
    partial: Vec<u8>,
}

impl Replies {
    fn total(&self) -> u64 {
        self.ok + self.err
    }

    /// Takes a chunk of the stream; calls `on_line` once per complete reply line.
    fn feed(&mut self, chunk: &[u8], mut on_line: impl FnMut()) {
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let line = &rest[..nl];
            // Only the first bytes matter, and only once per line.
            let head: &[u8] = if self.partial.is_empty() {
                line
            } else {
                self.partial.extend_from_slice(line);
                &self.partial
            };
            if head.starts_with(b"OK") {
                self.ok += 1;
            } else {
                self.err += 1;
                if self.first_err.is_none() {
                    self.first_err = Some(String::from_utf8_lossy(head).into_owned());
                }
            }
            self.partial.clear();
            on_line();
            rest = &rest[nl + 1..];
        }
        if self.partial.len() < 256 {
            self.partial.extend_from_slice(&rest[..rest.len().min(256)]);
        }
    }
}

/// Reads replies until `want` lines came, the peer closed, or `deadline`. Returns whether
/// reading stopped because of the deadline.
fn read_replies(
    stream: &mut TcpStream,
    replies: &mut Replies,
    want: u64,
    deadline: Instant,
    mut on_line: impl FnMut(Instant),
) -> io::Result<bool> {
    stream.set_read_timeout(Some(READ_POLL))?;
    let mut buf = vec![0u8; 64 * 1024];
    while replies.total() < want {
        if Instant::now() >= deadline {
            return Ok(true);
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let now = Instant::now();
                replies.feed(&buf[..n], || on_line(now));
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// The `n`-th line of client `client`.
fn line(client: usize, n: u64, out: &mut Vec<u8>) {
    // Distinct names, so that spawning never needs a numeric suffix.
    let _ = writeln!(out, "c{client}_{n}");
}

/// `flood` mode: every client sends its lines in big writes while reading every reply.
fn flood(addr: SocketAddr, clients: usize, lines: usize, pause: Duration, deadline: Instant) -> Result<Value> {
    let streams = connect_all(addr, clients, pause)?;
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut workers = Vec::with_capacity(clients);
    for (c, mut stream) in streams.into_iter().enumerate() {
        let mut writer = stream.try_clone()?;
        let barrier = barrier.clone();
        workers.push(thread::spawn(move || -> Result<(Replies, Option<Instant>, bool)> {
            barrier.wait();
            writer.set_write_timeout(Some(deadline.saturating_duration_since(Instant::now()).max(READ_POLL)))?;
            let sender = thread::spawn(move || -> io::Result<()> {
                // Big writes: as fast as the server reads.
                let mut chunk = Vec::with_capacity(32 * 1024);
                for n in 0..lines as u64 {
                    line(c, n, &mut chunk);
                    if chunk.len() >= 16 * 1024 {
                        writer.write_all(&chunk)?;
                        chunk.clear();
                    }
                }
                writer.write_all(&chunk)
            });
            let mut replies = Replies::default();
            let mut last = None;
            let late = read_replies(&mut stream, &mut replies, lines as u64, deadline, |at| last = Some(at))?;
            let sent = sender.join().map_err(|_| anyhow::anyhow!("a sender thread panicked"))?;
            sent.with_context(|| format!("client {c} sending"))?;
            Ok((replies, last, late))
        }));
    }
    barrier.wait();
    let start = Instant::now();

    let (mut ok, mut err, mut late, mut first_err, mut last_reply) = (0, 0, false, None, start);
    for worker in workers {
        let (replies, last, timed_out) = worker.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        ok += replies.ok;
        err += replies.err;
        late |= timed_out;
        first_err = first_err.or(replies.first_err);
        last_reply = last_reply.max(last.unwrap_or(start));
    }
    Ok(json!({
        "mode": "flood",
        "ok": !late && ok + err == (clients * lines) as u64,
        "clients": clients,
        "sent": clients * lines,
        "acked_ok": ok,
        "acked_err": err,
        "first_err": first_err,
        "timed_out": late,
        "elapsed_sec": (last_reply - start).as_secs_f64(),
    }))
}

/// What a rate run does.
struct RatePlan {
    clients: usize,
    /// Lines per second, all clients together.
    rate: f64,
    seconds: f64,
    /// How long to wait for replies after the last scheduled send.
    drain: Duration,
    /// The largest median lag of the last 20 % of the schedule that still counts as keeping up.
    max_lag_ms: f64,
}

/// `rate` mode: every client sends on its schedule and measures each reply's lag.
fn rate_mode(addr: SocketAddr, plan: &RatePlan, pause: Duration, deadline: Instant) -> Result<Value> {
    if plan.clients == 0 || plan.rate <= 0.0 || plan.seconds <= 0.0 {
        bail!("rate mode needs --clients, --rate and --seconds above 0");
    }
    let per_client = plan.rate / plan.clients as f64;
    let interval = 1.0 / per_client;
    let count = (per_client * plan.seconds).floor().max(1.0) as u64;
    let streams = connect_all(addr, plan.clients, pause)?;
    let barrier = Arc::new(Barrier::new(plan.clients + 1));
    let run_for = Duration::from_secs_f64(plan.seconds) + plan.drain;

    let mut workers = Vec::with_capacity(plan.clients);
    for (c, mut stream) in streams.into_iter().enumerate() {
        let mut writer = stream.try_clone()?;
        let barrier = barrier.clone();
        // Clients are staggered over one interval, so the total rate is smooth.
        let offset = interval * c as f64 / plan.clients as f64;
        let scheduled = move |n: u64| offset + n as f64 * interval;
        workers.push(thread::spawn(move || -> Result<(Replies, Vec<f64>)> {
            barrier.wait();
            let start = Instant::now();
            let stop = (start + run_for).min(deadline);
            writer.set_write_timeout(Some(stop.saturating_duration_since(start).max(READ_POLL)))?;
            let sender = thread::spawn(move || -> io::Result<()> {
                let mut chunk = Vec::with_capacity(16 * 1024);
                let mut sent = 0;
                while sent < count {
                    // Every line whose time has come, in one write.
                    let now = start.elapsed().as_secs_f64();
                    let due = (((now - offset) / interval).floor() as i64 + 1).clamp(0, count as i64) as u64;
                    chunk.clear();
                    for n in sent..due {
                        line(c, n, &mut chunk);
                    }
                    writer.write_all(&chunk)?;
                    sent = due;
                    if sent < count {
                        let next = Duration::from_secs_f64((scheduled(sent) - now).max(0.0));
                        thread::sleep(next.max(RATE_TICK));
                    }
                }
                Ok(())
            });
            let mut replies = Replies::default();
            let mut lags = Vec::with_capacity(count as usize);
            read_replies(&mut stream, &mut replies, count, stop, |at| {
                // Replies come in line order: the n-th reply answers the n-th line.
                let n = lags.len() as u64;
                lags.push((at - start).as_secs_f64() - scheduled(n));
            })?;
            // A sender stuck on a server that stopped reading ends at its write timeout.
            let _ = sender.join();
            Ok((replies, lags))
        }));
    }
    barrier.wait();

    let (mut ok, mut err, mut first_err) = (0, 0, None);
    let mut tail = Vec::new();
    let mut all = Vec::new();
    let tail_from = (count as f64 * 0.8).floor() as usize;
    for worker in workers {
        let (replies, lags) = worker.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        ok += replies.ok;
        err += replies.err;
        first_err = first_err.or(replies.first_err);
        tail.extend(lags.iter().skip(tail_from).copied());
        // Lines never answered count as infinitely late.
        tail.extend(std::iter::repeat_n(f64::INFINITY, (count as usize).saturating_sub(lags.len().max(tail_from))));
        all.extend(lags);
    }
    let planned = count * plan.clients as u64;
    let ms = |x: f64| if x.is_finite() { json!(x * 1e3) } else { Value::Null };
    let tail_lag = quantile(&mut tail, 0.5);
    let kept_up = ok + err == planned && err == 0 && tail_lag * 1e3 <= plan.max_lag_ms;
    Ok(json!({
        "mode": "rate",
        "ok": true,
        "kept_up": kept_up,
        "rate": plan.rate,
        "clients": plan.clients,
        "seconds": plan.seconds,
        "planned": planned,
        "acked_ok": ok,
        "acked_err": err,
        "first_err": first_err,
        "lag_p50_ms": ms(quantile(&mut all, 0.5)),
        "lag_p99_ms": ms(quantile(&mut all, 0.99)),
        "lag_max_ms": ms(quantile(&mut all, 1.0)),
        "tail_lag_p50_ms": ms(tail_lag),
    }))
}

/// The `q` quantile (nearest rank) of `values`, sorting them; infinity when empty.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::INFINITY;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn replies_count_lines_across_chunks() {
        let mut r = Replies::default();
        let mut lines = 0;
        r.feed(b"OK a\nO", || lines += 1);
        r.feed(b"K b\nERR bad", || lines += 1);
        r.feed(b" thing\n", || lines += 1);
        assert_eq!((r.ok, r.err, lines), (2, 1, 3));
        assert_eq!(r.first_err.as_deref(), Some("ERR bad thing"));
    }

    fn os(args: &str) -> Vec<OsString> {
        args.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn options_belong_to_their_mode() {
        let args = os("--port 9 --out r.json --clients=3 --lines 5 --max-sec 9000");
        assert_eq!(out_file(&args), Some(PathBuf::from("r.json")));
        let o = Options::parse("flood", args).unwrap();
        assert_eq!((o.port, o.clients, o.lines, o.max), (Some(9), 3, 5, MAX_RUN));
        assert!(Options::parse("idle", os("--port 9 --lines 5")).is_err(), "--lines is flood's");
        assert!(Options::parse("rate", os("--rate x")).is_err());
        assert_eq!(out_file(&os("--bogus --out=x.json")), Some(PathBuf::from("x.json")));
        assert_eq!(out_file(&os("--port 9")), None);
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&mut v, 0.5), 3.0);
        assert_eq!(quantile(&mut v, 1.0), 5.0);
        assert!(quantile(&mut [], 0.5).is_infinite());
    }

    /// A tiny line server answering `OK <line>` per line, one thread per client.
    fn echo_server(clients: usize) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            for stream in listener.incoming().take(clients) {
                let stream = stream.unwrap();
                thread::spawn(move || {
                    let mut writer = stream.try_clone().unwrap();
                    for line in io::BufRead::lines(io::BufReader::new(stream)) {
                        let Ok(line) = line else { break };
                        if writeln!(writer, "OK {line}").is_err() {
                            break;
                        }
                    }
                });
            }
        });
        port
    }

    #[test]
    fn flood_gets_every_reply() {
        let port = echo_server(3);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(30);
        let report = flood(addr, 3, 500, Duration::ZERO, deadline).unwrap();
        assert_eq!(report["acked_ok"], 1500, "{report}");
        assert_eq!(report["ok"], true, "{report}");
    }

    #[test]
    fn rate_keeps_up_with_a_fast_server() {
        let port = echo_server(2);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let plan =
            RatePlan { clients: 2, rate: 400.0, seconds: 0.5, drain: Duration::from_secs(2), max_lag_ms: 1000.0 };
        let report = rate_mode(addr, &plan, Duration::ZERO, Instant::now() + Duration::from_secs(30)).unwrap();
        assert_eq!(report["planned"], 200, "{report}");
        assert_eq!(report["acked_ok"], 200, "{report}");
        assert_eq!(report["kept_up"], true, "{report}");
    }
}
