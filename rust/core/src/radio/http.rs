//! Opening a stream: the HTTP(S) client of RadioStream.
//!
//! [`open`] resolves and connects (TCP, then rustls for https, always
//! verifying the server), sends one `GET` with `Icy-MetaData: 1` on a hyper
//! HTTP/1 client connection, and follows redirects and `.pls` / `.m3u`
//! playlists (together at most [`OpenOptions::max_redirects`] hops) until a
//! response carries audio. Each hop's connect, TLS handshake and response head
//! share one [`OpenOptions::timeout`].
//!
//! SHOUTcast v1 servers answer `ICY 200 OK` instead of `HTTP/1.0 200 OK`; a
//! small IO wrapper under hyper rewrites that status line and lets everything
//! else through untouched. hyper's lenient header parsing options are on,
//! since those servers are sloppy about headers too. hyper decodes chunked
//! bodies.
//!
//! Nothing is spawned: the [`StreamBody`] owns both hyper's connection future
//! and the response body, and [`StreamBody::chunk`] drives the one while
//! waiting on the other, so the caller's task owns all the work and dropping
//! the body closes the socket.
//!
//! Credentials in the URL (`http://user:password@host/`) are sent as
//! `Authorization: Basic`; error messages show every URL with the password
//! replaced by `***`.

use std::{
    cell::Cell,
    error::Error as StdError,
    fmt,
    future::{Future, poll_fn},
    io,
    path::PathBuf,
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::{
    Request, Uri,
    body::{Body, Incoming},
    client::conn::http1,
    header::{self, HeaderMap, HeaderValue},
};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};
use url::{Host, Position, Url};

use super::{
    Codec,
    icy::decode_text,
    playlist::{self, PlaylistKind},
};
use crate::ws::tls;

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

/// The body of an open stream. It owns the connection: dropping it closes the socket.
pub struct StreamBody {
    connection: Driver,
    body: Incoming,
    /// The TCP socket under the connection (owned by it), for [`StreamBody::set_read_batch`].
    #[cfg(unix)]
    socket: std::os::fd::RawFd,
    /// The end (or an error) was returned.
    done: bool,
    /// The URL, redacted, for error messages.
    url: String,
}

impl StreamBody {
    /// Lets the socket wake its reader only once `bytes` are waiting (`SO_RCVLOWAT` on Linux and
    /// macOS; elsewhere nothing happens). A stream that arrives at a constant rate then costs
    /// the main thread a few reads a second instead of one per packet; the end of the stream
    /// and errors still wake it at once.
    pub fn set_read_batch(&self, bytes: usize) {
        #[cfg(unix)]
        {
            let value = libc::c_int::try_from(bytes.max(1)).unwrap_or(libc::c_int::MAX);
            // SAFETY: `socket` is the descriptor of the TCP stream the connection owns, open as long
            // as `self`; the option value is a c_int of the size passed.
            unsafe {
                libc::setsockopt(
                    self.socket,
                    libc::SOL_SOCKET,
                    libc::SO_RCVLOWAT,
                    (&raw const value).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        #[cfg(not(unix))]
        let _ = bytes;
    }

    /// The next chunk of body bytes (de-chunked); `Ok(None)` at the end of the stream.
    ///
    /// Empty frames and trailers are skipped. A read error is a transient [`OpenError`];
    /// after the end or an error, `Ok(None)`.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, OpenError> {
        if self.done {
            return Ok(None);
        }
        let result = poll_fn(|cx| self.poll_chunk(cx)).await;
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, OpenError>> {
        loop {
            // The connection reads the socket and feeds the body; it must run for the body to move.
            self.connection.poll(cx);
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => return Poll::Ready(Ok(Some(data))),
                    _ => continue,
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(read_error(&self.url, &e))),
                // A connection that failed may have ended the body without saying why.
                Poll::Ready(None) => {
                    return Poll::Ready(match self.connection.error() {
                        Some(error) => Err(OpenError::transient(format!("reading {} failed: {error}", self.url))),
                        None => Ok(None),
                    });
                }
                Poll::Pending => {
                    return match self.connection.error() {
                        Some(error) => {
                            Poll::Ready(Err(OpenError::transient(format!("reading {} failed: {error}", self.url))))
                        }
                        None => Poll::Pending,
                    };
                }
            }
        }
    }
}

impl fmt::Debug for StreamBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamBody").field("url", &self.url).field("done", &self.done).finish_non_exhaustive()
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

/// One hop's answer: the response head and the body, not read yet.
struct Fetched {
    head: hyper::http::response::Parts,
    body: StreamBody,
    shoutcast: bool,
}

/// The step a hop is at, for the timeout message.
#[derive(Clone, Copy)]
enum Step {
    Connect,
    Tls,
    Response,
}

/// Connects to `url` and sends the request, within `options.timeout`; `shown` is `url` redacted.
async fn fetch(
    url: &Url,
    shown: &str,
    options: &OpenOptions,
    tls_config: Option<Arc<ClientConfig>>,
) -> Result<Fetched, OpenError> {
    let step = Cell::new(Step::Connect);
    match tokio::time::timeout(options.timeout, exchange(url, shown, options, tls_config, &step)).await {
        Ok(result) => result,
        Err(_) => {
            let seconds = options.timeout.as_secs_f64();
            let (host, port) = (host_of(url), url.port_or_known_default().unwrap_or(0));
            Err(OpenError::transient(match step.get() {
                Step::Connect => format!("timed out after {seconds} s connecting to {shown}"),
                Step::Tls => format!("timed out after {seconds} s in the TLS handshake with {host}:{port}"),
                Step::Response => format!("timed out after {seconds} s waiting for the response from {shown}"),
            }))
        }
    }
}

/// Connect, TLS, request, response head.
async fn exchange(
    url: &Url,
    shown: &str,
    options: &OpenOptions,
    tls_config: Option<Arc<ClientConfig>>,
    step: &Cell<Step>,
) -> Result<Fetched, OpenError> {
    let host = host_of(url);
    let port = url.port_or_known_default().unwrap_or(80);
    let request = build_request(url, shown, options)?;

    let tcp = connect_tcp(&host, port).await?;
    let transport = match tls_config {
        None => Transport::Plain(tcp),
        Some(config) => {
            step.set(Step::Tls);
            let name = ServerName::try_from(host.clone())
                .map_err(|e| OpenError::permanent(format!("invalid TLS server name '{host}': {e}")))?;
            let stream = TlsConnector::from(config).connect(name, tcp).await.map_err(|e| tls_error(&host, port, e))?;
            Transport::Tls(Box::new(stream))
        }
    };

    step.set(Step::Response);
    request_on(transport, request, shown).await
}

/// Sends `request` over `transport` (through the ICY status-line shim) and waits for the response head.
async fn request_on(transport: Transport, request: Request<Empty<Bytes>>, shown: &str) -> Result<Fetched, OpenError> {
    #[cfg(unix)]
    let socket = transport.raw_fd();
    let shoutcast = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(IcyShim::new(transport, shoutcast.clone()));
    let (mut sender, conn) = http1::Builder::new()
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .ignore_invalid_headers_in_responses(true)
        // `Icy-Metadata`, not `icy-metadata`: some old servers compare names case-sensitively.
        .title_case_headers(true)
        .handshake::<_, Empty<Bytes>>(io)
        .await
        .map_err(|e| response_error(shown, &e))?;
    let mut connection = Driver::new(conn);
    let mut response = pin!(sender.send_request(request));
    let response = poll_fn(|cx| {
        connection.poll(cx);
        match response.as_mut().poll(cx) {
            Poll::Ready(result) => Poll::Ready(result.map_err(|e| response_error(shown, &e))),
            Poll::Pending => match connection.error() {
                Some(error) => {
                    Poll::Ready(Err(OpenError::transient(format!("reading the response from {shown} failed: {error}"))))
                }
                None => Poll::Pending,
            },
        }
    })
    .await?;
    drop(sender);
    let (head, body) = response.into_parts();
    let body = StreamBody {
        connection,
        body,
        #[cfg(unix)]
        socket,
        done: false,
        url: shown.to_string(),
    };
    Ok(Fetched { head, body, shoutcast: shoutcast.load(Ordering::Relaxed) })
}

/// The request for `url`: `GET /path?query HTTP/1.1` with the headers a stream server expects.
fn build_request(url: &Url, shown: &str, options: &OpenOptions) -> Result<Request<Empty<Bytes>>, OpenError> {
    let target = &url[Position::BeforePath..Position::AfterQuery];
    let target = if target.is_empty() { "/" } else { target };
    let uri: Uri = target.parse().map_err(|e| OpenError::permanent(format!("invalid URL {shown}: {e}")))?;
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let invalid = |what: &str| OpenError::permanent(format!("invalid {what} for {shown}"));
    let mut builder = Request::get(uri)
        .header(header::HOST, HeaderValue::from_str(&host).map_err(|_| invalid("host"))?)
        .header(header::USER_AGENT, HeaderValue::from_str(&options.user_agent).map_err(|_| invalid("User-Agent"))?)
        .header(header::ACCEPT, "*/*");
    if options.metadata {
        builder = builder.header("Icy-MetaData", "1");
    }
    if !url.username().is_empty() || url.password().is_some() {
        let mut credentials = percent_decode(url.username());
        credentials.push(b':');
        credentials.extend(percent_decode(url.password().unwrap_or("")));
        let mut value =
            HeaderValue::from_str(&format!("Basic {}", base64(&credentials))).map_err(|_| invalid("credentials"))?;
        value.set_sensitive(true);
        builder = builder.header(header::AUTHORIZATION, value);
    }
    builder
        .header(header::CONNECTION, "close")
        .body(Empty::new())
        .map_err(|e| OpenError::permanent(format!("cannot make a request for {shown}: {e}")))
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

/// The rustls configuration for https, made once per [`open`].
fn https_config(cache: &mut Option<Arc<ClientConfig>>, options: &OpenOptions) -> Result<Arc<ClientConfig>, OpenError> {
    if cache.is_none() {
        *cache = Some(tls::client_config(options.ca_file.as_deref()).map_err(OpenError::permanent)?);
    }
    Ok(cache.clone().expect("set above"))
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

/// The host to connect to (IPv6 without brackets).
fn host_of(url: &Url) -> String {
    match url.host() {
        Some(Host::Domain(domain)) => domain.to_string(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        None => String::new(),
    }
}

/// `url` with the password of its userinfo replaced by `***` (also for text that does not parse).
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_string() };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..].find(['/', '?', '#']).map_or(url.len(), |i| authority_start + i);
    let authority = &url[authority_start..authority_end];
    let Some(at) = authority.rfind('@') else { return url.to_string() };
    let Some(colon) = authority[..at].find(':') else { return url.to_string() };
    let password_start = authority_start + colon + 1;
    format!("{}***{}", &url[..password_start], &url[authority_start + at..])
}

/// Resolves `host` and connects to its first address that answers.
async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, OpenError> {
    let addresses: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| OpenError::transient(format!("cannot resolve host '{host}': {e}")))?
        .collect();
    let mut error = format!("cannot resolve host '{host}': no address");
    for address in addresses {
        // `radio.example:8000 (192.0.2.1)`, or just the address when the host is one.
        let target = if host.parse::<std::net::IpAddr>().is_ok() {
            address.to_string()
        } else {
            format!("{host}:{port} ({})", address.ip())
        };
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                error = format!("connection refused by {target} (is the server running?)");
            }
            Err(e) => error = format!("cannot connect to {target}: {e}"),
        }
    }
    Err(OpenError::transient(error))
}

/// A failed TLS handshake: permanent when rustls refused (certificate, protocol), transient
/// when the connection broke.
fn tls_error(host: &str, port: u16, error: io::Error) -> OpenError {
    let refused = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).is_some();
    let text = error.to_string();
    let hint = if text.contains("certificate") || text.contains("Certificate") {
        " (the server's certificate is not trusted: set ca_file to the CA that signed it)"
    } else {
        ""
    };
    let message = format!("TLS handshake with {host}:{port} failed: {text}{hint}");
    if refused { OpenError::permanent(message) } else { OpenError::transient(message) }
}

/// An error of hyper before the response head arrived.
fn response_error(shown: &str, error: &hyper::Error) -> OpenError {
    if error.is_incomplete_message() || error.is_canceled() || error.is_closed() {
        OpenError::transient(format!("connection closed before the response from {shown}"))
    } else if error.is_parse() {
        OpenError::permanent(format!("bad HTTP response from {shown}: {}", error_chain(error)))
    } else {
        OpenError::transient(format!("reading the response from {shown} failed: {}", error_chain(error)))
    }
}

/// An error of hyper while reading the body.
fn read_error(shown: &str, error: &hyper::Error) -> OpenError {
    let io_kind = std::iter::successors(error.source(), |e| (*e).source())
        .find_map(|e| e.downcast_ref::<io::Error>())
        .map(io::Error::kind);
    if error.is_incomplete_message() || io_kind == Some(io::ErrorKind::UnexpectedEof) {
        OpenError::transient(format!("{shown} closed the connection in the middle of the body"))
    } else if io_kind == Some(io::ErrorKind::ConnectionReset) {
        OpenError::transient(format!("connection reset while reading {shown}"))
    } else {
        OpenError::transient(format!("reading {shown} failed: {}", error_chain(error)))
    }
}

/// `error` and its sources, `: `-separated, without repeats.
fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
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

/// `%XX` escapes decoded (the URL crate keeps userinfo percent-encoded).
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(Some(high)), Some(Some(low))) =
                (bytes.get(i + 1).map(|&b| hex(b)), bytes.get(i + 2).map(|&b| hex(b)))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Standard base64 with padding (for `Authorization: Basic`).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// hyper's connection future for one request.
type Connection = http1::Connection<TokioIo<IcyShim<Transport>>, Empty<Bytes>>;

/// Polls hyper's connection future until it finishes, remembering how it finished.
struct Driver {
    connection: Connection,
    state: DriverState,
}

enum DriverState {
    Running,
    Done,
    Failed(String),
}

impl Driver {
    fn new(connection: Connection) -> Self {
        Driver { connection, state: DriverState::Running }
    }

    /// Lets the connection read and write; registers `cx` for its wake-ups while it runs.
    fn poll(&mut self, cx: &mut Context<'_>) {
        if let DriverState::Running = self.state {
            match Pin::new(&mut self.connection).poll(cx) {
                Poll::Ready(Ok(())) => self.state = DriverState::Done,
                Poll::Ready(Err(e)) => self.state = DriverState::Failed(error_chain(&e)),
                Poll::Pending => {}
            }
        }
    }

    fn error(&self) -> Option<&str> {
        match &self.state {
            DriverState::Failed(error) => Some(error),
            _ => None,
        }
    }
}

/// A TCP or TLS stream.
enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Canned server bytes (the fuzz targets' server).
    #[cfg(feature = "fuzzing")]
    Memory(crate::fuzzing::MemoryIo),
}

impl Transport {
    /// The TCP socket's descriptor (-1 for none).
    #[cfg(unix)]
    fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Transport::Plain(s) => s.as_raw_fd(),
            Transport::Tls(s) => s.get_ref().0.as_raw_fd(),
            #[cfg(feature = "fuzzing")]
            Transport::Memory(_) => -1,
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            #[cfg(feature = "fuzzing")]
            Transport::Memory(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            #[cfg(feature = "fuzzing")]
            Transport::Memory(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            #[cfg(feature = "fuzzing")]
            Transport::Memory(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
            #[cfg(feature = "fuzzing")]
            Transport::Memory(_) => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(feature = "fuzzing")]
            Transport::Memory(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(feature = "fuzzing")]
            Transport::Memory(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// SHOUTcast's status line and what hyper expects instead.
const ICY_STATUS: &[u8] = b"ICY ";
const HTTP_STATUS: &[u8] = b"HTTP/1.0 ";

/// Rewrites a leading `ICY ` status line into `HTTP/1.0 `, then passes everything through.
///
/// Until the first four bytes are in (or the bytes so far cannot start `ICY `), what the
/// server sent is held back; then it is handed over, rewritten or not, before any further read.
struct IcyShim<S> {
    inner: S,
    state: ShimState,
    /// Set when the status line was rewritten.
    shoutcast: Arc<AtomicBool>,
}

enum ShimState {
    /// Collecting the first bytes.
    Sniffing(Vec<u8>),
    /// Handing over these bytes, from this position.
    Replaying(Vec<u8>, usize),
    /// Everything passes through.
    Passing,
}

impl<S> IcyShim<S> {
    fn new(inner: S, shoutcast: Arc<AtomicBool>) -> Self {
        IcyShim { inner, state: ShimState::Sniffing(Vec::with_capacity(ICY_STATUS.len())), shoutcast }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IcyShim<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                ShimState::Passing => return Pin::new(&mut this.inner).poll_read(cx, buf),
                ShimState::Replaying(bytes, pos) => {
                    let n = (bytes.len() - *pos).min(buf.remaining());
                    buf.put_slice(&bytes[*pos..*pos + n]);
                    *pos += n;
                    if *pos == bytes.len() {
                        this.state = ShimState::Passing;
                    }
                    return Poll::Ready(Ok(()));
                }
                ShimState::Sniffing(held) => {
                    let mut space = [0u8; 4];
                    let mut first = ReadBuf::new(&mut space[..ICY_STATUS.len() - held.len()]);
                    ready!(Pin::new(&mut this.inner).poll_read(cx, &mut first))?;
                    let eof = first.filled().is_empty();
                    held.extend_from_slice(first.filled());
                    let decided = eof || held.len() == ICY_STATUS.len() || !ICY_STATUS.starts_with(held);
                    if !decided {
                        continue;
                    }
                    let mut bytes = std::mem::take(held);
                    if bytes == ICY_STATUS {
                        bytes = HTTP_STATUS.to_vec();
                        this.shoutcast.store(true, Ordering::Relaxed);
                    }
                    this.state = if bytes.is_empty() { ShimState::Passing } else { ShimState::Replaying(bytes, 0) };
                    if eof && matches!(this.state, ShimState::Passing) {
                        return Poll::Ready(Ok(()));
                    }
                }
            }
        }
    }
}

crate::forward::forward_async_write!(IcyShim);

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[path = "http_fuzz.rs"]
pub mod fuzz;

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
