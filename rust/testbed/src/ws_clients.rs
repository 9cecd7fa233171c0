//! `testbed ws-clients`: many WebSocket clients that count what a server broadcasts, the load of
//! the broadcast rows of tests/bench/bench_http_server.gd. Plain std threads (one per client) and
//! blocking sockets, loopback only, bounded in clients and time; it always exits by itself.
//!
//! `ws-clients --url ws://127.0.0.1:P/path --clients N --ready-file F --out FILE [--max-sec S]
//! [--connect-pause-us U]`: connects N clients, one after the other with a pause (a GDScript
//! server accepts once per frame), writes F once all are connected, then each client counts the
//! text messages it receives until one reads `end` (or the server closes, or S seconds pass).
//! Writes `{"ok", "clients", "connected", "messages", "bytes", "min_per_client",
//! "max_per_client", "error"}` to FILE through a temporary file and a rename.

use std::ffi::OsString;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lexopt::prelude::*;
use serde_json::json;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::files::write_atomically;

/// Most clients one run opens.
const MAX_CLIENTS: usize = 2000;

/// Longest a run may last.
const MAX_RUN: Duration = Duration::from_secs(600);

/// Reads wake up at least this often to check their deadline.
const READ_POLL: Duration = Duration::from_millis(200);

/// The text message that ends a client.
const END: &str = "end";

struct Options {
    url: String,
    clients: usize,
    ready_file: PathBuf,
    out: PathBuf,
    max: Duration,
    pause: Duration,
}

/// What one client saw.
#[derive(Default)]
struct Count {
    connected: bool,
    messages: u64,
    bytes: u64,
    error: Option<String>,
}

/// `testbed ws-clients OPTIONS...` (see the module docs).
pub fn main(args: Vec<OsString>) -> Result<ExitCode> {
    let options = parse(args)?;
    let counts = run(&options);
    let connected = counts.iter().filter(|c| c.connected).count();
    let per_client: Vec<u64> = counts.iter().map(|c| c.messages).collect();
    let error = counts.iter().find_map(|c| c.error.clone());
    let report = json!({
        "ok": connected == options.clients && error.is_none(),
        "clients": options.clients,
        "connected": connected,
        "messages": per_client.iter().sum::<u64>(),
        "bytes": counts.iter().map(|c| c.bytes).sum::<u64>(),
        "min_per_client": per_client.iter().min().copied().unwrap_or(0),
        "max_per_client": per_client.iter().max().copied().unwrap_or(0),
        "error": error,
    });
    write_atomically(&options.out, &report.to_string())?;
    Ok(ExitCode::SUCCESS)
}

fn parse(args: Vec<OsString>) -> Result<Options> {
    let (mut url, mut clients, mut ready_file, mut out) = (None, 100, None, None);
    let (mut max, mut pause) = (Duration::from_secs(120), Duration::from_micros(3000));
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("url") => url = Some(parser.value()?.string()?),
            Long("clients") => clients = parser.value()?.parse()?,
            Long("ready-file") => ready_file = Some(PathBuf::from(parser.value()?)),
            Long("out") => out = Some(PathBuf::from(parser.value()?)),
            Long("max-sec") => max = Duration::from_secs(parser.value()?.parse()?).min(MAX_RUN),
            Long("connect-pause-us") => pause = Duration::from_micros(parser.value()?.parse()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let url: String = url.context("--url is required")?;
    if !url.starts_with("ws://127.0.0.1:") {
        bail!("--url must be a ws:// URL on 127.0.0.1 (loopback only), not {url}");
    }
    if clients == 0 || clients > MAX_CLIENTS {
        bail!("--clients must be 1 to {MAX_CLIENTS}");
    }
    Ok(Options {
        url,
        clients,
        ready_file: ready_file.context("--ready-file is required")?,
        out: out.context("--out is required")?,
        max,
        pause,
    })
}

/// Runs every client to its end; the ready file is written once all connected (or failed to).
fn run(options: &Options) -> Vec<Count> {
    let deadline = Instant::now() + options.max;
    let connected = Arc::new(Barrier::new(options.clients + 1));
    let threads: Vec<_> = (0..options.clients)
        .map(|i| {
            let url = options.url.clone();
            let connected = Arc::clone(&connected);
            let wait = options.pause * u32::try_from(i).unwrap_or(u32::MAX);
            thread::spawn(move || client(&url, wait, &connected, deadline))
        })
        .collect();
    connected.wait();
    let _ = write_atomically(&options.ready_file, &options.clients.to_string());
    threads.into_iter().map(|t| t.join().unwrap_or_else(|_| Count::default())).collect()
}

/// One client: connects after `wait`, meets the others at `connected`, then counts.
fn client(url: &str, wait: Duration, connected: &Barrier, deadline: Instant) -> Count {
    thread::sleep(wait);
    let mut count = Count::default();
    let socket = tungstenite::connect(url).map_err(|e| format!("connecting to {url}: {e}"));
    connected.wait();
    let mut socket = match socket {
        Ok((socket, _)) => socket,
        Err(err) => {
            count.error = Some(err);
            return count;
        }
    };
    count.connected = true;
    if let Err(err) = set_read_timeout(&socket) {
        count.error = Some(err.to_string());
        return count;
    }
    while Instant::now() < deadline {
        match socket.read() {
            Ok(Message::Text(text)) if text.as_str() == END => break,
            Ok(Message::Text(text)) => {
                count.messages += 1;
                count.bytes += text.len() as u64;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => break,
            Err(err) => {
                count.error = Some(format!("reading: {err}"));
                break;
            }
        }
    }
    let _ = socket.close(None);
    count
}

fn set_read_timeout(socket: &WebSocket<MaybeTlsStream<TcpStream>>) -> Result<()> {
    match socket.get_ref() {
        MaybeTlsStream::Plain(stream) => Ok(stream.set_read_timeout(Some(READ_POLL))?),
        _ => bail!("only plain ws:// is supported"),
    }
}
