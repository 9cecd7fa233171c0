//! A client's outgoing replies, in line order: written without ever waiting,
//! and held behind a line whose answer has not come back yet.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;

/// Replies waiting to be written to one client.
///
/// The client loop queues replies here and writes them when the socket is
/// writable, so a peer that does not read never blocks the server; the
/// loop closes a peer whose backlog passes its limit.
///
/// A line answered elsewhere (the node is spawned on the main thread) gets
/// a number from [`await_answer`](Self::await_answer); replies made after it
/// are held until its [`answer`](Self::answer) arrives, so the client reads
/// them in the order of its lines.
#[derive(Debug, Default)]
pub struct ReplyQueue {
    /// `buf[start..]` is ready to be written.
    buf: Vec<u8>,
    start: usize,
    /// From the oldest unanswered line on, one entry per reply in line
    /// order: `None` until that line is answered. Empty when none waits.
    held: VecDeque<Option<Vec<u8>>>,
    /// The number of `held[0]`.
    first_held: u64,
    /// Bytes of the replies in `held`.
    held_bytes: usize,
    unanswered: usize,
}

/// Backlogs bigger than this are freed once written, so a burst does not
/// leave a large allocation behind on an idle client.
const KEEP_CAPACITY: usize = 4096;

/// Appends `<status> <text>\n`. `text` comes from the handler; a newline in
/// it would forge extra protocol lines, so `\r` and `\n` become spaces.
fn format_reply(out: &mut Vec<u8>, status: &str, text: &str) {
    out.reserve(status.len() + text.len() + 2);
    out.extend_from_slice(status.as_bytes());
    if !text.is_empty() {
        out.push(b' ');
        if memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_none() {
            out.extend_from_slice(text.as_bytes());
        } else {
            out.extend(text.bytes().map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }));
        }
    }
    out.push(b'\n');
}

impl ReplyQueue {
    /// An empty queue (no allocation until the first reply).
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes ready to be written.
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Nothing ready to be written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lines whose answer has not arrived.
    pub fn unanswered(&self) -> usize {
        self.unanswered
    }

    /// Bytes of replies held behind an unanswered line.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Queues `<status> <text>\n` after every reply queued or awaited so far.
    pub fn push_reply(&mut self, status: &str, text: &str) {
        if self.held.is_empty() {
            self.compact();
            format_reply(&mut self.buf, status, text);
        } else {
            let mut reply = Vec::new();
            format_reply(&mut reply, status, text);
            self.held_bytes += reply.len();
            self.held.push_back(Some(reply));
        }
    }

    /// Keeps the next reply's place for an answer that comes later; returns
    /// the number to [`answer`](Self::answer) it with.
    pub fn await_answer(&mut self) -> u64 {
        let line = self.first_held.wrapping_add(self.held.len() as u64);
        self.held.push_back(None);
        self.unanswered += 1;
        line
    }

    /// Fills the place of line number `line` with `<status> <text>\n`, and
    /// makes ready every reply no longer behind an unanswered line. Returns
    /// false (and does nothing) for a number not awaited or answered already.
    pub fn answer(&mut self, line: u64, status: &str, text: &str) -> bool {
        let Some(index) = usize::try_from(line.wrapping_sub(self.first_held)).ok().filter(|&i| i < self.held.len())
        else {
            return false;
        };
        if self.held[index].is_some() {
            return false;
        }
        self.unanswered -= 1;
        if index > 0 {
            let mut reply = Vec::new();
            format_reply(&mut reply, status, text);
            self.held_bytes += reply.len();
            self.held[index] = Some(reply);
            return true;
        }
        // The oldest: straight to the ready bytes, then whatever it held back.
        self.held.pop_front();
        self.first_held = self.first_held.wrapping_add(1);
        self.compact();
        format_reply(&mut self.buf, status, text);
        while let Some(Some(_)) = self.held.front() {
            if let Some(Some(reply)) = self.held.pop_front() {
                self.first_held = self.first_held.wrapping_add(1);
                self.held_bytes -= reply.len();
                self.buf.extend_from_slice(&reply);
            }
        }
        true
    }

    /// Writes as much as the socket takes in one call. `Ready(Ok(n))` with
    /// `n > 0` is progress; a writer that accepts 0 bytes is an error.
    pub fn poll_write_to<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        writer: &mut W,
    ) -> Poll<io::Result<usize>> {
        let n = match Pin::new(writer).poll_write(cx, &self.buf[self.start..]) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => n,
            other => return other,
        };
        self.start += n;
        if self.is_empty() {
            self.start = 0;
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf = Vec::new();
            } else {
                self.buf.clear();
            }
        }
        Poll::Ready(Ok(n))
    }

    /// Writes everything ready (for the goodbye before closing).
    pub async fn flush_to<W: AsyncWrite + Unpin>(&mut self, writer: &mut W) -> io::Result<()> {
        while !self.is_empty() {
            std::future::poll_fn(|cx| self.poll_write_to(cx, writer)).await?;
        }
        Ok(())
    }

    /// Drops written bytes once they are the larger part, so appending stays
    /// amortized O(1) without moving the tail on every write.
    fn compact(&mut self) {
        if self.start > 0 && self.start >= self.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(q: &ReplyQueue) -> &str {
        std::str::from_utf8(&q.buf[q.start..]).unwrap()
    }

    #[test]
    fn replies_are_formatted_and_newlines_neutralized() {
        let mut q = ReplyQueue::new();
        q.push_reply("OK", "Bob");
        q.push_reply("ERR", "bad\nOK forged\r");
        q.push_reply("OK", "");
        assert_eq!(q.buf, b"OK Bob\nERR bad OK forged \nOK\n");
    }

    #[test]
    fn replies_after_an_unanswered_line_wait_for_its_answer() {
        let mut q = ReplyQueue::new();
        q.push_reply("OK", "authenticated");
        let a = q.await_answer();
        q.push_reply("ERR", "invalid utf-8");
        let b = q.await_answer();
        q.push_reply("ERR", "rate limited");
        assert_eq!(ready(&q), "OK authenticated\n");
        assert_eq!((q.unanswered(), q.held_bytes()), (2, 18 + 17));
        // Answers may come in any order; replies leave in line order.
        assert!(q.answer(b, "OK", "b\nforged"));
        assert_eq!(ready(&q), "OK authenticated\n");
        assert!(q.answer(a, "OK", "a"));
        assert_eq!(ready(&q), "OK authenticated\nOK a\nERR invalid utf-8\nOK b forged\nERR rate limited\n");
        assert_eq!((q.unanswered(), q.held_bytes()), (0, 0));
        // Nothing held any more: straight to the ready bytes.
        q.push_reply("OK", "c");
        assert!(ready(&q).ends_with("OK c\n"));
    }

    #[test]
    fn unknown_and_repeated_answers_are_ignored() {
        let mut q = ReplyQueue::new();
        assert!(!q.answer(0, "OK", "nobody asked"));
        let a = q.await_answer();
        let b = q.await_answer();
        assert!(!q.answer(b + 1, "OK", "never numbered"));
        assert!(q.answer(b, "OK", "b"));
        assert!(!q.answer(b, "OK", "again"));
        assert!(q.answer(a, "OK", "a"));
        assert!(!q.answer(a, "OK", "again"));
        assert_eq!(ready(&q), "OK a\nOK b\n");
        assert_eq!(q.unanswered(), 0);
    }

    #[tokio::test]
    async fn partial_writes_keep_order() {
        // A duplex pipe of 8 bytes forces many partial writes.
        let (mut a, mut b) = tokio::io::duplex(8);
        let mut q = ReplyQueue::new();
        for i in 0..100 {
            q.push_reply("OK", &format!("n{i}"));
        }
        let expected: String = (0..100).map(|i| format!("OK n{i}\n")).collect();
        let reader = async {
            let mut got = Vec::new();
            let mut buf = [0u8; 3];
            while got.len() < expected.len() {
                let n = tokio::io::AsyncReadExt::read(&mut b, &mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            got
        };
        let (flushed, got) = tokio::join!(q.flush_to(&mut a), reader);
        flushed.unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), expected);
        assert!(q.is_empty());
    }
}
