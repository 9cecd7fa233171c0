//! The project's own internet-radio station: a small blocking HTTP server on 127.0.0.1 that loops
//! one MP3 file forever, paced in real time, the way icecast and SHOUTcast serve listeners, plus
//! the awkward cases a radio client meets in the wild. The demo plays it (`cargo xtask demo`),
//! the Godot tests use it (`ASYNC_NET_TEST_STATION_PORT`), the RadioStream benchmarks stream from
//! it, and `cargo xtask radio-station` runs it alone; all of them start `testbed radio-station`
//! ([`command`]).
//!
//! The file is read once and split into MPEG audio frames ([`mp3`]; an ID3v2 tag and a Xing/Info
//! frame are skipped). A listener first gets about [`pacer::BURST`] of audio at once (icecast's
//! burst-on-connect), then one frame whenever its time has come ([`pacer`]). Titles change every
//! [`icy::TITLE_PERIOD`] of audio, cycling through [`icy::TITLES`], and are sent as ICY metadata
//! (every [`METAINT`] bytes, [`icy`]) to clients that ask for it with `Icy-MetaData: 1`. Routes:
//! see [`routes::ROUTES`]; the broken streams' damage is [`faults`], the chunked transfer coding
//! [`body`].
//!
//! Every connection has its own thread ([`connection`]); dropping the [`Station`] stops and joins
//! them all. Nothing is logged unless [`DEBUG_ENV`] is set; clients that go away end their thread
//! quietly.

pub mod body;
pub mod command;
pub mod connection;
pub mod faults;
pub mod icy;
pub mod mp3;
pub mod pacer;
pub mod routes;

use std::fmt::Display;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context, Result};

use mp3::Mp3;

/// Bytes of audio between two ICY metadata blocks.
pub const METAINT: usize = 16_000;

/// The station's name (`icy-name`).
pub const NAME: &str = "async-net demo station";

/// Setting this environment variable (to anything) logs each request and failure to stderr. The
/// station's own switch, for someone running it by hand: not part of the contract between xtask
/// and the Godot tests (rust/xtask/src/env_contract.rs).
pub const DEBUG_ENV: &str = "ASYNC_NET_STATION_DEBUG";

/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 256;

/// Longest a connection thread blocks in a read, write or sleep before checking for a stop.
const POLL: Duration = Duration::from_millis(100);

/// A running station; dropping it stops the server and joins its threads.
pub struct Station {
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Station {
    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `path` (starting with `/`) on this station.
    pub fn url_of(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Station {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop, which then joins every connection thread and returns.
        let woke =
            TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)), Duration::from_secs(2));
        if let (Ok(_), Some(accept)) = (woke, self.accept.take()) {
            let _ = accept.join();
        }
    }
}

/// Starts a station for `mp3` on 127.0.0.1:`port` (0: a free port).
pub fn start_on(mp3: &Path, port: u16) -> Result<Station> {
    let data = fs::read(mp3).with_context(|| format!("reading {}", mp3.display()))?;
    let audio = Mp3::parse(data).with_context(|| format!("reading the MPEG audio frames of {}", mp3.display()))?;
    serve(audio, port)
}

/// Serves `audio` on 127.0.0.1:`port` (0: a free port).
pub fn serve(audio: Mp3, port: u16) -> Result<Station> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .with_context(|| format!("binding 127.0.0.1:{port} for the radio station"))?;
    let port = listener.local_addr()?.port();
    let shared = Arc::new(Shared { audio, port, stop: AtomicBool::new(false) });
    let accept_shared = Arc::clone(&shared);
    let accept = thread::Builder::new()
        .name("radio-accept".into())
        .spawn(move || accept_loop(&listener, &accept_shared))
        .context("starting the radio station's accept thread")?;
    Ok(Station { port, shared, accept: Some(accept) })
}

/// What every connection thread shares.
pub struct Shared {
    /// The file being played, as frames.
    pub audio: Mp3,
    /// The port on 127.0.0.1 (for the playlists' absolute URLs).
    pub port: u16,
    /// Set when the station stops: every thread ends at its next look.
    pub stop: AtomicBool,
}

impl Shared {
    /// Whether the station is stopping.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Accepts connections until the station stops, then joins every connection thread.
fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    for stream in listener.incoming() {
        if shared.stopped() {
            break;
        }
        let Ok(stream) = stream else {
            // E.g. out of file descriptors: don't spin.
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        connections.retain(|c| !c.is_finished());
        if connections.len() >= MAX_CONNECTIONS {
            debug("too many connections; closing a new one");
            continue;
        }
        let shared = Arc::clone(shared);
        match thread::Builder::new().name("radio-client".into()).spawn(move || connection::serve(stream, &shared)) {
            Ok(handle) => connections.push(handle),
            Err(err) => debug(format!("cannot start a connection thread: {err}")),
        }
    }
    for connection in connections {
        let _ = connection.join();
    }
}

/// Logs `message` to stderr when [`DEBUG_ENV`] is set.
pub fn debug(message: impl Display) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os(DEBUG_ENV).is_some()) {
        eprintln!("testbed radio-station: {message}");
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Instant;

    use super::body::tests::unchunk;
    use super::icy::TITLES;
    use super::icy::tests::read_icy;
    use super::mp3::tests::{HEADER, frames, synthetic};
    use super::*;

    /// Sends `GET path` (with `extra` header lines) and returns the response head and the stream,
    /// positioned at the body.
    fn get(station: &Station, path: &str, extra: &str) -> (String, TcpStream) {
        let mut stream = TcpStream::connect(("127.0.0.1", station.port())).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n").unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).unwrap(), 1, "the head ended early: {head:?}");
            head.push(byte[0]);
        }
        (String::from_utf8(head).unwrap(), stream)
    }

    fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut body = vec![0u8; n];
        stream.read_exact(&mut body).unwrap();
        body
    }

    #[test]
    fn serves_the_stream_with_icy_metadata() {
        let station = serve(synthetic(200), 0).unwrap();
        let (head, mut stream) = get(&station, "/stream.mp3", "Icy-MetaData: 1\r\n");
        assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
        for header in ["Content-Type: audio/mpeg", "icy-name: async-net demo station", "icy-genre: Demo", "icy-br: 128"]
        {
            assert!(head.contains(&format!("{header}\r\n")), "{header} in {head}");
        }
        assert!(head.contains("\r\nicy-description: "), "{head}");
        assert!(head.contains("icy-metaint: 16000\r\n"), "{head}");
        // Two intervals and their blocks; the first block already has the title.
        let body = read_n(&mut stream, 2 * (METAINT + 1));
        let mut body = body;
        let len = usize::from(body[METAINT]);
        body.extend(read_n(&mut stream, len * 16));
        let (audio, titles) = read_icy(&body, METAINT);
        assert_eq!(titles.first().map(String::as_str), Some(TITLES[0]));
        assert_eq!(&audio[..417 * 3], &frames(3)[..], "the stream starts with the first frames");
        drop(stream);

        let (head, _stream) = get(&station, "/", "");
        assert!(head.starts_with("HTTP/1.0 200 OK\r\n") && !head.contains("icy-metaint"), "{head}");
    }

    #[test]
    fn bursts_then_paces() {
        let station = serve(synthetic(500), 0).unwrap();
        let (_, mut stream) = get(&station, "/stream.mp3", "");
        let start = Instant::now();
        // The burst (1 s = 39 frames) comes at once, 2 s of audio only after about a second.
        read_n(&mut stream, 39 * 417);
        assert!(start.elapsed() < Duration::from_millis(500), "{:?}", start.elapsed());
        read_n(&mut stream, 77 * 417);
        assert!(start.elapsed() > Duration::from_millis(800), "{:?}", start.elapsed());
    }

    #[test]
    fn serves_shoutcast_chunked_and_errors() {
        let station = serve(synthetic(200), 0).unwrap();
        let (head, _s) = get(&station, "/shoutcast", "Icy-MetaData: 1\r\n");
        assert!(head.starts_with("ICY 200 OK\r\nicy-notice1: <BR>This stream requires Winamp<BR>\r\n"), "{head}");
        assert!(head.contains("icy-metaint: 16000\r\n") && head.contains("content-type: audio/mpeg\r\n"), "{head}");

        let (head, mut stream) = get(&station, "/chunked.mp3", "");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
        let (audio, _) = unchunk(&read_n(&mut stream, 10_000));
        assert_eq!(&audio[..417 * 2], &frames(2)[..]);

        for path in ["/missing", "/nothing/here"] {
            let (head, _) = get(&station, path, "");
            assert!(head.starts_with("HTTP/1.0 404 Not Found\r\n"), "{head}");
        }
        let (head, _) = get(&station, "/redirect", "");
        assert!(head.starts_with("HTTP/1.0 302 Found\r\n") && head.contains("Location: /stream.mp3\r\n"), "{head}");
        let (head, _) = get(&station, "/loop", "");
        assert!(head.contains("Location: /loop\r\n"), "{head}");

        let (head, mut stream) = get(&station, "/station.pls", "");
        assert!(head.contains("Content-Type: audio/x-scpls\r\n"), "{head}");
        let mut pls = String::new();
        stream.read_to_string(&mut pls).unwrap();
        assert!(pls.contains(&format!("File1={}\n", station.url_of("/stream.mp3"))), "{pls}");
        let (head, mut stream) = get(&station, "/relative.m3u", "");
        assert!(head.contains("Content-Type: audio/x-mpegurl\r\n"), "{head}");
        let mut m3u = String::new();
        stream.read_to_string(&mut m3u).unwrap();
        assert_eq!(m3u.lines().last(), Some("stream.mp3"));
    }

    #[test]
    fn truncates_and_garbles() {
        let station = serve(synthetic(500), 0).unwrap();
        let (_, mut stream) = get(&station, "/truncated.mp3", "");
        let mut body = Vec::new();
        stream.read_to_end(&mut body).unwrap();
        // Frames until 2 s of audio (77 frames), then half a frame.
        assert_eq!(body.len(), 77 * 417 + 208);

        let (_, mut stream) = get(&station, "/garbage.mp3", "Icy-MetaData: 1\r\n");
        let body = read_n(&mut stream, 80 * 417);
        // 2 s in (frame 77), 3000 random bytes come before the frame.
        assert_eq!(&body[..77 * 417], &frames(77)[..]);
        assert_ne!(&body[77 * 417..77 * 417 + 4], &HEADER[..]);
    }

    #[test]
    fn drop_stops_everything() {
        let station = serve(synthetic(200), 0).unwrap();
        let port = station.port();
        let (_, mut stream) = get(&station, "/stream.mp3", "");
        let start = Instant::now();
        drop(station);
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        // The connection thread is gone: the stream ends after what was sent.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    }
}
