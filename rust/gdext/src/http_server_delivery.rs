//! The two halves of a running `HttpServer`: the `Forwarder` on the I/O
//! worker (the core server's callbacks as events, their strings made there)
//! and the `Emitter` on the main thread (each request to its GDScript
//! handler, the peers' and streams' events to their signals), with the
//! context that the requests and event streams of one run share.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::Rc,
    sync::Arc,
    task::{Context, Poll},
};

use async_net_core::{
    http_server::{
        self, EventBody, EventSender, IncomingRequest, PeerControl, PeerInfo, Responder, RouteId, ServerHandler,
    },
    relay::Relay,
    state::NetState,
};
use bytes::Bytes;
use godot::prelude::*;

use crate::{
    http_event_stream::HttpEventStream,
    http_response::header_strings,
    http_server::HttpServer,
    http_server_request::{HttpServerRequest, RequestParts},
    net_node::{Emit, Flow, NodeLink},
    signals::HotSignal,
    websocket_server_peer::WebSocketServerPeer,
    ws_echo::Text,
};

/// What the requests and event streams of a running server share on the main thread.
pub(crate) struct ServerContext {
    pub relay: Arc<Relay<ServerEvent>>,
    pub link: NodeLink,
    /// Open event streams, kept alive until they close.
    pub streams: RefCell<HashMap<u64, Gd<HttpEventStream>>>,
    pub next_stream: Cell<u64>,
    pub max_queued: usize,
}

impl ServerContext {
    /// Reports a handler's problem through the node's `error` (the server goes on).
    pub(crate) fn error(&self, message: impl AsRef<str>) {
        self.link.error(message);
    }

    /// A new event stream: its id and sender (for the object) and its body (for the answer).
    pub(crate) fn open_stream(&self) -> (u64, EventSender<Text>, EventBody<Text>) {
        let id = self.next_stream.get() + 1;
        self.next_stream.set(id);
        let relay = self.relay.clone();
        let (sender, body) = http_server::event_channel(self.max_queued, move || {
            // Fails only once the server stopped, when nothing is reported.
            let _ = relay.push_now(ServerEvent::StreamClosed(id), 0);
        });
        (id, sender, body)
    }

    /// Keeps `stream` alive until its client leaves or it is closed.
    pub(crate) fn keep_stream(&self, id: u64, stream: Gd<HttpEventStream>) {
        self.streams.borrow_mut().insert(id, stream);
    }
}

/// What the server reports, as the main thread will act on it; strings are
/// made on the I/O worker.
pub(crate) enum ServerEvent {
    Listening,
    Request(Box<RequestParts>, Responder<Text>),
    Answered(GString, GString, u16),
    PeerConnected(Box<PeerParts>, Arc<PeerControl<Text>>),
    PeerText(u64, GString),
    PeerBinary(u64, Bytes),
    PeerClosed(u64, u16, GString),
    StreamClosed(u64),
    Error(String),
}

/// A new WebSocket peer's strings, made on the I/O worker.
pub(crate) struct PeerParts {
    pub id: u64,
    pub path: GString,
    pub peer: GString,
    pub headers: Vec<(GString, GString)>,
}

/// On the I/O worker: the server's callbacks as events for the main thread.
pub(crate) struct Forwarder {
    pub relay: Arc<Relay<ServerEvent>>,
}

impl Forwarder {
    fn send(&self, event: ServerEvent, bytes: usize) {
        // Fails only once the node stopped, when nothing is to be reported
        // (a request's responder then answers 500 as it drops).
        let _ = self.relay.push_now(event, bytes);
    }
}

impl ServerHandler for Forwarder {
    type Text = Text;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.relay.poll_ready(cx)
    }
    fn listening(&self, _port: u16) {
        self.send(ServerEvent::Listening, 0);
    }
    fn request(&self, request: IncomingRequest, responder: Responder<Text>) {
        let bytes = request.body.len();
        self.send(ServerEvent::Request(Box::new(RequestParts::new(request)), responder), bytes);
    }
    fn answered(&self, method: &str, path: &str, status: u16) {
        self.send(ServerEvent::Answered(method.into(), path.into(), status), 0);
    }
    fn websocket_connected(&self, peer: PeerInfo, control: Arc<PeerControl<Text>>) {
        let parts = PeerParts {
            id: peer.id,
            path: peer.path.as_str().into(),
            peer: peer.peer.as_str().into(),
            headers: header_strings(peer.headers),
        };
        self.send(ServerEvent::PeerConnected(Box::new(parts), control), 0);
    }
    fn websocket_text(&self, peer: u64, text: &str) {
        self.send(ServerEvent::PeerText(peer, text.into()), text.len());
    }
    fn websocket_binary(&self, peer: u64, data: Bytes) {
        let bytes = data.len();
        self.send(ServerEvent::PeerBinary(peer, data), bytes);
    }
    fn websocket_closed(&self, peer: u64, code: u16, reason: &str) {
        self.send(ServerEvent::PeerClosed(peer, code, reason.into()), 0);
    }
    fn error(&self, message: &str) {
        self.send(ServerEvent::Error(message.to_string()), 0);
    }
}

/// A connected peer's object and its per-message signals.
pub(crate) struct PeerSignals {
    peer: Gd<WebSocketServerPeer>,
    message_received: HotSignal,
    binary_received: HotSignal,
}

/// On the main thread: requests to their handlers, events to signals; never
/// bound to the node.
pub(crate) struct Emitter {
    pub server: Gd<HttpServer>,
    pub port: u16,
    pub handlers: Rc<RefCell<HashMap<RouteId, Callable>>>,
    pub context: Rc<ServerContext>,
    pub peers: HashMap<u64, PeerSignals>,
    pub request_received: HotSignal,
}

impl Drop for Emitter {
    /// The server stopped: its peers and streams will emit nothing more.
    fn drop(&mut self) {
        for (_, mut peer) in self.peers.drain() {
            WebSocketServerPeer::release(&mut peer.peer);
        }
        for (_, mut stream) in self.context.streams.borrow_mut().drain() {
            HttpEventStream::release(&mut stream);
        }
    }
}

impl Emit<ServerEvent> for Emitter {
    fn emit(&mut self, event: ServerEvent) -> Flow {
        // Each emission and handler may free the node: checked before every event.
        if !self.context.link.is_alive() {
            return Flow::Stop;
        }
        match event {
            ServerEvent::Listening => {
                self.context.link.set_state(NetState::Listening);
                if self.context.link.is_alive() {
                    self.server.signals().listening().emit(i64::from(self.port));
                }
            }
            ServerEvent::Request(parts, responder) => {
                let handler = self.handlers.borrow().get(&parts.route).cloned();
                HttpServerRequest::dispatch(*parts, responder, handler, self.context.clone());
            }
            ServerEvent::Answered(method, path, status) => {
                self.request_received.emit(|| [method.to_variant(), path.to_variant(), i64::from(status).to_variant()]);
            }
            ServerEvent::PeerConnected(parts, control) => {
                let id = parts.id;
                let peer = WebSocketServerPeer::create(*parts, control);
                let object: Gd<Object> = peer.clone().upcast();
                let signals = PeerSignals {
                    message_received: HotSignal::of_object(object.clone(), "message_received"),
                    binary_received: HotSignal::of_object(object, "binary_received"),
                    peer: peer.clone(),
                };
                self.peers.insert(id, signals);
                self.server.signals().websocket_connected().emit(&peer);
            }
            ServerEvent::PeerText(id, text) => {
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.message_received.emit(|| [text.to_variant()]);
                }
            }
            ServerEvent::PeerBinary(id, data) => {
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.binary_received.emit(|| [PackedByteArray::from(&data[..]).to_variant()]);
                }
            }
            ServerEvent::PeerClosed(id, code, reason) => {
                if let Some(mut peer) = self.peers.remove(&id) {
                    peer.peer.signals().closed().emit(i64::from(code), &reason);
                    WebSocketServerPeer::release(&mut peer.peer);
                }
            }
            ServerEvent::StreamClosed(id) => {
                let stream = self.context.streams.borrow_mut().remove(&id);
                if let Some(stream) = stream {
                    HttpEventStream::ended(stream);
                }
            }
            ServerEvent::Error(message) => self.context.link.error(message),
        }
        if self.context.link.is_alive() { Flow::Continue } else { Flow::Stop }
    }
}
