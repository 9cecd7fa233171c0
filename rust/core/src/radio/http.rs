//! Opening a stream: the HTTP(S) client of RadioStream.
//!
//! [`open`] resolves and connects (TCP, then rustls for https, always
//! verifying the server), sends one `GET` with `Icy-MetaData: 1` on a hyper
//! HTTP/1 client connection, and follows redirects and `.pls` / `.m3u` / `.xspf`
//! playlists (together at most [`OpenOptions::max_redirects`] hops) until a
//! response carries audio. Each hop's connect, TLS handshake and response head
//! share one [`OpenOptions::timeout`].
//!
//! This file follows the hops and reads each response head. Under it,
//! `transport` makes the TCP or TLS connection, `icy_shim` turns SHOUTcast's
//! `ICY 200 OK` status line into one hyper accepts, `connection` runs the
//! request on hyper and owns the [`StreamBody`], and `auth` sends credentials
//! in the URL (`http://user:password@host/`) as `Authorization: Basic`. Error
//! messages show every URL through [`crate::redact`], without its credentials.

mod auth;
mod connection;
mod icy_shim;
mod transport;

use std::{fmt, future::Future, path::PathBuf, sync::Arc, time::Duration};

use hyper::header::{self, HeaderMap};
use rustls::ClientConfig;
use tokio::time::Instant;
use url::Url;

pub use self::connection::StreamBody;
use self::{
    connection::{Fetched, build_request, request_on},
    transport::{Transport, host_of, https_config},
};
use super::{
    Codec,
    icy::decode_text,
    playlist::{self, PlaylistKind},
};
use crate::redact;

/// A playlist body larger than this is not a playlist.
const MAX_PLAYLIST_BYTES: usize = 64 * 1024;
/// An `icy-metaint` above this is nonsense (servers use 8 KiB to 64 KiB).
const MAX_METAINT: usize = 1_000_000;
/// `icy-name` and `icy-genre` are cut to this many characters.
const MAX_HEADER_CHARS: usize = 256;

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

    fn permanent(message: String) -> Self {
        OpenError { message, permanent: true }
    }

    fn transient(message: String) -> Self {
        OpenError { message, permanent: false }
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
    let start = parse_url(url.trim())?;
    let mut tls_config = None;
    let mut current = start.clone();
    let mut hops = 0u32;
    let mut follow = |next: Url| {
        hops += 1;
        if hops > u32::from(options.max_redirects) {
            return Err(OpenError::permanent(format!(
                "too many redirects (more than {}) starting at {}",
                options.max_redirects,
                redact(start.as_str())
            )));
        }
        Ok(next)
    };
    loop {
        let shown = redact(current.as_str());
        let config = if current.scheme() == "https" { Some(https_config(&mut tls_config, options)?) } else { None };
        let Fetched { head, mut body, shoutcast } = fetch(&current, &shown, options, config).await?;
        match next_step(&current, &head, &shown, options, shoutcast)? {
            Next::Redirect(next) => current = follow(next)?,
            Next::Playlist(kind) => {
                let entry = playlist_entry(kind, &mut body, &current, options, &shown).await?;
                current = follow(parse_url(&entry)?)?;
            }
            Next::Stream(stream_head, codec) => return Ok((stream_head, codec, body)),
        }
    }
}

/// What a response head asks for next.
enum Next {
    /// Follow this redirect.
    Redirect(Url),
    /// The body is a playlist of this kind.
    Playlist(PlaylistKind),
    /// The body is the stream.
    Stream(StreamHead, Codec),
}

/// Reads a response head: a redirect, an error status, a playlist or an audio stream.
fn next_step(
    current: &Url,
    head: &hyper::http::response::Parts,
    shown: &str,
    options: &OpenOptions,
    shoutcast: bool,
) -> Result<Next, OpenError> {
    let status = head.status;
    if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        let Some(location) = head.headers.get(header::LOCATION) else {
            return Err(OpenError::permanent(format!("{} without a Location from {shown}", status_text(head))));
        };
        let location = String::from_utf8_lossy(location.as_bytes()).trim().to_string();
        let next = current.join(&location).map_err(|e| {
            OpenError::permanent(format!("bad redirect Location '{}' from {shown}: {e}", redact(&location)))
        })?;
        check_scheme(&next)?;
        return Ok(Next::Redirect(next));
    }
    if status.is_client_error() {
        return Err(OpenError::permanent(format!("{} from {shown}", status_text(head))));
    }
    if !status.is_success() {
        return Err(OpenError::transient(format!("{} from {shown}", status_text(head))));
    }

    let content_type = header_text(&head.headers, header::CONTENT_TYPE);
    let content_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if let Some(kind) = playlist::playlist_kind(current.as_str(), &content_type) {
        return Ok(Next::Playlist(kind));
    }
    let Some(codec) = Codec::from_content_type(&content_type) else {
        return Err(OpenError::permanent(format!("{shown} is not an audio stream (Content-Type: {content_type})")));
    };

    let metaint = if options.metadata { metaint(&head.headers, shown)? } else { None };
    let stream_head = StreamHead {
        url: current.to_string(),
        content_type,
        name: short_text(&header_text(&head.headers, "icy-name")),
        genre: short_text(&header_text(&head.headers, "icy-genre")),
        bitrate_kbps: first_number(&header_text(&head.headers, "icy-br")),
        metaint,
        shoutcast,
    };
    Ok(Next::Stream(stream_head, codec))
}

/// The playlist in `body` and its first http(s) entry.
async fn playlist_entry(
    kind: PlaylistKind,
    body: &mut StreamBody,
    current: &Url,
    options: &OpenOptions,
    shown: &str,
) -> Result<String, OpenError> {
    let text = read_playlist(body, options.timeout, shown).await?;
    if kind == PlaylistKind::M3u && text.contains("#EXT-X-") {
        return Err(OpenError::permanent(format!(
            "{shown} is an HLS playlist, which is not supported (use the station's direct stream URL)"
        )));
    }
    playlist::first_entry(kind, &text, current.as_str())
        .ok_or_else(|| OpenError::permanent(format!("playlist {shown} has no http(s) entry")))
}

/// Connects to `url` and sends the request; the connect, the TLS handshake and the response head
/// share `options.timeout`. `shown` is `url` redacted.
async fn fetch(
    url: &Url,
    shown: &str,
    options: &OpenOptions,
    tls_config: Option<Arc<ClientConfig>>,
) -> Result<Fetched, OpenError> {
    let deadline = Instant::now() + options.timeout;
    let seconds = options.timeout.as_secs_f64();
    let host = host_of(url);
    let port = url.port_or_known_default().unwrap_or(80);
    let request = build_request(url, shown, options)?;
    let tcp = within(deadline, transport::connect_tcp(&host, port), || {
        format!("timed out after {seconds} s connecting to {shown}")
    })
    .await?;
    let transport = match tls_config {
        None => Transport::Plain(tcp),
        Some(config) => {
            within(deadline, transport::tls_handshake(&host, port, tcp, config), || {
                format!("timed out after {seconds} s in the TLS handshake with {host}:{port}")
            })
            .await?
        }
    };
    within(deadline, request_on(transport, request, shown), || {
        format!("timed out after {seconds} s waiting for the response from {shown}")
    })
    .await
}

/// `step`'s result, or a transient error saying `timed_out()` once `deadline` has passed.
async fn within<T>(
    deadline: Instant,
    step: impl Future<Output = Result<T, OpenError>>,
    timed_out: impl FnOnce() -> String,
) -> Result<T, OpenError> {
    tokio::time::timeout_at(deadline, step).await.unwrap_or_else(|_| Err(OpenError::transient(timed_out())))
}

/// The playlist body, at most [`MAX_PLAYLIST_BYTES`], read within `timeout`.
async fn read_playlist(body: &mut StreamBody, timeout: Duration, shown: &str) -> Result<String, OpenError> {
    let read = async {
        let mut bytes = Vec::new();
        while let Some(chunk) = body.chunk().await? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_PLAYLIST_BYTES {
                return Err(OpenError::permanent(format!(
                    "playlist {shown} is larger than {} KiB",
                    MAX_PLAYLIST_BYTES / 1024
                )));
            }
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    tokio::time::timeout(timeout, read).await.unwrap_or_else(|_| {
        Err(OpenError::transient(format!("timed out after {} s reading the playlist {shown}", timeout.as_secs_f64())))
    })
}

/// `url` parsed, with an http or https scheme and a host.
fn parse_url(url: &str) -> Result<Url, OpenError> {
    let parsed = Url::parse(url).map_err(|e| OpenError::permanent(format!("invalid URL '{}': {e}", redact(url))))?;
    check_scheme(&parsed)?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(OpenError::permanent(format!("URL '{}' has no host", redact(url))));
    }
    Ok(parsed)
}

fn check_scheme(url: &Url) -> Result<(), OpenError> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        scheme => Err(OpenError::permanent(format!(
            "unsupported scheme '{scheme}' in {} (only http and https)",
            redact(url.as_str())
        ))),
    }
}

/// `HTTP 404 Not Found`, with the server's own reason phrase when it sent an unusual one.
fn status_text(head: &hyper::http::response::Parts) -> String {
    let reason = head
        .extensions
        .get::<hyper::ext::ReasonPhrase>()
        .map(|reason| String::from_utf8_lossy(reason.as_bytes()).into_owned())
        .or_else(|| head.status.canonical_reason().map(str::to_string))
        .unwrap_or_default();
    format!("HTTP {} {reason}", head.status.as_u16()).trim_end().to_string()
}

/// A header's value as text (UTF-8, else Latin-1), trimmed; "" when absent.
fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> String {
    headers.get(name).map(|value| decode_text(value.as_bytes()).trim().to_string()).unwrap_or_default()
}

/// `text` cut to [`MAX_HEADER_CHARS`] characters.
fn short_text(text: &str) -> String {
    text.chars().take(MAX_HEADER_CHARS).collect::<String>().trim_end().to_string()
}

/// The first decimal number in `text` (`128`, `128,128`, `128 kbps`).
fn first_number(text: &str) -> Option<u32> {
    let digits: String = text.chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// `icy-metaint`, when sent; a value that is not a number in 1..=[`MAX_METAINT`] is an error.
fn metaint(headers: &HeaderMap, shown: &str) -> Result<Option<usize>, OpenError> {
    if !headers.contains_key("icy-metaint") {
        return Ok(None);
    }
    let text = header_text(headers, "icy-metaint");
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_METAINT).contains(&n) => Ok(Some(n)),
        _ => Err(OpenError::permanent(format!("bad icy-metaint '{}' from {shown}", short_text(&text)))),
    }
}

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;

#[cfg(test)]
mod tests;
