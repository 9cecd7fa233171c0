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
/// writable, so a peer that does not read never blocks the server; at its
/// limit the loop stops reading the peer, and closes one that takes nothing.
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
    /// From the oldest unanswered reply on, one entry per reply in line
    /// order. Empty when none waits.
    held: VecDeque<Held>,
    /// The number of `held[0]`.
    first_held: u64,
    /// Bytes of the replies in `held`.
    held_bytes: usize,
    unanswered: usize,
}

/// A reply waiting behind an unanswered one, or unanswered itself.
#[derive(Debug)]
enum Held {
    /// Waits for its answer, which is its text.
    Answer,
    /// Its text is known; it waits for an answer to go out, whatever that says.
    Go(Vec<u8>),
    /// Answered; waits only for the replies before it.
    Ready(Vec<u8>),
}

/// What [`ReplyQueue::answer`] did with an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answered {
    /// It became the line's reply.
    Used,
    /// It let a reply queued with [`ReplyQueue::push_reply_after_answer`] go.
    GoAhead,
    /// Its number was not awaited, or answered already: nothing changed.
    Ignored,
}

/// Backlogs bigger than this are freed once written, so a burst does not
/// leave a large allocation behind on an idle client.
const KEEP_CAPACITY: usize = 4096;

/// `<status> <text>\n` on its own.
fn formatted(status: &str, text: &str) -> Vec<u8> {
    let mut reply = Vec::new();
    format_reply(&mut reply, status, text);
    reply
}

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
            self.hold(Held::Ready(formatted(status, text)));
        }
    }

    /// Keeps the next reply's place for an answer that comes later; returns
    /// the number to [`answer`](Self::answer) it with.
    pub fn await_answer(&mut self) -> u64 {
        self.unanswered += 1;
        self.hold(Held::Answer)
    }

    /// Queues `<status> <text>\n` to go out once its number is answered,
    /// whatever the answer says (a go-ahead); returns the number.
    pub fn push_reply_after_answer(&mut self, status: &str, text: &str) -> u64 {
        self.unanswered += 1;
        self.hold(Held::Go(formatted(status, text)))
    }

    /// Answers number `line`: its reply becomes `<status> <text>\n` (or, for
    /// a reply queued with [`push_reply_after_answer`](Self::push_reply_after_answer),
    /// the one given then), and every reply no longer behind an unanswered
    /// one is made ready.
    pub fn answer(&mut self, line: u64, status: &str, text: &str) -> Answered {
        let Some(index) = usize::try_from(line.wrapping_sub(self.first_held)).ok().filter(|&i| i < self.held.len())
        else {
            return Answered::Ignored;
        };
        let (reply, answered) = match std::mem::replace(&mut self.held[index], Held::Answer) {
            Held::Answer if index == 0 => (None, Answered::Used),
            Held::Answer => (Some(formatted(status, text)), Answered::Used),
            Held::Go(reply) => {
                self.held_bytes -= reply.len();
                (Some(reply), Answered::GoAhead)
            }
            ready @ Held::Ready(_) => {
                self.held[index] = ready;
                return Answered::Ignored;
            }
        };
        self.unanswered -= 1;
        if index > 0 {
            let reply = reply.unwrap_or_default();
            self.held_bytes += reply.len();
            self.held[index] = Held::Ready(reply);
            return answered;
        }
        // The oldest: straight to the ready bytes, then whatever it held back.
        self.held.pop_front();
        self.first_held = self.first_held.wrapping_add(1);
        self.compact();
        match reply {
            Some(reply) => self.buf.extend_from_slice(&reply),
            None => format_reply(&mut self.buf, status, text),
        }
        while let Some(Held::Ready(_)) = self.held.front() {
            if let Some(Held::Ready(reply)) = self.held.pop_front() {
                self.first_held = self.first_held.wrapping_add(1);
                self.held_bytes -= reply.len();
                self.buf.extend_from_slice(&reply);
            }
        }
        answered
    }

    /// Adds a reply behind the others held; returns its number.
    fn hold(&mut self, held: Held) -> u64 {
        if let Held::Ready(reply) | Held::Go(reply) = &held {
            self.held_bytes += reply.len();
        }
        let line = self.first_held.wrapping_add(self.held.len() as u64);
        self.held.push_back(held);
        line
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
        assert_eq!(q.answer(b, "OK", "b\nforged"), Answered::Used);
        assert_eq!(ready(&q), "OK authenticated\n");
        assert_eq!(q.answer(a, "OK", "a"), Answered::Used);
        assert_eq!(ready(&q), "OK authenticated\nOK a\nERR invalid utf-8\nOK b forged\nERR rate limited\n");
        assert_eq!((q.unanswered(), q.held_bytes()), (0, 0));
        // Nothing held any more: straight to the ready bytes.
        q.push_reply("OK", "c");
        assert!(ready(&q).ends_with("OK c\n"));
    }

    #[test]
    fn a_reply_after_an_answer_keeps_its_text_and_its_place() {
        let mut q = ReplyQueue::new();
        let a = q.await_answer();
        let fatal = q.push_reply_after_answer("ERR", "bad token");
        assert_eq!((q.unanswered(), q.held_bytes()), (2, 14));
        // Its go-ahead may come first; it still waits for the line before it.
        assert_eq!(q.answer(fatal, "ERR", "server is gone"), Answered::GoAhead);
        assert_eq!(ready(&q), "");
        assert_eq!(q.answer(a, "OK", "a"), Answered::Used);
        assert_eq!(ready(&q), "OK a\nERR bad token\n");
        assert_eq!((q.unanswered(), q.held_bytes()), (0, 0));
        // Alone, it goes out with its go-ahead.
        let fatal = q.push_reply_after_answer("ERR", "idle timeout");
        assert_eq!(ready(&q), "OK a\nERR bad token\n");
        assert_eq!(q.answer(fatal, "OK", ""), Answered::GoAhead);
        assert!(ready(&q).ends_with("ERR idle timeout\n"));
    }

    #[test]
    fn unknown_and_repeated_answers_are_ignored() {
        let mut q = ReplyQueue::new();
        assert_eq!(q.answer(0, "OK", "nobody asked"), Answered::Ignored);
        let a = q.await_answer();
        let b = q.await_answer();
        assert_eq!(q.answer(b + 1, "OK", "never numbered"), Answered::Ignored);
        assert_eq!(q.answer(b, "OK", "b"), Answered::Used);
        assert_eq!(q.answer(b, "OK", "again"), Answered::Ignored);
        assert_eq!(q.answer(a, "OK", "a"), Answered::Used);
        assert_eq!(q.answer(a, "OK", "again"), Answered::Ignored);
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
