//! The project's own internet-radio station: a small blocking HTTP server on 127.0.0.1 that loops
//! one MP3 file forever, paced in real time, the way icecast and SHOUTcast serve listeners, plus
//! the awkward cases a radio client meets in the wild. The demo plays it (`cargo xtask demo`),
//! the Godot tests use it (`ASYNC_NET_TEST_STATION_PORT`), and `cargo xtask radio-station` runs
//! it alone.
//!
//! The file is read once and split into MPEG audio frames (an ID3v2 tag and a Xing/Info frame are
//! skipped). A listener first gets about [`BURST`] of audio at once (icecast's burst-on-connect),
//! then one frame whenever its time has come. Titles change every [`TITLE_PERIOD`] of audio,
//! cycling through [`TITLES`], and are sent as ICY metadata (every [`METAINT`] bytes) to clients
//! that ask for it with `Icy-MetaData: 1`. Routes: see [`ROUTES`].
//!
//! Every connection has its own thread; dropping the [`Station`] stops and joins them all. Nothing
//! is logged unless [`DEBUG_ENV`] is set; clients that go away end their thread quietly.

use std::fmt::Display;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Bytes of audio between two ICY metadata blocks.
pub const METAINT: usize = 16_000;

/// The station's name (`icy-name`).
pub const NAME: &str = "async-net demo station";

/// The titles the station cycles through; some are hard to parse on purpose.
pub const TITLES: &[&str] =
    &["Gentle Chords", "Rock 'n' Roll; Part 2", "Zoë – Ünïcödé", "It's \"quoted\"", "Arpeggio in C (live)"];

/// How long each title lasts, in audio time.
pub const TITLE_PERIOD: Duration = Duration::from_secs(5);

/// Audio sent at once when a listener connects.
pub const BURST: Duration = Duration::from_secs(1);

/// Setting this environment variable (to anything) logs each request and failure to stderr.
pub const DEBUG_ENV: &str = "ASYNC_NET_STATION_DEBUG";

/// The routes, for `xtask radio-station` and these docs.
pub const ROUTES: &[(&str, &str)] = &[
    ("/stream.mp3", "icecast-style stream (also /); ICY metadata with `Icy-MetaData: 1`"),
    ("/shoutcast", "the same stream as a SHOUTcast v1 server sends it (`ICY 200 OK`)"),
    ("/chunked.mp3", "the same stream over HTTP/1.1 with `Transfer-Encoding: chunked`"),
    ("/station.pls", "PLS playlist pointing to /stream.mp3"),
    ("/station.m3u", "M3U playlist pointing to /stream.mp3"),
    ("/relative.m3u", "M3U playlist with the relative entry `stream.mp3`"),
    ("/redirect", "302 to /stream.mp3"),
    ("/loop", "302 to itself"),
    ("/html", "an HTML page (not audio)"),
    ("/garbage.mp3", "stream with 3000 random bytes every 2 s and half a frame every 3 s"),
    ("/truncated.mp3", "about 2 s of audio at once, cut in the middle of a frame"),
    ("/missing", "404 (as is any unknown path)"),
];

/// Audio sent by `/truncated.mp3` before the cut.
const TRUNCATED_AFTER: Duration = Duration::from_secs(2);

/// `/garbage.mp3`: how often random bytes are inserted, and how many.
const GARBAGE_EVERY: Duration = Duration::from_secs(2);
const GARBAGE_BYTES: usize = 3000;

/// `/garbage.mp3`: how often a frame loses its second half.
const HALF_FRAME_EVERY: Duration = Duration::from_secs(3);

/// Sizes of the chunks of `/chunked.mp3`, used in turn (odd, so they never match frames).
const CHUNK_SIZES: &[usize] = &[1, 7, 333, 1021, 4093, 17, 2999, 5];

/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 256;

/// Longest request head accepted, and how long a client may take to send it.
const MAX_REQUEST_BYTES: usize = 16 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest a connection thread blocks in a read, write or sleep before checking for a stop.
const POLL: Duration = Duration::from_millis(100);

/// Most bytes written in one go (a burst is sent in a few writes).
const MAX_BATCH: usize = 64 * 1024;

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

    /// The URL of the main stream, `http://127.0.0.1:PORT/stream.mp3`.
    pub fn url(&self) -> String {
        self.url_of("/stream.mp3")
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

/// Starts a station for `mp3` on a free port of 127.0.0.1.
pub fn start(mp3: &Path) -> Result<Station> {
    start_on(mp3, 0)
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
struct Shared {
    audio: Mp3,
    port: u16,
    stop: AtomicBool,
}

impl Shared {
    fn stopped(&self) -> bool {
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
        match thread::Builder::new().name("radio-client".into()).spawn(move || serve_connection(stream, &shared)) {
            Ok(handle) => connections.push(handle),
            Err(err) => debug(format!("cannot start a connection thread: {err}")),
        }
    }
    for connection in connections {
        let _ = connection.join();
    }
}

/// Serves one connection; failures (mostly clients that went away) are only logged at debug.
fn serve_connection(stream: TcpStream, shared: &Shared) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let mut conn = Conn { stream, shared };
    match conn.serve() {
        Ok(()) => {}
        Err(err) if conn.shared.stopped() => debug(format!("{peer}: stopped ({err})")),
        Err(err) => debug(format!("{peer}: {err}")),
    }
    let _ = conn.stream.shutdown(Shutdown::Both);
}

/// Logs `message` to stderr when [`DEBUG_ENV`] is set.
fn debug(message: impl Display) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os(DEBUG_ENV).is_some()) {
        eprintln!("xtask radio-station: {message}");
    }
}

/// One client connection.
struct Conn<'a> {
    stream: TcpStream,
    shared: &'a Shared,
}

impl Conn<'_> {
    /// Reads the request and answers it.
    fn serve(&mut self) -> io::Result<()> {
        self.stream.set_nodelay(true)?;
        self.stream.set_read_timeout(Some(POLL))?;
        self.stream.set_write_timeout(Some(POLL))?;
        let Some(request) = self.read_request()? else {
            return Ok(());
        };
        debug(format!("{} {} (icy-metadata: {})", request.method, request.path, request.icy_metadata));
        let head_only = match request.method.as_str() {
            "GET" => false,
            "HEAD" => true,
            _ => return self.send_fixed("405 Method Not Allowed", "text/plain", b"only GET and HEAD\n", false),
        };
        match route(&request.path) {
            Route::Stream(kind) => self.send_stream(kind, request.icy_metadata, head_only),
            Route::Text { content_type, body } => {
                let body = body.replace("{BASE}", &format!("http://127.0.0.1:{}", self.shared.port));
                self.send_fixed("200 OK", content_type, body.as_bytes(), head_only)
            }
            Route::Redirect(location) => self.send_redirect(location),
            Route::NotFound => self.send_fixed("404 Not Found", "text/plain", b"not found\n", head_only),
        }
    }

    /// Reads the request head; `None` when the client sent none in time (or too large a one).
    fn read_request(&mut self) -> io::Result<Option<Request>> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let mut head = Vec::new();
        let mut buf = [0u8; 2048];
        loop {
            if let Some(end) = find(&head, b"\r\n\r\n").or_else(|| find(&head, b"\n\n")) {
                return Ok(Request::parse(&String::from_utf8_lossy(&head[..end])));
            }
            if head.len() > MAX_REQUEST_BYTES || Instant::now() > deadline || self.shared.stopped() {
                return Ok(None);
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => head.extend_from_slice(&buf[..n]),
                Err(err) if is_retry(&err) => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// A complete response with `Content-Length`, then close.
    fn send_fixed(&mut self, status: &str, content_type: &str, body: &[u8], head_only: bool) -> io::Result<()> {
        let head = format!(
            "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        self.write(head.as_bytes())?;
        if !head_only {
            self.write(body)?;
        }
        Ok(())
    }

    fn send_redirect(&mut self, location: &str) -> io::Result<()> {
        let head =
            format!("HTTP/1.0 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        self.write(head.as_bytes())
    }

    /// The audio stream `kind`, forever (or until the client goes away or the station stops).
    fn send_stream(&mut self, kind: StreamKind, icy_requested: bool, head_only: bool) -> io::Result<()> {
        let metaint = (icy_requested && kind.has_metadata()).then_some(METAINT);
        let head = stream_head(kind, metaint, &self.shared.audio, self.shared.port);
        self.write(head.as_bytes())?;
        if head_only {
            return Ok(());
        }
        let mut body = Body::new(metaint, kind == StreamKind::Chunked);
        let mut pacer = Pacer::new(&self.shared.audio, kind);
        let mut faults = Faults::new(kind == StreamKind::Garbage);
        let audio = &self.shared.audio;
        let mut frame_index = 0usize;
        loop {
            let mut batch_full = false;
            while pacer.next_is_due() {
                if body.pending() >= MAX_BATCH {
                    batch_full = true;
                    break;
                }
                let at = pacer.audio_time();
                body.set_title(title_at(at));
                let frame = audio.frame(frame_index);
                frame_index = (frame_index + 1) % audio.frame_count();
                pacer.advance();
                if kind == StreamKind::Truncated && at >= TRUNCATED_AFTER {
                    body.push(&frame[..frame.len() / 2]);
                    return self.write(&body.take());
                }
                faults.push_frame(at, frame, &mut body);
            }
            self.write(&body.take())?;
            if !batch_full {
                pacer.wait(&self.shared.stop)?;
            }
        }
    }

    /// Writes all of `bytes`, giving up when the station stops.
    fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.shared.stopped() {
                return Err(io::Error::other("the station stopped"));
            }
            match self.stream.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(err) if is_retry(&err) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

/// Whether an I/O error only means "try again" (a timeout of [`POLL`], or a signal).
fn is_retry(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted)
}

/// The first position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The parts of a request the station looks at.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    /// The path without query or fragment.
    path: String,
    /// `Icy-MetaData: 1` was sent.
    icy_metadata: bool,
}

impl Request {
    /// Parses a request head (request line and header lines, without the blank line).
    fn parse(head: &str) -> Option<Request> {
        let mut lines = head.lines();
        let mut words = lines.next()?.split_whitespace();
        let method = words.next()?.to_ascii_uppercase();
        let target = words.next()?;
        let path = target.split(['?', '#']).next().unwrap_or("/").to_string();
        let icy_metadata = lines
            .filter_map(|l| l.split_once(':'))
            .any(|(name, value)| name.trim().eq_ignore_ascii_case("icy-metadata") && value.trim() == "1");
        Some(Request { method, path, icy_metadata })
    }
}

/// The kinds of audio stream the station serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StreamKind {
    /// `/stream.mp3`: icecast-style.
    Icecast,
    /// `/shoutcast`: SHOUTcast v1 (`ICY 200 OK`).
    Shoutcast,
    /// `/chunked.mp3`: HTTP/1.1, chunked.
    Chunked,
    /// `/garbage.mp3`: random bytes and half frames.
    Garbage,
    /// `/truncated.mp3`: 2 s, then a cut.
    Truncated,
}

impl StreamKind {
    /// Whether the kind sends ICY metadata to clients that ask for it.
    fn has_metadata(self) -> bool {
        matches!(self, StreamKind::Icecast | StreamKind::Shoutcast | StreamKind::Chunked)
    }
}

/// What a path is answered with.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Stream(StreamKind),
    /// A text body; `{BASE}` stands for `http://127.0.0.1:PORT`.
    Text {
        content_type: &'static str,
        body: &'static str,
    },
    Redirect(&'static str),
    NotFound,
}

const PLS: &str =
    "[playlist]\nNumberOfEntries=1\nFile1={BASE}/stream.mp3\nTitle1=async-net demo station\nLength1=-1\nVersion=2\n";
const M3U: &str =
    "#EXTM3U\n# The local demo station of godot-async-net\n#EXTINF:-1,async-net demo station\n{BASE}/stream.mp3\n";
const RELATIVE_M3U: &str = "#EXTM3U\n#EXTINF:-1,async-net demo station (relative entry)\nstream.mp3\n";
const HTML: &str = "<!DOCTYPE html>\n<html><head><title>async-net demo station</title></head>\n<body><h1>async-net demo station</h1><p>This is a web page, not a stream: listen at <a href=\"/stream.mp3\">/stream.mp3</a>.</p></body></html>\n";

/// The route of `path`.
fn route(path: &str) -> Route {
    match path {
        "/" | "/stream.mp3" => Route::Stream(StreamKind::Icecast),
        "/shoutcast" => Route::Stream(StreamKind::Shoutcast),
        "/chunked.mp3" => Route::Stream(StreamKind::Chunked),
        "/garbage.mp3" => Route::Stream(StreamKind::Garbage),
        "/truncated.mp3" => Route::Stream(StreamKind::Truncated),
        "/station.pls" => Route::Text { content_type: "audio/x-scpls", body: PLS },
        "/station.m3u" => Route::Text { content_type: "audio/x-mpegurl", body: M3U },
        "/relative.m3u" => Route::Text { content_type: "audio/x-mpegurl", body: RELATIVE_M3U },
        "/html" => Route::Text { content_type: "text/html; charset=utf-8", body: HTML },
        "/redirect" => Route::Redirect("/stream.mp3"),
        "/loop" => Route::Redirect("/loop"),
        _ => Route::NotFound,
    }
}

/// The response head of a stream (status line and headers, with the blank line).
fn stream_head(kind: StreamKind, metaint: Option<usize>, audio: &Mp3, port: u16) -> String {
    let mut head = String::new();
    let mut line = |l: String| {
        head.push_str(&l);
        head.push_str("\r\n");
    };
    let (rate, br, channels) = (audio.sample_rate, audio.bitrate_kbps, audio.channels);
    if kind == StreamKind::Shoutcast {
        // As SHOUTcast v1 sends it: no HTTP version, lowercase content-type.
        line("ICY 200 OK".into());
        line("icy-notice1: <BR>This stream requires Winamp<BR>".into());
        line("icy-notice2: SHOUTcast Distributed Network Audio Server/Linux v1.9.8<BR>".into());
        line(format!("icy-name: {NAME}"));
        line("icy-genre: Demo".into());
        line(format!("icy-url: http://127.0.0.1:{port}/"));
        line("content-type: audio/mpeg".into());
        line("icy-pub: 0".into());
    } else {
        line(if kind == StreamKind::Chunked { "HTTP/1.1 200 OK" } else { "HTTP/1.0 200 OK" }.into());
        line("Server: async-net demo station (xtask)".into());
        line("Content-Type: audio/mpeg".into());
        line("Cache-Control: no-cache, no-store".into());
        if kind == StreamKind::Chunked {
            line("Transfer-Encoding: chunked".into());
            line("Connection: close".into());
        }
        line(format!("icy-name: {NAME}"));
        line("icy-genre: Demo".into());
        line("icy-description: The local test and demo station of godot-async-net".into());
        line("icy-pub: 0".into());
        line(format!("ice-audio-info: ice-samplerate={rate};ice-bitrate={br};ice-channels={channels}"));
    }
    line(format!("icy-br: {br}"));
    if let Some(metaint) = metaint {
        line(format!("icy-metaint: {metaint}"));
    }
    line(String::new());
    head
}

/// The title playing at `audio_time` into a connection.
fn title_at(audio_time: Duration) -> &'static str {
    let period = usize::try_from(audio_time.as_millis() / TITLE_PERIOD.as_millis()).unwrap_or(0);
    TITLES[period % TITLES.len()]
}

/// When each frame of a connection is due: the first [`BURST`] at once, then in real time.
struct Pacer {
    start: Instant,
    frame_seconds: f64,
    /// Frames sent so far.
    sent: u64,
    /// Frames sent at once.
    burst: u64,
}

impl Pacer {
    fn new(audio: &Mp3, kind: StreamKind) -> Self {
        let frame_seconds = audio.frame_seconds();
        // `/truncated.mp3` sends everything at once.
        let burst =
            if kind == StreamKind::Truncated { u64::MAX } else { (BURST.as_secs_f64() / frame_seconds).ceil() as u64 };
        Pacer { start: Instant::now(), frame_seconds, sent: 0, burst }
    }

    /// Audio time at the start of the next frame.
    fn audio_time(&self) -> Duration {
        Duration::from_secs_f64(self.sent as f64 * self.frame_seconds)
    }

    /// When the next frame is due (after the burst: one frame duration after the previous one).
    fn due(&self) -> Instant {
        let paced = (self.sent + 1).saturating_sub(self.burst);
        self.start + Duration::from_secs_f64(paced as f64 * self.frame_seconds)
    }

    fn next_is_due(&self) -> bool {
        self.sent < self.burst || self.due() <= Instant::now()
    }

    fn advance(&mut self) {
        self.sent += 1;
    }

    /// Sleeps until the next frame is due, in slices of at most [`POLL`]; fails on a stop.
    fn wait(&self, stop: &AtomicBool) -> io::Result<()> {
        let due = self.due();
        loop {
            if stop.load(Ordering::SeqCst) {
                return Err(io::Error::other("the station stopped"));
            }
            let Some(left) = due.checked_duration_since(Instant::now()) else {
                return Ok(());
            };
            thread::sleep(left.min(POLL));
        }
    }
}

/// The faults of `/garbage.mp3` (random bytes, half frames); a pass-through for other streams.
struct Faults {
    on: bool,
    next_garbage: Duration,
    next_half: Duration,
    random: XorShift,
}

impl Faults {
    fn new(on: bool) -> Self {
        Faults { on, next_garbage: GARBAGE_EVERY, next_half: HALF_FRAME_EVERY, random: XorShift(0x2545_f491_4f6c_dd1d) }
    }

    /// Adds the frame that starts at `at` to `body`, damaged when its time has come.
    fn push_frame(&mut self, at: Duration, frame: &[u8], body: &mut Body) {
        if !self.on {
            body.push(frame);
            return;
        }
        if at >= self.next_garbage {
            self.next_garbage += GARBAGE_EVERY;
            let garbage: Vec<u8> = (0..GARBAGE_BYTES).map(|_| self.random.next_byte()).collect();
            body.push(&garbage);
        }
        if at >= self.next_half {
            self.next_half += HALF_FRAME_EVERY;
            body.push(&frame[..frame.len() / 2]);
        } else {
            body.push(frame);
        }
    }
}

/// A small deterministic pseudo-random generator (xorshift64).
struct XorShift(u64);

impl XorShift {
    fn next_byte(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 32) as u8
    }
}

/// The bytes of a response body waiting to be written: audio with ICY metadata blocks
/// interleaved (when asked for), then chunked transfer coding (on `/chunked.mp3`).
struct Body {
    icy: Option<IcyWriter>,
    chunker: Option<Chunker>,
    pending: Vec<u8>,
}

impl Body {
    fn new(metaint: Option<usize>, chunked: bool) -> Self {
        Body { icy: metaint.map(IcyWriter::new), chunker: chunked.then(Chunker::default), pending: Vec::new() }
    }

    fn set_title(&mut self, title: &str) {
        if let Some(icy) = &mut self.icy {
            icy.set_title(title);
        }
    }

    /// Adds stream bytes (they count towards the metadata interval).
    fn push(&mut self, bytes: &[u8]) {
        match &mut self.icy {
            Some(icy) => icy.write(bytes, &mut self.pending),
            None => self.pending.extend_from_slice(bytes),
        }
    }

    /// Bytes waiting (before chunk framing).
    fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Takes what is waiting, chunk-framed when chunked.
    fn take(&mut self) -> Vec<u8> {
        let bytes = std::mem::take(&mut self.pending);
        match &mut self.chunker {
            Some(chunker) => chunker.frame(&bytes),
            None => bytes,
        }
    }
}

/// Chunked transfer coding with chunk sizes from [`CHUNK_SIZES`] in turn.
#[derive(Default)]
struct Chunker {
    next: usize,
}

impl Chunker {
    /// `bytes` as a series of chunks (nothing for no bytes: an empty chunk would end the body).
    fn frame(&mut self, mut bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 64 + 16);
        while !bytes.is_empty() {
            let size = CHUNK_SIZES[self.next % CHUNK_SIZES.len()].min(bytes.len());
            self.next += 1;
            out.extend_from_slice(format!("{size:x}\r\n").as_bytes());
            out.extend_from_slice(&bytes[..size]);
            out.extend_from_slice(b"\r\n");
            bytes = &bytes[size..];
        }
        out
    }
}

/// Interleaves ICY metadata blocks into a stream: after every `metaint` bytes of audio, one
/// length byte (the block's size / 16) and the block, `StreamTitle='...';` padded with NULs. The
/// title is sent in the first block and whenever it changes; other blocks are empty (length 0).
pub struct IcyWriter {
    metaint: usize,
    /// Audio bytes until the next block.
    left: usize,
    title: String,
    sent: Option<String>,
}

impl IcyWriter {
    /// A writer with a block every `metaint` bytes of audio.
    pub fn new(metaint: usize) -> Self {
        IcyWriter { metaint, left: metaint, title: String::new(), sent: None }
    }

    /// The title for the blocks to come.
    pub fn set_title(&mut self, title: &str) {
        if self.title != title {
            title.clone_into(&mut self.title);
        }
    }

    /// Appends `audio` to `out`, with metadata blocks where they are due.
    pub fn write(&mut self, mut audio: &[u8], out: &mut Vec<u8>) {
        while !audio.is_empty() {
            let n = self.left.min(audio.len());
            out.extend_from_slice(&audio[..n]);
            audio = &audio[n..];
            self.left -= n;
            if self.left == 0 {
                self.left = self.metaint;
                if self.sent.as_deref() == Some(self.title.as_str()) {
                    out.push(0);
                } else {
                    out.extend_from_slice(&metadata_block(&self.title));
                    self.sent = Some(self.title.clone());
                }
            }
        }
    }
}

/// An ICY metadata block with its length byte: `StreamTitle='TITLE';` padded with NULs to a
/// multiple of 16 (titles too long for 255 × 16 bytes are cut at a character boundary).
pub fn metadata_block(title: &str) -> Vec<u8> {
    const MAX: usize = 255 * 16;
    let mut cut = title.len().min(MAX - "StreamTitle='';".len());
    while !title.is_char_boundary(cut) {
        cut -= 1;
    }
    let text = format!("StreamTitle='{}';", &title[..cut]);
    let blocks = text.len().div_ceil(16);
    let mut out = Vec::with_capacity(1 + blocks * 16);
    out.push(u8::try_from(blocks).unwrap_or(u8::MAX));
    out.extend_from_slice(text.as_bytes());
    out.resize(1 + blocks * 16, 0);
    out
}

/// An MP3 file split into MPEG audio frames.
pub struct Mp3 {
    data: Vec<u8>,
    frames: Vec<Range<usize>>,
    /// Sample rate of the first frame (frames at other rates are left out).
    pub sample_rate: u32,
    /// Samples per channel in one frame (1152 for MPEG-1 Layer III).
    pub samples_per_frame: u32,
    /// Bit rate of the first frame, in kbit/s.
    pub bitrate_kbps: u32,
    /// Channels of the first frame.
    pub channels: u8,
}

impl Mp3 {
    /// Splits `data` into frames: skips an ID3v2 tag, a Xing/Info/VBRI frame and anything between
    /// frames that is not a frame (e.g. an ID3v1 tag at the end).
    pub fn parse(data: Vec<u8>) -> Result<Self> {
        let mut frames: Vec<Range<usize>> = Vec::new();
        let mut first: Option<FrameHeader> = None;
        let mut pos = id3v2_len(&data);
        while pos + 4 <= data.len() {
            // A frame right after a frame is trusted; elsewhere the next header must check out too.
            let follows = frames.last().is_some_and(|f| f.end == pos);
            let fits = |h: &FrameHeader| if follows { pos + h.length <= data.len() } else { frame_fits(&data, pos, h) };
            let Some(header) = FrameHeader::parse(&data[pos..]).filter(fits) else {
                pos += 1;
                continue;
            };
            let end = pos + header.length;
            let info = frames.is_empty() && header.is_info_frame(&data[pos..end]);
            let compatible = first.is_none_or(|f| f.sample_rate == header.sample_rate && f.samples == header.samples);
            if compatible && !info {
                first.get_or_insert(header);
                frames.push(pos..end);
            }
            pos = end;
        }
        let Some(first) = first else {
            bail!("no MPEG audio frames found");
        };
        Ok(Mp3 {
            data,
            frames,
            sample_rate: first.sample_rate,
            samples_per_frame: first.samples,
            bitrate_kbps: first.bitrate_kbps,
            channels: first.channels,
        })
    }

    /// The number of frames.
    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// Frame `index` (header included).
    pub fn frame(&self, index: usize) -> &[u8] {
        &self.data[self.frames[index].clone()]
    }

    /// Duration of one frame, in seconds.
    pub fn frame_seconds(&self) -> f64 {
        f64::from(self.samples_per_frame) / f64::from(self.sample_rate)
    }
}

/// Whether the frame at `pos` ends at the end of `data`, before another frame header, or before a
/// trailing tag; so a stray sync word in junk is not taken for a frame.
fn frame_fits(data: &[u8], pos: usize, header: &FrameHeader) -> bool {
    let end = pos + header.length;
    if end > data.len() {
        return false;
    }
    let rest = &data[end..];
    rest.len() < 4 || FrameHeader::parse(rest).is_some() || rest.starts_with(b"TAG") || rest.starts_with(b"ID3")
}

/// The length of an ID3v2 tag at the start of `data` (0 without one).
fn id3v2_len(data: &[u8]) -> usize {
    if data.len() < 10 || &data[..3] != b"ID3" || data[6..10].iter().any(|b| b & 0x80 != 0) {
        return 0;
    }
    let size = data[6..10].iter().fold(0usize, |acc, b| (acc << 7) | usize::from(*b));
    let footer = if data[5] & 0x10 != 0 { 10 } else { 0 };
    (10 + size + footer).min(data.len())
}

/// MPEG audio versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MpegVersion {
    Mpeg1,
    Mpeg2,
    Mpeg25,
}

/// A parsed MPEG audio frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub version: MpegVersion,
    /// 1, 2 or 3.
    pub layer: u8,
    pub bitrate_kbps: u32,
    pub sample_rate: u32,
    pub channels: u8,
    /// A 16-bit CRC follows the header.
    pub crc: bool,
    /// Samples per channel.
    pub samples: u32,
    /// Bytes, header included.
    pub length: usize,
}

impl FrameHeader {
    /// Parses the 4-byte header at the start of `bytes` (free-format and reserved values are rejected).
    pub fn parse(bytes: &[u8]) -> Option<FrameHeader> {
        let [b0, b1, b2, b3, ..] = *bytes else {
            return None;
        };
        if b0 != 0xff || b1 & 0xe0 != 0xe0 || b3 & 0x03 == 0x02 {
            return None;
        }
        let version = match (b1 >> 3) & 0x03 {
            0 => MpegVersion::Mpeg25,
            2 => MpegVersion::Mpeg2,
            3 => MpegVersion::Mpeg1,
            _ => return None,
        };
        let layer = match (b1 >> 1) & 0x03 {
            1 => 3,
            2 => 2,
            3 => 1,
            _ => return None,
        };
        let bitrate_index = usize::from(b2 >> 4);
        let rate_index = usize::from((b2 >> 2) & 0x03);
        if bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
            return None;
        }
        let bitrate_kbps = u32::from(bitrate_table(version, layer)[bitrate_index - 1]);
        let sample_rate = match version {
            MpegVersion::Mpeg1 => [44_100, 48_000, 32_000][rate_index],
            MpegVersion::Mpeg2 => [22_050, 24_000, 16_000][rate_index],
            MpegVersion::Mpeg25 => [11_025, 12_000, 8_000][rate_index],
        };
        let padding = usize::from((b2 >> 1) & 0x01);
        let samples = match (layer, version) {
            (1, _) => 384,
            (3, MpegVersion::Mpeg2 | MpegVersion::Mpeg25) => 576,
            _ => 1152,
        };
        let bits = bitrate_kbps as usize * 1000;
        let rate = sample_rate as usize;
        let length =
            if layer == 1 { (12 * bits / rate + padding) * 4 } else { samples as usize / 8 * bits / rate + padding };
        let channels = if b3 >> 6 == 3 { 1 } else { 2 };
        Some(FrameHeader { version, layer, bitrate_kbps, sample_rate, channels, crc: b1 & 0x01 == 0, samples, length })
    }

    /// Whether `frame` (this header's frame) is a Xing, Info or VBRI frame rather than audio.
    fn is_info_frame(&self, frame: &[u8]) -> bool {
        if self.layer != 3 {
            return false;
        }
        let side_info = match (self.version, self.channels) {
            (MpegVersion::Mpeg1, 1) => 17,
            (MpegVersion::Mpeg1, _) => 32,
            (_, 1) => 9,
            _ => 17,
        };
        let at = 4 + if self.crc { 2 } else { 0 } + side_info;
        let tag = |offset: usize| frame.get(offset..offset + 4);
        matches!(tag(at), Some(b"Xing" | b"Info")) || tag(36) == Some(b"VBRI")
    }
}

/// Bit rates (kbit/s) of indexes 1 to 14.
fn bitrate_table(version: MpegVersion, layer: u8) -> &'static [u16; 14] {
    const V1_L1: [u16; 14] = [32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448];
    const V1_L2: [u16; 14] = [32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384];
    const V1_L3: [u16; 14] = [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
    const V2_L1: [u16; 14] = [32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256];
    const V2_L23: [u16; 14] = [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    match (version, layer) {
        (MpegVersion::Mpeg1, 1) => &V1_L1,
        (MpegVersion::Mpeg1, 2) => &V1_L2,
        (MpegVersion::Mpeg1, _) => &V1_L3,
        (_, 1) => &V2_L1,
        _ => &V2_L23,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, joint stereo, no padding: 417 bytes.
    const HEADER: [u8; 4] = [0xff, 0xfb, 0x90, 0x64];

    /// A frame of `HEADER` whose payload is `fill` (never 0xff, so no sync word inside).
    fn frame(fill: u8) -> Vec<u8> {
        let mut frame = HEADER.to_vec();
        frame.resize(417, fill % 0xfe);
        frame
    }

    /// `count` frames, frame `i` filled with `i`.
    fn frames(count: usize) -> Vec<u8> {
        (0..count).flat_map(|i| frame(i as u8)).collect()
    }

    fn synthetic(count: usize) -> Mp3 {
        Mp3::parse(frames(count)).unwrap()
    }

    #[test]
    fn parses_frame_headers() {
        let h = FrameHeader::parse(&HEADER).unwrap();
        assert_eq!((h.version, h.layer, h.bitrate_kbps, h.sample_rate), (MpegVersion::Mpeg1, 3, 128, 44_100));
        assert_eq!((h.channels, h.samples, h.length, h.crc), (2, 1152, 417, false));
        // Padding, mono.
        let h = FrameHeader::parse(&[0xff, 0xfb, 0x92, 0xc4]).unwrap();
        assert_eq!((h.length, h.channels), (418, 1));
        // MPEG-2 Layer III 64 kbit/s 22.05 kHz: 72 × 64000 / 22050 = 208 bytes, 576 samples.
        let h = FrameHeader::parse(&[0xff, 0xf3, 0x80, 0x44]).unwrap();
        assert_eq!(
            (h.version, h.bitrate_kbps, h.sample_rate, h.samples, h.length),
            (MpegVersion::Mpeg2, 64, 22_050, 576, 208)
        );
        // MPEG-1 Layer II 192 kbit/s 48 kHz: 144 × 192000 / 48000 = 576 bytes.
        let h = FrameHeader::parse(&[0xff, 0xfd, 0xa4, 0x04]).unwrap();
        assert_eq!((h.layer, h.bitrate_kbps, h.sample_rate, h.length), (2, 192, 48_000, 576));
        for bad in
            [[0xff, 0xeb, 0x90, 0x44], [0xff, 0xfb, 0x00, 0x44], [0xff, 0xfb, 0xf0, 0x44], [0xff, 0xfb, 0x9c, 0x44]]
        {
            assert_eq!(FrameHeader::parse(&bad), None, "{bad:x?}");
        }
        assert_eq!(FrameHeader::parse(&[0xff, 0xf9, 0x90, 0x44]), None, "reserved layer");
        assert_eq!(FrameHeader::parse(&[0xfe, 0xfb, 0x90, 0x44]), None);
        assert_eq!(FrameHeader::parse(&[0xff, 0xfb]), None);
    }

    #[test]
    fn splits_the_generated_tone() {
        let data = fs::read(crate::media::tone_mp3().unwrap()).unwrap();
        let len = data.len();
        let mp3 = Mp3::parse(data).unwrap();
        assert_eq!((mp3.sample_rate, mp3.bitrate_kbps, mp3.channels, mp3.samples_per_frame), (44_100, 128, 2, 1152));
        // 20 s is 765.6 frames; the encoder adds a frame or two of delay and padding.
        assert!((765..=770).contains(&mp3.frame_count()), "{} frames", mp3.frame_count());
        // The frames tile the whole file: no tag, no info frame, nothing skipped.
        assert_eq!(mp3.frames[0].start, 0);
        assert!(mp3.frames.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(mp3.frames.last().unwrap().end, len);
        assert!(mp3.frames.iter().all(|f| f.len() == 417 || f.len() == 418));
    }

    #[test]
    fn skips_tags_info_frame_and_junk() {
        let mut data = b"ID3\x04\x00\x00\x00\x00\x00\x0a0123456789".to_vec();
        let mut xing = frame(0);
        xing[4 + 32..4 + 36].copy_from_slice(b"Info");
        data.extend_from_slice(&xing);
        data.extend_from_slice(&frames(3));
        data.extend_from_slice(b"junk \xff\xfb junk");
        data.extend_from_slice(&frames(2));
        let mut id3v1 = b"TAG".to_vec();
        id3v1.resize(128, b' ');
        data.extend_from_slice(&id3v1);
        let mp3 = Mp3::parse(data).unwrap();
        assert_eq!(mp3.frame_count(), 5);
        assert_eq!(mp3.frames[0].start, 20 + 417, "after the tag and the info frame");
        assert!((0..5).all(|i| mp3.frame(i).len() == 417));
        assert!(Mp3::parse(b"not an mp3 at all".to_vec()).is_err());
    }

    /// Reads an ICY stream back: (audio, the title of every non-empty block).
    fn read_icy(mut stream: &[u8], metaint: usize) -> (Vec<u8>, Vec<String>) {
        let (mut audio, mut titles) = (Vec::new(), Vec::new());
        loop {
            let n = metaint.min(stream.len());
            audio.extend_from_slice(&stream[..n]);
            stream = &stream[n..];
            let Some((&len, rest)) = stream.split_first() else {
                return (audio, titles);
            };
            let (block, rest) = rest.split_at(usize::from(len) * 16);
            stream = rest;
            if len > 0 {
                let text = std::str::from_utf8(block).unwrap().trim_end_matches('\0');
                let title = text.strip_prefix("StreamTitle='").and_then(|t| t.strip_suffix("';")).unwrap();
                titles.push(title.to_string());
            }
        }
    }

    #[test]
    fn icy_blocks_read_back() {
        let audio: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut writer = IcyWriter::new(1000);
        let mut out = Vec::new();
        // Odd write sizes, so blocks fall inside writes and on their edges.
        for (i, piece) in audio.chunks(777).enumerate() {
            writer.set_title(TITLES[i / 4 % TITLES.len()]);
            writer.write(piece, &mut out);
        }
        let (read, titles) = read_icy(&out, 1000);
        assert_eq!(read, audio);
        assert_eq!(titles[0], TITLES[0]);
        assert!(titles.iter().any(|t| t == "Rock 'n' Roll; Part 2"), "{titles:?}");
        assert!(titles.windows(2).all(|w| w[0] != w[1]), "a title is sent only when it changes: {titles:?}");
        // 10 blocks: one byte each, plus the non-empty ones.
        let block_bytes: usize = titles.iter().map(|t| metadata_block(t).len() - 1).sum();
        assert_eq!(out.len(), audio.len() + 10 + block_bytes);
    }

    #[test]
    fn metadata_blocks_are_padded() {
        let block = metadata_block("Zoë – Ünïcödé");
        let text = "StreamTitle='Zoë – Ünïcödé';";
        assert_eq!(usize::from(block[0]), text.len().div_ceil(16));
        assert_eq!(&block[1..1 + text.len()], text.as_bytes());
        assert!(block[1 + text.len()..].iter().all(|&b| b == 0));
        assert_eq!((block.len() - 1) % 16, 0);
        let long = metadata_block(&"é".repeat(3000));
        assert_eq!(long[0], 255);
        assert!(std::str::from_utf8(&long[1..]).is_ok());
    }

    #[test]
    fn titles_change_every_period() {
        assert_eq!(title_at(Duration::ZERO), TITLES[0]);
        assert_eq!(title_at(TITLE_PERIOD - Duration::from_millis(1)), TITLES[0]);
        assert_eq!(title_at(TITLE_PERIOD), TITLES[1]);
        assert_eq!(title_at(TITLE_PERIOD * TITLES.len() as u32), TITLES[0]);
    }

    #[test]
    fn parses_requests() {
        let request = Request::parse("get /stream.mp3?x=1 HTTP/1.1\r\nHost: a\r\nicy-metadata:  1\r\n").unwrap();
        assert_eq!(request, Request { method: "GET".into(), path: "/stream.mp3".into(), icy_metadata: true });
        assert!(!Request::parse("GET / HTTP/1.0\r\nIcy-MetaData: 0").unwrap().icy_metadata);
        assert_eq!(Request::parse(""), None);
    }

    /// Decodes a chunked body (as far as it goes).
    fn unchunk(mut body: &[u8]) -> (Vec<u8>, Vec<usize>) {
        let (mut out, mut sizes) = (Vec::new(), Vec::new());
        while let Some(end) = find(body, b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&body[..end]).unwrap(), 16).unwrap();
            if body.len() < end + 2 + size + 2 {
                break;
            }
            out.extend_from_slice(&body[end + 2..end + 2 + size]);
            assert_eq!(&body[end + 2 + size..end + 4 + size], b"\r\n");
            sizes.push(size);
            body = &body[end + 4 + size..];
        }
        (out, sizes)
    }

    #[test]
    fn chunks_read_back() {
        let data: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
        let mut chunker = Chunker::default();
        let mut framed = chunker.frame(&data[..5000]);
        framed.extend(chunker.frame(&data[5000..]));
        assert!(chunker.frame(&[]).is_empty());
        let (read, sizes) = unchunk(&framed);
        assert_eq!(read, data);
        assert!(sizes.iter().filter(|&&s| s % 2 == 1).count() > sizes.len() / 2, "{sizes:?}");
    }

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
        assert!(pls.contains(&format!("File1={}\n", station.url())), "{pls}");
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
