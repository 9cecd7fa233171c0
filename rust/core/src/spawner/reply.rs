//! A client's outgoing reply queue: bounded, written without ever waiting.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;

/// Replies waiting to be written to one client.
///
/// The client loop queues replies here and writes them when the socket is
/// writable, so a peer that does not read never blocks the server; the
/// loop closes a peer whose backlog passes its limit.
#[derive(Debug, Default)]
pub struct ReplyQueue {
    /// `buf[start..]` is still to be written.
    buf: Vec<u8>,
    start: usize,
}

/// Backlogs bigger than this are freed once written, so a burst does not
/// leave a large allocation behind on an idle client.
const KEEP_CAPACITY: usize = 4096;

impl ReplyQueue {
    /// An empty queue (no allocation until the first reply).
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `<status> <text>\n`. `text` comes from the handler; a newline in
    /// it would forge extra protocol lines, so `\r` and `\n` become spaces.
    pub fn push_reply(&mut self, status: &str, text: &str) {
        self.compact();
        self.buf.reserve(status.len() + text.len() + 2);
        self.buf.extend_from_slice(status.as_bytes());
        if !text.is_empty() {
            self.buf.push(b' ');
            self.buf.extend(text.bytes().map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }));
        }
        self.buf.push(b'\n');
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

    /// Writes everything queued (for the goodbye before closing).
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

    #[test]
    fn replies_are_formatted_and_newlines_neutralized() {
        let mut q = ReplyQueue::new();
        q.push_reply("OK", "Bob");
        q.push_reply("ERR", "bad\nOK forged\r");
        q.push_reply("OK", "");
        assert_eq!(q.buf, b"OK Bob\nERR bad OK forged \nOK\n");
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
