//! A bound on what one Redis reply may make us hold.
//!
//! The redis crate's RESP parser has no size limit: it buffers a bulk string
//! until all of its announced length has arrived (Redis itself allows 512 MB),
//! and an array until all of its elements have. A hostile or broken server
//! could make a subscriber hold any amount of memory. [`RespLimit`] sits
//! between the socket and the crate and follows the RESP framing (type byte,
//! header line, bulk payloads skipped without looking at them): once one
//! top-level value would pass `max_message_bytes`, the read fails, which
//! closes the connection with an error that says why. A bulk string whose
//! header announces too much is refused at its header, before the payload
//! arrives. Nesting is capped too.

use std::{
    io,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, ReadBuf};

/// Deepest nesting of aggregates followed (the crate itself stops at 100).
pub const MAX_DEPTH: usize = 128;

/// Longest header line of a length-bearing type (`$123\r\n`); a longer one is not RESP.
const MAX_HEADER: usize = 24;

/// Where the scanner is in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The next byte is a type byte.
    Type,
    /// Inside the header line of an element of this type (`cr`: the last byte was `\r`; only
    /// `\r\n` ends a line, as in the crate's parser).
    Line { kind: u8, len: usize, value: Option<u64>, negative: bool, cr: bool },
    /// This many payload bytes (with the closing `\r\n`) still to come.
    Payload(u64),
    /// Something the scanner does not follow (streamed RESP3 types, garbage): it steps
    /// aside for the rest of the connection and lets the crate's parser judge.
    Off,
}

/// Follows RESP framing and counts the bytes of the current top-level value.
#[derive(Debug)]
pub struct RespScanner {
    max: u64,
    /// Bytes of the current top-level value so far.
    used: u64,
    state: State,
    /// Remaining children of each open aggregate (innermost last), and whether it is an
    /// attribute (which precedes a value instead of being one).
    open: Vec<(u64, bool)>,
}

impl RespScanner {
    /// A scanner refusing any top-level value over `max_message_bytes` (at least 1).
    pub fn new(max_message_bytes: usize) -> Self {
        RespScanner { max: max_message_bytes.max(1) as u64, used: 0, state: State::Type, open: Vec::new() }
    }

    /// Follows `bytes`, the next ones from the server. `Err` once a value passes the limit.
    pub fn scan(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        while !bytes.is_empty() {
            match self.state {
                State::Off => return Ok(()),
                State::Payload(left) => {
                    let n = left.min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    self.state = if n == left { State::Type } else { State::Payload(left - n) };
                    if n == left {
                        self.complete();
                    }
                }
                State::Type => {
                    if !has_length(bytes[0]) && !is_simple(bytes[0]) {
                        self.state = State::Off;
                        return Ok(());
                    }
                    self.count(1)?;
                    self.state = State::Line { kind: bytes[0], len: 0, value: None, negative: false, cr: false };
                    bytes = &bytes[1..];
                }
                State::Line { kind, len, value, negative, cr } => {
                    let byte = bytes[0];
                    bytes = &bytes[1..];
                    self.count(1)?;
                    if cr && byte == b'\n' {
                        self.end_line(kind, value, negative)?;
                        continue;
                    }
                    let line = |value, negative| State::Line { kind, len: len + 1, value, negative, cr: byte == b'\r' };
                    if !has_length(kind) {
                        // Text: anything up to `\r\n`, a lone `\n` included.
                        self.state = line(value, negative);
                        continue;
                    }
                    let value = match (byte, value) {
                        _ if cr => None,
                        (b'\r', Some(_)) => value,
                        (b'-', None) if !negative => {
                            self.state = line(None, true);
                            continue;
                        }
                        (b'0'..=b'9', _) => {
                            value.unwrap_or(0).checked_mul(10).and_then(|v| v.checked_add(u64::from(byte - b'0')))
                        }
                        // `$?` (streamed) or garbage.
                        _ => None,
                    };
                    if value.is_none() || len + 1 > MAX_HEADER {
                        self.state = State::Off;
                        return Ok(());
                    }
                    self.state = line(value, negative);
                }
            }
        }
        Ok(())
    }

    /// Adds `n` bytes to the current value.
    fn count(&mut self, n: u64) -> Result<(), String> {
        self.used += n;
        if self.used > self.max { Err(self.too_large()) } else { Ok(()) }
    }

    fn too_large(&self) -> String {
        format!("the server sent a reply larger than max_message_bytes ({} bytes); closing the connection", self.max)
    }

    /// A header line ended (`\n` seen).
    fn end_line(&mut self, kind: u8, value: Option<u64>, negative: bool) -> Result<(), String> {
        self.state = State::Type;
        let count = if negative { None } else { value };
        match kind {
            b'$' | b'!' | b'=' => match count {
                // `$-1`: null.
                None => self.complete(),
                Some(len) => {
                    let payload = len.saturating_add(2);
                    if self.used.saturating_add(payload) > self.max {
                        return Err(self.too_large());
                    }
                    self.used += payload;
                    self.state = State::Payload(payload);
                }
            },
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let children = count.unwrap_or(0).saturating_mul(if matches!(kind, b'%' | b'|') { 2 } else { 1 });
                // Every child takes at least 3 bytes (`_\r\n`).
                if self.used.saturating_add(children.saturating_mul(3)) > self.max {
                    return Err(self.too_large());
                }
                if children == 0 {
                    if kind != b'|' {
                        self.complete();
                    }
                } else if self.open.len() >= MAX_DEPTH {
                    return Err(format!(
                        "the server sent a reply nested deeper than {MAX_DEPTH}; closing the connection"
                    ));
                } else {
                    self.open.push((children, kind == b'|'));
                }
            }
            _ => self.complete(),
        }
        Ok(())
    }

    /// An element ended: count it in its aggregate, closing the aggregates it completes.
    fn complete(&mut self) {
        loop {
            let Some((left, attribute)) = self.open.last_mut() else {
                // A whole top-level value.
                self.used = 0;
                return;
            };
            *left -= 1;
            if *left > 0 {
                return;
            }
            let attribute = *attribute;
            self.open.pop();
            if attribute {
                // The attribute's value follows as the next element.
                return;
            }
        }
    }
}

/// Types that are one line (simple string, error, integer, double, big number, boolean, null).
fn is_simple(kind: u8) -> bool {
    matches!(kind, b'+' | b'-' | b':' | b',' | b'(' | b'#' | b'_')
}

/// Types whose header line is a length or count.
fn has_length(kind: u8) -> bool {
    matches!(kind, b'$' | b'!' | b'=' | b'*' | b'~' | b'>' | b'%' | b'|')
}

/// A byte stream whose reads fail once the server sends a reply larger than the limit.
pub struct RespLimit<S> {
    inner: S,
    scanner: RespScanner,
    refusal: Arc<OnceLock<String>>,
}

impl<S> RespLimit<S> {
    pub fn new(inner: S, max_message_bytes: usize) -> Self {
        RespLimit { inner, scanner: RespScanner::new(max_message_bytes), refusal: Arc::default() }
    }

    /// Where the reason is kept once a reply was refused (the crate's connection driver ends
    /// without saying why).
    pub fn refusal(&self) -> Arc<OnceLock<String>> {
        self.refusal.clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for RespLimit<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        match this.scanner.scan(&buf.filled()[before..]) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(message) => {
                buf.set_filled(before);
                let _ = this.refusal.set(message.clone());
                Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, message)))
            }
        }
    }
}

crate::forward::forward_async_write!(RespLimit);

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans `input` whole, then byte by byte: both must agree.
    fn scan(max: usize, input: &[u8]) -> Result<(), String> {
        let whole = RespScanner::new(max).scan(input);
        let mut scanner = RespScanner::new(max);
        let split = input.chunks(1).try_for_each(|byte| scanner.scan(byte));
        assert_eq!(whole.is_ok(), split.is_ok(), "{input:?}");
        whole
    }

    /// A pub/sub push carrying `payload`.
    fn push(payload: &[u8]) -> Vec<u8> {
        let mut out = format!(">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n${}\r\n", payload.len()).into_bytes();
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n");
        out
    }

    #[test]
    fn replies_within_the_limit_pass_one_after_another() {
        let message = push(&[b'x'; 100]);
        let stream: Vec<u8> =
            [&message[..], b"+OK\r\n", b":42\r\n", b"$-1\r\n", b"*-1\r\n", b"_\r\n", &message].concat();
        assert_eq!(scan(message.len(), &stream), Ok(()));
        let hello = b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n";
        assert_eq!(scan(hello.len(), hello), Ok(()));
        // An attribute and the value it annotates, then a map with an empty array.
        assert_eq!(scan(64, b"|1\r\n+key\r\n+val\r\n:1\r\n%1\r\n+a\r\n*0\r\n"), Ok(()));
    }

    #[test]
    fn the_limit_is_per_reply_and_exact() {
        let message = push(&[b'y'; 1000]);
        assert_eq!(scan(message.len(), &message), Ok(()));
        let error = scan(message.len() - 1, &message).unwrap_err();
        assert!(error.contains("larger than max_message_bytes"), "{error}");
        // Many replies each within the limit add up to far more than it.
        assert_eq!(scan(message.len(), &message.repeat(50)), Ok(()));
    }

    #[test]
    fn a_huge_bulk_string_is_refused_at_its_header() {
        let mut scanner = RespScanner::new(16 * 1024 * 1024);
        assert!(scanner.scan(b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n").is_ok());
        let error = scanner.scan(b"$536870912\r\n").unwrap_err();
        assert!(error.contains("16777216"), "{error}");
    }

    #[test]
    fn endless_arrays_and_deep_nesting_are_refused() {
        assert!(scan(1024, b"*2000000000\r\n").is_err(), "a count that cannot fit");
        let many_small: Vec<u8> = [&b"*400\r\n"[..], &b":1\r\n".repeat(400)].concat();
        assert!(scan(1024, &many_small).is_err(), "400 elements of 4 bytes");
        let deep = b"*1\r\n".repeat(MAX_DEPTH + 1);
        let error = scan(1 << 20, &deep).unwrap_err();
        assert!(error.contains("nested deeper"), "{error}");
    }

    /// Found by `cargo xtask fuzz --target resp_limit`: a lone `\n` does not end a line (only
    /// `\r\n` does), so `-->\n~7\r\n` is one error reply, not an error and a 7-element set.
    /// The file is the fuzz input: 2 bytes of limit, a count of piece sizes, the sizes, the reply.
    #[test]
    fn fuzz_regression_a_lone_newline_is_text() {
        let input = include_bytes!("testdata/fuzz-resp_limit-lone-newline.bin");
        let skip = 3 + usize::from(input[2]);
        let reply = &input[skip..];
        assert_eq!(reply, b"-->\n~7\r\n");
        assert!(redis::parse_redis_value(reply).is_ok(), "the crate reads one value");
        assert_eq!(scan(reply.len(), reply), Ok(()));
        assert!(scan(reply.len() - 1, reply).is_err(), "and counts all of it");
        // Headers end at `\r\n` too: a bare `\n` in one is not RESP (left to the crate).
        assert_eq!(scan(4, b"$9\n"), Ok(()));
    }

    #[test]
    fn what_it_does_not_follow_is_left_to_the_crate() {
        // Streamed strings, an overlong header, garbage: no error here (the crate's parser decides).
        assert_eq!(scan(64, b"$?\r\n;4\r\nabcd\r\n;0\r\n"), Ok(()));
        assert_eq!(scan(64, b"$123456789012345678901234567890\r\n"), Ok(()));
        assert_eq!(scan(8, b"HTTP/1.1 400 Bad Request\r\n\r\n"), Ok(()));
    }
}
