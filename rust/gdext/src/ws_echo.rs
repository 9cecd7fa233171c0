//! `WsEcho`: a WebSocket client node (ws and wss) with heartbeats, reconnect
//! and a bounded send queue. The session itself lives in `async_net_core::ws`
//! and runs on the I/O worker; this file forwards its events to the main
//! thread and emits them.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use async_net_core::{
    redact,
    relay::{Bounds, Relay},
    state::NetState,
    ws::{self, OutgoingText, WsConfig, WsControl, WsHandler, WsStats},
};
use bytes::Bytes;
use godot::{
    classes::{INode, Node},
    prelude::*,
};

use crate::{
    net_node::{Emit, Flow, NetNode, NodeLink, unbound},
    settings::{self, positive, seconds},
    signals::{BatchSignal, Burst, HotSignal},
};

/// Most received messages waiting for the main thread. Past it, or past
/// [`RECEIVE_WINDOW_BYTES`], the session stops reading and TCP makes the
/// server wait.
const RECEIVE_WINDOW_MESSAGES: usize = 65_536;
/// Most received bytes waiting for the main thread (a larger message passes alone).
const RECEIVE_WINDOW_BYTES: usize = 8 * 1024 * 1024;

/// A WebSocket client. Messages arrive as signals; [method send_text] and
/// [method send_binary] never block. Unlike [WebSocketPeer] it needs no
/// polling, reconnects by itself and takes messages up to
/// [member max_message_bytes] (16 MiB by default).
/// [codeblock]
/// $WsEcho.message_received.connect(func(text): $Log.text += text + "\n")
/// $WsEcho.send_text("hello")   # queued until connected, then sent in order
/// [/codeblock]
/// A connection that is lost (no pong within [member heartbeat_sec], a dropped
/// socket, the server closing) is tried again after a backoff delay between
/// [member reconnect_min_sec] and [member reconnect_max_sec]. Sends made
/// meanwhile wait in a queue of at most [member max_queued_messages] and go
/// out in order once connected again; a send the queue cannot take returns
/// [code]false[/code] and emits [signal error].
///
/// At high message rates, connect [signal messages_received] and
/// [signal binaries_received] instead of (or besides) the per-message
/// signals: each carries, in one emission, every message that arrived
/// together, which costs the main thread far less per message.
/// [codeblock]
/// $WsEcho.messages_received.connect(func(texts: PackedStringArray):
///     for text in texts:
///         handle(text))
/// [/codeblock]
///
/// Hostile servers get a clear [signal error] and a close code: 1009 for a
/// message over [member max_message_bytes], 1007 for text that is not UTF-8,
/// 1002 for protocol violations.
#[derive(GodotClass)]
#[class(tool, base = Node)]
pub struct WsEcho {
    /// Connect when the node is ready (in a running game, not in the editor).
    #[export]
    autostart: bool,
    /// The server: [code]ws://host:port/path[/code], or [code]wss://[/code] for TLS.
    #[export]
    url: GString,
    /// Subprotocols to offer, most preferred first; the server's choice is
    /// passed to [signal connected].
    #[export]
    subprotocols: PackedStringArray,
    /// Extra HTTP headers for the upgrade request, e.g. [code]{"Authorization": "Bearer ..."}[/code].
    #[export]
    headers: VarDictionary,
    /// A ping is sent this often; one left unanswered until the next counts
    /// as a lost connection (detected within two heartbeats). 0 disables.
    #[export(range = (0.0, 3600.0, 0.1, or_greater, suffix = "s"))]
    heartbeat_sec: f64,

    /// Reconnect after a failed connect or a lost connection.
    #[export_group(name = "Reconnect")]
    #[export]
    reconnect: bool,
    /// First delay before reconnecting; it doubles up to [member reconnect_max_sec], with jitter.
    #[export(range = (0.0, 60.0, 0.01, or_greater, suffix = "s"))]
    reconnect_min_sec: f64,
    /// Longest delay between reconnect attempts.
    #[export(range = (0.0, 600.0, 0.1, or_greater, suffix = "s"))]
    reconnect_max_sec: f64,
    /// Time allowed for one connect (DNS, TCP, TLS and the HTTP upgrade).
    #[export(range = (0.1, 120.0, 0.1, or_greater, suffix = "s"))]
    connect_timeout_sec: f64,

    /// Largest message accepted, in bytes, in either direction. A larger
    /// incoming one closes the connection with code 1009; a larger send is refused.
    #[export_group(name = "Limits")]
    #[export(range = (1.0, 1073741824.0, 1.0, or_greater, suffix = "bytes"))]
    max_message_bytes: i64,
    /// Most messages waiting to be sent (while connecting, reconnecting or
    /// while the network is slower than the game); one more is refused with [signal error].
    #[export(range = (1.0, 1000000.0, 1.0, or_greater))]
    max_queued_messages: i32,

    /// PEM file of the certificate authority that signed the server's
    /// certificate, for a private CA; empty trusts the usual public CAs.
    /// Certificates are always verified. Must be a file on disk
    /// ([code]res://[/code] works when run from the editor; exported games use
    /// [code]user://[/code] or an absolute path).
    #[export_group(name = "TLS")]
    #[export(file = "*.pem,*.crt")]
    ca_file: GString,

    /// The connection's state: one of the STOPPED, CONNECTING, CONNECTED, RECONNECTING, FAILED constants.
    #[var(get = get_state, no_set)]
    state: PhantomVar<i32>,

    net: NetNode,
    control: Option<Arc<WsControl<Text>>>,
    stats: Arc<WsStats>,
    base: Base<Node>,
}

#[godot_api]
impl INode for WsEcho {
    fn init(base: Base<Node>) -> Self {
        let defaults = WsConfig::default();
        Self {
            autostart: true,
            url: defaults.url.as_str().into(),
            subprotocols: PackedStringArray::new(),
            headers: VarDictionary::new(),
            heartbeat_sec: defaults.heartbeat.as_secs_f64(),
            reconnect: defaults.reconnect,
            reconnect_min_sec: defaults.reconnect_min.as_secs_f64(),
            reconnect_max_sec: defaults.reconnect_max.as_secs_f64(),
            connect_timeout_sec: defaults.connect_timeout.as_secs_f64(),
            max_message_bytes: defaults.max_message_bytes as i64,
            max_queued_messages: defaults.max_queued_messages as i32,
            ca_file: GString::new(),
            state: PhantomVar::default(),
            net: NetNode::default(),
            control: None,
            stats: Arc::default(),
            base,
        }
    }

    fn ready(&mut self) {
        if NetNode::autostarts(self.autostart) {
            self.start();
        }
    }

    fn exit_tree(&mut self) {
        self.stop();
    }
}

#[godot_api]
impl WsEcho {
    /// The connection is up; [param protocol] is the subprotocol the server chose, or "".
    #[signal]
    pub fn connected(protocol: GString);
    /// A text message arrived.
    #[signal]
    pub fn message_received(text: GString);
    /// A binary message arrived.
    #[signal]
    pub fn binary_received(data: PackedByteArray);
    /// Text messages arrived together: every one the connection had ready at
    /// once (at most 4096), in order. For high message rates: one signal per batch costs far
    /// less than [signal message_received] per message. A batch ends where a
    /// binary message comes between texts (then [signal binaries_received]
    /// carries it next), so the order of texts and binaries holds across the
    /// two signals. Built only while something is connected; connect it
    /// alongside [signal message_received] and both fire.
    #[signal]
    pub fn messages_received(texts: PackedStringArray);
    /// Binary messages arrived together, in order: the batched sibling of
    /// [signal binary_received], as [signal messages_received] is for text.
    #[signal]
    pub fn binaries_received(data: Array<PackedByteArray>);
    /// The connection closed with [param code] and [param reason]: as the server
    /// sent them, as given to [method close], or 1006 when it was lost without
    /// a closing handshake (then [signal error] says why).
    #[signal]
    pub fn closed(code: i64, reason: GString);
    /// [member state] changed.
    #[signal]
    pub fn state_changed(state: i64);
    /// Something went wrong: a failed connect, a lost connection, a refused send, a limit.
    #[signal]
    pub fn error(message: GString);

    /// Connects to [member url] (restarting if already running). Properties
    /// are read now; changes apply at the next start. Messages queued before
    /// are dropped.
    #[func]
    pub fn start(&mut self) {
        self.stop();
        let link = self.link();
        let config = match self.config() {
            Ok(config) => config,
            Err(message) => return self.reentrant(|link| link.fail(&message)),
        };
        let control = Arc::new(WsControl::new(&config));
        self.control = Some(control.clone());
        self.stats = Arc::default();
        let relay = Arc::new(Relay::new(Bounds { messages: RECEIVE_WINDOW_MESSAGES, bytes: RECEIVE_WINDOW_BYTES }));
        let node: Gd<Node> = self.to_gd().upcast();
        let emitter = Emitter {
            node: self.to_gd(),
            link: link.clone(),
            message_received: HotSignal::new(&node, "message_received"),
            binary_received: HotSignal::new(&node, "binary_received"),
            messages_received: BatchSignal::new(&node, "messages_received"),
            binaries_received: BatchSignal::new(&node, "binaries_received"),
            burst: Burst::default(),
        };
        let forwarder = Forwarder { relay: relay.clone() };
        let stats = self.stats.clone();
        let name = format!("WsEcho {}", redact(config.url.trim()));
        let io = async move {
            ws::run(config, control, forwarder, stats).await;
            Ok(())
        };
        self.net.start(&link, &name, relay, io, emitter);
        // Sends made right after start() are queued, not refused.
        self.reentrant(|link| link.set_state(NetState::Connecting));
    }

    /// Connects to [param url], or to [member url] when empty (same as [method start]).
    #[func]
    pub fn connect_to_url(&mut self, #[opt(default = "")] url: GString) {
        if !url.is_empty() {
            self.url = url;
        }
        self.start();
    }

    /// Closes the connection at once, without a closing handshake, and stops
    /// reconnecting; queued messages are dropped. See [method close] for a graceful close.
    #[func]
    pub fn stop(&mut self) {
        if let Some(control) = self.control.take() {
            control.stop();
        }
        let link = self.link();
        self.net.cancel_tasks(&link);
        unbound(self, || link.set_state(NetState::Stopped));
    }

    /// Sends the queued messages, then closes with [param code] (1000, or
    /// 3000-4999 for your own meanings) and [param reason] (at most 123 bytes),
    /// and does not reconnect. [signal closed] follows.
    #[func]
    pub fn close(&mut self, #[opt(default = 1000)] code: i64, #[opt(default = "")] reason: GString) {
        let Some(control) = self.control.clone().filter(|_| self.is_running()) else {
            return;
        };
        let code = u16::try_from(code).unwrap_or(0);
        if let Err(message) = control.close(code, &reason.to_string()) {
            self.reentrant(|link| link.error(&message));
        }
    }

    /// Sends a text message, or queues it while (re)connecting. Returns
    /// [code]false[/code] and emits [signal error] if it cannot be queued.
    #[func]
    pub fn send_text(&mut self, text: GString) -> bool {
        self.send(|control| control.send_text(Text(text)))
    }

    /// Sends a binary message, or queues it while (re)connecting. Returns
    /// [code]false[/code] and emits [signal error] if it cannot be queued.
    #[func]
    pub fn send_binary(&mut self, data: PackedByteArray) -> bool {
        self.send(|control| control.send_binary(data.to_vec()))
    }

    /// Messages waiting to be sent.
    #[func]
    pub fn get_queued_count(&self) -> i64 {
        self.control.as_ref().filter(|_| self.is_running()).map_or(0, |c| c.queued() as i64)
    }

    /// The state as one of the class constants.
    #[func]
    pub fn get_state(&self) -> i32 {
        self.net.state().code()
    }

    /// Counters since the last start: connects, reconnects, connect_failures,
    /// messages_sent, messages_received, bytes_sent, bytes_received, queued,
    /// send_refused, pings_sent, pongs_received, rtt_usec (last heartbeat round trip), state.
    /// [code]reconnects[/code] counts, as in every node, the times a lost
    /// connection or a failed attempt was followed by another attempt
    /// (the state went RECONNECTING).
    #[func]
    pub fn get_stats(&self) -> VarDictionary {
        let s = self.stats.snapshot();
        vdict! {
            "connects" => s.connects as i64,
            "reconnects" => s.reconnects as i64,
            "connect_failures" => s.connect_failures as i64,
            "messages_sent" => s.messages_sent as i64,
            "messages_received" => s.messages_received as i64,
            "bytes_sent" => s.bytes_sent as i64,
            "bytes_received" => s.bytes_received as i64,
            "queued" => self.get_queued_count(),
            "send_refused" => s.send_refused as i64,
            "pings_sent" => s.pings_sent as i64,
            "pongs_received" => s.pongs_received as i64,
            "rtt_usec" => s.last_rtt_usec as i64,
            "state" => self.net.state().code(),
        }
    }
}

crate::net_state_constants!(WsEcho);

impl WsEcho {
    fn link(&self) -> NodeLink {
        self.net.link(self.to_gd().upcast())
    }

    /// Runs `f` (which emits signals) with the node unbound, so a GDScript
    /// handler may call back into it.
    fn reentrant(&mut self, f: impl FnOnce(&NodeLink)) {
        let link = self.link();
        unbound(self, || f(&link));
    }

    fn is_running(&self) -> bool {
        !matches!(self.net.state(), NetState::Stopped | NetState::Failed)
    }

    fn send(&mut self, queue: impl FnOnce(&WsControl<Text>) -> Result<(), ws::SendError>) -> bool {
        let result = match self.control.as_ref().filter(|_| self.is_running()) {
            Some(control) => queue(control).map_err(|e| e.to_string()),
            None => Err("message refused: not connected (call connect_to_url() or start() first)".into()),
        };
        match result {
            // The session on the I/O worker was woken and sends it now.
            Ok(()) => true,
            Err(message) => {
                self.stats.send_refused();
                self.reentrant(|link| link.error(&message));
                false
            }
        }
    }

    fn config(&self) -> Result<WsConfig, String> {
        let mut headers = Vec::new();
        for (key, value) in self.headers.iter_shared() {
            headers.push((key.stringify().to_string(), value.stringify().to_string()));
        }
        let config = WsConfig {
            url: self.url.to_string(),
            subprotocols: self.subprotocols.as_slice().iter().map(|s| s.to_string()).collect(),
            headers,
            heartbeat: seconds("heartbeat_sec", self.heartbeat_sec, 0.0)?,
            max_message_bytes: positive("max_message_bytes", self.max_message_bytes)?,
            max_queued_messages: positive("max_queued_messages", self.max_queued_messages.into())?,
            reconnect: self.reconnect,
            reconnect_min: seconds("reconnect_min_sec", self.reconnect_min_sec, 0.0)?,
            reconnect_max: seconds("reconnect_max_sec", self.reconnect_max_sec, 0.0)?,
            ca_file: settings::file_path(&self.ca_file.to_string()),
            connect_timeout: seconds("connect_timeout_sec", self.connect_timeout_sec, 0.001)?,
            ..WsConfig::default()
        };
        config.validate()?;
        Ok(config)
    }
}

/// A text message as `send_text` got it: its UTF-8 is made on the I/O
/// worker when it is sent. (Also the text of `HttpServer`'s answers,
/// events and WebSocket messages.)
pub(crate) struct Text(pub(crate) GString);

impl OutgoingText for Text {
    fn max_utf8_len(&self) -> usize {
        self.0.len().saturating_mul(4)
    }
    fn utf8_len(&self) -> usize {
        self.0.chars().iter().map(|c| c.len_utf8()).sum()
    }
    fn into_string(self) -> String {
        String::from(&self.0)
    }
}

/// What the session reports, as the main thread will emit it; payload
/// strings are made on the I/O worker.
enum WsEvent {
    State(NetState),
    Connected(GString),
    Text(GString),
    Binary(Bytes),
    BatchEnd,
    Closed(u16, GString),
    Error(String),
}

/// On the I/O worker: the session's events into messages for the main thread.
struct Forwarder {
    relay: Arc<Relay<WsEvent>>,
}

impl Forwarder {
    fn send(&self, event: WsEvent, bytes: usize) {
        // Fails only once the node stopped, when nothing is to be reported.
        let _ = self.relay.push_now(event, bytes);
    }
}

impl WsHandler for Forwarder {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.relay.poll_ready(cx)
    }
    fn state_changed(&mut self, state: NetState) {
        self.send(WsEvent::State(state), 0);
    }
    fn connected(&mut self, protocol: &str) {
        self.send(WsEvent::Connected(protocol.into()), 0);
    }
    fn text_received(&mut self, text: &str) {
        self.send(WsEvent::Text(text.into()), text.len());
    }
    fn binary_received(&mut self, data: Bytes) {
        let bytes = data.len();
        self.send(WsEvent::Binary(data), bytes);
    }
    fn batch_end(&mut self) {
        self.send(WsEvent::BatchEnd, 0);
    }
    fn closed(&mut self, code: u16, reason: &str) {
        self.send(WsEvent::Closed(code, reason.into()), 0);
    }
    fn error(&mut self, message: &str) {
        self.send(WsEvent::Error(message.into()), 0);
    }
}

/// On the main thread: the session's events as the node's signals, never
/// bound to the node; each emission first checks the node still exists.
struct Emitter {
    node: Gd<WsEcho>,
    link: NodeLink,
    message_received: HotSignal,
    binary_received: HotSignal,
    messages_received: BatchSignal<Vec<GString>>,
    binaries_received: BatchSignal<Vec<PackedByteArray>>,
    burst: Burst,
}

impl Emit<WsEvent> for Emitter {
    fn emit(&mut self, event: WsEvent) -> Flow {
        let ran_script = match event {
            WsEvent::State(state) => {
                self.link.set_state(state);
                true
            }
            WsEvent::Connected(protocol) => {
                if self.link.is_alive() {
                    self.node.signals().connected().emit(&protocol);
                }
                true
            }
            WsEvent::Text(text) => self.text(text),
            WsEvent::Binary(data) => self.binary(&data),
            WsEvent::BatchEnd => self.batch_end(),
            WsEvent::Closed(code, reason) => {
                if self.link.is_alive() {
                    self.node.signals().closed().emit(code as i64, &reason);
                }
                true
            }
            WsEvent::Error(message) => {
                self.link.error(message);
                true
            }
        };
        if ran_script && !self.link.is_alive() { Flow::Stop } else { Flow::Continue }
    }
}

impl Emitter {
    /// Emits the texts collected so far; false if a handler freed the node.
    fn flush_texts(&mut self) -> bool {
        !self.messages_received.flush(&mut self.burst, |texts| [PackedStringArray::from(texts).to_variant()])
            || self.link.is_alive()
    }

    /// Emits the binaries collected so far; false if a handler freed the node.
    fn flush_binaries(&mut self) -> bool {
        !self.binaries_received.flush(&mut self.burst, |data| [Array::from(&data[..]).to_variant()])
            || self.link.is_alive()
    }

    /// Each of these says whether a script may have run (something was emitted).
    fn text(&mut self, text: GString) -> bool {
        // A text after binaries ends their batch first, keeping the order across the two signals.
        if !self.link.is_alive() || !self.flush_binaries() {
            return true;
        }
        if self.message_received.emit_in(&mut self.burst, || [text.to_variant()]) && !self.link.is_alive() {
            return true;
        }
        self.messages_received.push(Vec::new, |texts| texts.push(text));
        false
    }

    fn binary(&mut self, data: &[u8]) -> bool {
        if !self.link.is_alive() || !self.flush_texts() {
            return true;
        }
        let mut bytes = None;
        let each = || [bytes.insert(PackedByteArray::from(data)).to_variant()];
        if self.binary_received.emit_in(&mut self.burst, each) && !self.link.is_alive() {
            return true;
        }
        self.binaries_received.push(Vec::new, |batch| batch.push(bytes.unwrap_or_else(|| PackedByteArray::from(data))));
        false
    }

    fn batch_end(&mut self) -> bool {
        // Whatever ran before the next burst, nothing checked in this one is trusted after it.
        self.burst.end_round();
        if self.link.is_alive() && self.flush_texts() {
            self.flush_binaries();
        }
        true
    }
}
