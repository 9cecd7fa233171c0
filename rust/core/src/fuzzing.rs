//! Helpers for the fuzz targets in `fuzz/` (feature `fuzzing`): an in-memory peer that hands out
//! its bytes in fuzzer-chosen pieces, and a way to drive the poll-based readers without a
//! runtime. Not public API.

use std::{
    future::Future,
    io,
    pin::{Pin, pin},
    task::{Context, Poll, Waker},
};

pub use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::spawner::{LineEvent, LineReader};

/// A peer that sends `data` in pieces whose sizes come from `schedule` (each byte + 1, cycled;
/// empty: everything at once), then closes. With `pending`, every read is first refused once
/// (`Pending`, waker woken), the way a socket delivers segments. Writes vanish.
#[derive(Debug)]
pub struct MemoryIo {
    data: Bytes,
    pos: usize,
    schedule: Vec<u8>,
    turn: usize,
    pending: bool,
    refused: bool,
}

impl MemoryIo {
    pub fn new(data: &[u8], schedule: &[u8], pending: bool) -> Self {
        MemoryIo {
            data: Bytes::copy_from_slice(data),
            pos: 0,
            schedule: schedule.to_vec(),
            turn: 0,
            pending,
            refused: false,
        }
    }

    /// The size of the next piece.
    fn next_size(&mut self) -> usize {
        if self.schedule.is_empty() {
            return usize::MAX;
        }
        let size = usize::from(self.schedule[self.turn % self.schedule.len()]) + 1;
        self.turn += 1;
        size
    }
}

impl AsyncRead for MemoryIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.pending && !std::mem::replace(&mut self.refused, true) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.refused = false;
        let n = (self.data.len() - self.pos).min(self.next_size()).min(buf.remaining());
        buf.put_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MemoryIo {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Polls `future` (which must not wait on a runtime) to completion; panics if it is still
/// pending after `max_polls` polls, which over an in-memory peer means a hang.
pub fn run<F: Future>(future: F, max_polls: usize) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..max_polls {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("still pending after {max_polls} polls over an in-memory peer");
}

/// What a [`LineReader`] made of a peer's bytes.
#[derive(Debug)]
pub struct LineRun {
    /// Every event before `Eof`.
    pub events: Vec<LineEvent>,
    pub peak_buffered: usize,
    pub bytes_read: u64,
}

/// Reads `io` with a [`LineReader`] of `max_line_bytes` until `Eof`.
pub fn read_lines(io: MemoryIo, max_line_bytes: usize) -> LineRun {
    let polls = 4 * (io.data.len() + 2);
    let mut reader = LineReader::new(io, max_line_bytes);
    let events = run(
        async {
            let mut events = Vec::new();
            loop {
                match reader.next_event().await.expect("an in-memory peer cannot fail") {
                    LineEvent::Eof => return events,
                    event => events.push(event),
                }
            }
        },
        polls,
    );
    LineRun { events, peak_buffered: reader.peak_buffered(), bytes_read: reader.bytes_read() }
}

/// The scheme of `url` parsed again, `None` when it does not parse.
pub fn url_scheme(url: &str) -> Option<String> {
    url::Url::parse(url).ok().map(|url| url.scheme().to_string())
}

/// Whether the redis crate's parser reads one whole value from `bytes`.
pub fn resp_parses(bytes: &[u8]) -> bool {
    redis::parse_redis_value(bytes).is_ok()
}

/// The redis crate's reading of `frame` as a push: its kind (`Message`, `PMessage`, ...) and
/// its parts when all are bulk strings; `None` for anything else.
pub fn resp_push(frame: &[u8]) -> Option<(String, Vec<Vec<u8>>)> {
    let redis::Value::Push { kind, data } = redis::parse_redis_value(frame).ok()? else { return None };
    let parts = data
        .into_iter()
        .map(|value| match value {
            redis::Value::BulkString(bytes) => Some(bytes),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some((format!("{kind:?}"), parts))
}

/// `serve_files`' path resolution (http_server/files.rs), for the `http_server_paths` target.
pub use crate::http_server::files::{Refused as ServeRefused, resolve as serve_files_resolve};

/// Parses `bytes` as one RESP value (the redis crate's parser) and hands it to the stream
/// reply decoders (XREADGROUP and XAUTOCLAIM), for the `stream_entries` target. Returns the
/// entries both decoders made of it.
pub fn decode_stream_replies(bytes: &[u8]) -> Vec<crate::streams::entry::Read> {
    let Ok(value) = redis::parse_redis_value(bytes) else {
        return Vec::new();
    };
    let mut reads = crate::streams::entry::parse_read_reply(value.clone()).unwrap_or_default();
    if let Ok((_, claimed, _)) = crate::streams::entry::parse_autoclaim_reply(value) {
        reads.extend(claimed);
    }
    reads
}
