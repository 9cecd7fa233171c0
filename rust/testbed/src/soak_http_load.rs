//! `testbed soak-http-load`: the load that `cargo xtask soak` puts on the soak scene's
//! HttpServer (tests/soak/soak_http.gd) from real HTTP clients outside Godot
//! (rust/xtask/src/commands/soak/http.rs starts it and judges its report):
//!
//! - [`KEEPALIVE_CLIENTS`] hyper HTTP/1.1 connections kept alive, each sending one request after
//!   another: `GET /json?n=K` (a GDScript handler returns a Dictionary), `POST /echo` (random
//!   bytes that must come back unchanged), `GET /deferred?n=K&ms=M` (the handler defers and a
//!   timer answers M ms later);
//! - [`CLOSE_CLIENTS`] clients doing the same with a new connection per request (`Connection:
//!   close`);
//! - [`SLOW_CLIENTS`] slow heads: a request head sent one byte at a time, every other one in
//!   time for the server's `request_timeout_sec` (it must be answered 200), the others too
//!   slowly (the server answers 408, or closes the connection before the head is complete);
//! - one aborting client every [`ABORT_EVERY`]: a head cut short, a body cut short, or a
//!   complete `GET /deferred` whose connection this client closes before the answer comes.
//!
//! The server's promise: every request it accepted gets an answer, or is closed with an error
//! status. A request is *accepted* here once this client has written all of it; if its
//! connection then ends without a status line, or none arrives within [`ANSWER_LIMIT`], it is
//! *lost*. A 2xx answer whose body is not what was asked for is *wrong*. Requests the clients
//! abort themselves are counted apart (`aborted`): the client's doing, not the server's.
//!
//! `testbed soak-http-load --port P --out FILE --stop-file F [--max-sec S] [--parent PID]`
//! waits until something listens on P, runs until F exists, S seconds (default 600) have
//! passed or process PID is gone, lets the requests in flight finish, and writes to FILE
//! (through a temporary file and a rename):
//! `{"keepalive": T, "close": T, "slow_in_time": T, "slow_too_slow": T,
//! "aborted": {"in_head", "in_body", "waiting"}, "samples": [what went wrong, at most 20]}`, each
//! T a [`Tally`]: `{"sent", "ok", "wrong", "statuses": {"503": n, ...} (answers that are not
//! 2xx), "lost", "not_sent", "cut", "connect_failed", "bytes_up", "bytes_down"}`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use lexopt::prelude::*;
use rand::RngExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::files::write_atomically;
use crate::lifetime::Lifetime;

/// Connections kept alive, and clients opening one per request.
const KEEPALIVE_CLIENTS: usize = 4;
const CLOSE_CLIENTS: usize = 2;
/// The pause of each client between two requests: from 0 to this.
const PAUSE: Duration = Duration::from_millis(30);
/// Largest POST body.
const MAX_BODY: usize = 32 * 1024;
/// Longest deferred answer asked for, in ms.
const MAX_DEFER_MS: u64 = 300;

/// Slow-head clients, and the pause between their bytes when in time and when too slow (the
/// scene's request_timeout_sec is 5 s; a head is about 50 bytes).
const SLOW_CLIENTS: usize = 4;
const SLOW_IN_TIME: Duration = Duration::from_millis(40);
const SLOW_TOO_SLOW: Duration = Duration::from_millis(200);

/// How often an aborting client starts.
const ABORT_EVERY: Duration = Duration::from_millis(200);

/// Time a complete request has to be answered before it counts as lost (the server answers
/// 503 itself after request_timeout_sec).
const ANSWER_LIMIT: Duration = Duration::from_secs(20);
/// Time a connect may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(5);
/// Most samples of what went wrong kept for the report.
const MAX_SAMPLES: usize = 20;

/// What one kind of client saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Requests written completely (accepted, in the sense of the module docs).
    pub sent: u64,
    /// 2xx answers with the expected body.
    pub ok: u64,
    /// 2xx answers with another body.
    pub wrong: u64,
    /// Answers that were not 2xx, by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests sent that got no status.
    pub lost: u64,
    /// Requests a kept-alive connection refused before writing them (closed in between).
    pub not_sent: u64,
    /// Slow heads whose connection the server closed, without a status, before the head was complete.
    pub cut: u64,
    /// Connects that failed.
    pub connect_failed: u64,
    /// Request and answer bytes (bodies).
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// What went wrong, a few of each.
    pub samples: Vec<String>,
}

impl Tally {
    fn sample(&mut self, what: String) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(what);
        }
    }

    fn add(&mut self, other: Tally) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.wrong += other.wrong;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.lost += other.lost;
        self.not_sent += other.not_sent;
        self.cut += other.cut;
        self.connect_failed += other.connect_failed;
        self.bytes_up += other.bytes_up;
        self.bytes_down += other.bytes_down;
        for s in other.samples {
            self.sample(s);
        }
    }

    fn json(&self) -> Value {
        let statuses: BTreeMap<String, u64> = self.statuses.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        json!({
            "sent": self.sent, "ok": self.ok, "wrong": self.wrong, "statuses": statuses, "lost": self.lost,
            "not_sent": self.not_sent, "cut": self.cut, "connect_failed": self.connect_failed,
            "bytes_up": self.bytes_up, "bytes_down": self.bytes_down,
        })
    }

    /// Counts an answer to `asked`: its status and body.
    fn answer(&mut self, asked: &Asked, status: u16, body: &[u8]) {
        self.bytes_down += body.len() as u64;
        if !(200..300).contains(&status) {
            *self.statuses.entry(status).or_default() += 1;
        } else if asked.accepts(body) {
            self.ok += 1;
        } else {
            self.wrong += 1;
            self.sample(format!(
                "{}: wrong body ({} bytes): {:.80}",
                asked.path,
                body.len(),
                String::from_utf8_lossy(body)
            ));
        }
    }
}

/// The stop flag, set once when the run ends.
type Flag = Arc<AtomicBool>;

/// `testbed soak-http-load ...` (see the module docs).
pub fn main(args: Vec<OsString>) -> Result<ExitCode> {
    let (mut port, mut out, mut stop_file, mut max, mut parent) = (None, None, None, None, None);
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("port") => port = Some(parser.value()?.parse::<u16>()?),
            Long("out") => out = Some(PathBuf::from(parser.value()?)),
            Long("stop-file") => stop_file = Some(PathBuf::from(parser.value()?)),
            Long("max-sec") => max = Some(Duration::from_secs(parser.value()?.parse()?)),
            Long("parent") => parent = Some(parser.value()?.parse()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port.context("--port is required")?));
    let out = out.context("--out is required")?;
    let lifetime = Lifetime {
        stop_file: Some(stop_file.context("--stop-file is required")?),
        deadline: Some(Instant::now() + max.unwrap_or(Duration::from_secs(600))),
        parent,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(run(address, lifetime));
    write_atomically(&out, &(report.to_string() + "\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs every client until the lifetime ends; their report.
async fn run(address: SocketAddr, lifetime: Lifetime) -> Value {
    let stop: Flag = Arc::default();
    // Started with the scene: its warm-up includes this load, so wait until the server listens.
    while TcpStream::connect(address).await.is_err() && lifetime.ended().is_none() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("testbed soak-http-load: loading http://{address}/");
    let keepalive: Vec<_> =
        (0..KEEPALIVE_CLIENTS).map(|_| tokio::spawn(keepalive_client(address, stop.clone()))).collect();
    let close: Vec<_> = (0..CLOSE_CLIENTS).map(|_| tokio::spawn(close_client(address, stop.clone()))).collect();
    let slow: Vec<_> =
        (0..SLOW_CLIENTS).map(|k| tokio::spawn(slow_client(address, k % 2 == 1, stop.clone()))).collect();
    let aborts = tokio::spawn(abort_clients(address, stop.clone()));
    while lifetime.ended().is_none() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let (mut samples, mut tallies) = (Vec::new(), Vec::new());
    for group in [keepalive, close] {
        let mut tally = Tally::default();
        for handle in group {
            tally.add(handle.await.unwrap_or_default());
        }
        tallies.push(tally);
    }
    let (mut in_time, mut too_slow) = (Tally::default(), Tally::default());
    for (k, handle) in slow.into_iter().enumerate() {
        let tally = handle.await.unwrap_or_default();
        if k % 2 == 1 { too_slow.add(tally) } else { in_time.add(tally) }
    }
    tallies.extend([in_time, too_slow]);
    for tally in &mut tallies {
        samples.append(&mut tally.samples);
    }
    samples.truncate(MAX_SAMPLES);
    let aborted = aborts.await.unwrap_or_default();
    json!({
        "keepalive": tallies[0].json(),
        "close": tallies[1].json(),
        "slow_in_time": tallies[2].json(),
        "slow_too_slow": tallies[3].json(),
        "aborted": {"in_head": aborted[0], "in_body": aborted[1], "waiting": aborted[2]},
        "samples": samples,
    })
}

// --- requests and their expected answers ------------------------------------------------------------

/// A request of the load and what its answer must be.
struct Asked {
    method: &'static str,
    path: String,
    body: Bytes,
    /// The `n` a JSON answer must carry (0 for an echo).
    n: u64,
}

impl Asked {
    /// One of the three requests, at random.
    fn random() -> Asked {
        let mut rng = rand::rng();
        let n = rng.random_range(1..1_000_000_000u64);
        match rng.random_range(0..3) {
            0 => Asked { method: "GET", path: format!("/json?n={n}"), body: Bytes::new(), n },
            1 => {
                let len = rng.random_range(1..=MAX_BODY);
                let body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                Asked { method: "POST", path: "/echo".into(), body: body.into(), n: 0 }
            }
            _ => {
                let ms = rng.random_range(0..=MAX_DEFER_MS);
                Asked { method: "GET", path: format!("/deferred?n={n}&ms={ms}"), body: Bytes::new(), n }
            }
        }
    }

    /// Whether a 2xx `body` is the answer to this request.
    fn accepts(&self, body: &[u8]) -> bool {
        if self.path == "/echo" {
            return body == self.body.as_ref();
        }
        serde_json::from_slice::<Value>(body).is_ok_and(|v| v["n"].as_u64() == Some(self.n))
    }

    fn request(&self, close: bool) -> Request<Full<Bytes>> {
        let mut request = Request::builder().method(self.method).uri(&self.path).header("host", "127.0.0.1");
        if close {
            request = request.header("connection", "close");
        }
        request.body(Full::new(self.body.clone())).expect("a valid request")
    }
}

async fn connect(address: SocketAddr) -> std::io::Result<TcpStream> {
    match tokio::time::timeout(CONNECT_LIMIT, TcpStream::connect(address)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")),
    }
}

/// A hyper HTTP/1.1 connection to `address`.
async fn handshake(address: SocketAddr) -> Option<SendRequest<Full<Bytes>>> {
    let stream = connect(address).await.ok()?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(connection);
    Some(sender)
}

/// Sends `asked` on `sender` and counts the outcome; false when the connection is done for.
async fn exchange(sender: &mut SendRequest<Full<Bytes>>, asked: &Asked, close: bool, tally: &mut Tally) -> bool {
    if sender.ready().await.is_err() {
        tally.not_sent += 1;
        return false;
    }
    let answer = tokio::time::timeout(ANSWER_LIMIT, async {
        let response = match sender.try_send_request(asked.request(close)).await {
            Ok(response) => response,
            Err(error) if error.message().is_some() => return Err(None),
            Err(error) => return Err(Some(error.into_error())),
        };
        let status = response.status();
        let body = response.into_body().collect().await.map_err(Some)?;
        Ok((status, body.to_bytes()))
    })
    .await;
    let failure = match answer {
        Ok(Ok((status, body))) => {
            tally.sent += 1;
            tally.bytes_up += asked.body.len() as u64;
            tally.answer(asked, status.as_u16(), &body);
            return status != StatusCode::REQUEST_TIMEOUT;
        }
        Ok(Err(None)) => {
            tally.not_sent += 1;
            return false;
        }
        Ok(Err(Some(error))) => format!("no answer: {error}"),
        Err(_) => format!("no answer within {ANSWER_LIMIT:?}"),
    };
    tally.sent += 1;
    tally.lost += 1;
    tally.sample(format!("{} {}: {failure}", asked.method, asked.path));
    false
}

async fn pause() {
    let ms = rand::rng().random_range(0..=PAUSE.as_millis() as u64);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// One connection kept alive (a new one when it ends), requests one after another.
async fn keepalive_client(address: SocketAddr, stop: Flag) -> Tally {
    let mut tally = Tally::default();
    let mut sender = None;
    while !stop.load(Ordering::SeqCst) {
        if sender.is_none() {
            sender = handshake(address).await;
            if sender.is_none() {
                tally.connect_failed += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        let asked = Asked::random();
        if !exchange(sender.as_mut().expect("connected above"), &asked, false, &mut tally).await {
            sender = None;
        }
        pause().await;
    }
    tally
}

/// A new connection for each request, closed after the answer.
async fn close_client(address: SocketAddr, stop: Flag) -> Tally {
    let mut tally = Tally::default();
    while !stop.load(Ordering::SeqCst) {
        match handshake(address).await {
            Some(mut sender) => {
                exchange(&mut sender, &Asked::random(), true, &mut tally).await;
            }
            None => {
                tally.connect_failed += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        pause().await;
    }
    tally
}

// --- raw clients: slow heads and aborts -----------------------------------------------------------

/// The status of a raw HTTP/1.1 answer, and its body (what follows the head).
fn parse_answer(answer: &[u8]) -> Option<(u16, &[u8])> {
    let status = std::str::from_utf8(answer.get(9..12)?).ok()?.parse().ok()?;
    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    answer.starts_with(b"HTTP/1.").then_some((status, &answer[head_end..]))
}

/// Sends a `GET /json` head a byte at a time (`too_slow`: slower than the server's request
/// timeout), reading while it waits between bytes; counts the outcome. Repeats until `stop`.
async fn slow_client(address: SocketAddr, too_slow: bool, stop: Flag) -> Tally {
    let mut tally = Tally::default();
    let every = if too_slow { SLOW_TOO_SLOW } else { SLOW_IN_TIME };
    while !stop.load(Ordering::SeqCst) {
        let Ok(mut stream) = connect(address).await else {
            tally.connect_failed += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let n = rand::rng().random_range(1..1_000_000_000u64);
        let asked = Asked { method: "GET", path: format!("/json?n={n}"), body: Bytes::new(), n };
        let head = format!("GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", asked.path);
        let (mut answer, mut buf) = (Vec::new(), [0u8; 4096]);
        let mut written = 0;
        // Write a byte, then read for `every`: an early answer (408) or a close ends the head.
        let mut closed = false;
        while written < head.len() && !closed && answer.is_empty() {
            if stream.write_all(&head.as_bytes()[written..written + 1]).await.is_err() {
                closed = true;
                break;
            }
            written += 1;
            if written < head.len()
                && let Ok(read) = tokio::time::timeout(every, stream.read(&mut buf)).await
            {
                match read {
                    Ok(0) | Err(_) => closed = true,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                }
            }
        }
        let complete = written == head.len();
        if complete {
            tally.sent += 1;
        }
        // The rest of the answer (the request asked to close: until EOF).
        let rest = tokio::time::timeout(ANSWER_LIMIT, async {
            while !closed {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => closed = true,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        match parse_answer(&answer) {
            Some((status, body)) => tally.answer(&asked, status, body),
            None if !complete => tally.cut += 1,
            None => {
                tally.lost += 1;
                let why = if rest.is_err() { "no answer in time" } else { "closed without a status" };
                tally.sample(format!("slow head GET {}: {why}", asked.path));
            }
        }
    }
    tally
}

/// One aborting client every [`ABORT_EVERY`], in turn: a head cut short, a body cut short, a
/// deferred request closed before its answer. Returns how many of each.
async fn abort_clients(address: SocketAddr, stop: Flag) -> [u64; 3] {
    let mut counts = [0; 3];
    let mut kind = 0;
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(ABORT_EVERY).await;
        let Ok(mut stream) = connect(address).await else { continue };
        let request: Vec<u8> = match kind {
            0 => b"GET /json?n=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Cut: he".to_vec(),
            1 => {
                let mut r = b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000\r\n\r\n".to_vec();
                r.resize(r.len() + 3000, b'x');
                r
            }
            _ => format!("GET /deferred?n=1&ms={MAX_DEFER_MS} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").into_bytes(),
        };
        if stream.write_all(&request).await.is_ok() {
            counts[kind] += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(stream);
        kind = (kind + 1) % 3;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked_against_what_was_asked() {
        let json = Asked { method: "GET", path: "/json?n=7".into(), body: Bytes::new(), n: 7 };
        let echo = Asked { method: "POST", path: "/echo".into(), body: Bytes::from_static(b"abc"), n: 0 };
        let mut tally = Tally::default();
        tally.answer(&json, 200, br#"{"n":7,"items":[1]}"#);
        tally.answer(&json, 200, br#"{"n":8}"#);
        tally.answer(&echo, 200, b"abc");
        tally.answer(&echo, 200, b"abd");
        tally.answer(&echo, 503, b"busy");
        assert_eq!((tally.ok, tally.wrong, tally.statuses.get(&503)), (2, 2, Some(&1)));
        assert_eq!(tally.samples.len(), 2);
    }

    #[test]
    fn raw_answers_parse() {
        let answer = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 2\r\n\r\nno";
        assert_eq!(parse_answer(answer), Some((408, &b"no"[..])));
        assert_eq!(parse_answer(b"HTTP/1.1 200 OK\r\n"), None, "head not complete");
        assert_eq!(parse_answer(b"garbage that is long enough\r\n\r\n"), None);
    }
}
