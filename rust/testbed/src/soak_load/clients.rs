//! The clients of `testbed soak-load`: real clients from outside Godot, each on its own thread
//! until a shared stop flag is set. Every wait is bounded; each client returns what it saw.
//!
//! - [`publisher`]: `PUBLISH`es numbered messages to the soak channel; a reply ≥ 1 means Redis
//!   delivered it to our subscriber (the channel name is unique to the run, only the scene
//!   subscribes to it), so that number must reach the scene;
//! - [`tcp_bursts`]: bursts of clients that connect at once, send one unique line each, read the
//!   reply and disconnect; every `OK <name>` must match a node the scene spawned;
//! - [`slowloris`]: clients that send one byte every few seconds for the whole run;
//! - [`garbage`]: random bytes to the spawner's port, replies drained and counted.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rand::Rng;

/// How long one connect, read or write may take before a client gives up on it.
const IO_LIMIT: Duration = Duration::from_secs(10);

/// A flag shared by the harness and its threads.
pub type Flag = Arc<AtomicBool>;

/// Whether `flag` is set.
pub fn is_set(flag: &Flag) -> bool {
    flag.load(Ordering::SeqCst)
}

/// Sleeps `total`, waking early (→ false) when `stop` is set.
pub fn sleep_unless(stop: &Flag, total: Duration) -> bool {
    let end = Instant::now() + total;
    while Instant::now() < end {
        if is_set(stop) {
            return false;
        }
        thread::sleep((end - Instant::now()).min(Duration::from_millis(20)));
    }
    !is_set(stop)
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), IO_LIMIT)?;
    stream.set_read_timeout(Some(IO_LIMIT))?;
    stream.set_write_timeout(Some(IO_LIMIT))?;
    Ok(stream)
}

// --- Redis publisher ------------------------------------------------------------------------------

/// What the publisher did.
#[derive(Debug, Default)]
pub struct Published {
    /// Numbers Redis delivered to a subscriber (PUBLISH replied ≥ 1), in order.
    pub delivered: Vec<u64>,
    /// When each of `delivered` was sent, in milliseconds since the Unix epoch (the harness
    /// tells a message in flight when Redis was killed from a lost one by these).
    pub delivered_sent_ms: Vec<u64>,
    /// PUBLISH replies of 0 (our subscriber was not subscribed at that moment).
    pub no_receiver: u64,
    /// PUBLISH replies above 1: someone else subscribed to the channel (must stay 0).
    pub extra_receivers: u64,
    /// Numbers whose PUBLISH got no reply (the server died with it in flight, or was down):
    /// Redis may or may not have delivered them.
    pub failed: Vec<u64>,
}

/// Now, in milliseconds since the Unix epoch: the clock the harness stamps its kills with.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Publishes `0, 1, 2, ...` to `channel` on 127.0.0.1:`port` every `every` until `stop`,
/// whatever happens to the server: the harness kills it at random moments, with publishes
/// in flight.
pub fn publisher(port: u16, channel: String, every: Duration, stop: Flag) -> Published {
    let mut out = Published::default();
    let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
    let mut seq = 0u64;
    while !is_set(&stop) {
        if conn.is_none() {
            conn = connect(port).and_then(|s| Ok((s.try_clone()?, BufReader::new(s)))).ok();
            if conn.is_none() {
                thread::sleep(Duration::from_millis(20));
                continue;
            }
        }
        let (writer, reader) = conn.as_mut().expect("connected above");
        let payload = seq.to_string();
        let command =
            format!("*3\r\n$7\r\nPUBLISH\r\n${}\r\n{channel}\r\n${}\r\n{payload}\r\n", channel.len(), payload.len());
        let mut reply = String::new();
        let sent_ms = unix_ms();
        let sent = writer.write_all(command.as_bytes()).and_then(|()| reader.read_line(&mut reply));
        match (sent, reply.trim().strip_prefix(':').and_then(|n| n.parse::<u64>().ok())) {
            (Ok(_), Some(0)) => out.no_receiver += 1,
            (Ok(_), Some(n)) => {
                out.delivered.push(seq);
                out.delivered_sent_ms.push(sent_ms);
                out.extra_receivers += u64::from(n > 1);
            }
            _ => {
                out.failed.push(seq);
                conn = None;
            }
        }
        seq += 1;
        thread::sleep(every);
    }
    out
}

// --- TCP bursts -------------------------------------------------------------------------------------

/// What the burst clients saw.
#[derive(Debug, Default)]
pub struct Bursts {
    /// Bursts run.
    pub bursts: u64,
    /// Clients that connected.
    pub clients: u64,
    /// Final names from `OK <name>` replies: each must be a node the scene spawned.
    pub acked: Vec<String>,
    /// Other replies (`ERR ...`) by text.
    pub errors: BTreeMap<String, u64>,
    /// Connects, writes or reads that failed or timed out.
    pub io_failures: u64,
}

/// Every `every`, connects `size` clients at once to 127.0.0.1:`port`; each sends the unique
/// line `t<burst>_<client>`, reads its reply, and all disconnect together.
pub fn tcp_bursts(port: u16, size: usize, every: Duration, stop: Flag) -> Bursts {
    let mut out = Bursts::default();
    while sleep_unless(&stop, every) {
        let burst = out.bursts;
        out.bursts += 1;
        let mut clients = Vec::with_capacity(size);
        for i in 0..size {
            match connect(port) {
                Ok(stream) => clients.push((i, stream)),
                Err(_) => out.io_failures += 1,
            }
        }
        out.clients += clients.len() as u64;
        clients.retain_mut(|(i, stream)| {
            let ok = stream.write_all(format!("t{burst}_{i}\n").as_bytes()).is_ok();
            out.io_failures += u64::from(!ok);
            ok
        });
        for (_, stream) in clients {
            let mut reply = String::new();
            match BufReader::new(stream).read_line(&mut reply) {
                Ok(1..) => record_reply(reply.trim_end(), &mut out.acked, &mut out.errors),
                _ => out.io_failures += 1,
            }
        }
    }
    out
}

fn record_reply(reply: &str, acked: &mut Vec<String>, errors: &mut BTreeMap<String, u64>) {
    match reply.strip_prefix("OK ") {
        Some(name) => acked.push(name.to_string()),
        None => *errors.entry(reply.to_string()).or_default() += 1,
    }
}

// --- slowloris --------------------------------------------------------------------------------------

/// What the slow clients saw.
#[derive(Debug, Default)]
pub struct Slow {
    /// Slow clients connected (the first time and after a close).
    pub connects: u64,
    /// Bytes dribbled.
    pub bytes: u64,
    /// Lines answered `OK <name>` (their names, for the spawn check).
    pub acked: Vec<String>,
    /// Other replies.
    pub errors: BTreeMap<String, u64>,
    /// Times the server closed a slow client (or a read timed out).
    pub closed: u64,
}

/// `count` clients that each send one byte of a line every `every` until `stop`.
pub fn slowloris(port: u16, count: usize, every: Duration, stop: Flag) -> Slow {
    let mut out = Slow::default();
    let mut clients: Vec<Option<(TcpStream, Vec<u8>, usize)>> = (0..count).map(|_| None).collect();
    let mut line_no = 0u64;
    while sleep_unless(&stop, every) {
        for (i, slot) in clients.iter_mut().enumerate() {
            if slot.is_none() {
                let Ok(stream) = connect(port) else {
                    out.closed += 1;
                    continue;
                };
                out.connects += 1;
                line_no += 1;
                *slot = Some((stream, format!("slow{i}_{line_no}\n").into_bytes(), 0));
            }
            let (stream, line, sent) = slot.as_mut().expect("filled above");
            let ok = stream.write_all(&line[*sent..=*sent]).is_ok();
            out.bytes += 1;
            *sent += 1;
            if ok && *sent < line.len() {
                continue;
            }
            let mut reply = String::new();
            let read =
                ok && stream.try_clone().is_ok_and(|s| BufReader::new(s).read_line(&mut reply).is_ok_and(|n| n > 0));
            if read {
                record_reply(reply.trim_end(), &mut out.acked, &mut out.errors);
                line_no += 1;
                *line = format!("slow{i}_{line_no}\n").into_bytes();
                *sent = 0;
            } else {
                out.closed += 1;
                *slot = None;
            }
        }
    }
    out
}

// --- garbage ----------------------------------------------------------------------------------------

/// What the garbage sender did.
#[derive(Debug, Default)]
pub struct Garbage {
    /// Random bytes written.
    pub bytes: u64,
    /// Connections used (the server closes one after a fatal `ERR`, e.g. a line too long).
    pub connections: u64,
    /// Replies by kind (`OK` or the `ERR ...` text).
    pub replies: BTreeMap<String, u64>,
}

/// Writes `total` random bytes to 127.0.0.1:`port` at an even pace over `over`, reconnecting
/// whenever the server closes the connection, and counts the replies (read on a second thread).
pub fn garbage(port: u16, total: u64, over: Duration, stop: Flag) -> Garbage {
    const CHUNK: usize = 64 * 1024;
    let mut out = Garbage::default();
    let mut rng = rand::rng();
    let mut buf = vec![0u8; CHUNK];
    let start = Instant::now();
    let mut conn: Option<(TcpStream, thread::JoinHandle<BTreeMap<String, u64>>)> = None;
    while out.bytes < total && !is_set(&stop) {
        // Pace: `total` spread over `over`.
        let due = (total as f64 * (start.elapsed().as_secs_f64() / over.as_secs_f64()).min(1.0)) as u64;
        if out.bytes >= due {
            thread::sleep(Duration::from_millis(10));
            continue;
        }
        if conn.is_none() {
            match connect(port) {
                Ok(stream) => {
                    out.connections += 1;
                    let reader = stream.try_clone().expect("cloning a socket");
                    conn = Some((stream, thread::spawn(move || count_replies(reader))));
                }
                Err(_) => {
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
            }
        }
        rng.fill_bytes(&mut buf);
        let (stream, _) = conn.as_mut().expect("connected above");
        match stream.write(&buf) {
            Ok(n) => out.bytes += n as u64,
            Err(_) => finish_connection(&mut conn, &mut out.replies),
        }
    }
    finish_connection(&mut conn, &mut out.replies);
    out
}

fn finish_connection(
    conn: &mut Option<(TcpStream, thread::JoinHandle<BTreeMap<String, u64>>)>,
    into: &mut BTreeMap<String, u64>,
) {
    if let Some((stream, reader)) = conn.take() {
        let _ = stream.shutdown(std::net::Shutdown::Write);
        drop(stream);
        for (kind, n) in reader.join().unwrap_or_default() {
            *into.entry(kind).or_default() += n;
        }
    }
}

/// Reads replies until the server closes (or stays silent for [`IO_LIMIT`]), by kind.
fn count_replies(stream: TcpStream) -> BTreeMap<String, u64> {
    let mut kinds = BTreeMap::new();
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let kind = if text.starts_with("OK ") { "OK".to_string() } else { text.trim_end().to_string() };
                *kinds.entry(kind).or_default() += 1;
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_sorted_into_acks_and_errors() {
        let (mut acked, mut errors) = (Vec::new(), BTreeMap::new());
        record_reply("OK Ada2", &mut acked, &mut errors);
        record_reply("ERR rate limited", &mut acked, &mut errors);
        assert_eq!(acked, ["Ada2"]);
        assert_eq!(errors.get("ERR rate limited"), Some(&1));
    }
}
