//! CONTRACT STUB (helper A replaces the bodies; keep the public signatures).
//! Opening a stream: http/https, `Icy-MetaData: 1`, SHOUTcast's `ICY 200 OK`
//! shim, redirects (at most 5), playlists followed to their first entry.

use std::{fmt, path::PathBuf, time::Duration};

use bytes::Bytes;

use super::Codec;

/// How to open a stream.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// Ask for ICY metadata (`Icy-MetaData: 1`).
    pub metadata: bool,
    /// Time allowed for each hop's connect, TLS handshake and response head.
    pub timeout: Duration,
    /// Redirects and playlist hops followed before giving up (5).
    pub max_redirects: u8,
    /// `User-Agent` header.
    pub user_agent: String,
    /// PEM file of a private CA for https; `None` trusts the public roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            metadata: true,
            timeout: Duration::from_secs(10),
            max_redirects: 5,
            user_agent: concat!("godot-async-net/", env!("CARGO_PKG_VERSION")).into(),
            ca_file: None,
        }
    }
}

/// What the server said about the stream it is sending.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamHead {
    /// The URL finally streamed, after redirects and playlists.
    pub url: String,
    /// `Content-Type` essence, lowercase ("" when absent).
    pub content_type: String,
    /// `icy-name`, `icy-genre` ("" when absent).
    pub name: String,
    pub genre: String,
    /// `icy-br` in kbit/s (the first number when a list).
    pub bitrate_kbps: Option<u32>,
    /// `icy-metaint`: audio bytes between metadata blocks, when metadata was asked for and sent.
    pub metaint: Option<usize>,
    /// True when the server answered with SHOUTcast's `ICY 200 OK` status line.
    pub shoutcast: bool,
}

/// The body of an open stream.
pub struct StreamBody {
    _private: (),
}

impl StreamBody {
    /// The next chunk of body bytes (de-chunked); `Ok(None)` at the end of the stream.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, OpenError> {
        todo!()
    }
}

/// Why a stream could not be opened or read.
#[derive(Clone, Debug)]
pub struct OpenError {
    message: String,
    permanent: bool,
}

impl OpenError {
    /// True when retrying the same URL cannot help (bad URL, HTTP 4xx, redirect loop,
    /// a content type that is not audio); false for refused, timed out, reset, 5xx.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OpenError {}

/// Opens `url`, following redirects and playlists, and returns the stream's head, its codec
/// and its body. A content type that is not audio is an error.
pub async fn open(url: &str, options: &OpenOptions) -> Result<(StreamHead, Codec, StreamBody), OpenError> {
    let _ = (url, options);
    todo!()
}
