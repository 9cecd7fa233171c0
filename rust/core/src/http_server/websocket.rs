//! WebSocket endpoints: the upgrade (hyper hands the connection over,
//! tokio-tungstenite speaks the protocol on it), each peer's loop, the
//! control a `WebSocketServerPeer` holds, and the registry that broadcasts
//! to every peer of a pattern. All of it runs on the I/O worker.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::{
    Request, Response, StatusCode,
    header::{self, HeaderMap, HeaderValue},
};
use hyper_util::rt::TokioIo;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message, Utf8Bytes,
        error::ProtocolError,
        handshake::derive_accept_key,
        protocol::{CloseFrame, Role, WebSocketConfig, frame::coding::CloseCode},
    },
};

use super::{
    ServerHandler,
    answer::{Body, empty, status_text},
    stats::{Count, Gauge, ServerStats},
};
use crate::ws::{MAX_CLOSE_REASON_BYTES, OutgoingText};

/// Close code reported when a peer left without a closing handshake.
pub const CLOSE_ABNORMAL: u16 = 1006;

/// What goes out to one peer.
pub enum Outgoing<T> {
    /// Text as a node queued it (made UTF-8 here, on the worker).
    Text(T),
    /// A message already made (a broadcast's, shared by every peer).
    Message(Message),
}

impl<T> Outgoing<T> {
    /// Bytes to send.
    pub fn binary(data: Bytes) -> Self {
        Outgoing::Message(Message::Binary(data))
    }
}

/// What the main thread holds of a connected peer: its send queue and a way to close it.
pub struct PeerControl<T> {
    queue: mpsc::Sender<Outgoing<T>>,
    close: Mutex<Option<(u16, String)>>,
    closing: Notify,
}

impl<T: OutgoingText> PeerControl<T> {
    /// Queues text; false when the queue is full or the peer is gone.
    pub fn send_text(&self, text: T) -> bool {
        self.queue.try_send(Outgoing::Text(text)).is_ok()
    }

    /// Queues bytes; false when the queue is full or the peer is gone.
    pub fn send_binary(&self, data: Bytes) -> bool {
        self.queue.try_send(Outgoing::Message(Message::Binary(data))).is_ok()
    }

    /// Asks to close with `code` and `reason` (cut to what a close frame
    /// holds), after what is queued.
    pub fn close(&self, code: u16, reason: &str) {
        let mut end = reason.len().min(MAX_CLOSE_REASON_BYTES);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        *self.close.lock().unwrap_or_else(|p| p.into_inner()) = Some((code, reason[..end].to_string()));
        self.closing.notify_one();
    }

    /// Whether the peer is still connected.
    pub fn is_open(&self) -> bool {
        !self.queue.is_closed()
    }
}

/// Who a new peer is, as the `websocket_connected` signal shows it.
pub struct PeerInfo {
    pub id: u64,
    /// The request path (the pattern's parameters filled in).
    pub path: String,
    /// The pattern it matched, as written to `websocket()`.
    pub pattern: Arc<str>,
    /// `ip:port`.
    pub peer: String,
    /// Lower-case names; repeated headers joined with ", ".
    pub headers: Vec<(String, String)>,
}

/// The connected peers of a server, by pattern, for broadcasts.
pub struct Peers<T> {
    inner: Mutex<PeerBook<T>>,
}

struct PeerBook<T> {
    queues: HashMap<u64, (Arc<str>, mpsc::Sender<Outgoing<T>>)>,
    counts: HashMap<Arc<str>, usize>,
    next_id: u64,
}

impl<T> Default for Peers<T> {
    fn default() -> Self {
        Peers { inner: Mutex::new(PeerBook { queues: HashMap::new(), counts: HashMap::new(), next_id: 0 }) }
    }
}

impl<T> Peers<T> {
    fn lock(&self) -> MutexGuard<'_, PeerBook<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Peers connected on `pattern`.
    pub fn count(&self, pattern: &str) -> usize {
        self.lock().counts.get(pattern).copied().unwrap_or(0)
    }

    /// Queues `message` to every peer of `pattern`; returns how many took
    /// it (a peer whose queue is full misses it).
    pub fn broadcast(&self, pattern: &str, message: Message) -> usize {
        let book = self.lock();
        book.queues
            .values()
            .filter(|(p, _)| &**p == pattern)
            .filter(|(_, queue)| queue.try_send(Outgoing::Message(message.clone())).is_ok())
            .count()
    }

    fn add(&self, pattern: Arc<str>, queue: mpsc::Sender<Outgoing<T>>) -> u64 {
        let mut book = self.lock();
        book.next_id += 1;
        let id = book.next_id;
        *book.counts.entry(pattern.clone()).or_default() += 1;
        book.queues.insert(id, (pattern, queue));
        id
    }

    fn remove(&self, id: u64) {
        let mut book = self.lock();
        if let Some((pattern, _)) = book.queues.remove(&id)
            && let Some(count) = book.counts.get_mut(&pattern)
        {
            *count -= 1;
            if *count == 0 {
                book.counts.remove(&pattern);
            }
        }
    }
}

/// Whether `request` asks for a WebSocket.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let has = |name, token: &str| {
        headers
            .get_all(name)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|part| part.trim().eq_ignore_ascii_case(token))))
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

/// What a new peer needs besides its request.
pub struct Upgrade<H: ServerHandler> {
    pub handler: Arc<H>,
    pub peers: Arc<Peers<H::Text>>,
    pub pattern: Arc<str>,
    pub peer: String,
    pub max_message_bytes: usize,
    pub max_queued_messages: usize,
    /// Where the peer's loop goes to run (the server owns it, so stopping ends it).
    pub spawn: mpsc::UnboundedSender<super::server::Work>,
    pub stats: Arc<ServerStats>,
    /// Time between pings (0: none); a peer silent for two of them is dropped.
    pub heartbeat: std::time::Duration,
}

/// Pings a peer may leave unanswered (it sent nothing since) before it is dropped.
const MISSED_PINGS: u32 = 2;

/// Answers a WebSocket request: 101 and the peer's loop started, or 400/426
/// when it is not a valid upgrade.
pub fn upgrade<H: ServerHandler>(
    request: Request<hyper::body::Incoming>,
    headers: Vec<(String, String)>,
    up: Upgrade<H>,
) -> Response<Body> {
    if !is_upgrade(request.headers()) {
        return status_text(StatusCode::UPGRADE_REQUIRED, "this path is a WebSocket endpoint");
    }
    let version_ok = request.headers().get(header::SEC_WEBSOCKET_VERSION).is_some_and(|v| v == "13");
    let Some(key) = request.headers().get(header::SEC_WEBSOCKET_KEY).filter(|_| version_ok) else {
        return status_text(StatusCode::BAD_REQUEST, "not a WebSocket handshake (version 13 with a key)");
    };
    let accept = derive_accept_key(key.as_bytes());
    let path = percent_encoding::percent_decode_str(request.uri().path()).decode_utf8_lossy().into_owned();
    let on_upgrade = hyper::upgrade::on(request);
    let spawn = up.spawn.clone();
    let work = async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let config = WebSocketConfig::default()
            .max_message_size(Some(up.max_message_bytes))
            .max_frame_size(Some(up.max_message_bytes));
        let stream = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
        run_peer(stream, path, headers, up).await;
    };
    if spawn.send(Box::pin(work)).is_err() {
        return status_text(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping");
    }
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&accept).expect("base64 is a valid header"));
    response
}

/// One peer's life: reported connected, messages both ways, reported closed.
async fn run_peer<H: ServerHandler, S>(
    mut stream: WebSocketStream<S>,
    path: String,
    headers: Vec<(String, String)>,
    up: Upgrade<H>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _open = up.stats.open(Gauge::WebSocketPeers);
    // A peer is still a connection: max_connections counts it.
    let _connection = up.stats.open(Gauge::Connections);
    let (queue, mut outgoing) = mpsc::channel(up.max_queued_messages.max(1));
    let id = up.peers.add(up.pattern.clone(), queue.clone());
    let control = Arc::new(PeerControl { queue, close: Mutex::new(None), closing: Notify::new() });
    let info = PeerInfo { id, path, pattern: up.pattern.clone(), peer: up.peer.clone(), headers };
    up.handler.websocket_connected(info, control.clone());
    let (code, reason) = pump(&mut stream, &mut outgoing, &control, &up, id).await;
    up.peers.remove(id);
    up.handler.websocket_closed(id, code, &reason);
}

/// Moves messages both ways until the peer or the node closes; the close code and reason.
async fn pump<H: ServerHandler, S>(
    stream: &mut WebSocketStream<S>,
    outgoing: &mut mpsc::Receiver<Outgoing<H::Text>>,
    control: &PeerControl<H::Text>,
    up: &Upgrade<H>,
    id: u64,
) -> (u16, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let handler = &*up.handler;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + up.heartbeat, up.heartbeat);
    // Pings sent since the peer last sent anything.
    let mut unanswered = 0;
    loop {
        tokio::select! {
            biased;
            _ = ping.tick(), if !up.heartbeat.is_zero() => {
                if unanswered == MISSED_PINGS {
                    handler.error(&format!("WebSocket peer {id}: no answer to {MISSED_PINGS} pings: closed"));
                    return (CLOSE_ABNORMAL, String::new());
                }
                unanswered += 1;
                if stream.send(Message::Ping(Bytes::new())).await.is_err() {
                    return (CLOSE_ABNORMAL, String::new());
                }
            }
            () = control.closing.notified() => {
                // What was queued before close() goes first.
                while let Ok(message) = outgoing.try_recv() {
                    if stream.feed(message_of(message)).await.is_err() {
                        return (CLOSE_ABNORMAL, String::new());
                    }
                }
                let (code, reason) = control.close.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or((1000, String::new()));
                let frame = CloseFrame { code: CloseCode::from(code), reason: reason.clone().into() };
                let _ = stream.send(Message::Close(Some(frame))).await;
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                    while let Some(Ok(message)) = stream.next().await {
                        if message.is_close() { break; }
                    }
                }).await;
                return (code, reason);
            }
            Some(message) = outgoing.recv() => {
                let mut result = stream.feed(message_of(message)).await;
                while result.is_ok() && let Ok(more) = outgoing.try_recv() {
                    result = stream.feed(message_of(more)).await;
                }
                if result.is_err() || stream.flush().await.is_err() {
                    return (CLOSE_ABNORMAL, String::new());
                }
            }
            incoming = async {
                std::future::poll_fn(|cx| handler.poll_ready(cx)).await;
                stream.next().await
            } => {
                if matches!(incoming, Some(Ok(_))) {
                    unanswered = 0;
                }
                match incoming {
                Some(Ok(Message::Text(text))) => {
                    up.stats.count(Count::WebSocketMessage);
                    handler.websocket_text(id, text.as_str());
                }
                Some(Ok(Message::Binary(data))) => {
                    up.stats.count(Count::WebSocketMessage);
                    handler.websocket_binary(id, data);
                }
                Some(Ok(Message::Close(frame))) => {
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.close(None)).await;
                    return frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return read_failed(stream, error, id, handler).await,
                None => return (CLOSE_ABNORMAL, String::new()),
                }
            }
        }
    }
}

/// A read error: a message over the limit or invalid text gets its close
/// code (and an `error`); anything else is a lost connection.
async fn read_failed<S, H: ServerHandler>(
    stream: &mut WebSocketStream<S>,
    error: tungstenite::Error,
    id: u64,
    handler: &H,
) -> (u16, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (code, reason) = match &error {
        tungstenite::Error::Capacity(_) => (1009, "message too big"),
        tungstenite::Error::Utf8(_) => (1007, "invalid UTF-8"),
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            return (CLOSE_ABNORMAL, String::new());
        }
        tungstenite::Error::Protocol(_) => (1002, "protocol error"),
        _ => return (CLOSE_ABNORMAL, String::new()),
    };
    handler.error(&format!("WebSocket peer {id}: {error}: closed with {code}"));
    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.send(Message::Close(Some(frame)))).await;
    (code, reason.to_string())
}

pub(super) fn message_of<T: OutgoingText>(message: Outgoing<T>) -> Message {
    match message {
        Outgoing::Text(text) => Message::Text(Utf8Bytes::from(text.into_string())),
        Outgoing::Message(message) => message,
    }
}
