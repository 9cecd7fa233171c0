//! The fast lane for pub/sub messages. [`PushTap`] sits between the socket
//! and the redis crate's connection: it splits what the server sends into
//! RESP3 frames at the byte level, puts every `message`, `pmessage` and
//! `smessage` push straight into the [`Inbox`], and hands every other frame
//! (handshake replies, subscription confirmations, PING replies) to the crate
//! unchanged and in order.
//!
//! Why: under a flood almost every frame is a message, and the crate's
//! general-purpose parser (combine, one allocation per value) cost about half
//! of the main thread's time per message. Here a message costs one scan of
//! its few header lines, and its channel, payload and pattern are slices of
//! the read buffer (no copy, no allocation).
//!
//! Anything the scanner does not know (a streamed string, an unknown type
//! byte, a header line past [`MAX_LINE`]) switches the tap to pass-through
//! for the rest of the connection, so the crate sees exactly the bytes it
//! would have seen without the tap and reports the problem itself.

use std::{
    io,
    ops::Range,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::io::poll_read_buf;

use super::inbox::{Message, MessageSink};

/// Longest header line (type byte, length or simple string) the scanner
/// reads; a longer one ends the fast lane for the connection.
pub const MAX_LINE: usize = 64 * 1024;

/// The size of a read buffer block. Messages are slices of the block they
/// arrived in, and later reads fill the rest of it, so a block lives as long
/// as its last queued message: memory follows the queued bytes, and blocks
/// are freed in delivery order.
const READ_CHUNK: usize = 64 * 1024;

/// A read gets at least this much room; less left in the block starts a new one.
const MIN_SPARE: usize = 16 * 1024;

/// Socket reads one `poll_read` makes while every frame goes to the inbox,
/// before it yields to the runtime (a flood must not hold the step).
const READS_PER_POLL: usize = 4;

/// What starts the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scan {
    /// Not a whole frame yet.
    Incomplete,
    /// A whole frame of this many bytes that is not a pub/sub message.
    Other(usize),
    /// A whole pub/sub message frame of `len` bytes, with where its parts are.
    Message {
        /// The frame's length.
        len: usize,
        /// The channel's bytes.
        channel: Range<usize>,
        /// The payload's bytes.
        payload: Range<usize>,
        /// The pattern's bytes (`pmessage`).
        pattern: Option<Range<usize>>,
    },
    /// Not RESP3 the scanner knows: stop sorting.
    Unsupported,
}

/// A resumable scan of one large frame, so a reply arriving in many reads is
/// not scanned from its start again after each read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Resume {
    pos: usize,
    pending: u64,
}

/// Classifies the frame at the start of `buf`. `resume` carries the progress
/// of a generic frame found incomplete; it must be reset when the frame
/// leaves the buffer (any result but [`Scan::Incomplete`]).
pub fn scan(buf: &[u8], resume: &mut Resume) -> Scan {
    if buf.is_empty() {
        return Scan::Incomplete;
    }
    if resume.pending == 0 && buf[0] == b'>' {
        match scan_message(buf) {
            Ok(Some(scan)) => return scan,
            Ok(None) => return Scan::Incomplete,
            Err(NotAMessage) => {}
        }
    }
    match skip_values(buf, resume) {
        Ok(Some(len)) => {
            *resume = Resume::default();
            Scan::Other(len)
        }
        Ok(None) => Scan::Incomplete,
        Err(Unknown) => {
            *resume = Resume::default();
            Scan::Unsupported
        }
    }
}

/// The frame is valid RESP3 but not a message push of bulk strings.
struct NotAMessage;

/// The scanner does not know this RESP.
struct Unknown;

/// A `message` / `smessage` (3 parts) or `pmessage` (4 parts) push whose
/// parts are all bulk strings. `Ok(None)`: incomplete.
fn scan_message(buf: &[u8]) -> Result<Option<Scan>, NotAMessage> {
    let Some((count, mut pos)) = line(buf, 0).map_err(|_| NotAMessage)? else { return Ok(None) };
    let parts = match count {
        b">3" => 3,
        b">4" => 4,
        _ => return Err(NotAMessage),
    };
    let mut ranges: [Range<usize>; 4] = Default::default();
    for range in ranges.iter_mut().take(parts) {
        if buf.len() > pos && buf[pos] != b'$' {
            return Err(NotAMessage);
        }
        let Some((header, start)) = line(buf, pos).map_err(|_| NotAMessage)? else { return Ok(None) };
        let len = length(&header[1..]).ok_or(NotAMessage)?;
        let end = start.checked_add(len).ok_or(NotAMessage)?;
        let Some(terminator) = buf.get(end..end + 2) else { return Ok(None) };
        if terminator != b"\r\n" {
            return Err(NotAMessage);
        }
        *range = start..end;
        pos = end + 2;
    }
    let [kind, a, b, c] = ranges;
    let scan = match (&buf[kind], parts) {
        (b"message" | b"smessage", 3) => Scan::Message { len: pos, channel: a, payload: b, pattern: None },
        (b"pmessage", 4) => Scan::Message { len: pos, channel: b, payload: c, pattern: Some(a) },
        _ => return Err(NotAMessage),
    };
    Ok(Some(scan))
}

/// Skips whole values from `resume.pos` (one value when starting); the end of
/// the frame, or `None` when more bytes are needed (`resume` then says where
/// to go on).
fn skip_values(buf: &[u8], resume: &mut Resume) -> Result<Option<usize>, Unknown> {
    if resume.pending == 0 {
        *resume = Resume { pos: 0, pending: 1 };
    }
    while resume.pending > 0 {
        let pos = resume.pos;
        let Some((header, next)) = line(buf, pos)? else { return Ok(None) };
        let value = &header[1..];
        let after = match header[0] {
            b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => next,
            b'$' | b'!' | b'=' => {
                if value == b"-1" {
                    next
                } else {
                    let end = next.checked_add(length(value).ok_or(Unknown)?).ok_or(Unknown)?;
                    match buf.get(end..end + 2) {
                        None => return Ok(None),
                        Some(b"\r\n") => end + 2,
                        Some(_) => return Err(Unknown),
                    }
                }
            }
            kind @ (b'*' | b'~' | b'>' | b'%' | b'|') => {
                let count = if value == b"-1" { 0 } else { length(value).ok_or(Unknown)? as u64 };
                resume.pending += match kind {
                    b'%' => count * 2,
                    // An attribute map, then the value it describes.
                    b'|' => count * 2 + 1,
                    _ => count,
                };
                next
            }
            _ => return Err(Unknown),
        };
        resume.pending -= 1;
        resume.pos = after;
    }
    Ok(Some(resume.pos))
}

/// The header line at `pos` (type byte included, `\r\n` excluded) and where
/// the next one starts; `None` when it is incomplete.
fn line(buf: &[u8], pos: usize) -> Result<Option<(&[u8], usize)>, Unknown> {
    let rest = buf.get(pos..).unwrap_or_default();
    let window = &rest[..rest.len().min(MAX_LINE)];
    match memchr::memchr(b'\n', window) {
        Some(0) => Err(Unknown),
        Some(n) if rest[n - 1] == b'\r' && n >= 2 => Ok(Some((&rest[..n - 1], pos + n + 1))),
        Some(_) => Err(Unknown),
        None if rest.len() >= MAX_LINE => Err(Unknown),
        None => Ok(None),
    }
}

/// A non-negative decimal length (at most 2^40: no server sends more).
fn length(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 13 {
        return None;
    }
    let mut n = 0usize;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + usize::from(d - b'0');
    }
    (n <= 1 << 40).then_some(n)
}

/// The socket as the redis crate sees it, minus the messages, which go to
/// the inbox. Writes pass straight through.
pub struct PushTap<S> {
    inner: S,
    inbox: Arc<dyn MessageSink>,
    /// Read from the socket, not yet sorted.
    unsorted: BytesMut,
    resume: Resume,
    /// Sorted frames for the crate, in order.
    for_crate: BytesMut,
    /// The scanner met RESP it does not know: everything goes to the crate.
    bypass: bool,
    eof: bool,
}

impl<S> PushTap<S> {
    /// Wraps `inner`, delivering messages to `inbox`.
    pub fn new(inner: S, inbox: Arc<dyn MessageSink>) -> Self {
        PushTap {
            inner,
            inbox,
            unsorted: BytesMut::with_capacity(READ_CHUNK),
            resume: Resume::default(),
            for_crate: BytesMut::new(),
            bypass: false,
            eof: false,
        }
    }

    /// Sorts the whole frames at the start of `unsorted`.
    fn sort(&mut self) {
        while !self.bypass && !self.unsorted.is_empty() {
            match scan(&self.unsorted, &mut self.resume) {
                Scan::Incomplete => break,
                Scan::Other(len) => self.for_crate.extend_from_slice(&self.unsorted.split_to(len)),
                Scan::Message { len, channel, payload, pattern } => {
                    // No copy: the parts share the read buffer's block.
                    let frame = self.unsorted.split_to(len).freeze();
                    self.inbox.push(Message {
                        channel: frame.slice(channel),
                        payload: frame.slice(payload),
                        pattern: pattern.map(|p| frame.slice(p)),
                    });
                }
                Scan::Unsupported => self.bypass = true,
            }
        }
        if self.bypass || self.eof {
            // The crate gets the rest as it came, and judges it.
            let rest = self.unsorted.split();
            self.for_crate.extend_from_slice(&rest);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PushTap<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, dst: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        for _ in 0..READS_PER_POLL {
            if !this.for_crate.is_empty() {
                let n = this.for_crate.len().min(dst.remaining());
                dst.put_slice(&this.for_crate[..n]);
                this.for_crate.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if this.unsorted.capacity() - this.unsorted.len() < MIN_SPARE {
                // Asking for half a block lets `reserve` reuse the block in
                // place (moving a partial frame to its front) once every
                // message sliced from it is gone, which is the usual case:
                // no allocation per block then.
                this.unsorted.reserve(READ_CHUNK / 2);
            }
            let n = std::task::ready!(poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.unsorted))?;
            this.eof = n == 0;
            this.sort();
        }
        // Only messages so far: let the rest of the step run, then go on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PushTap<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub::inbox::{Inbox, Unconverted};

    fn scan_all(buf: &[u8]) -> Scan {
        scan(buf, &mut Resume::default())
    }

    #[test]
    fn a_message_push_is_found_with_its_parts() {
        let frame = b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n";
        let Scan::Message { len, channel, payload, pattern } = scan_all(frame) else { panic!() };
        assert_eq!((len, &frame[channel], &frame[payload], pattern), (frame.len(), &b"news"[..], &b"hello"[..], None));
        let frame = b">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$0\r\n\r\nrest";
        let Scan::Message { len, channel, payload, pattern } = scan_all(frame) else { panic!() };
        assert_eq!(len, frame.len() - 4);
        assert_eq!((&frame[channel], &frame[payload], &frame[pattern.unwrap()]), (&b"news"[..], &b""[..], &b"n*"[..]));
    }

    #[test]
    fn every_prefix_of_a_frame_is_incomplete() {
        let frames: [&[u8]; 4] = [
            b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$6\r\nhe\r\nlo\r\n",
            b">3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n",
            b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nmodes\r\n*2\r\n_\r\n#t\r\n",
            b"|1\r\n+key\r\n:1\r\n*1\r\n$-1\r\n",
        ];
        for frame in frames {
            for cut in 0..frame.len() {
                assert_eq!(scan_all(&frame[..cut]), Scan::Incomplete, "{:?}", String::from_utf8_lossy(&frame[..cut]));
            }
            let whole = scan_all(frame);
            assert!(matches!(whole, Scan::Message { len, .. } | Scan::Other(len) if len == frame.len()), "{whole:?}");
        }
    }

    #[test]
    fn an_empty_buffer_leaves_no_scan_state_behind() {
        let mut resume = Resume::default();
        assert_eq!(scan(b"", &mut resume), Scan::Incomplete);
        let frame = b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n";
        assert!(matches!(scan(frame, &mut resume), Scan::Message { .. }), "still the fast lane");
    }

    #[test]
    fn a_resumed_scan_agrees_with_a_whole_one() {
        let mut frame = b"*1000\r\n".to_vec();
        for i in 0..1000 {
            frame.extend_from_slice(format!("${}\r\n{i}\r\n", i.to_string().len()).as_bytes());
        }
        let mut resume = Resume::default();
        for cut in (1..frame.len()).step_by(97) {
            assert_eq!(scan(&frame[..cut], &mut resume), Scan::Incomplete);
        }
        assert_eq!(scan(&frame, &mut resume), Scan::Other(frame.len()));
        assert_eq!(resume.pending, 0, "reset for the next frame");
    }

    #[test]
    fn unknown_resp_is_left_to_the_crate() {
        for frame in [&b"$?\r\n;4\r\nabcd\r\n;0\r\n"[..], b"@1\r\n", b"$4\r\nabcdXX", b"\r\n", b"+x\n"] {
            assert_eq!(scan_all(frame), Scan::Unsupported, "{:?}", String::from_utf8_lossy(frame));
        }
        let long = vec![b'+'; MAX_LINE + 1];
        assert_eq!(scan_all(&long), Scan::Unsupported);
        // A push that only looks like a message is passed on whole.
        let frame = b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n:5\r\n";
        assert_eq!(scan_all(frame), Scan::Other(frame.len()));
    }

    /// Reads `reader` to its end through a tap: what reached the crate, and the inbox.
    async fn through_tap(reader: impl AsyncRead + Unpin) -> (Vec<u8>, Arc<Inbox>) {
        use tokio::io::AsyncReadExt;
        let inbox = Arc::new(Inbox::new(100, Unconverted));
        let mut tap = PushTap::new(reader, inbox.clone() as Arc<dyn MessageSink>);
        let mut for_crate = Vec::new();
        tap.read_to_end(&mut for_crate).await.unwrap();
        (for_crate, inbox)
    }

    #[tokio::test]
    async fn messages_go_to_the_inbox_and_the_rest_to_the_crate_in_order() {
        use tokio::io::AsyncWriteExt;
        let (mut server, client) = tokio::io::duplex(7);
        let stream = b"+OK\r\n>3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n>3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n\
                       >4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\nc\r\n$3\r\nbye\r\n";
        let writer = tokio::spawn(async move {
            server.write_all(stream).await.unwrap();
        });
        let (for_crate, inbox) = through_tap(client).await;
        writer.await.unwrap();
        assert_eq!(for_crate, b"+OK\r\n>3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n");
        let got = inbox.take_all();
        assert_eq!(
            got,
            [
                Message { channel: "c".into(), payload: "hi".into(), pattern: None },
                Message { channel: "c".into(), payload: "bye".into(), pattern: Some("*".into()) },
            ]
        );
    }

    #[tokio::test]
    async fn after_unknown_resp_every_byte_goes_to_the_crate() {
        let stream = b"+OK\r\n$?\r\n;1\r\nx\r\n;0\r\n>3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n";
        let (for_crate, inbox) = through_tap(&stream[..]).await;
        assert_eq!(for_crate, stream);
        assert!(inbox.is_empty());
    }

    #[tokio::test]
    async fn an_incomplete_frame_at_the_end_goes_to_the_crate() {
        let stream = b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n>3\r\n$7\r\nmess";
        let (for_crate, inbox) = through_tap(&stream[..]).await;
        assert_eq!(for_crate, b">3\r\n$7\r\nmess");
        assert_eq!(inbox.len(), 1);
    }
}
