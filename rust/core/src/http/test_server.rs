//! Test-only: a real HTTP/1.1 server (hyper) on 127.0.0.1:0 with the routes
//! the client's tests need: echo, redirects, sizes, Range, streams written in
//! awkward pieces, stalls and resets. It also answers absolute-form requests,
//! so it doubles as a plain HTTP proxy that shows what it was sent.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::{Request, Response, body::Frame, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::mpsc};

type Body = BoxBody<Bytes, std::io::Error>;

/// The body of `/file`: deterministic bytes, long enough to resume in the middle.
pub fn file_bytes() -> Vec<u8> {
    (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// A running server; it stops with the test's runtime.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// How many requests each path got (for reconnect tests).
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl TestServer {
    /// Starts the server on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let hit = {
                            let mut hits = counter.lock().unwrap();
                            let n = hits.entry(request.uri().path().to_string()).or_default();
                            *n += 1;
                            *n
                        };
                        async move { Ok::<_, Infallible>(route(request, addr, hit).await) }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        TestServer { addr, hits }
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// How many requests `path` got.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn full(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response.body(Full::new(body.into()).map_err(|e| match e {}).boxed()).unwrap()
}

/// A response whose body is written by `writer` piece by piece (a `None`
/// piece ends it with an error: the connection is reset mid-body).
fn streamed(
    status: u16,
    headers: &[(&str, &str)],
    pieces: Vec<Option<Vec<u8>>>,
    pause: Duration,
    hang: bool,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
    tokio::spawn(async move {
        for piece in pieces {
            let frame = match piece {
                Some(data) => Ok(Frame::data(Bytes::from(data))),
                None => Err(std::io::Error::other("reset by the test server")),
            };
            if tx.send(frame).await.is_err() {
                return;
            }
            tokio::time::sleep(pause).await;
        }
        if hang {
            tx.closed().await;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response.body(BodyExt::boxed(StreamBody::new(stream))).unwrap()
}

fn query(request: &Request<hyper::body::Incoming>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn route(request: Request<hyper::body::Incoming>, addr: SocketAddr, hit: usize) -> Response<Body> {
    let path = request.uri().path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["echo"] => {
            let mut text = format!("{} {}\n", request.method(), request.uri());
            for (name, value) in request.headers() {
                text.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
            }
            text.push('\n');
            let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let mut out = text.into_bytes();
            out.extend_from_slice(&body);
            full(200, &[("content-type", "text/plain; charset=utf-8")], out)
        }
        ["redirect"] => full(302, &[("location", &query(&request, "to").unwrap_or_default())], ""),
        ["loop"] => full(302, &[("location", "/loop")], ""),
        ["chain", n] => match n.parse::<u32>().unwrap_or(0) {
            0 => full(200, &[], "end of the chain"),
            n => full(302, &[("location", &format!("http://{addr}/chain/{}", n - 1))], ""),
        },
        ["bytes", n] => full(200, &[("content-type", "application/octet-stream")], vec![b'x'; n.parse().unwrap_or(0)]),
        ["unsized", n] => {
            // No Content-Length: the limit must be found while reading.
            let n: usize = n.parse().unwrap_or(0);
            let pieces = (0..n.div_ceil(65536)).map(|i| Some(vec![b'y'; 65536.min(n - i * 65536)])).collect();
            streamed(200, &[], pieces, Duration::ZERO, false)
        }
        ["status", code] => full(code.parse().unwrap_or(500), &[("x-test", "a"), ("x-test", "b")], "status body"),
        ["file"] => file(&request),
        ["reset"] => streamed(
            200,
            &[("content-length", "1000")],
            vec![Some(b"partial".to_vec()), None],
            Duration::from_millis(20),
            false,
        ),
        ["stall"] => streamed(200, &[], vec![Some(b"first".to_vec())], Duration::ZERO, true),
        ["pieces"] => {
            // The body of `text` in pieces of `size` bytes, with a content type.
            let text = query(&request, "text").unwrap_or_default().into_bytes();
            let size: usize = query(&request, "size").and_then(|s| s.parse().ok()).unwrap_or(1).max(1);
            let content_type = query(&request, "type").unwrap_or_else(|| "text/plain".into());
            let pieces = text.chunks(size).map(|c| Some(c.to_vec())).collect();
            let hang = query(&request, "hang").is_some();
            streamed(200, &[("content-type", &content_type)], pieces, Duration::from_millis(1), hang)
        }
        ["sse", "reconnect"] => sse_reconnect(&request, hit),
        _ => full(404, &[], "not found"),
    }
}

/// `/file` with Range support (`bytes=N-`), as a resume needs.
fn file(request: &Request<hyper::body::Incoming>) -> Response<Body> {
    let data = file_bytes();
    let total = data.len();
    let range = request.headers().get("range").and_then(|v| v.to_str().ok());
    match range.and_then(|r| r.strip_prefix("bytes=")).and_then(|r| r.strip_suffix('-')).and_then(|s| s.parse().ok()) {
        Some(start) if start >= total => full(416, &[("content-range", &format!("bytes */{total}"))], ""),
        Some(start) => {
            let range = format!("bytes {start}-{}/{total}", total - 1);
            full(206, &[("content-range", &range)], data[start..].to_vec())
        }
        None => {
            // Slowly, in pieces, so a test can cancel in the middle.
            let pause = query(request, "slow").map_or(Duration::ZERO, |_| Duration::from_millis(20));
            let pieces = data.chunks(10_000).map(|c| Some(c.to_vec())).collect();
            let length = total.to_string();
            streamed(200, &[("content-length", &length)], pieces, pause, false)
        }
    }
}

/// An event stream that ends after each event: the first connection sets
/// `retry` and an id; later ones show the `Last-Event-ID` they got; the
/// third answers 204, which ends the stream for good.
fn sse_reconnect(request: &Request<hyper::body::Incoming>, hit: usize) -> Response<Body> {
    let last = request.headers().get("last-event-id").and_then(|v| v.to_str().ok()).unwrap_or("none").to_string();
    let headers = [("content-type", "text/event-stream")];
    match hit {
        1 => streamed(200, &headers, vec![Some(b"retry: 30\nid: 7\ndata: first\n\n".to_vec())], Duration::ZERO, false),
        2 => {
            streamed(200, &headers, vec![Some(format!("data: last id {last}\n\n").into_bytes())], Duration::ZERO, false)
        }
        _ => full(204, &[], ""),
    }
}
