//! One request on a hyper HTTP/1 client connection: the request a stream server expects, the
//! response head, and the [`StreamBody`] that keeps driving the connection while it is read.
//!
//! hyper's lenient header parsing options are on, since SHOUTcast servers are sloppy about
//! headers; hyper decodes chunked bodies. Nothing is spawned: the body owns both hyper's
//! connection future and the response body, and [`StreamBody::chunk`] drives the one while
//! waiting on the other, so the caller's task owns all the work and dropping the body closes
//! the socket.

use std::{
    error::Error as StdError,
    fmt,
    future::{Future, poll_fn},
    io,
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::{
    Request, Uri,
    body::{Body, Incoming},
    client::conn::http1,
    header::{self, HeaderValue},
};
use hyper_util::rt::TokioIo;
use url::{Position, Url};

use super::{OpenError, OpenOptions, auth::basic_auth, icy_shim::IcyShim, transport::Transport};

/// One hop's answer: the response head and the body, not read yet.
pub(super) struct Fetched {
    pub(super) head: hyper::http::response::Parts,
    pub(super) body: StreamBody,
    /// The server answered with SHOUTcast's `ICY 200 OK` status line.
    pub(super) shoutcast: bool,
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
    /// its reader (the I/O worker) a few reads a second instead of one per packet; the end of
    /// the stream and errors still wake it at once.
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

/// Sends `request` over `transport` (through the ICY status-line shim) and waits for the response head.
pub(super) async fn request_on(
    transport: Transport,
    request: Request<Empty<Bytes>>,
    shown: &str,
) -> Result<Fetched, OpenError> {
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
pub(super) fn build_request(url: &Url, shown: &str, options: &OpenOptions) -> Result<Request<Empty<Bytes>>, OpenError> {
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
    if let Some(value) = basic_auth(url).map_err(|_| invalid("credentials"))? {
        builder = builder.header(header::AUTHORIZATION, value);
    }
    builder
        .header(header::CONNECTION, "close")
        .body(Empty::new())
        .map_err(|e| OpenError::permanent(format!("cannot make a request for {shown}: {e}")))
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
