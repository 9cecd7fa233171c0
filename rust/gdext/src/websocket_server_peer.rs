//! `WebSocketServerPeer`: one client of an `HttpServer` WebSocket endpoint.
//! Sends are queued to the peer's loop on the I/O worker (text made UTF-8
//! there); what the peer sends arrives as this object's signals.

use std::sync::Arc;

use async_net_core::http_server::PeerControl;
use bytes::Bytes;
use godot::prelude::*;

use crate::{http_response::headers_dictionary, http_server_delivery::PeerParts, ws_echo::Text};

/// A client connected to an endpoint of [method HttpServer.websocket].
///
/// Each one is given by [signal HttpServer.websocket_connected]; what it
/// sends arrives as this object's signals.
/// [codeblock]
/// $HttpServer.websocket("/chat")
/// $HttpServer.websocket_connected.connect(func(peer: WebSocketServerPeer):
///     peer.send_text("welcome, peer %d" % peer.id)
///     peer.message_received.connect(func(text): $HttpServer.broadcast_text("/chat", text))
///     peer.closed.connect(func(code, reason): print("peer %d left" % peer.id)))
/// [/codeblock]
/// The object lives as long as the connection (and as long as you hold it).
#[derive(GodotClass)]
#[class(no_init, base = RefCounted)]
pub struct WebSocketServerPeer {
    /// A number unique among the server's peers.
    #[var(no_set)]
    id: i64,
    /// The path it connected to (percent-decoded).
    #[var(no_set)]
    path: GString,
    /// The headers of its opening request: lower-case names.
    #[var(no_set)]
    headers: VarDictionary,
    /// The client's address, [code]ip:port[/code].
    #[var(no_set)]
    peer: GString,
    control: Arc<PeerControl<Text>>,
    base: Base<RefCounted>,
}

#[godot_api]
impl WebSocketServerPeer {
    /// The peer sent a text message.
    #[signal]
    pub fn message_received(text: GString);
    /// The peer sent a binary message.
    #[signal]
    pub fn binary_received(data: PackedByteArray);
    /// The connection ended: the close [param code] and [param reason]
    /// (1006 when it ended without a closing handshake, or when the peer
    /// answered none of two pings sent 20 s apart). Not emitted when the server stops.
    #[signal]
    pub fn closed(code: i64, reason: GString);

    /// Queues [param text]; [code]false[/code] if the peer is gone or its queue
    /// (1024 messages) is full.
    #[func]
    pub fn send_text(&self, text: GString) -> bool {
        self.control.send_text(Text(text))
    }

    /// Queues [param data]; [code]false[/code] if the peer is gone or its queue is full.
    #[func]
    pub fn send_binary(&self, data: PackedByteArray) -> bool {
        self.control.send_binary(Bytes::copy_from_slice(data.as_slice()))
    }

    /// Closes the connection with [param code] and [param reason] once what is queued is sent.
    #[func]
    pub fn close(&self, #[opt(default = 1000)] code: i64, #[opt(default = "")] reason: GString) {
        let code = u16::try_from(code).ok().filter(|c| (1000..=4999).contains(c)).unwrap_or(1000);
        self.control.close(code, &reason.to_string());
    }

    /// Whether the peer is still connected.
    #[func]
    pub fn is_open(&self) -> bool {
        self.control.is_open()
    }
}

impl WebSocketServerPeer {
    /// The peer will emit nothing more: lets go of what its signals hold.
    pub(crate) fn release(peer: &mut Gd<Self>) {
        crate::signals::disconnect_all(&mut peer.clone().upcast(), &["message_received", "binary_received", "closed"]);
    }

    pub(crate) fn create(parts: PeerParts, control: Arc<PeerControl<Text>>) -> Gd<Self> {
        Gd::from_init_fn(|base| WebSocketServerPeer {
            id: parts.id as i64,
            path: parts.path,
            headers: headers_dictionary(&parts.headers),
            peer: parts.peer,
            control,
            base,
        })
    }
}
