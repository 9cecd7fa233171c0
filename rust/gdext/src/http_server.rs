//! `HttpServer`: HTTP, WebSocket and server-sent events inside the running
//! game and the editor. The server lives in `async_net_core::http_server`
//! and runs on the I/O worker (parsing, TLS, limits, files, the strings of
//! each request); this file is the node (properties, routes, start and
//! stop); `http_server_delivery.rs` moves requests and events between the
//! worker and the main thread, where the GDScript handlers run.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::Rc,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU16, Ordering::Relaxed},
    },
    time::Duration,
};

use async_net_core::{
    http_server::{
        self, AnswerCache, CacheBounds, Command, Outgoing, Peers, RouteId, Routes, Server, ServerConfig, ServerStats,
    },
    listen,
    relay::{Bounds, Relay},
    state::NetState,
};
use bytes::Bytes;
use godot::{
    classes::{INode, Node},
    prelude::*,
};
use tokio::sync::mpsc;

use crate::{
    http_options::{self, Options},
    http_server_delivery::{Emitter, Forwarder, ServerContext},
    net_node::{NetNode, NodeLink, unbound},
    settings::{self, positive, seconds},
    signals::HotSignal,
    websocket_server_peer::WebSocketServerPeer,
    ws_echo::Text,
};

/// Most events (requests, peers' messages) waiting for the main thread; past
/// it, or past [`RELAY_BYTES`], requests and WebSocket reads wait (in TCP).
const RELAY_MESSAGES: usize = 65_536;
/// Most request and message bytes waiting for the main thread.
const RELAY_BYTES: usize = 64 * 1024 * 1024;
/// Most broadcasts waiting for the I/O worker.
const COMMAND_QUEUE: usize = 4096;

/// An HTTP server in the game (or the editor): routes to GDScript handlers,
/// WebSocket endpoints, server-sent events and served folders.
///
/// A handler gets an [HttpServerRequest]; what it returns is the answer: a
/// [String] (200 [code]text/plain[/code]), a [Dictionary] or [Array] (200
/// [code]application/json[/code]) or a [PackedByteArray] (200
/// [code]application/octet-stream[/code]). A handler that [code]await[/code]s
/// answers with what it finally returns.
/// [codeblock]
/// func _ready():
///     $HttpServer.route("GET", "/players/:id", func(req): return {"id": req.params.id, "hp": 100})
///     $HttpServer.route("POST", "/spawn", _on_spawn)
///     $HttpServer.websocket("/live")
///     $HttpServer.serve_files("/", "res://web")
///
/// func _on_spawn(req: HttpServerRequest):
///     var body = req.json()
///     await get_tree().create_timer(0.5).timeout
///     return "spawned %s" % body.name
/// [/codeblock]
/// [method HttpServerRequest.respond] answers with a status and headers of
/// your choice, at any time (the first answer wins); call
/// [method HttpServerRequest.defer] to answer later from elsewhere. A handler
/// that returns [code]null[/code] without having answered or deferred (which is
/// also what a handler that hits a script error returns) answers 500 and
/// [signal error] says so; no route answers 404; no answer within
/// [member request_timeout_sec] answers 503.
///
/// Secure by default: it listens on 127.0.0.1, and answers only to loopback
/// host names and to pages it served itself (or listed in
/// [member cors_origins]). Listening on another address needs a [member token];
/// without one, [method start] refuses with a clear [signal error]. Limits
/// answer 413 (body), 431 (headers), 408 (slow client) and 503 (too many
/// connections); nothing a client sends can stop the server.
///
/// Everything but the handlers runs off the main thread: parsing, TLS, the
/// request's strings, encoding the answer, reading served files.
///
/// A handler runs on the main thread, so its request waits for the next
/// frame. A route whose answer may be a little old (a status document, a
/// score table) can be answered without that wait: with
/// [code]route("GET", "/status", _status, {"cache_sec": 0.1})[/code] each
/// answer is kept off the main thread for 0.1 s, and the requests of that
/// window are answered from it at once (see [method route] and
/// [method clear_cache]).
#[derive(GodotClass)]
#[class(tool, base = Node)]
pub struct HttpServer {
    /// Start listening when the node is ready (in a running game; in the
    /// editor, tools call [method start]).
    #[export]
    autostart: bool,

    /// Address to listen on. The default accepts this machine only; any other
    /// (such as [code]0.0.0.0[/code]) needs a [member token].
    #[export_group(name = "Listen")]
    #[export]
    host: GString,
    /// TCP port; 0 picks a free one (see [method get_bound_port] and [signal listening]).
    #[export(range = (0.0, 65535.0, 1.0))]
    port: i32,
    /// When set, every request needs [code]Authorization: Bearer <token>[/code]
    /// (compared in constant time); others get 401.
    #[export]
    token: GString,

    /// Certificate chain (PEM). With [member tls_key_file], the server speaks
    /// https and wss, and HTTP/2 through ALPN.
    #[export_group(name = "TLS")]
    #[export(file = "*.pem,*.crt")]
    tls_certificate_file: GString,
    /// Private key (PEM) of [member tls_certificate_file].
    #[export(file = "*.pem,*.key")]
    tls_key_file: GString,

    /// Origins whose browser pages may call the server (e.g.
    /// [code]https://tools.example.com[/code]; [code]*[/code] for any): they
    /// get CORS headers and preflights are answered. Pages the server served
    /// itself need no entry; other pages are refused (403).
    #[export_group(name = "Browsers")]
    #[export]
    cors_origins: PackedStringArray,

    /// Most connections open at once, WebSocket peers included; the next ones
    /// are answered 503 and closed.
    #[export_group(name = "Limits")]
    #[export(range = (1.0, 10000.0, 1.0, or_greater))]
    max_connections: i32,
    /// Largest request head (request line and headers) accepted; larger: 431.
    /// HTTP/1 always allows at least 8192 bytes.
    #[export(range = (1024.0, 1048576.0, 1.0, or_greater, suffix = "bytes"))]
    max_header_bytes: i32,
    /// Largest request body (and WebSocket message) accepted; larger: 413
    /// (a WebSocket peer is closed with 1009).
    #[export(range = (1.0, 1073741824.0, 1.0, or_greater, suffix = "bytes"))]
    max_body_bytes: i64,
    /// Time a client has to send its request (else 408, and the connection
    /// is closed; an idle keep-alive connection is closed without one) and a
    /// handler has to answer (else 503).
    #[export(range = (0.1, 3600.0, 0.1, or_greater, suffix = "s"))]
    request_timeout_sec: f64,
    /// Most answers kept at once by routes with [code]cache_sec[/code] (see
    /// [method route]); past it, those nearest to expiring are dropped first.
    #[export(range = (1.0, 100000.0, 1.0, or_greater))]
    cache_max_entries: i32,
    /// Most bytes (bodies and headers) of the answers kept at once; an answer
    /// larger than a quarter of it is sent but not kept.
    #[export(range = (1024.0, 1073741824.0, 1.0, or_greater, suffix = "bytes"))]
    cache_max_bytes: i64,

    /// The server's state: one of the STOPPED, CONNECTING, LISTENING, FAILED constants.
    #[var(get = get_state, no_set)]
    state: PhantomVar<i32>,

    net: NetNode,
    routes: Arc<RwLock<Routes>>,
    handlers: Rc<RefCell<HashMap<RouteId, Callable>>>,
    peers: Arc<Peers<Text>>,
    /// The running server's broadcasts; `None` when stopped.
    commands: Option<mpsc::Sender<Command<Text>>>,
    /// Set by `start()`; the server on the I/O worker clears it if it stops by itself.
    bound_port: Arc<AtomicU16>,
    stats: Arc<ServerStats>,
    /// The answers kept by routes with `cache_sec`, made anew by each start.
    cache: Arc<AnswerCache>,
    base: Base<Node>,
}

#[godot_api]
impl INode for HttpServer {
    fn init(base: Base<Node>) -> Self {
        let defaults = ServerConfig::default();
        let cache = CacheBounds::default();
        Self {
            autostart: true,
            host: defaults.host.as_str().into(),
            port: i32::from(defaults.port),
            token: GString::new(),
            tls_certificate_file: GString::new(),
            tls_key_file: GString::new(),
            cors_origins: PackedStringArray::new(),
            max_connections: defaults.max_connections as i32,
            max_header_bytes: defaults.max_header_bytes as i32,
            max_body_bytes: defaults.max_body_bytes as i64,
            request_timeout_sec: defaults.request_timeout.as_secs_f64(),
            cache_max_entries: cache.max_entries as i32,
            cache_max_bytes: cache.max_bytes as i64,
            state: PhantomVar::default(),
            net: NetNode::default(),
            routes: Arc::default(),
            handlers: Rc::default(),
            peers: Arc::default(),
            commands: None,
            bound_port: Arc::default(),
            stats: Arc::default(),
            cache: Arc::default(),
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

    fn get_configuration_warnings(&self) -> PackedStringArray {
        let mut warnings = PackedStringArray::new();
        if self.token.is_empty() && !listen::is_loopback_host(&self.host.to_string()) {
            warnings.push(&format!(
                "host '{}' is reachable from other machines and token is empty: the server will refuse \
                 to start. Set a token, or listen on 127.0.0.1.",
                self.host
            ));
        }
        if self.tls_certificate_file.is_empty() != self.tls_key_file.is_empty() {
            warnings.push("Set both tls_certificate_file and tls_key_file for https, or neither.");
        }
        warnings
    }
}

#[godot_api]
impl HttpServer {
    /// The server accepts connections on [param port].
    #[signal]
    pub fn listening(port: i64);
    /// A request was answered with [param status] (by a handler, a served
    /// folder, a limit or a check), for logs.
    #[signal]
    pub fn request_received(method: GString, path: GString, status: i64);
    /// A client connected to an endpoint of [method websocket].
    #[signal]
    pub fn websocket_connected(peer: Gd<WebSocketServerPeer>);
    /// [member state] changed.
    #[signal]
    pub fn state_changed(state: i64);
    /// Something went wrong: the server could not start, a handler did not
    /// answer, a peer broke the protocol. Only a failure to start stops the server.
    #[signal]
    pub fn error(message: GString);

    /// Routes requests of [param method] ([code]"GET"[/code], [code]"POST"[/code],
    /// ... or [code]"*"[/code] for any) whose path matches [param pattern] to
    /// [param handler], which gets an [HttpServerRequest]. Patterns take
    /// parameters: [code]/players/:id[/code] matches [code]/players/7[/code]
    /// ([code]req.params.id == "7"[/code]); [code]/files/*path[/code] matches
    /// everything below [code]/files/[/code]. Routing the same method and
    /// pattern again replaces the handler (and drops its kept answers). Works
    /// while running. Returns [code]false[/code] (and emits [signal error]) for
    /// an invalid pattern, one that conflicts with another, or bad [param options].
    ///
    /// [param options] takes one key, [code]cache_sec[/code] (default 0: off).
    /// With it, on a GET (or [code]"*"[/code]) route, a 2xx answer the handler
    /// gives to a GET is kept off the main thread for that many seconds, keyed by
    /// the request's path and query, and the GET and HEAD requests of that window
    /// are answered from it without waiting for a frame (with an [code]Age[/code]
    /// header), whoever sends them: give it to routes whose answer depends on
    /// the path and query only, not on headers or the client. The token, host
    /// and origin checks still run for each request, and
    /// [signal request_received] is still emitted for each. While the handler
    /// makes an answer, other requests for the same path and query wait for it
    /// rather than each running the handler. Not kept: other statuses, event
    /// streams, answers with [code]Set-Cookie[/code] or
    /// [code]Cache-Control: no-store[/code] or [code]private[/code], and
    /// answers to HEAD. Memory is bounded by [member cache_max_entries] and
    /// [member cache_max_bytes]; [method clear_cache] drops answers at once.
    /// [codeblock]
    /// $HttpServer.route("GET", "/status", func(_req): return {"players": players.size()}, {"cache_sec": 0.1})
    /// [/codeblock]
    #[func]
    pub fn route(
        &mut self,
        method: GString,
        pattern: GString,
        handler: Callable,
        #[opt(default = Options::empty())] options: Options,
    ) -> bool {
        let method = method.to_string();
        let keep = match keep_of(&method, &options.0) {
            Ok(keep) => keep,
            Err(message) => return self.refuse(format!("route {method} {pattern}: {message}")),
        };
        let added = self.routes_mut().add_route(&method, &pattern.to_string());
        match added {
            Ok((id, new)) => {
                self.routes_mut().set_keep(id, keep);
                if !new {
                    self.cache.clear(Some(&[id]));
                }
                self.handlers.borrow_mut().insert(id, handler);
                true
            }
            Err(message) => self.refuse(message),
        }
    }

    /// Drops the answers kept by the routes of [param pattern] (as given to
    /// [method route]), or every kept answer when it is empty, so that the next
    /// request runs the handler: call it when the game knows the data changed.
    /// An answer being made at the time of the call is given to the requests
    /// already waiting for it but not kept. Returns how many answers were dropped.
    #[func]
    pub fn clear_cache(&mut self, #[opt(default = "")] pattern: GString) -> i64 {
        if pattern.is_empty() {
            return self.cache.clear(None) as i64;
        }
        let routes = self.routes_mut().ids_of(&pattern.to_string());
        if routes.is_empty() {
            return i64::from(self.refuse(format!("clear_cache: no route has the pattern '{pattern}'")));
        }
        self.cache.clear(Some(&routes)) as i64
    }

    /// Makes [param pattern] (parameters as in [method route]) a WebSocket
    /// endpoint: each client that connects is a [WebSocketServerPeer], given by
    /// [signal websocket_connected].
    #[func]
    pub fn websocket(&mut self, pattern: GString) -> bool {
        let added = self.routes_mut().add_websocket(&pattern.to_string());
        added.map_or_else(|message| self.refuse(message), |_| true)
    }

    /// Serves the files of [param directory] ([code]res://[/code],
    /// [code]user://[/code] or an absolute path) under [param url_prefix]: GET
    /// and HEAD, Range, ETag / If-None-Match, [code]index.html[/code] for a
    /// folder, content types from the file extension. A request never leaves
    /// the folder ([code]..[/code], encoded or not, and symbolic links out are
    /// refused). Files are read off the main thread. [code]res://[/code] must be
    /// a folder on disk: in an exported game it is inside the pack, so serve
    /// from [code]user://[/code] or an absolute path there.
    #[func]
    pub fn serve_files(&mut self, url_prefix: GString, directory: GString) -> bool {
        let folder = settings::globalize(&directory.to_string());
        let added = self.routes_mut().add_mount(&url_prefix.to_string(), folder);
        added.map_or_else(|message| self.refuse(message), |()| true)
    }

    /// Sends [param text] to every peer connected on [param pattern] (as given
    /// to [method websocket]); returns how many peers are connected there. A
    /// peer whose queue is full misses it. The text is made UTF-8 once, off the main thread.
    #[func]
    pub fn broadcast_text(&mut self, pattern: GString, text: GString) -> i64 {
        self.broadcast(pattern, Outgoing::Text(Text(text)))
    }

    /// Sends [param data] to every peer connected on [param pattern]; returns how many are connected there.
    #[func]
    pub fn broadcast_binary(&mut self, pattern: GString, data: PackedByteArray) -> i64 {
        self.broadcast(pattern, Outgoing::binary(Bytes::copy_from_slice(data.as_slice())))
    }

    /// Starts listening (restarting if already running). Properties are read
    /// now; routes may be added at any time. On failure (a port in use, a
    /// non-loopback [member host] without [member token], unusable TLS files)
    /// the state becomes FAILED and [signal error] says why.
    #[func]
    pub fn start(&mut self) {
        self.stop();
        let link = self.link();
        let prepared = self.config().and_then(|config| {
            let bounds = self.cache_bounds()?;
            let tls = match &config.tls {
                Some((certificate, key)) => Some(http_server::tls_acceptor(certificate, key)?),
                None => None,
            };
            let listener = config.bind()?;
            Ok((config, bounds, tls, listener))
        });
        let (config, bounds, tls, listener) = match prepared {
            Ok(ready) => ready,
            Err(message) => return unbound(self, || link.fail(message)),
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        self.bound_port.store(port, Relaxed);
        self.stats = Arc::default();
        self.cache = Arc::new(AnswerCache::new(bounds));
        let relay = Arc::new(Relay::new(Bounds { messages: RELAY_MESSAGES, bytes: RELAY_BYTES }));
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        self.commands = Some(commands);
        let context = Rc::new(ServerContext {
            relay: relay.clone(),
            link: link.clone(),
            streams: RefCell::default(),
            next_stream: Cell::new(0),
            max_queued: config.max_queued_messages,
        });
        let emitter = self.emitter(context, port);
        let server = Server {
            config,
            tls,
            routes: self.routes.clone(),
            peers: self.peers.clone(),
            handler: Arc::new(Forwarder { relay: relay.clone() }),
            stats: self.stats.clone(),
            cache: self.cache.clone(),
            commands: receiver,
        };
        let bound_port = self.bound_port.clone();
        let io = async move {
            let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| format!("cannot listen: {e}"))?;
            let result = http_server::serve(listener, server).await;
            bound_port.store(0, Relaxed);
            result.map_err(|e| format!("server stopped: {e}"))
        };
        self.net.start(&link, &format!("HttpServer :{port}"), relay, io, emitter);
        unbound(self, || link.set_state(NetState::Connecting));
    }

    /// Stops listening and closes every connection, WebSocket peer and event
    /// stream at once; the port is free on return. Requests waiting for an
    /// answer are dropped with their connections.
    #[func]
    pub fn stop(&mut self) {
        let link = self.link();
        self.net.cancel_tasks(&link);
        self.commands = None;
        self.bound_port.store(0, Relaxed);
        unbound(self, || link.set_state(NetState::Stopped));
    }

    /// The port actually listened on (useful with [member port] 0), or 0 when not listening.
    #[func]
    pub fn get_bound_port(&self) -> i64 {
        self.bound_port.load(Relaxed) as i64
    }

    /// The state as one of the class constants.
    #[func]
    pub fn get_state(&self) -> i32 {
        self.net.state().code()
    }

    /// Counters since the last [method start]: connections (open now),
    /// accepted, requests (answered), handled (given to a handler), cached
    /// (answered from a kept answer, see [method route]), cache_entries and
    /// cache_bytes (kept now), files, refused
    /// (401, 403, 408, 413, and 503 over max_connections; not 431, which hyper
    /// answers itself), server_errors
    /// (5xx), bytes_received (request bodies), websocket_peers (now),
    /// websocket_messages (received), event_streams (open now), port, state.
    #[func]
    pub fn get_stats(&self) -> VarDictionary {
        let s = self.stats.snapshot();
        let cache = self.cache.usage();
        vdict! {
            "connections" => s.connections as i64,
            "accepted" => s.accepted as i64,
            "requests" => s.requests as i64,
            "handled" => s.handled as i64,
            "cached" => cache.hits as i64,
            "cache_entries" => cache.entries as i64,
            "cache_bytes" => cache.bytes as i64,
            "files" => s.files as i64,
            "refused" => s.refused as i64,
            "server_errors" => s.server_errors as i64,
            "bytes_received" => s.bytes_received as i64,
            "websocket_peers" => s.websocket_peers as i64,
            "websocket_messages" => s.websocket_messages as i64,
            "event_streams" => s.event_streams as i64,
            "port" => self.bound_port.load(Relaxed) as i64,
            "state" => self.net.state().code(),
        }
    }
}

crate::net_state_constants!(HttpServer);

impl HttpServer {
    fn link(&self) -> NodeLink {
        self.net.link(self.to_gd().upcast())
    }

    fn routes_mut(&self) -> std::sync::RwLockWriteGuard<'_, Routes> {
        self.routes.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Reports a refused call through `error` (the server goes on); false.
    fn refuse(&mut self, message: String) -> bool {
        let link = self.link();
        unbound(self, || link.error(message));
        false
    }

    fn broadcast(&mut self, pattern: GString, message: Outgoing<Text>) -> i64 {
        let pattern = pattern.to_string();
        let peers = self.peers.count(&pattern);
        let Some(commands) = &self.commands else { return 0 };
        if peers == 0 {
            return 0;
        }
        if commands.try_send(Command::Broadcast(pattern, message)).is_err() {
            return self.refuse(format!("broadcast dropped: {COMMAND_QUEUE} broadcasts are waiting")).into();
        }
        peers as i64
    }

    /// The main-thread side of a server started now.
    fn emitter(&self, context: Rc<ServerContext>, port: u16) -> Emitter {
        let node: Gd<Node> = self.to_gd().upcast();
        Emitter {
            server: self.to_gd(),
            port,
            handlers: self.handlers.clone(),
            context,
            peers: HashMap::new(),
            request_received: HotSignal::new(&node, "request_received"),
        }
    }

    fn cache_bounds(&self) -> Result<CacheBounds, String> {
        Ok(CacheBounds {
            max_entries: positive("cache_max_entries", self.cache_max_entries.into())?,
            max_bytes: positive("cache_max_bytes", self.cache_max_bytes)?,
        })
    }

    fn config(&self) -> Result<ServerConfig, String> {
        let token = self.token.to_string();
        let (certificate, key) = (self.tls_certificate_file.to_string(), self.tls_key_file.to_string());
        let tls = match (settings::file_path(&certificate), settings::file_path(&key)) {
            (None, None) => None,
            (Some(certificate), Some(key)) => Some((certificate, key)),
            _ => return Err("set both tls_certificate_file and tls_key_file (or neither)".into()),
        };
        Ok(ServerConfig {
            host: self.host.to_string(),
            port: u16::try_from(self.port).map_err(|_| format!("port must be 0 to 65535, got {}", self.port))?,
            token: (!token.is_empty()).then_some(token),
            max_connections: positive("max_connections", self.max_connections.into())?,
            max_header_bytes: positive("max_header_bytes", self.max_header_bytes.into())?,
            max_body_bytes: positive("max_body_bytes", self.max_body_bytes)?,
            request_timeout: seconds("request_timeout_sec", self.request_timeout_sec, 0.001)?,
            tls,
            cors_origins: self.cors_origins.as_slice().iter().map(GString::to_string).collect(),
            ..ServerConfig::default()
        })
    }
}

/// How long `route()`'s `options` keep answers (zero: not kept): the
/// `cache_sec` key, for routes that answer GET.
fn keep_of(method: &str, options: &VarDictionary) -> Result<Duration, String> {
    let mut keep = Duration::ZERO;
    for (key, value) in options.iter_shared() {
        match key.stringify().to_string().as_str() {
            "cache_sec" => keep = seconds("options.cache_sec", http_options::number("cache_sec", &value)?, 0.0)?,
            other => return Err(format!("unknown option '{other}' (known: cache_sec)")),
        }
    }
    let answers_get = matches!(method.trim().to_ascii_uppercase().as_str(), "GET" | "*");
    if !keep.is_zero() && !answers_get {
        return Err("cache_sec keeps answers to GET: give it to a GET (or \"*\") route".into());
    }
    Ok(keep)
}
