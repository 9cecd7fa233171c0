//! Bounded line reader: UTF-8 lines ending in `\n` (or `\r\n`) from any
//! `AsyncRead`, never holding more than one maximal line plus one read chunk.
//!
//! The reader is poll-based and cancel-safe: all state lives in the struct
//! and bytes are only taken from the socket inside a completed `poll_read`,
//! so the client loop can poll it next to its writer and timers.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BufMut;
use tokio::io::AsyncRead;
use tokio_util::io::poll_read_buf;

/// Bytes asked from the socket per read. Small, because it is also the slack
/// over `max_line_bytes` that a client can make us hold.
pub const READ_CHUNK: usize = 4096;

/// What the reader found next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineEvent {
    /// A complete non-empty line, without its `\n` / `\r\n`.
    Line(String),
    /// A complete line that is not valid UTF-8; it has been skipped.
    InvalidUtf8,
    /// A line longer than the limit. Its start has been dropped and the
    /// reader discards input up to the next `\n`; callers usually close.
    TooLong,
    /// The peer closed its side. A partial last line without `\n` is dropped.
    Eof,
}

/// Reads [`LineEvent`]s from `R` with a hard bound on buffered bytes.
///
/// Empty lines (also `\r\n` alone) are skipped silently. A line's length is
/// counted without its terminator: `max_line_bytes` bytes of text followed by
/// `\n` or `\r\n` is accepted, one more byte is [`LineEvent::TooLong`].
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    /// `buf[start..]` holds bytes read but not yet returned.
    buf: Vec<u8>,
    start: usize,
    /// Bytes of `buf[start..]` already searched for `\n`, so a slowly growing
    /// line is scanned once in total, not once per read.
    scanned: usize,
    max_line_bytes: usize,
    /// Inside an overlong line: drop bytes until the next `\n`.
    discarding: bool,
    eof: bool,
    bytes_read: u64,
    peak_buffered: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// A reader refusing lines longer than `max_line_bytes` (at least 1).
    pub fn new(inner: R, max_line_bytes: usize) -> Self {
        LineReader {
            inner,
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max_line_bytes: max_line_bytes.max(1),
            discarding: false,
            eof: false,
            bytes_read: 0,
            peak_buffered: 0,
        }
    }

    /// Waits for the next event. Cancel-safe.
    pub async fn next_event(&mut self) -> io::Result<LineEvent> {
        poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Poll form of [`next_event`](Self::next_event). After `Eof` or an error
    /// it keeps returning `Eof`.
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<LineEvent>> {
        loop {
            if let Some(event) = self.decode_buffered() {
                return Poll::Ready(Ok(event));
            }
            if self.eof {
                self.release();
                return Poll::Ready(Ok(LineEvent::Eof));
            }
            ready!(self.poll_fill(cx))?;
        }
    }

    /// Total bytes read from the peer so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Largest number of bytes this reader ever held at once (partial line
    /// plus the chunk just read): the bound tests and stats check.
    pub fn peak_buffered(&self) -> usize {
        self.peak_buffered
    }

    /// Bytes held right now, waiting for the rest of their line.
    #[cfg(test)]
    fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The underlying reader, e.g. to drain it before closing.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Returns the next event found in the buffered bytes, if any.
    fn decode_buffered(&mut self) -> Option<LineEvent> {
        loop {
            let pending = &self.buf[self.start..];
            let Some(offset) = pending[self.scanned..].iter().position(|&b| b == b'\n') else {
                self.scanned = pending.len();
                if self.discarding {
                    // Drop the rest of the overlong line as it arrives.
                    self.start = self.buf.len();
                    self.scanned = 0;
                } else if pending.len() > self.max_line_bytes + 1 {
                    // Even a following `\r\n` could not make this fit (the
                    // `+ 1` leaves room for a `\r` just before the limit).
                    self.start = self.buf.len();
                    self.scanned = 0;
                    self.discarding = true;
                    return Some(LineEvent::TooLong);
                }
                return None;
            };
            let newline = self.scanned + offset;
            let mut line = &pending[..newline];
            self.start += newline + 1;
            self.scanned = 0;
            if std::mem::take(&mut self.discarding) {
                // The tail of an overlong line already reported.
                continue;
            }
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if line.len() > self.max_line_bytes {
                return Some(LineEvent::TooLong);
            }
            if line.is_empty() {
                continue;
            }
            return Some(match std::str::from_utf8(line) {
                Ok(text) => LineEvent::Line(text.to_owned()),
                Err(_) => LineEvent::InvalidUtf8,
            });
        }
    }

    /// Reads one chunk after the unconsumed bytes. Ready(Ok) means progress
    /// (data or EOF noted); Pending leaves the buffer as it was.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Move the partial line to the front: at most max_line_bytes + 1
        // bytes, once per read, which keeps every line's bytes copied O(1) times.
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let kept = self.buf.len();
        if self.buf.capacity() < kept + READ_CHUNK {
            // Exact, so the allocation tracks the bound instead of doubling.
            self.buf.reserve_exact(kept + READ_CHUNK - self.buf.len());
        }
        // Into the spare capacity: no zero-fill of the chunk per read.
        match poll_read_buf(Pin::new(&mut self.inner), cx, &mut (&mut self.buf).limit(READ_CHUNK)) {
            Poll::Pending => {
                if kept == 0 {
                    // Idle clients hold no read buffer at all.
                    self.release();
                }
                Poll::Pending
            }
            Poll::Ready(Err(e)) => {
                self.eof = true;
                self.release();
                Poll::Ready(Err(e))
            }
            Poll::Ready(Ok(filled)) => {
                if filled == 0 {
                    self.eof = true;
                } else {
                    self.bytes_read += filled as u64;
                    self.peak_buffered = self.peak_buffered.max(self.buf.len());
                }
                Poll::Ready(Ok(()))
            }
        }
    }

    /// Frees the buffer.
    fn release(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
        self.scanned = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use tokio::io::ReadBuf;

    /// Yields the given chunks one per read (then EOF), with a Pending before
    /// each, the way a socket delivers split segments.
    struct Chunks {
        chunks: VecDeque<Vec<u8>>,
        pending_next: bool,
    }

    impl Chunks {
        fn new<I: IntoIterator<Item = B>, B: AsRef<[u8]>>(chunks: I) -> Self {
            let chunks = chunks.into_iter().map(|c| c.as_ref().to_vec()).collect();
            Chunks { chunks, pending_next: true }
        }
    }

    impl AsyncRead for Chunks {
        fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            if std::mem::replace(&mut self.pending_next, false) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.pending_next = true;
            if let Some(mut chunk) = self.chunks.pop_front() {
                let n = chunk.len().min(buf.remaining());
                buf.put_slice(&chunk[..n]);
                if n < chunk.len() {
                    chunk.drain(..n);
                    self.chunks.push_front(chunk);
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    fn line(s: &str) -> LineEvent {
        LineEvent::Line(s.to_owned())
    }

    /// Every event until EOF.
    async fn events(chunks: Chunks, max: usize) -> (Vec<LineEvent>, LineReader<Chunks>) {
        let mut reader = LineReader::new(chunks, max);
        let mut out = Vec::new();
        loop {
            match reader.next_event().await.unwrap() {
                LineEvent::Eof => return (out, reader),
                event => out.push(event),
            }
        }
    }

    #[tokio::test]
    async fn lines_split_across_reads() {
        let chunks = Chunks::new(["he", "llo\nwor", "ld", "\n", "!", "\n"]);
        let (ev, _) = events(chunks, 64).await;
        assert_eq!(ev, [line("hello"), line("world"), line("!")]);
    }

    #[tokio::test]
    async fn crlf_and_lf_both_end_lines() {
        let chunks = Chunks::new(["a\r\nb\nc\r", "\nd\r\r\n"]);
        let (ev, _) = events(chunks, 64).await;
        // Only one `\r` belongs to the terminator; an inner one stays.
        assert_eq!(ev, [line("a"), line("b"), line("c"), line("d\r")]);
    }

    #[tokio::test]
    async fn empty_lines_are_skipped() {
        let chunks = Chunks::new(["\n\r\n\n", "x\n\n", "\r\n"]);
        let (ev, _) = events(chunks, 64).await;
        assert_eq!(ev, [line("x")]);
    }

    #[tokio::test]
    async fn many_lines_in_one_read() {
        let text: String = (0..1000).map(|i| format!("n{i}\n")).collect();
        let (ev, _) = events(Chunks::new([text]), 64).await;
        assert_eq!(ev.len(), 1000);
        assert_eq!(ev[0], line("n0"));
        assert_eq!(ev[999], line("n999"));
    }

    #[tokio::test]
    async fn exact_limit_is_accepted_with_lf_or_crlf() {
        let max = 10;
        let text = "x".repeat(max);
        let chunks = Chunks::new([format!("{text}\n{text}\r\n")]);
        let (ev, _) = events(chunks, max).await;
        assert_eq!(ev, [line(&text), line(&text)]);
    }

    #[tokio::test]
    async fn limit_plus_one_is_too_long() {
        let max = 10;
        let long = "x".repeat(max + 1);
        let chunks = Chunks::new([format!("{long}\nok\n{long}\r\nok2\n")]);
        let (ev, _) = events(chunks, max).await;
        assert_eq!(ev, [LineEvent::TooLong, line("ok"), LineEvent::TooLong, line("ok2")]);
    }

    #[tokio::test]
    async fn limit_plus_one_split_byte_by_byte() {
        let max = 10;
        let bytes: Vec<String> = format!("{}\nok\n", "y".repeat(max + 1)).chars().map(String::from).collect();
        let (ev, _) = events(Chunks::new(bytes), max).await;
        assert_eq!(ev, [LineEvent::TooLong, line("ok")]);
    }

    #[tokio::test]
    async fn overlong_line_without_newline_is_reported_early_and_not_buffered() {
        let max = 100;
        // 1 MB in 4 KiB chunks, no newline at all, then a good line.
        let mut chunks: Vec<Vec<u8>> = vec![vec![b'z'; READ_CHUNK]; 256];
        chunks.push(b"\nafter\n".to_vec());
        let mut reader = LineReader::new(Chunks::new(chunks), max);
        assert_eq!(reader.next_event().await.unwrap(), LineEvent::TooLong);
        // Reported within the first chunk or two, not at the end.
        assert!(reader.bytes_read() <= 2 * READ_CHUNK as u64);
        assert_eq!(reader.next_event().await.unwrap(), line("after"));
        assert_eq!(reader.next_event().await.unwrap(), LineEvent::Eof);
        assert!(reader.peak_buffered() <= max + 1 + READ_CHUNK, "peak {}", reader.peak_buffered());
        assert_eq!(reader.bytes_read(), 256 * READ_CHUNK as u64 + 7);
    }

    #[tokio::test]
    async fn peak_stays_bounded_for_lines_near_the_limit() {
        let max = 4096;
        let text = "q".repeat(max);
        let chunks: Vec<String> = (0..50).map(|_| format!("{text}\n")).collect();
        let (ev, reader) = events(Chunks::new(chunks), max).await;
        assert_eq!(ev.len(), 50);
        assert!(reader.peak_buffered() <= max + 1 + READ_CHUNK);
    }

    #[tokio::test]
    async fn invalid_utf8_skips_only_that_line() {
        let chunks = Chunks::new([&b"good\n\xff\xfe bad\nalso good\n"[..], b"\xe2\x82", b"\n"]);
        let (ev, _) = events(chunks, 64).await;
        assert_eq!(ev, [line("good"), LineEvent::InvalidUtf8, line("also good"), LineEvent::InvalidUtf8]);
    }

    #[tokio::test]
    async fn multibyte_char_split_across_reads_is_fine() {
        let euro = "€".as_bytes();
        let chunks = Chunks::new([&euro[..1], &euro[1..], b"\n"]);
        let (ev, _) = events(chunks, 64).await;
        assert_eq!(ev, [line("€")]);
    }

    #[tokio::test]
    async fn partial_line_at_eof_is_dropped() {
        let (ev, _) = events(Chunks::new(["done\nhalf"]), 64).await;
        assert_eq!(ev, [line("done")]);
    }

    #[tokio::test]
    async fn eof_repeats_and_idle_reader_holds_no_buffer() {
        let mut reader = LineReader::new(Chunks::new(["a\n"]), 64);
        assert_eq!(reader.next_event().await.unwrap(), line("a"));
        assert_eq!(reader.next_event().await.unwrap(), LineEvent::Eof);
        assert_eq!(reader.next_event().await.unwrap(), LineEvent::Eof);
        assert_eq!(reader.buffered(), 0);
        assert_eq!(reader.buf.capacity(), 0);
    }

    #[tokio::test]
    async fn pending_with_nothing_buffered_releases_the_buffer() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut reader = LineReader::new(server, 64);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(reader.poll_event(&mut cx).is_pending());
        assert_eq!(reader.buf.capacity(), 0);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"par").await.unwrap();
        assert!(reader.poll_event(&mut cx).is_pending());
        // A partial line is kept.
        assert_eq!(reader.buffered(), 3);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"tial\n").await.unwrap();
        match reader.poll_event(&mut cx) {
            Poll::Ready(Ok(event)) => assert_eq!(event, line("partial")),
            other => panic!("unexpected {other:?}"),
        }
    }
}
