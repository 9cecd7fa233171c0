//! `open` and `StreamBody` against tiny servers on 127.0.0.1:0 that write
//! canned responses (icecast, SHOUTcast, chunked, redirects, playlists,
//! errors, TLS with a CA made at test time), and the pieces under them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::radio::icy::{IcyDemuxer, IcyPart, stream_title};

/// Safety net so a broken client fails the test instead of hanging it.
const HANG_LIMIT: Duration = Duration::from_secs(10);

/// What the server writes for one request.
struct Reply {
    /// Written one after another, with a short pause between, then the connection is closed.
    writes: Vec<Vec<u8>>,
    /// Keep the connection open without writing more (for timeouts).
    hang: bool,
}

fn reply<const N: usize>(writes: [&[u8]; N]) -> Reply {
    Reply { writes: writes.iter().map(|w| w.to_vec()).collect(), hang: false }
}

/// A complete response with `status`, extra header lines and a body (no length: read to the close).
fn response(status: &str, headers: &[&str], body: &[u8]) -> Reply {
    let mut head = format!("{status}\r\n");
    for line in headers {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    reply([head.as_bytes(), body])
}

fn not_found() -> Reply {
    response("HTTP/1.1 404 Not Found", &["Content-Length: 9"], b"not found")
}

type Route = Arc<dyn Fn(&str, SocketAddr) -> Reply + Send + Sync>;

/// A server answering every connection with `route(path, its own address)`.
struct TestServer {
    addr: SocketAddr,
    scheme: &'static str,
    requests: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    async fn start(route: impl Fn(&str, SocketAddr) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_with(None, Arc::new(route)).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>, route: Route) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let log = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                stream.set_nodelay(true).unwrap();
                let (route, log, tls) = (route.clone(), log.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve(stream, route, addr, log).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, route, addr, log).await;
                            }
                        }
                    }
                });
            }
        });
        TestServer { addr, scheme, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Reads one request head, logs it, writes the reply.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    route: Route,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    log.lock().unwrap().push(head);
    let reply = route(&path, addr);
    for (i, part) in reply.writes.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if stream.write_all(part).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
    if reply.hang {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let _ = stream.shutdown().await;
}

fn options() -> OpenOptions {
    OpenOptions { timeout: Duration::from_secs(5), ..OpenOptions::default() }
}

async fn open_with(url: &str, options: &OpenOptions) -> Result<(StreamHead, Codec, StreamBody), OpenError> {
    tokio::time::timeout(HANG_LIMIT, open(url, options)).await.expect("open hung")
}

async fn open_err(url: &str) -> OpenError {
    open_with(url, &options()).await.map(|(head, ..)| head).expect_err("open should fail")
}

/// The whole body.
async fn read_all(body: &mut StreamBody) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(chunk) = tokio::time::timeout(HANG_LIMIT, body.chunk()).await.expect("chunk hung").unwrap() {
        assert!(!chunk.is_empty());
        all.extend_from_slice(&chunk);
    }
    all
}

/// `metaint` audio bytes per block, with `titles[i]` (or an empty block for "") after block `i`.
fn icy_body(metaint: usize, titles: &[&str], tail: usize) -> (Vec<u8>, Vec<u8>) {
    let (mut body, mut audio) = (Vec::new(), Vec::new());
    let mut next = 0u8;
    let mut audio_bytes = |n: usize, body: &mut Vec<u8>| {
        for _ in 0..n {
            next = next.wrapping_add(7);
            body.push(next);
            audio.push(next);
        }
    };
    for title in titles {
        audio_bytes(metaint, &mut body);
        let text = if title.is_empty() { String::new() } else { format!("StreamTitle='{title}';") };
        let blocks = text.len().div_ceil(16);
        body.push(blocks as u8);
        body.extend_from_slice(text.as_bytes());
        body.resize(body.len() + blocks * 16 - text.len(), 0);
    }
    audio_bytes(tail, &mut body);
    (body, audio)
}

/// The audio and the titles of a body, through the demuxer.
async fn demux(body: &mut StreamBody, metaint: Option<usize>) -> (Vec<u8>, Vec<String>) {
    let mut demuxer = IcyDemuxer::new(metaint);
    let (mut audio, mut titles) = (Vec::new(), Vec::new());
    while let Some(chunk) = body.chunk().await.unwrap() {
        demuxer.push(chunk, |part| match part {
            IcyPart::Audio(bytes) => audio.extend_from_slice(&bytes),
            IcyPart::Metadata(text) => titles.push(stream_title(&text).unwrap()),
        });
    }
    (audio, titles)
}

fn header_line<'a>(request: &'a str, name: &str) -> Option<&'a str> {
    request.lines().find(|line| line.to_ascii_lowercase().starts_with(&format!("{}:", name.to_ascii_lowercase())))
}

#[tokio::test]
async fn icecast_head_fields_and_metadata_de_interleave() {
    let (body, audio) = icy_body(8, &["One", "", "Rock 'n' Roll; Part 2"], 3);
    let server = TestServer::start(move |_, _| {
        let head = "HTTP/1.0 200 OK\r\nContent-Type: Audio/MPEG; charset=x\r\nicy-metaint: 8\r\n\
                    icy-name:  Test FM \r\nicy-genre: Rock\r\nicy-br: 128, 128\r\nServer: Icecast 2.4\r\n\r\n";
        // The body cut at odd places, one cut inside a metadata block.
        reply([head.as_bytes(), &body[..5], &body[5..20], &body[20..]])
    })
    .await;
    let (head, codec, mut stream) = open_with(&server.url("/live?x=1"), &options()).await.unwrap();
    assert_eq!(codec, Codec::Mp3);
    assert_eq!(
        head,
        StreamHead {
            url: server.url("/live?x=1"),
            content_type: "audio/mpeg".into(),
            name: "Test FM".into(),
            genre: "Rock".into(),
            bitrate_kbps: Some(128),
            metaint: Some(8),
            shoutcast: false,
        }
    );
    assert_eq!(demux(&mut stream, head.metaint).await, (audio, vec!["One".into(), "Rock 'n' Roll; Part 2".into()]));
    assert_eq!(stream.chunk().await.unwrap(), None, "the end stays the end");

    let requests = server.requests();
    let request = &requests[0];
    assert!(request.starts_with("GET /live?x=1 HTTP/1.1\r\n"), "{request}");
    assert_eq!(
        header_line(request, "icy-metadata").map(|l| l.to_ascii_lowercase()).as_deref(),
        Some("icy-metadata: 1")
    );
    assert_eq!(header_line(request, "host"), Some(format!("Host: {}", server.addr).as_str()));
    assert!(header_line(request, "user-agent").unwrap().contains("godot-async-net/"), "{request}");
    assert!(header_line(request, "accept").is_some() && header_line(request, "connection").is_some(), "{request}");
    assert_eq!(header_line(request, "authorization"), None);
}

#[tokio::test]
async fn without_metadata_nothing_is_asked_and_metaint_is_ignored() {
    let server = TestServer::start(|_, _| {
        response("HTTP/1.0 200 OK", &["Content-Type: audio/mpeg", "icy-metaint: 8"], b"plain audio bytes")
    })
    .await;
    let options = OpenOptions { metadata: false, ..options() };
    let (head, _, mut body) = open_with(&server.url("/"), &options).await.unwrap();
    assert_eq!(head.metaint, None);
    assert_eq!(read_all(&mut body).await, b"plain audio bytes");
    assert_eq!(header_line(&server.requests()[0], "icy-metadata"), None);
}

#[tokio::test]
async fn shoutcast_icy_status_line_whole_and_split() {
    let (body, audio) = icy_body(4, &["Shout"], 2);
    let head =
        "ICY 200 OK\r\nicy-notice1: <BR>SHOUTcast\r\ncontent-type:audio/aacp\r\nicy-metaint:4\r\nicy-br:64\r\n\r\n";
    for split in [None, Some(1), Some(2), Some(3), Some(4)] {
        let body = body.clone();
        let server = TestServer::start(move |_, _| match split {
            None => reply([&[head.as_bytes(), &body].concat()]),
            Some(at) => reply([&head.as_bytes()[..at], &head.as_bytes()[at..], &body]),
        })
        .await;
        let (head, codec, mut stream) = open_with(&server.url("/;"), &options()).await.unwrap();
        assert!(head.shoutcast, "split {split:?}");
        assert_eq!((codec, head.bitrate_kbps, head.metaint), (Codec::Aac, Some(64), Some(4)));
        assert_eq!(demux(&mut stream, head.metaint).await, (audio.clone(), vec!["Shout".to_string()]));
    }
}

#[tokio::test]
async fn chunked_bodies_are_decoded() {
    let server = TestServer::start(|_, _| {
        reply([
            b"HTTP/1.1 200 OK\r\nContent-Type: application/ogg\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            b"lo\r\n6\r\n world\r\n",
            b"0\r\n\r\n",
        ])
    })
    .await;
    let (head, codec, mut body) = open_with(&server.url("/ogg"), &options()).await.unwrap();
    assert_eq!((codec, head.shoutcast, head.metaint), (Codec::Vorbis, false, None));
    assert_eq!(read_all(&mut body).await, b"hello world");
}

#[tokio::test]
async fn lenient_headers_and_latin1_values() {
    let server = TestServer::start(|_, _| {
        reply([b"HTTP/1.0 200 OK\r\nContent-Type : audio/mpeg\r\nicy-name: Caf\xe9\r\n  del Mar\r\nicy genre: x\r\n\
              icy-genre: Jazz\r\nicy-br: abc\r\n\r\nbody"])
    })
    .await;
    let (head, codec, mut body) = open_with(&server.url("/"), &options()).await.unwrap();
    assert_eq!(codec, Codec::Mp3);
    assert_eq!(head.content_type, "audio/mpeg");
    assert!(head.name.starts_with("Café") && head.name.ends_with("del Mar"), "{:?}", head.name);
    assert_eq!((head.genre.as_str(), head.bitrate_kbps), ("Jazz", None));
    assert_eq!(read_all(&mut body).await, b"body");
}

#[tokio::test]
async fn redirects_relative_and_absolute() {
    let server = TestServer::start(|path, addr| match path {
        "/start" => response("HTTP/1.1 301 Moved Permanently", &[&format!("Location: http://{addr}/a/b")], b""),
        "/a/b" => response("HTTP/1.1 302 Found", &["Location: ../temp?q=1", "Content-Length: 0"], b""),
        "/temp?q=1" => response("HTTP/1.1 307 Temporary Redirect", &["Location: /stream"], b""),
        "/stream" => response("HTTP/1.0 200 OK", &["Content-Type: audio/mpeg"], b"audio"),
        _ => not_found(),
    })
    .await;
    let (head, _, mut body) = open_with(&server.url("/start"), &options()).await.unwrap();
    assert_eq!(head.url, server.url("/stream"));
    assert_eq!(read_all(&mut body).await, b"audio");
    assert_eq!(server.requests().len(), 4);

    let three = OpenOptions { max_redirects: 3, ..options() };
    assert!(open_with(&server.url("/start"), &three).await.is_ok(), "three hops are allowed");
    let two = OpenOptions { max_redirects: 2, ..options() };
    let error = open_with(&server.url("/start"), &two).await.map(|_| ()).unwrap_err();
    assert!(error.is_permanent());
    assert!(error.to_string().contains("too many redirects (more than 2)"), "{error}");
}

#[tokio::test]
async fn a_redirect_loop_is_a_permanent_error() {
    let server = TestServer::start(|path, _| {
        let next = if path == "/one" { "/two" } else { "/one" };
        response("HTTP/1.1 302 Found", &[&format!("Location: {next}")], b"")
    })
    .await;
    let url = server.url("/one").replace("http://", "http://user:hunter2@");
    let error = open_with(&url, &options()).await.map(|_| ()).unwrap_err();
    assert!(error.is_permanent());
    let text = error.to_string();
    assert_eq!(text, format!("too many redirects (more than 5) starting at http://***@{}/one", server.addr));
    assert_eq!(server.requests().len(), 6, "the first request and 5 redirects");
    assert!(!text.contains("hunter2"));
}

#[tokio::test]
async fn status_errors() {
    let server = TestServer::start(|path, _| match path {
        "/busy" => response("HTTP/1.1 503 Service Unavailable", &["Content-Length: 4"], b"busy"),
        "/odd" => response("HTTP/1.1 403 Go Away", &[], b""),
        "/nowhere" => response("HTTP/1.1 302 Found", &[], b""),
        "/weird" => response("HTTP/1.1 300 Multiple Choices", &[], b""),
        _ => not_found(),
    })
    .await;
    let error = open_err(&server.url("/missing")).await;
    assert!(error.is_permanent());
    assert_eq!(error.to_string(), format!("HTTP 404 Not Found from {}", server.url("/missing")));
    let error = open_err(&server.url("/busy")).await;
    assert!(!error.is_permanent());
    assert_eq!(error.to_string(), format!("HTTP 503 Service Unavailable from {}", server.url("/busy")));
    let error = open_err(&server.url("/odd")).await;
    assert!(error.is_permanent() && error.to_string().starts_with("HTTP 403 Go Away from"), "{error}");
    let error = open_err(&server.url("/nowhere")).await;
    assert!(error.is_permanent() && error.to_string().contains("without a Location"), "{error}");
    assert!(!open_err(&server.url("/weird")).await.is_permanent());
}

#[tokio::test]
async fn an_endless_response_head_is_refused_not_buffered() {
    // 1 MiB of headers: hyper holds at most ~400 KiB of head (100 headers) and refuses the rest.
    let many: Vec<String> = (0..20_000).map(|i| format!("X-Filler-{i}: {}", "v".repeat(40))).collect();
    let long = format!("X-Long: {}", "w".repeat(1 << 20));
    let server = TestServer::start(move |path, _| {
        let headers: Vec<&str> = match path {
            "/many" => many.iter().map(String::as_str).collect(),
            _ => vec![long.as_str()],
        };
        response("HTTP/1.1 200 OK", &headers, b"")
    })
    .await;
    for path in ["/many", "/long"] {
        let error = open_err(&server.url(path)).await;
        assert!(error.is_permanent() && error.to_string().contains("bad HTTP response"), "{path}: {error}");
    }
}

#[tokio::test]
async fn content_that_is_not_audio() {
    let server = TestServer::start(|path, _| match path {
        "/page" => response("HTTP/1.1 200 OK", &["Content-Type: text/html; charset=utf-8"], b"<html>"),
        "/zero" => response("HTTP/1.0 200 OK", &["Content-Type: audio/mpeg", "icy-metaint: 0"], b""),
        _ => response("HTTP/1.0 200 OK", &["Content-Type: audio/mpeg", "icy-metaint: 2000000"], b""),
    })
    .await;
    let error = open_err(&server.url("/page")).await;
    assert!(error.is_permanent());
    assert_eq!(error.to_string(), format!("{} is not an audio stream (Content-Type: text/html)", server.url("/page")));
    for path in ["/zero", "/huge"] {
        let error = open_err(&server.url(path)).await;
        assert!(error.is_permanent() && error.to_string().contains("bad icy-metaint"), "{error}");
    }
}

#[tokio::test]
async fn playlists_are_followed_to_their_first_http_entry() {
    let server = TestServer::start(|path, addr| {
        let big = "#".repeat(70 * 1024);
        match path {
            "/list.pls" => response(
                "HTTP/1.1 200 OK",
                &["Content-Type: audio/x-scpls"],
                b"[playlist]\r\nFile2=http://wrong/\r\nFile1=stream\r\nNumberOfEntries=2\r\n",
            ),
            "/dir/by-extension.M3U" => response(
                "HTTP/1.0 200 OK",
                &["Content-Type: text/plain"],
                format!("#EXTM3U\n#EXTINF:-1,x\nfile:///tmp/x.mp3\nhttp://{addr}/stream\n").as_bytes(),
            ),
            "/typed" => response("HTTP/1.0 200 OK", &["Content-Type: audio/x-mpegurl"], b"/redirect\n"),
            "/redirect" => response("HTTP/1.1 302 Found", &["Location: /stream"], b""),
            "/no-entry.pls" => response("HTTP/1.0 200 OK", &[], b"[playlist]\nFile1=file:///x.mp3\n"),
            "/live.m3u8" => response(
                "HTTP/1.0 200 OK",
                &["Content-Type: application/vnd.apple.mpegurl"],
                b"#EXTM3U\n#EXT-X-TARGETDURATION:6\nseg1.aac\n",
            ),
            "/big.m3u" => response("HTTP/1.0 200 OK", &["Content-Type: audio/mpegurl"], big.as_bytes()),
            "/stream" => response("HTTP/1.0 200 OK", &["Content-Type: audio/mpeg"], b"audio"),
            _ => not_found(),
        }
    })
    .await;
    for path in ["/list.pls", "/dir/by-extension.M3U", "/typed"] {
        let (head, codec, mut body) = open_with(&server.url(path), &options()).await.unwrap();
        assert_eq!((head.url.as_str(), codec), (server.url("/stream").as_str(), Codec::Mp3), "{path}");
        assert_eq!(read_all(&mut body).await, b"audio");
    }
    let one = OpenOptions { max_redirects: 1, ..options() };
    let error = open_with(&server.url("/typed"), &one).await.map(|_| ()).unwrap_err();
    assert!(error.to_string().contains("too many redirects"), "a playlist is a hop: {error}");

    let error = open_err(&server.url("/no-entry.pls")).await;
    assert!(error.is_permanent());
    assert_eq!(error.to_string(), format!("playlist {} has no http(s) entry", server.url("/no-entry.pls")));
    let error = open_err(&server.url("/live.m3u8")).await;
    assert!(error.is_permanent() && error.to_string().contains("HLS"), "{error}");
    let error = open_err(&server.url("/big.m3u")).await;
    assert!(error.is_permanent() && error.to_string().contains("larger than 64 KiB"), "{error}");
}

#[tokio::test]
async fn a_refused_port_is_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = open_err(&format!("http://{addr}/stream")).await;
    assert!(!error.is_permanent());
    assert!(error.to_string().starts_with(&format!("connection refused by {addr}")), "{error}");
}

#[tokio::test]
async fn bad_urls_are_permanent() {
    for (url, expected) in [
        ("ftp://user:pw@example.com/x", "unsupported scheme 'ftp' in ftp://***@example.com/x"),
        ("not a url", "invalid URL 'not a url'"),
        ("http://", "invalid URL 'http://'"),
    ] {
        let error = open_err(url).await;
        assert!(error.is_permanent(), "{url}");
        assert!(error.to_string().starts_with(expected), "{error}");
    }
}

#[tokio::test]
async fn basic_auth_is_sent_and_the_password_never_shown() {
    let server = TestServer::start(|_, _| not_found()).await;
    let url = format!("http://alice:s3cr%40t@{}/private", server.addr);
    let error = open_err(&url).await;
    let text = error.to_string();
    assert_eq!(text, format!("HTTP 404 Not Found from http://***@{}/private", server.addr));
    let request = &server.requests()[0];
    // Base64 of `alice:s3cr@t`: the password percent-decoded.
    assert_eq!(header_line(request, "authorization"), Some("Authorization: Basic YWxpY2U6czNjckB0"));

    // A token written as the user name alone is a secret too.
    let error = open_err(&format!("http://sekrit-token@{}/private", server.addr)).await;
    assert_eq!(error.to_string(), format!("HTTP 404 Not Found from http://***@{}/private", server.addr));
    // Base64 of `sekrit-token:`.
    assert_eq!(header_line(&server.requests()[1], "authorization"), Some("Authorization: Basic c2Vrcml0LXRva2VuOg=="));

    // Also when the connection fails.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hang = tokio::spawn(async move {
        let _held = listener.accept().await;
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let quick = OpenOptions { timeout: Duration::from_millis(200), ..options() };
    let error = open_with(&format!("http://bob:topsecret@{addr}/x"), &quick).await.map(|_| ()).unwrap_err();
    assert!(!error.is_permanent());
    assert_eq!(error.to_string(), format!("timed out after 0.2 s waiting for the response from http://***@{addr}/x"));
    hang.abort();
}

#[tokio::test]
async fn a_connection_closed_early_is_transient() {
    let server = TestServer::start(|path, _| match path {
        "/nothing" => reply([]),
        "/short" => response("HTTP/1.1 200 OK", &["Content-Type: audio/mpeg", "Content-Length: 100"], b"only ten.."),
        _ => reply([b"this is not HTTP at all\r\n\r\n"]),
    })
    .await;
    let error = open_err(&server.url("/nothing")).await;
    assert!(!error.is_permanent());
    assert_eq!(error.to_string(), format!("connection closed before the response from {}", server.url("/nothing")));

    let (_, _, mut body) = open_with(&server.url("/short"), &options()).await.unwrap();
    assert_eq!(body.chunk().await.unwrap().as_deref(), Some(&b"only ten.."[..]));
    let error = body.chunk().await.unwrap_err();
    assert!(!error.is_permanent());
    assert!(error.to_string().contains("closed the connection in the middle of the body"), "{error}");
    assert_eq!(body.chunk().await.unwrap(), None, "after an error, the end");

    let error = open_err(&server.url("/garbage")).await;
    assert!(error.to_string().starts_with("bad HTTP response from"), "{error}");
}

#[tokio::test]
async fn dropping_the_body_closes_the_socket() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await.unwrap();
        stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\nfirst").await.unwrap();
        // Reads until the client goes away.
        let closed = loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break true,
                Ok(_) => {}
            }
        };
        let _ = closed_tx.send(closed);
    });
    let (_, _, mut body) = open_with(&format!("http://{addr}/"), &options()).await.unwrap();
    assert_eq!(body.chunk().await.unwrap().as_deref(), Some(&b"first"[..]));
    drop(body);
    assert!(tokio::time::timeout(HANG_LIMIT, closed_rx).await.unwrap().unwrap());
}

#[tokio::test]
async fn https_with_the_right_ca_streams_and_with_public_roots_fails_clearly() {
    use crate::test_pki::TestPki;
    let pki = TestPki::new("https");
    let (body, audio) = icy_body(16, &["Secure"], 5);
    let route: Route =
        Arc::new(move |_, _| reply([b"ICY 200 OK\r\ncontent-type: audio/mpeg\r\nicy-metaint: 16\r\n\r\n", &body]));
    let server = TestServer::start_with(Some(pki.acceptor()), route).await;
    let url = server.url("/secure");
    assert!(url.starts_with("https://127.0.0.1:"));

    let trusted = OpenOptions { ca_file: Some(pki.dir.join("ca.pem")), ..options() };
    let (head, _, mut stream) = open_with(&url, &trusted).await.unwrap();
    assert_eq!((head.url.as_str(), head.shoutcast), (url.as_str(), true));
    assert_eq!(demux(&mut stream, head.metaint).await, (audio, vec!["Secure".to_string()]));

    let error = open_err(&url).await;
    assert!(error.is_permanent(), "{error}");
    let text = error.to_string();
    assert!(text.starts_with(&format!("TLS handshake with 127.0.0.1:{} failed:", server.addr.port())), "{text}");
    assert!(text.contains("ca_file"), "{text}");

    let missing = OpenOptions { ca_file: Some(pki.dir.join("missing.pem")), ..options() };
    let error = open_with(&url, &missing).await.map(|_| ()).unwrap_err();
    assert!(error.is_permanent() && error.to_string().contains("cannot open"), "{error}");
}

#[test]
fn helpers() {
    assert_eq!(first_number("128,128"), Some(128));
    assert_eq!(first_number(" 64 kbps"), Some(64));
    assert_eq!(first_number("none"), None);
    assert_eq!(short_text(&"é".repeat(300)).chars().count(), 256);
}
