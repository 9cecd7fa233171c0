//! The server end to end on loopback, with real clients: reqwest (HTTP/1.1,
//! h2c prior knowledge, HTTPS with HTTP/2 through ALPN), tokio-tungstenite,
//! and raw TCP for what well-behaved clients never send.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::mpsc,
};
use tokio_tungstenite::tungstenite::Message;

use super::*;

/// Answers requests at once (or never, or with events), echoes WebSocket text.
#[derive(Default)]
struct TestHandler {
    /// Requests handed to the handler.
    requests: std::sync::atomic::AtomicUsize,
    answered: Mutex<Vec<(String, String, u16)>>,
    held: Mutex<Vec<Responder<String>>>,
    streams: Mutex<Vec<EventSender<String>>>,
    peers: Mutex<HashMap<u64, Arc<PeerControl<String>>>>,
    closed: Mutex<Vec<(u64, u16)>>,
}

impl ServerHandler for TestHandler {
    type Text = String;
    fn poll_ready(&self, _: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
    fn listening(&self, _: u16) {}
    fn request(&self, request: IncomingRequest, responder: Responder<String>) {
        self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match request.path.as_str() {
            "/slow" => self.held.lock().unwrap().push(responder),
            "/events" => {
                let (sender, body) = event_channel(8, || {});
                sender.send(Event { event: "hello".into(), data: "a\nb".into(), id: "1".into() });
                self.streams.lock().unwrap().push(sender);
                responder.respond(Answer::ok(AnswerBody::Events(body)));
            }
            _ => {
                let text = format!(
                    "{} {} {:?} {:?} {}",
                    request.method,
                    request.path,
                    request.params,
                    request.query,
                    String::from_utf8_lossy(&request.body)
                );
                responder.respond(Answer::ok(AnswerBody::Text(text)));
            }
        }
    }
    fn answered(&self, method: &str, path: &str, status: u16) {
        self.answered.lock().unwrap().push((method.into(), path.into(), status));
    }
    fn websocket_connected(&self, peer: PeerInfo, control: Arc<PeerControl<String>>) {
        self.peers.lock().unwrap().insert(peer.id, control);
    }
    fn websocket_text(&self, peer: u64, text: &str) {
        if let Some(control) = self.peers.lock().unwrap().get(&peer) {
            if text == "bye" {
                control.close(4000, "asked");
            } else {
                control.send_text(format!("echo:{text}"));
            }
        }
    }
    fn websocket_binary(&self, _: u64, _: Bytes) {}
    fn websocket_closed(&self, peer: u64, code: u16, _: &str) {
        self.closed.lock().unwrap().push((peer, code));
    }
    fn error(&self, _: &str) {}
}

struct Running {
    port: u16,
    handler: Arc<TestHandler>,
    commands: mpsc::Sender<Command<String>>,
    peers: Arc<Peers<String>>,
    cache: Arc<AnswerCache>,
    _task: tokio::task::JoinHandle<Result<(), String>>,
}

async fn start(
    config: ServerConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    setup: impl FnOnce(&mut Routes),
) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut routes = Routes::default();
    setup(&mut routes);
    let handler = Arc::new(TestHandler::default());
    let (commands, receiver) = mpsc::channel(16);
    let peers = Arc::new(Peers::default());
    let cache = Arc::new(AnswerCache::new(CacheBounds::default()));
    let server = Server {
        config,
        tls,
        routes: Arc::new(RwLock::new(routes)),
        peers: peers.clone(),
        handler: handler.clone(),
        stats: Arc::default(),
        cache: cache.clone(),
        commands: receiver,
    };
    Running { port, handler, commands, peers, cache, _task: tokio::spawn(serve(listener, server)) }
}

fn routes(routes: &mut Routes) {
    routes.add_route("GET", "/players/:id").unwrap();
    routes.add_route("*", "/any/*rest").unwrap();
    routes.add_route("GET", "/slow").unwrap();
    routes.add_route("GET", "/events").unwrap();
    routes.add_websocket("/ws").unwrap();
}

/// Sends `request` as it is and reads the answer until the server closes or 3 s pass.
async fn raw(port: u16, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn client() -> reqwest::Client {
    crate::ws::tls::install_crypto_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn routes_params_query_and_body_reach_the_handler_over_http1_and_h2c() {
    let server = start(ServerConfig::default(), None, routes).await;
    let base = format!("http://127.0.0.1:{}", server.port);
    let res = client().get(format!("{base}/players/ada%20b?x=1&y=%C3%A9")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    let text = res.text().await.unwrap();
    assert_eq!(text, r#"GET /players/ada b [("id", "ada b")] [("x", "1"), ("y", "é")] "#);
    let res = client().post(format!("{base}/any/a/b")).body("hi").send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), r#"POST /any/a/b [("rest", "a/b")] [] hi"#);
    assert_eq!(client().get(format!("{base}/nothing")).send().await.unwrap().status(), 404);
    let head = raw(server.port, b"HEAD /players/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"), "HEAD: a GET route, no body: {head}");
    let res = client().post(format!("{base}/players/1")).send().await.unwrap();
    assert_eq!((res.status().as_u16(), res.headers()["allow"].to_str().unwrap()), (405, "GET"));
    let h2 = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().unwrap();
    let res = h2.get(format!("{base}/players/7")).send().await.unwrap();
    assert_eq!((res.version(), res.status().as_u16()), (reqwest::Version::HTTP_2, 200));
    let answered = server.handler.answered.lock().unwrap().clone();
    assert!(answered.contains(&("GET".into(), "/nothing".into(), 404)), "{answered:?}");
}

#[tokio::test]
async fn kept_answers_are_served_without_the_handler_and_concurrent_misses_wait_for_one() {
    let keep = Duration::from_millis(300);
    let server = start(ServerConfig::default(), None, |routes| {
        let (id, _) = routes.add_route("GET", "/players/:id").unwrap();
        routes.set_keep(id, keep);
        let (id, _) = routes.add_route("GET", "/slow").unwrap();
        routes.set_keep(id, keep);
        routes.add_route("*", "/any/*rest").unwrap();
    })
    .await;
    let requests = || server.handler.requests.load(std::sync::atomic::Ordering::Relaxed);
    let base = format!("http://127.0.0.1:{}", server.port);
    let get = |path: &str| client().get(format!("{base}{path}")).send();
    let first = get("/players/1?q=a").await.unwrap();
    assert_eq!((first.status().as_u16(), first.headers()["age"].to_str().unwrap()), (200, "0"));
    let body = first.text().await.unwrap();
    for _ in 0..5 {
        assert_eq!(get("/players/1?q=a").await.unwrap().text().await.unwrap(), body);
    }
    assert_eq!(requests(), 1, "the window's requests never reach the handler");
    get("/players/1?q=b").await.unwrap();
    assert_eq!(requests(), 2, "another query is another answer");
    let head = raw(server.port, b"HEAD /players/1?q=a HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200") && head.contains("age: 0"), "HEAD from GET's answer: {head}");
    assert_eq!(requests(), 2);
    client().post(format!("{base}/any/x")).send().await.unwrap();
    client().post(format!("{base}/any/x")).send().await.unwrap();
    assert_eq!(requests(), 4, "a route without cache_sec");
    tokio::time::sleep(keep + Duration::from_millis(50)).await;
    get("/players/1?q=a").await.unwrap();
    assert_eq!(requests(), 5, "made again after the window");
    assert_eq!(server.cache.usage().hits, 6);

    // Twenty requests while the handler holds its answer: one handler call.
    let waiting: Vec<_> = (0..20).map(|_| tokio::spawn(get("/slow"))).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(requests(), 6);
    let responder = server.handler.held.lock().unwrap().pop().unwrap();
    responder.respond(Answer::ok(AnswerBody::Text("made once".to_string())));
    for request in waiting {
        assert_eq!(request.await.unwrap().unwrap().text().await.unwrap(), "made once");
    }
    assert_eq!(requests(), 6);
    assert_eq!(server.cache.clear(None), 3);
}

#[tokio::test]
async fn limits_answer_413_431_408_503_and_the_server_goes_on() {
    let config = ServerConfig {
        max_body_bytes: 100,
        max_header_bytes: 8192,
        request_timeout: Duration::from_millis(400),
        ..Default::default()
    };
    let server = start(config, None, routes).await;
    let base = format!("http://127.0.0.1:{}", server.port);
    let res = client().post(format!("{base}/any/x")).body(vec![b'x'; 101]).send().await.unwrap();
    assert_eq!(res.status(), 413, "declared length");
    let chunked = "POST /any/x HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let answer = raw(server.port, format!("{chunked}c8\r\n{}\r\n0\r\n\r\n", "y".repeat(200)).as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "streamed body: {answer}");
    let big = format!("GET /players/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n", "z".repeat(9000));
    assert!(raw(server.port, big.as_bytes()).await.starts_with("HTTP/1.1 431"));
    let slow_head = raw(server.port, b"GET /players/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n").await;
    assert!(slow_head.starts_with("HTTP/1.1 408") && slow_head.contains("connection: close"), "{slow_head}");
    let slow_body = raw(server.port, b"POST /any/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nabc").await;
    assert!(slow_body.starts_with("HTTP/1.1 408") && slow_body.contains("connection: close"), "{slow_body}");
    let res = client().get(format!("{base}/slow")).send().await.unwrap();
    assert_eq!(res.status(), 503, "no answer within request_timeout");
    assert_eq!(client().get(format!("{base}/players/2")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_without_an_answer() {
    let config = ServerConfig { request_timeout: Duration::from_millis(300), ..Default::default() };
    let server = start(config, None, routes).await;
    let answer = raw(server.port, b"GET /players/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!answer.contains("408"), "{answer}");
    assert_eq!(raw(server.port, b"").await, "", "a connection that never asked gets nothing");
}

#[tokio::test]
async fn max_connections_answers_503_to_the_next_one() {
    let server = start(ServerConfig { max_connections: 1, ..Default::default() }, None, routes).await;
    let mut first = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    first.write_all(b"GET /players/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    assert!(first.read(&mut buf).await.unwrap() > 0, "the first is served (and kept alive)");
    let second = raw(server.port, b"GET /players/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await;
    assert!(second.starts_with("HTTP/1.1 503") && second.contains("max_connections"), "{second}");
}

#[tokio::test]
async fn token_host_and_origin_checks() {
    let server = start(ServerConfig::default(), None, routes).await;
    let wrong_host = raw(server.port, b"GET /players/1 HTTP/1.1\r\nHost: evil.example\r\n\r\n").await;
    assert!(wrong_host.starts_with("HTTP/1.1 403"), "DNS rebinding: {wrong_host}");
    let base = format!("http://127.0.0.1:{}", server.port);
    let cross = client().post(format!("{base}/any/x")).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(cross.status(), 403, "a page elsewhere cannot call the game");
    let own = client().post(format!("{base}/any/x")).header("origin", base.as_str()).send().await.unwrap();
    assert_eq!(own.status(), 200, "a page the server served can");

    let config = ServerConfig {
        token: Some("s3cret".into()),
        cors_origins: vec!["https://tools.example".into()],
        ..Default::default()
    };
    let server = start(config, None, routes).await;
    let base = format!("http://127.0.0.1:{}", server.port);
    let res = client().get(format!("{base}/players/1")).send().await.unwrap();
    assert_eq!((res.status().as_u16(), res.headers()["www-authenticate"].to_str().unwrap()), (401, "Bearer"));
    assert_eq!(client().get(format!("{base}/players/1")).bearer_auth("wrong").send().await.unwrap().status(), 401);
    let res = client()
        .get(format!("{base}/players/1"))
        .bearer_auth("s3cret")
        .header("origin", "https://tools.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "https://tools.example");
    let preflight = client()
        .request(reqwest::Method::OPTIONS, format!("{base}/players/1"))
        .header("origin", "https://tools.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204, "preflight needs no token");
    assert_eq!(preflight.headers()["access-control-allow-headers"], "authorization");
}

#[tokio::test]
async fn files_are_served_with_range_etag_and_never_outside() {
    let dir = std::env::temp_dir().join(format!("async_net_serve_{}", std::process::id()));
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/index.html"), "<h1>hi</h1>").unwrap();
    std::fs::write(dir.join("www/data.bin"), (0..=255u8).collect::<Vec<_>>()).unwrap();
    std::fs::write(dir.join("secret.txt"), "secret").unwrap();
    let www = dir.join("www");
    let server = start(ServerConfig::default(), None, |r| r.add_mount("/static", www).unwrap()).await;
    let base = format!("http://127.0.0.1:{}/static", server.port);
    let res = client().get(format!("{base}/")).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    let etag = res.headers()["etag"].clone();
    assert_eq!(res.text().await.unwrap(), "<h1>hi</h1>");
    let again = client().get(format!("{base}/index.html")).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    let part = client().get(format!("{base}/data.bin")).header("range", "bytes=10-19").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 10-19/256");
    assert_eq!(&part.bytes().await.unwrap()[..], &(10..20u8).collect::<Vec<_>>()[..]);
    let head = client().head(format!("{base}/data.bin")).send().await.unwrap();
    assert_eq!(head.headers()["content-length"], "256");
    for attack in ["/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/..%2fsecret.txt"] {
        let answer = raw(
            server.port,
            format!("GET {attack} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{attack}: {answer}");
        assert!(!answer.contains("secret\n") && !answer.ends_with("secret"), "{attack}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn websocket_peers_echo_broadcast_and_close() {
    let server = start(ServerConfig::default(), None, routes).await;
    let url = format!("ws://127.0.0.1:{}/ws", server.port);
    let (mut a, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let (mut b, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    a.send(Message::text("hi")).await.unwrap();
    assert_eq!(a.next().await.unwrap().unwrap(), Message::text("echo:hi"));
    assert_eq!(server.peers.count("/ws"), 2);
    let all = server::Command::Broadcast("/ws".into(), Outgoing::Text("all".to_string()));
    server.commands.send(all).await.unwrap();
    assert_eq!(a.next().await.unwrap().unwrap(), Message::text("all"));
    assert_eq!(b.next().await.unwrap().unwrap(), Message::text("all"));
    b.send(Message::text("bye")).await.unwrap();
    match b.next().await.unwrap().unwrap() {
        Message::Close(Some(frame)) => assert_eq!((u16::from(frame.code), frame.reason.as_str()), (4000, "asked")),
        other => panic!("{other:?}"),
    }
    assert!(b.next().await.is_none(), "the closing handshake completes");
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut closed = server.handler.closed.lock().unwrap().clone();
    closed.sort();
    assert_eq!(closed.iter().map(|c| c.1).collect::<Vec<_>>(), [1006, 4000], "{closed:?}");
    assert_eq!(server.peers.count("/ws"), 0);
}

#[tokio::test]
async fn a_peer_that_answers_no_ping_is_dropped_and_peers_count_as_connections() {
    let config = ServerConfig { websocket_heartbeat: Duration::from_millis(100), ..Default::default() };
    let server = start(config, None, routes).await;
    let url = format!("ws://127.0.0.1:{}/ws", server.port);
    let (silent, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.peers.count("/ws"), 1);
    // Never read, so never answers the pings.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(server.handler.closed.lock().unwrap().clone(), [(1, 1006)]);
    drop(silent);

    let server = start(ServerConfig { max_connections: 1, ..Default::default() }, None, routes).await;
    let (_peer, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", server.port)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let next = raw(server.port, b"GET /players/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await;
    assert!(next.starts_with("HTTP/1.1 503"), "{next}");
}

#[tokio::test]
async fn events_stream_as_they_are_sent() {
    let server = start(ServerConfig::default(), None, routes).await;
    let res = client().get(format!("http://127.0.0.1:{}/events", server.port)).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.bytes_stream();
    assert_eq!(&body.next().await.unwrap().unwrap()[..], b"event: hello\ndata: a\ndata: b\nid: 1\n\n");
    let sender = server.handler.streams.lock().unwrap().pop().unwrap();
    sender.send(Event { event: String::new(), data: "second".into(), id: String::new() });
    assert_eq!(&body.next().await.unwrap().unwrap()[..], b"data: second\n\n");
    drop(sender);
    assert!(body.next().await.is_none(), "dropping the sender ends the stream");
}

#[tokio::test]
async fn https_serves_http2_through_alpn() {
    let pki = crate::test_pki::TestPki::new("http_server");
    let tls = tls_acceptor(&pki.dir.join("server.pem"), &pki.dir.join("server-key.pem")).unwrap();
    let server = start(ServerConfig::default(), Some(tls), routes).await;
    let mut tls = crate::ws::tls::client_config(Some(&pki.dir.join("ca.pem"))).unwrap().as_ref().clone();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let client = reqwest::Client::builder().no_proxy().tls_backend_preconfigured(tls).build().unwrap();
    let res = client.get(format!("https://127.0.0.1:{}/players/9", server.port)).send().await.unwrap();
    assert_eq!((res.version(), res.status().as_u16()), (reqwest::Version::HTTP_2, 200));
    let missing = tls_acceptor(&pki.dir.join("missing.pem"), &pki.dir.join("server-key.pem")).err().unwrap();
    assert!(missing.contains("missing.pem"), "{missing}");
}
