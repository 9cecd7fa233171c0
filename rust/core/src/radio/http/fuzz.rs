//! Entry points for the fuzz targets (`fuzz/` at the repository root, feature `fuzzing`): the
//! ICY status-line shim and the whole response path of [`super::open`] (hyper's HTTP/1 parser
//! under the shim, then our reading of the head, playlist bodies and ICY-interleaved bodies),
//! fed canned server bytes instead of a socket. Not public API.

use std::{
    cell::RefCell,
    pin::Pin,
    sync::{Arc, atomic::AtomicBool},
    task::{Context, Poll, Waker},
};

use tokio::io::{AsyncRead, ReadBuf};
use url::Url;

use super::{
    Codec, Next, OpenOptions, StreamHead, build_request, icy_shim::IcyShim, next_step, playlist_entry, request_on,
    transport::Transport,
};
use crate::{
    fuzzing::MemoryIo,
    radio::icy::{IcyDemuxer, IcyPart},
    redact,
};

/// The URL every fuzzed response answers (never resolved: the transport is in memory).
const FUZZ_URL: &str = "http://user:Zq7xK2pw@fuzz.invalid:8000/stream";

/// Reads `input` through the ICY shim, in server reads sized by `schedule` (see [`MemoryIo`]),
/// into buffers of `buf_size` bytes, to the end. Returns what hyper would see and whether the shim rewrote the
/// status line. Panics if a read makes no progress before the end.
pub fn icy_shim(input: &[u8], schedule: &[u8], buf_size: usize) -> (Vec<u8>, bool) {
    let flag = Arc::new(AtomicBool::new(false));
    let mut shim = IcyShim::new(MemoryIo::new(input, schedule, false), flag.clone());
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    let mut space = vec![0u8; buf_size.max(1)];
    loop {
        let mut buf = ReadBuf::new(&mut space);
        match Pin::new(&mut shim).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => break,
            Poll::Ready(Ok(())) => out.extend_from_slice(buf.filled()),
            Poll::Ready(Err(e)) => panic!("the in-memory server cannot fail: {e}"),
            Poll::Pending => panic!("the shim is pending over a server that is never pending"),
        }
    }
    (out, flag.load(std::sync::atomic::Ordering::Relaxed))
}

/// What [`response`] made of a server's answer.
#[derive(Debug)]
pub enum Outcome {
    /// A redirect to this URL (redacted).
    Redirect(String),
    /// A playlist whose first entry is this URL.
    Playlist(String),
    /// An audio stream: its head, codec, the audio bytes of its body and its metadata blocks.
    Stream { head: StreamHead, codec: Codec, audio_bytes: usize, metadata: Vec<String> },
}

thread_local! {
    /// One runtime for every call (only playlist reading needs its timer).
    static RUNTIME: RefCell<tokio::runtime::Runtime> = RefCell::new(
        tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a current-thread runtime"),
    );
}

/// Answers a request for [`FUZZ_URL`] with `input` (in reads sized by `schedule`) and
/// follows the answer the way [`super::open`] does for one hop: the head, then a playlist body or
/// the stream body de-interleaved by its `icy-metaint`. `Err` is the error [`super::open`] or
/// [`super::StreamBody::chunk`] would give.
pub fn response(input: &[u8], schedule: &[u8], metadata: bool) -> Result<Outcome, String> {
    RUNTIME.with_borrow(|runtime| runtime.block_on(respond(input, schedule, metadata)))
}

async fn respond(input: &[u8], schedule: &[u8], metadata: bool) -> Result<Outcome, String> {
    let url = Url::parse(FUZZ_URL).expect("a valid URL");
    let shown = redact(url.as_str());
    let options = OpenOptions { metadata, ..OpenOptions::default() };
    let request = build_request(&url, &shown, &options).map_err(|e| e.to_string())?;
    let transport = Transport::Memory(MemoryIo::new(input, schedule, true));
    let mut fetched = request_on(transport, request, &shown).await.map_err(|e| e.to_string())?;
    match next_step(&url, &fetched.head, &shown, &options, fetched.shoutcast).map_err(|e| e.to_string())? {
        Next::Redirect(next) => Ok(Outcome::Redirect(redact(next.as_str()))),
        Next::Playlist(kind) => playlist_entry(kind, &mut fetched.body, &url, &options, &shown)
            .await
            .map(Outcome::Playlist)
            .map_err(|e| e.to_string()),
        Next::Stream(head, codec) => {
            let mut demuxer = IcyDemuxer::new(head.metaint);
            let (mut audio_bytes, mut blocks) = (0, Vec::new());
            while let Some(chunk) = fetched.body.chunk().await.map_err(|e| e.to_string())? {
                demuxer.push(chunk, |part| match part {
                    IcyPart::Audio(bytes) => audio_bytes += bytes.len(),
                    IcyPart::Metadata(text) => blocks.push(text),
                });
            }
            Ok(Outcome::Stream { head, codec, audio_bytes, metadata: blocks })
        }
    }
}
