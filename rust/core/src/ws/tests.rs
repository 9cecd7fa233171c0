//! The session against real servers on 127.0.0.1:0: our echo server, and
//! small servers built on tungstenite or raw TCP for the cases an echo
//! server cannot produce (close codes, bad frames, silent peers, HTTP errors,
//! TLS with a CA made at test time).

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::{
    Message,
    handshake::server::{Request, Response},
    http::HeaderValue,
    protocol::{CloseFrame, frame::coding::CloseCode},
};

use super::*;
use crate::{state::NetState, test_pki::TestPki};

/// Safety net so a broken session fails the test instead of hanging it; no
/// assertion depends on it.
const HANG_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    State(NetState),
    Connected(String),
    Text(String),
    Binary(Vec<u8>),
    Closed(u16, String),
    Error(String),
    BatchEnd,
}

type Hook = Box<dyn FnMut(&Ev, &WsControl)>;

/// Records every event and lets a test react to them through the control.
struct Recorder {
    events: Rc<RefCell<Vec<Ev>>>,
    control: Arc<WsControl>,
    hook: Hook,
}

impl Recorder {
    fn push(&mut self, ev: Ev) {
        (self.hook)(&ev, &self.control);
        self.events.borrow_mut().push(ev);
    }
}

impl WsHandler for Recorder {
    fn state_changed(&mut self, state: NetState) {
        self.push(Ev::State(state));
    }
    fn connected(&mut self, protocol: &str) {
        self.push(Ev::Connected(protocol.into()));
    }
    fn text_received(&mut self, text: &str) {
        self.push(Ev::Text(text.into()));
    }
    fn binary_received(&mut self, data: bytes::Bytes) {
        self.push(Ev::Binary(data.to_vec()));
    }
    fn batch_end(&mut self) {
        self.push(Ev::BatchEnd);
    }
    fn closed(&mut self, code: u16, reason: &str) {
        self.push(Ev::Closed(code, reason.into()));
    }
    fn error(&mut self, message: &str) {
        self.push(Ev::Error(message.into()));
    }
}

/// A session run to its end: its events and stats.
struct Outcome {
    events: Vec<Ev>,
    stats: WsStatsSnapshot,
}

impl Outcome {
    fn texts(&self) -> Vec<String> {
        self.events.iter().filter_map(|e| if let Ev::Text(t) = e { Some(t.clone()) } else { None }).collect()
    }
    fn errors(&self) -> Vec<String> {
        self.events.iter().filter_map(|e| if let Ev::Error(m) = e { Some(m.clone()) } else { None }).collect()
    }
    fn closes(&self) -> Vec<(u16, String)> {
        self.events.iter().filter_map(|e| if let Ev::Closed(c, r) = e { Some((*c, r.clone())) } else { None }).collect()
    }
    /// Messages, batch ends and closes, in order, as text: "t<text>", "b<bytes>", "|", "closed <code> <reason>".
    fn flow(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Text(t) => Some(format!("t{t}")),
                Ev::Binary(b) => Some(format!("b{b:?}")),
                Ev::BatchEnd => Some("|".into()),
                Ev::Closed(code, reason) => Some(format!("closed {code} {reason}")),
                _ => None,
            })
            .collect()
    }
    fn last_state(&self) -> Option<NetState> {
        self.events.iter().rev().find_map(|e| if let Ev::State(s) = e { Some(*s) } else { None })
    }
}

fn config(url: String) -> WsConfig {
    WsConfig {
        url,
        reconnect: false,
        reconnect_min: Duration::from_millis(10),
        reconnect_max: Duration::from_millis(50),
        ..WsConfig::default()
    }
}

/// Runs a session with `before` queued first, reacting through `hook`.
async fn session(config: WsConfig, before: &[&str], hook: impl FnMut(&Ev, &WsControl) + 'static) -> Outcome {
    let control = Arc::new(WsControl::new(&config));
    for text in before {
        control.send_text((*text).into()).unwrap();
    }
    let events = Rc::new(RefCell::new(Vec::new()));
    let stats = Arc::new(WsStats::default());
    let recorder = Recorder { events: events.clone(), control: control.clone(), hook: Box::new(hook) };
    tokio::time::timeout(HANG_LIMIT, run(config, control, recorder, stats.clone())).await.expect("session hung");
    let events = events.borrow().clone();
    Outcome { events, stats: stats.snapshot() }
}

/// Closes with 1000 "done" once `n` messages arrived.
fn close_after(n: usize) -> impl FnMut(&Ev, &WsControl) {
    let mut seen = 0;
    move |ev, control| {
        if matches!(ev, Ev::Text(_) | Ev::Binary(_)) {
            seen += 1;
            if seen == n {
                control.close(1000, "done").unwrap();
            }
        }
    }
}

async fn bind_loopback() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// An echo server on a free port, for the length of the test.
async fn echo_server() -> String {
    let (listener, addr) = bind_loopback().await;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(socket) = tokio_tungstenite::accept_async(stream).await else { return };
                let (sink, source) = socket.split();
                let data = source.try_filter(|m| std::future::ready(m.is_text() || m.is_binary()));
                let _ = data.forward(sink).await;
            });
        }
    });
    format!("ws://{addr}/")
}

/// Accepts one WebSocket connection and hands it to `serve`.
async fn one_client<F, Fut>(serve: F) -> (String, tokio::task::JoinHandle<()>)
where
    F: FnOnce(tokio_tungstenite::WebSocketStream<TcpStream>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let (listener, addr) = bind_loopback().await;
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        serve(tokio_tungstenite::accept_async(stream).await.unwrap()).await;
    });
    (format!("ws://{addr}/"), task)
}

#[tokio::test]
async fn text_binary_unicode_and_one_megabyte_are_echoed_byte_exact() {
    let url = echo_server().await;
    let big: String = (0..1_048_576u32).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let control_big = big.clone();
    let mut sent_binary = false;
    let outcome = session(config(url), &["hello", "Zoë ✓ 🚀 日本"], move |ev, control| {
        if let Ev::Connected(_) = ev
            && !sent_binary
        {
            sent_binary = true;
            control.send_binary(vec![0, 1, 2, 255, 0]).unwrap();
            control.send_text(control_big.clone()).unwrap();
        }
        if let Ev::Text(t) = ev
            && t.len() == 1_048_576
        {
            control.close(1000, "done").unwrap();
        }
    })
    .await;
    assert_eq!(outcome.events[0], Ev::State(NetState::Connecting));
    assert_eq!(outcome.events[1], Ev::State(NetState::Connected));
    assert_eq!(outcome.events[2], Ev::Connected(String::new()));
    assert_eq!(outcome.texts()[..2], ["hello".to_string(), "Zoë ✓ 🚀 日本".to_string()]);
    assert!(outcome.events.contains(&Ev::Binary(vec![0, 1, 2, 255, 0])));
    assert!(outcome.texts()[2] == big, "1 MiB text echoed byte-exact");
    assert_eq!(outcome.closes(), [(1000, "done".to_string())]);
    assert_eq!(outcome.last_state(), Some(NetState::Stopped));
    assert!(outcome.errors().is_empty(), "{:?}", outcome.errors());
    assert_eq!(outcome.stats.messages_received, 4);
    assert_eq!(outcome.stats.messages_sent, 4);
}

#[tokio::test]
async fn ten_thousand_messages_keep_their_order() {
    let url = echo_server().await;
    let config = WsConfig { max_queued_messages: 10_000, ..config(url) };
    let control = Arc::new(WsControl::new(&config));
    for i in 0..10_000 {
        control.send_text(i.to_string()).unwrap();
    }
    assert_eq!(control.send_text("one too many".into()), Err(SendError::QueueFull { max: 10_000 }));
    let events = Rc::new(RefCell::new(Vec::new()));
    let recorder = Recorder { events: events.clone(), control: control.clone(), hook: Box::new(close_after(10_000)) };
    tokio::time::timeout(HANG_LIMIT, run(config, control, recorder, Arc::default())).await.unwrap();
    let outcome = Outcome { events: events.borrow().clone(), stats: WsStatsSnapshot::default() };
    let expected: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
    assert_eq!(outcome.texts(), expected);
}

#[tokio::test]
async fn subprotocol_and_headers_reach_the_server() {
    let (listener, addr) = bind_loopback().await;
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut token = String::new();
        // The signature is tungstenite's (`Callback`); its error type is large by design.
        #[allow(clippy::result_large_err)]
        let callback = |request: &Request, mut response: Response| {
            token = request.headers()["x-token"].to_str().unwrap().to_string();
            let offered = request.headers()["sec-websocket-protocol"].to_str().unwrap();
            assert_eq!(offered, "nope, chat.v2");
            response.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("chat.v2"));
            Ok(response)
        };
        let mut ws = tokio_tungstenite::accept_hdr_async(stream, callback).await.unwrap();
        ws.send(Message::text(format!("token={token}"))).await.unwrap();
        while ws.next().await.is_some() {}
    });
    let config = WsConfig {
        subprotocols: vec!["nope".into(), "chat.v2".into()],
        headers: vec![("X-Token".into(), "s3cret".into())],
        ..config(format!("ws://{addr}/"))
    };
    let outcome = session(config, &[], close_after(1)).await;
    assert!(outcome.events.contains(&Ev::Connected("chat.v2".into())), "{:?}", outcome.events);
    assert_eq!(outcome.texts(), ["token=s3cret"]);
}

#[tokio::test]
async fn the_servers_close_code_and_reason_are_reported() {
    let (url, _server) = one_client(|mut ws| async move {
        let frame = CloseFrame { code: CloseCode::from(4001), reason: "bye now".into() };
        ws.close(Some(frame)).await.unwrap();
        while ws.next().await.is_some() {}
    })
    .await;
    let outcome = session(config(url), &[], |_, _| {}).await;
    assert_eq!(outcome.closes(), [(4001, "bye now".to_string())]);
    assert!(outcome.errors().is_empty(), "a clean close is not an error: {:?}", outcome.errors());
    assert_eq!(outcome.last_state(), Some(NetState::Stopped), "reconnect off and closed cleanly");
}

/// Runs `server` for one client and returns the close code it received.
async fn close_code_seen_by_server(
    config_for: impl FnOnce(String) -> WsConfig,
    raw_frame: Option<Vec<u8>>,
    message: Option<Message>,
) -> (Outcome, Option<u16>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (url, _server) = one_client(move |mut ws| async move {
        if let Some(frame) = raw_frame {
            ws.get_mut().write_all(&frame).await.unwrap();
        }
        if let Some(message) = message {
            ws.send(message).await.unwrap();
        }
        let mut code = None;
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Close(frame) = message {
                code = frame.map(|f| u16::from(f.code));
                break;
            }
        }
        let _ = tx.send(code);
    })
    .await;
    let outcome = session(config_for(url), &[], |_, _| {}).await;
    (outcome, rx.await.unwrap())
}

#[tokio::test]
async fn an_oversize_message_closes_with_1009_and_an_error() {
    let (outcome, code) = close_code_seen_by_server(
        |url| WsConfig { max_message_bytes: 1000, ..config(url) },
        None,
        Some(Message::text("x".repeat(2000))),
    )
    .await;
    assert_eq!(code, Some(1009), "the server got 1009");
    assert_eq!(outcome.closes(), [(1009, "message too big".to_string())]);
    assert!(outcome.errors()[0].contains("max_message_bytes"), "{:?}", outcome.errors());
    assert!(outcome.texts().is_empty());
    assert_eq!(outcome.last_state(), Some(NetState::Failed));
}

#[tokio::test]
async fn an_oversize_frame_header_is_refused_before_its_payload_arrives() {
    // A text frame announcing 2^62 bytes, and nothing else: must not allocate or wait.
    let mut frame = vec![0x81, 127];
    frame.extend_from_slice(&(1u64 << 62).to_be_bytes());
    let (outcome, code) = close_code_seen_by_server(config, Some(frame), None).await;
    assert_eq!(code, Some(1009));
    assert!(outcome.errors()[0].contains("larger than max_message_bytes"), "{:?}", outcome.errors());
}

#[tokio::test]
async fn invalid_utf8_text_closes_with_1007() {
    // Unmasked server text frame with the bytes C3 28 (not UTF-8).
    let (outcome, code) = close_code_seen_by_server(config, Some(vec![0x81, 0x02, 0xC3, 0x28]), None).await;
    assert_eq!(code, Some(1007));
    assert_eq!(outcome.closes(), [(1007, "invalid UTF-8".to_string())]);
    assert!(outcome.errors()[0].contains("UTF-8"), "{:?}", outcome.errors());
}

#[tokio::test]
async fn after_a_lost_connection_the_queue_is_flushed_in_order_on_reconnect() {
    let (listener, addr) = bind_loopback().await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        // First connection: read one message, then vanish without a close.
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        let first = ws.next().await.unwrap().unwrap();
        drop(ws);
        // Second connection: collect what the client queued meanwhile.
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        let mut got = vec![first.into_text().unwrap().to_string()];
        while got.len() < 6 {
            let text = ws.next().await.unwrap().unwrap().into_text().unwrap().to_string();
            got.push(text);
        }
        ws.send(Message::text("all here")).await.unwrap();
        let _ = tx.send(got);
        while ws.next().await.is_some() {}
    });
    let config = WsConfig { reconnect: true, ..config(format!("ws://{addr}/")) };
    let outcome = session(config, &["first"], |ev, control| {
        if *ev == Ev::State(NetState::Reconnecting) && control.queued() == 0 {
            for i in 1..=5 {
                control.send_text(format!("q{i}")).unwrap();
            }
        }
        if *ev == Ev::Text("all here".into()) {
            control.close(1000, "done").unwrap();
        }
    })
    .await;
    assert_eq!(rx.await.unwrap(), ["first", "q1", "q2", "q3", "q4", "q5"]);
    assert!(outcome.closes().contains(&(CLOSE_ABNORMAL, String::new())), "{:?}", outcome.events);
    assert_eq!(outcome.stats.connects, 2);
    assert_eq!(outcome.last_state(), Some(NetState::Stopped));
}

#[tokio::test]
async fn a_server_that_stops_answering_pings_is_detected() {
    let (listener, addr) = bind_loopback().await;
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        // Hold the socket and never read: pings pile up unanswered.
        tokio::time::sleep(HANG_LIMIT).await;
        drop(ws);
    });
    let config = WsConfig { heartbeat: Duration::from_millis(100), ..config(format!("ws://{addr}/")) };
    let outcome = session(config, &[], |_, _| {}).await;
    assert!(outcome.errors()[0].contains("no pong"), "{:?}", outcome.errors());
    assert_eq!(outcome.closes(), [(CLOSE_ABNORMAL, String::new())]);
    assert_eq!(outcome.last_state(), Some(NetState::Failed));
    assert_eq!(outcome.stats.pings_sent, 1, "one unanswered ping, detected at the next heartbeat");
}

#[tokio::test]
async fn heartbeats_are_answered_and_measured() {
    let url = echo_server().await;
    let config = WsConfig { heartbeat: Duration::from_millis(20), ..config(url) };
    let control = Arc::new(WsControl::new(&config));
    let stats = Arc::new(WsStats::default());
    let events = Rc::new(RefCell::new(Vec::new()));
    let recorder = Recorder { events: events.clone(), control: control.clone(), hook: Box::new(|_, _| {}) };
    let watcher = async {
        while stats.snapshot().pongs_received < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        control.close(1000, "done").unwrap();
        std::future::pending::<()>().await;
    };
    tokio::time::timeout(HANG_LIMIT, async {
        tokio::select! {
            () = run(config, control.clone(), recorder, stats.clone()) => {}
            () = watcher => {}
        }
    })
    .await
    .unwrap();
    assert!(stats.snapshot().pongs_received >= 3);
    assert!(events.borrow().iter().all(|e| !matches!(e, Ev::Error(_))), "{:?}", events.borrow());
    assert!(!events.borrow().contains(&Ev::BatchEnd), "pongs alone make no batch: {:?}", events.borrow());
}

#[tokio::test]
async fn refused_port_unknown_host_and_http_errors_are_clear() {
    let (listener, addr) = bind_loopback().await;
    drop(listener);
    let refused = session(config(format!("ws://{addr}/")), &[], |_, _| {}).await;
    assert!(refused.errors()[0].contains("connection refused"), "{:?}", refused.errors());
    assert_eq!(refused.last_state(), Some(NetState::Failed));
    assert!(refused.closes().is_empty(), "never connected, so never closed");

    let unknown = session(config("ws://no-such-host.invalid:8765/".into()), &[], |_, _| {}).await;
    assert!(unknown.errors()[0].contains("cannot resolve host 'no-such-host.invalid'"), "{:?}", unknown.errors());

    let (listener, addr) = bind_loopback().await;
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request).await;
        let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden").await;
    });
    let http = session(config(format!("ws://{addr}/")), &[], |_, _| {}).await;
    assert!(http.errors()[0].contains("HTTP 403 Forbidden"), "{:?}", http.errors());
}

#[tokio::test]
async fn close_while_reconnecting_stops_and_drops_the_queue() {
    let (listener, addr) = bind_loopback().await;
    drop(listener);
    let config = WsConfig { reconnect: true, ..config(format!("ws://{addr}/")) };
    let outcome = session(config, &["never sent"], |ev, control| {
        if *ev == Ev::State(NetState::Reconnecting) {
            control.close(1000, "").unwrap();
        }
    })
    .await;
    assert_eq!(outcome.last_state(), Some(NetState::Stopped));
    assert!(outcome.closes().is_empty());
}

#[tokio::test]
async fn stop_from_a_handler_ends_the_session_without_more_events() {
    let url = echo_server().await;
    let outcome = session(config(url), &["a", "b", "c"], |ev, control| {
        if matches!(ev, Ev::Text(_)) {
            control.stop();
        }
    })
    .await;
    assert_eq!(outcome.texts(), ["a"], "nothing after the stop");
    assert_eq!(outcome.events.last(), Some(&Ev::Text("a".into())));
}

/// Sends `messages` with one write (one TCP segment on loopback), so that they
/// reach the client together.
async fn send_together(ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>, messages: Vec<Message>) {
    for message in messages {
        ws.feed(message).await.unwrap();
    }
    ws.flush().await.unwrap();
}

/// The next text the client sent.
async fn next_text(ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>) -> String {
    loop {
        if let Message::Text(text) = ws.next().await.unwrap().unwrap() {
            return text.to_string();
        }
    }
}

#[tokio::test]
async fn every_burst_of_ready_messages_ends_with_one_batch_end() {
    let (url, _server) = one_client(|mut ws| async move {
        assert_eq!(next_text(&mut ws).await, "go");
        send_together(&mut ws, (0..50).map(|i| Message::text(i.to_string())).collect()).await;
        assert_eq!(next_text(&mut ws).await, "ack");
        ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
        assert_eq!(next_text(&mut ws).await, "ack 2");
        // Messages and the close frame together: the batch ends before the close is reported.
        send_together(&mut ws, vec![Message::text("x"), Message::binary(vec![4])]).await;
        ws.close(Some(CloseFrame { code: CloseCode::from(4000), reason: "bye".into() })).await.unwrap();
        while ws.next().await.is_some() {}
    })
    .await;
    let outcome = session(config(url), &["go"], |ev, control| match ev {
        Ev::Text(t) if t == "49" => control.send_text("ack".into()).unwrap(),
        Ev::Binary(b) if *b == [1, 2, 3] => control.send_text("ack 2".into()).unwrap(),
        _ => {}
    })
    .await;
    let mut expected: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
    expected.extend(["|", "b[1, 2, 3]", "|", "tx", "b[4]", "|", "closed 4000 bye"].map(String::from));
    assert_eq!(outcome.flow(), expected);
    assert!(outcome.errors().is_empty(), "{:?}", outcome.errors());
    assert_eq!(outcome.last_state(), Some(NetState::Stopped));
}

#[tokio::test]
async fn close_from_a_handler_ends_the_burst_and_drops_the_rest_as_before() {
    let (url, _server) = one_client(|mut ws| async move {
        assert_eq!(next_text(&mut ws).await, "go");
        send_together(&mut ws, (0..10).map(|i| Message::text(i.to_string())).collect()).await;
        while ws.next().await.is_some() {}
    })
    .await;
    let outcome = session(config(url), &["go"], |ev, control| {
        if *ev == Ev::Text("2".into()) {
            control.close(1000, "done").unwrap();
        }
    })
    .await;
    assert_eq!(outcome.flow(), ["t0", "t1", "t2", "|", "closed 1000 done"]);
}

#[tokio::test]
async fn a_read_error_after_a_burst_comes_after_its_batch_end() {
    // Two text frames, then a text frame that is not UTF-8, in one write.
    let mut frames = vec![0x81, 0x01, b'a', 0x81, 0x01, b'b'];
    frames.extend([0x81, 0x02, 0xC3, 0x28]);
    let (url, _server) = one_client(move |mut ws| async move {
        assert_eq!(next_text(&mut ws).await, "go");
        ws.get_mut().write_all(&frames).await.unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let outcome = session(config(url), &["go"], |_, _| {}).await;
    assert_eq!(outcome.flow(), ["ta", "tb", "|", "closed 1007 invalid UTF-8"]);
    let error_at = outcome.events.iter().position(|e| matches!(e, Ev::Error(_))).unwrap();
    let batch_end_at = outcome.events.iter().position(|e| *e == Ev::BatchEnd).unwrap();
    assert!(batch_end_at < error_at, "the batch ends before the error: {:?}", outcome.events);
}

/// A wss echo server with `pki`'s certificate (one connection at a time is plenty here).
async fn serve_wss(pki: &TestPki) -> String {
    let (listener, addr) = bind_loopback().await;
    let acceptor = pki.acceptor();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let Ok(tls) = acceptor.accept(stream).await else { continue };
            let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else { continue };
            while let Some(Ok(message)) = ws.next().await {
                if message.is_text() && ws.send(message).await.is_err() {
                    break;
                }
            }
        }
    });
    format!("wss://{addr}/")
}

#[tokio::test]
async fn wss_with_the_right_ca_connects_and_with_the_wrong_one_fails_clearly() {
    let pki = TestPki::new("tls");
    let url = serve_wss(&pki).await;
    let with = |ca: Option<&str>| WsConfig { ca_file: ca.map(|f| pki.dir.join(f)), ..config(url.clone()) };

    let good = session(with(Some("ca.pem")), &["over tls"], close_after(1)).await;
    assert_eq!(good.texts(), ["over tls"], "{:?}", good.events);
    assert!(good.errors().is_empty());

    for ca in [Some("wrong-ca.pem"), None] {
        let bad = session(with(ca), &[], |_, _| {}).await;
        let error = &bad.errors()[0];
        assert!(error.contains("TLS handshake") && error.contains("ca_file"), "{error}");
        assert_eq!(bad.last_state(), Some(NetState::Failed));
    }
}
