//! One listener's connection to the station: the request read (with a size and time limit), then
//! the answer its route calls for; an audio stream is assembled frame by frame, paced, with its
//! metadata, faults and chunking, until the listener goes away or the station stops.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use super::body::Body;
use super::faults::{Faults, TRUNCATED_AFTER};
use super::icy::title_at;
use super::pacer::Pacer;
use super::routes::{Route, StreamKind, route, stream_head};
use super::{METAINT, POLL, Shared, debug};

/// Longest request head accepted, and how long a client may take to send it.
const MAX_REQUEST_BYTES: usize = 16 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Most bytes written in one go (a burst is sent in a few writes).
const MAX_BATCH: usize = 64 * 1024;

/// Serves one connection; failures (mostly clients that went away) are only logged at debug.
pub fn serve(stream: TcpStream, shared: &Shared) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let mut conn = Conn { stream, shared };
    match conn.serve() {
        Ok(()) => {}
        Err(err) if conn.shared.stopped() => debug(format!("{peer}: stopped ({err})")),
        Err(err) => debug(format!("{peer}: {err}")),
    }
    let _ = conn.stream.shutdown(Shutdown::Both);
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
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        let request = Request::parse("get /stream.mp3?x=1 HTTP/1.1\r\nHost: a\r\nicy-metadata:  1\r\n").unwrap();
        assert_eq!(request, Request { method: "GET".into(), path: "/stream.mp3".into(), icy_metadata: true });
        assert!(!Request::parse("GET / HTTP/1.0\r\nIcy-MetaData: 0").unwrap().icy_metadata);
        assert_eq!(Request::parse(""), None);
    }
}
