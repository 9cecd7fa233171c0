//! `TcpSpawnerServer`: a TCP line server that spawns one scene instance per
//! line a client sends, in a running game or into the scene being edited.
//! The protocol and its limits live in `async_net_core::spawner` and run on
//! the I/O worker; this file forwards what needs the engine (clients coming
//! and going, errors, each line to spawn) to the main thread, spawns there,
//! and hands each line's answer back to the worker.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU16, AtomicU64, Ordering::Relaxed},
    },
    task::{Context, Poll},
    time::Duration,
};

use async_net_core::{
    listen,
    relay::{Bounds, Relay},
    spawner::{self, NameError, NodeCap, Reply, Reported, SpawnHandler, SpawnerConfig, SpawnerStats, UniqueNames},
    state::NetState,
};
use godot::{
    classes::{EditorInterface, INode, Node, Node3D, PackedScene, packed_scene::GenEditState},
    prelude::*,
};

use crate::{
    net_node::{Emit, Flow, NetNode, NodeLink, unbound},
    settings::positive,
    signals::{Burst, HotSignal},
};

/// Default of `max_nodes`: plenty for a game, and a bound a flood of clients cannot pass.
const DEFAULT_MAX_NODES: i32 = 10_000;

/// Most events (lines, mostly) waiting for the main thread. Past it, or past
/// [`RELAY_BYTES`], clients are not read and new ones not accepted, so TCP
/// makes them wait.
const RELAY_MESSAGES: usize = 65_536;
/// Most line bytes waiting for the main thread.
const RELAY_BYTES: usize = 8 * 1024 * 1024;

/// A TCP server whose clients spawn nodes: each line a client sends
/// instantiates [member scene] under [member spawn_parent], named after the
/// line (made a valid, unique node name), and is answered
/// [code]OK <final_name>[/code] or [code]ERR <reason>[/code].
///
/// Try it with [code]nc 127.0.0.1 8885[/code] and type a few names.
/// [codeblock]
/// $TcpSpawnerServer.spawned.connect(func(node, peer):
///     node.position = Vector3(randf_range(-5, 5), 0, randf_range(-5, 5)))
/// [/codeblock]
/// Hostile clients are expected: lines over [member max_line_bytes], invalid
/// UTF-8, floods over [member max_spawns_per_second], silent clients past
/// [member idle_timeout_sec] and clients beyond [member max_clients] get a
/// clear [code]ERR[/code] and, where fatal, are disconnected.
#[derive(GodotClass)]
#[class(tool, base = Node)]
pub struct TcpSpawnerServer {
    /// Start listening when the node is ready (in a running game; in the
    /// editor only the Async Net plugin starts it).
    #[export]
    autostart: bool,

    /// Address to listen on. The default accepts local clients only; use
    /// [code]0.0.0.0[/code] to accept clients from other machines.
    #[export_group(name = "Listen")]
    #[export]
    host: GString,
    /// TCP port; 0 picks a free one (see [method get_bound_port] and [signal listening]).
    #[export(range = (0.0, 65535.0, 1.0))]
    port: i32,
    /// When set, a client's first line must be this token, or it is disconnected.
    #[export]
    token: GString,

    /// What each line spawns. Without a scene, a plain [Node3D] is spawned.
    #[export_group(name = "Spawning")]
    #[export]
    scene: Option<Gd<PackedScene>>,
    /// Where spawned nodes go, relative to this node. Empty: this node's parent.
    #[export]
    spawn_parent: NodePath,
    /// Spawn a node for each line. Off: lines are still checked, emitted as
    /// [signal line_received] and answered [code]OK <name>[/code], but nothing
    /// is added to the tree (for games that handle [signal line_received] themselves).
    #[export]
    spawn_nodes: bool,
    /// Spawn into the scene open in the editor, with its owner set and one
    /// undo step per node. Set by the Async Net plugin's editor spawner.
    #[var]
    spawn_into_edited_scene: bool,

    /// Most clients connected at once; the next one gets [code]ERR too many clients[/code].
    /// [method start] makes room for this many sockets in the process's
    /// descriptor table up front: on Linux, growing it later blocks the main
    /// thread for a few to 20 ms in the middle of a burst of connections.
    #[export_group(name = "Limits")]
    #[export(range = (1.0, 10000.0, 1.0, or_greater))]
    max_clients: i32,
    /// Longest line accepted, in bytes; a longer one gets [code]ERR line too long[/code] and a disconnect.
    #[export(range = (16.0, 1048576.0, 1.0, or_greater, suffix = "bytes"))]
    max_line_bytes: i32,
    /// Spawns each client may ask for per second (0: no limit); excess lines get [code]ERR rate limited[/code].
    #[export(range = (0.0, 10000.0, 1.0, or_greater))]
    max_spawns_per_second: i32,
    /// Clients silent this long are disconnected (0: never).
    #[export(range = (0.0, 86400.0, 1.0, or_greater, suffix = "s"))]
    idle_timeout_sec: f64,
    /// Longest node name made from a line, in characters.
    #[export(range = (1.0, 1024.0, 1.0))]
    max_name_chars: i32,
    /// Most spawned nodes alive at once (0: no limit); once reached, lines get
    /// [code]ERR too many nodes[/code] until the game frees some.
    #[export(range = (0.0, 100000.0, 1.0, or_greater))]
    max_nodes: i32,

    /// The server's state: one of the STOPPED, CONNECTING, LISTENING, FAILED constants.
    #[var(get = get_state, no_set)]
    state: PhantomVar<i32>,

    net: NetNode,
    /// Set by `start()`; the server on the I/O worker clears it if it stops by itself.
    bound_port: Arc<AtomicU16>,
    stats: Arc<SpawnerStats>,
    base: Base<Node>,
}

#[godot_api]
impl INode for TcpSpawnerServer {
    fn init(base: Base<Node>) -> Self {
        let defaults = SpawnerConfig::default();
        Self {
            autostart: true,
            host: "127.0.0.1".into(),
            port: 8885,
            token: GString::new(),
            scene: None,
            spawn_parent: NodePath::default(),
            spawn_nodes: true,
            spawn_into_edited_scene: false,
            max_clients: defaults.max_clients as i32,
            max_line_bytes: defaults.max_line_bytes as i32,
            max_spawns_per_second: defaults.max_spawns_per_second as i32,
            idle_timeout_sec: defaults.idle_timeout.as_secs_f64(),
            max_name_chars: defaults.max_name_chars as i32,
            max_nodes: DEFAULT_MAX_NODES,
            state: PhantomVar::default(),
            net: NetNode::default(),
            bound_port: Arc::default(),
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

    fn get_configuration_warnings(&self) -> PackedStringArray {
        let mut warnings = PackedStringArray::new();
        if self.scene.is_none() {
            warnings.push("No scene is set: each line will spawn a plain Node3D.");
        }
        warnings
    }
}

#[godot_api]
impl TcpSpawnerServer {
    /// The server is accepting clients on [param port].
    #[signal]
    pub fn listening(port: i64);
    /// A client connected; [param peer] is its [code]ip:port[/code].
    #[signal]
    pub fn client_connected(peer: GString);
    /// A client's connection closed.
    #[signal]
    pub fn client_disconnected(peer: GString);
    /// A client sent a non-empty line (emitted before the spawn).
    #[signal]
    pub fn line_received(peer: GString, line: GString);
    /// [param node] was spawned for [param peer]'s line and is in the tree.
    #[signal]
    pub fn spawned(node: Gd<Node>, peer: GString);
    /// [member state] changed.
    #[signal]
    pub fn state_changed(state: i64);
    /// Something went wrong: a bind failure, a refused or misbehaving client.
    #[signal]
    pub fn error(message: GString);

    /// Starts listening (restarting if already running). Properties are read
    /// now; changes apply at the next [method start]. On failure the state
    /// becomes FAILED and [signal error] says why.
    #[func]
    pub fn start(&mut self) {
        self.stop();
        let link = self.link();
        let (config, listener) = match self.config().and_then(|config| Ok((config, self.bind()?))) {
            Ok(ready) => ready,
            Err(message) => return unbound(self, || link.fail(message)),
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        self.bound_port.store(port, Relaxed);
        // Now, not in the middle of a burst of clients (see the function).
        #[cfg(unix)]
        spawner::descriptors::reserve(&listener, config.max_clients);

        self.stats = Arc::default();
        let relay = Arc::new(Relay::new(Bounds { messages: RELAY_MESSAGES, bytes: RELAY_BYTES }));
        let forwarder =
            Forwarder { relay: relay.clone(), max_name_chars: config.max_name_chars, clients: AtomicU64::new(0) };
        let emitter = self.emitter(link.clone(), port);
        let (stats, bound_port) = (self.stats.clone(), self.bound_port.clone());
        let io = async move {
            let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| format!("cannot listen: {e}"))?;
            forwarder.send(SpawnEvent::Listening, 0);
            let result = spawner::serve(listener, config, forwarder, stats).await;
            bound_port.store(0, Relaxed);
            result.map_err(|e| format!("server stopped: {e}"))
        };
        self.net.start(&link, &format!("TcpSpawnerServer :{port}"), relay, io, emitter);
        unbound(self, || link.set_state(NetState::Connecting));
    }

    /// Stops listening and disconnects every client at once; the port is free on return.
    #[func]
    pub fn stop(&mut self) {
        let link = self.link();
        self.net.cancel_tasks(&link);
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

    /// Counters: clients, accepted, lines, spawned, errors, rejected, bytes_received, port, state.
    #[func]
    pub fn get_stats(&self) -> VarDictionary {
        let s = self.stats.snapshot();
        vdict! {
            "clients" => s.clients as i64,
            "accepted" => s.accepted as i64,
            "lines" => s.lines as i64,
            "spawned" => s.spawned as i64,
            "errors" => s.errors as i64,
            "rejected" => s.rejected as i64,
            "bytes_received" => s.bytes_in as i64,
            "port" => self.bound_port.load(Relaxed) as i64,
            "state" => self.net.state().code(),
        }
    }
}

crate::net_state_constants!(TcpSpawnerServer);

impl TcpSpawnerServer {
    fn link(&self) -> NodeLink {
        self.net.link(self.to_gd().upcast())
    }

    /// The main-thread side of a server started now, with the node's settings.
    fn emitter(&self, link: NodeLink, port: u16) -> Emitter {
        let node: Gd<Node> = self.to_gd().upcast();
        Emitter {
            server: self.to_gd(),
            link,
            port,
            peers: HashMap::new(),
            spawn_nodes: self.spawn_nodes,
            spawner: Spawner {
                server: node.clone(),
                scene: self.scene.clone(),
                spawn_parent: self.spawn_parent.clone(),
                into_edited_scene: self.spawn_into_edited_scene,
                names: UniqueNames::default(),
                cap: NodeCap::new(usize::try_from(self.max_nodes).unwrap_or(0)),
            },
            client_connected: HotSignal::new(&node, "client_connected"),
            client_disconnected: HotSignal::new(&node, "client_disconnected"),
            line_received: HotSignal::new(&node, "line_received"),
            spawned: HotSignal::new(&node, "spawned"),
            burst: Burst::default(),
        }
    }

    fn config(&self) -> Result<SpawnerConfig, String> {
        if !self.idle_timeout_sec.is_finite() || self.idle_timeout_sec < 0.0 {
            return Err(format!("idle_timeout_sec must be 0 or more, got {}", self.idle_timeout_sec));
        }
        let token = self.token.to_string();
        let config = SpawnerConfig {
            max_clients: positive("max_clients", self.max_clients.into())?,
            max_line_bytes: positive("max_line_bytes", self.max_line_bytes.into())?,
            token: (!token.is_empty()).then_some(token),
            max_spawns_per_second: self.max_spawns_per_second.max(0) as u32,
            idle_timeout: Duration::from_secs_f64(self.idle_timeout_sec.min(86_400.0 * 365.0)),
            max_name_chars: positive("max_name_chars", self.max_name_chars.into())?,
            ..SpawnerConfig::default()
        };
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// Binds synchronously, so the port is known (and errors are clear) as
    /// soon as `start()` returns.
    fn bind(&self) -> Result<std::net::TcpListener, String> {
        let port = u16::try_from(self.port).map_err(|_| format!("port must be 0 to 65535, got {}", self.port))?;
        listen::bind(listen::resolve(&self.host.to_string(), port)?)
    }
}

/// Which client an event is about: a number given when it connects. A line
/// carries it rather than the peer's string, so that string is made and sent
/// once per client, not per line.
type ClientId = u64;

/// What the server reports, as the main thread will act on it; strings are
/// made on the I/O worker.
enum SpawnEvent {
    /// The listener is up.
    Listening,
    /// A client connected: its number and its peer (`ip:port`).
    Connected(ClientId, GString),
    Disconnected(ClientId),
    /// A line to spawn for: whose it is, the line, the node name made of it
    /// (or why none can be), and where its answer goes.
    Line {
        client: ClientId,
        line: GString,
        name: Result<String, NameError>,
        reply: Reply,
    },
    /// A client refused or closed for a protocol reason; its `ERR` goes out
    /// once this is reported (the `Reported` dropped).
    Rejected(String, Reported),
    /// Something else for the `error` signal (an `accept` that failed).
    Error(String),
}

/// On the I/O worker: the server's callbacks as events for the main thread.
struct Forwarder {
    relay: Arc<Relay<SpawnEvent>>,
    max_name_chars: usize,
    /// Clients numbered so far.
    clients: AtomicU64,
}

impl Forwarder {
    fn send(&self, event: SpawnEvent, bytes: usize) {
        // Fails only once the node stopped, when nothing is to be reported
        // (a line's reply then answers by itself as it drops).
        let _ = self.relay.push_now(event, bytes);
    }
}

impl SpawnHandler for Forwarder {
    type Client = ClientId;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.relay.poll_ready(cx)
    }

    fn client_connected(&self, peer: &str) -> ClientId {
        let client = self.clients.fetch_add(1, Relaxed);
        self.send(SpawnEvent::Connected(client, peer.into()), 0);
        client
    }

    fn line_received(&self, client: &ClientId, line: String, reply: Reply) {
        let (bytes, text) = (line.len(), GString::from(&line));
        let name = spawner::into_node_name(line, self.max_name_chars);
        self.send(SpawnEvent::Line { client: *client, line: text, name, reply }, bytes);
    }

    fn client_disconnected(&self, client: ClientId) {
        self.send(SpawnEvent::Disconnected(client), 0);
    }

    fn client_rejected(&self, peer: &str, reason: &str, reported: Reported) {
        self.send(SpawnEvent::Rejected(format!("client {peer}: {reason}"), reported), 0);
    }

    fn accept_failed(&self, error: &std::io::Error) {
        self.send(SpawnEvent::Error(format!("accept failed (will retry): {error}")), 0);
    }
}

/// On the main thread: the server's events as the node's signals and
/// spawns, never bound to the node.
struct Emitter {
    server: Gd<TcpSpawnerServer>,
    link: NodeLink,
    port: u16,
    /// The peer of each client connected.
    peers: HashMap<ClientId, GString>,
    spawn_nodes: bool,
    spawner: Spawner,
    client_connected: HotSignal,
    client_disconnected: HotSignal,
    line_received: HotSignal,
    spawned: HotSignal,
    /// Spares the per-line signals a connection check per line (see [`Burst`]).
    burst: Burst,
}

impl Emit<SpawnEvent> for Emitter {
    fn emit(&mut self, event: SpawnEvent) -> Flow {
        // Each emission may run a script that frees the node: checked before
        // every event, and before every emission within one.
        if !self.link.is_alive() {
            return Flow::Stop;
        }
        match event {
            SpawnEvent::Line { client, line, name, reply } => self.line(client, line, name, reply),
            SpawnEvent::Listening => {
                self.link.set_state(NetState::Listening);
                if self.link.is_alive() {
                    self.server.signals().listening().emit(self.port as i64);
                }
                self.burst.script_ran();
            }
            SpawnEvent::Connected(client, peer) => {
                self.client_connected.emit(|| [peer.to_variant()]);
                self.peers.insert(client, peer);
                self.burst.script_ran();
            }
            SpawnEvent::Disconnected(client) => {
                let peer = self.peers.remove(&client).unwrap_or_default();
                self.client_disconnected.emit(|| [peer.to_variant()]);
                self.burst.script_ran();
            }
            SpawnEvent::Rejected(message, reported) => {
                self.link.error(message);
                drop(reported);
                self.burst.script_ran();
            }
            SpawnEvent::Error(message) => {
                self.link.error(message);
                self.burst.script_ran();
            }
        }
        if self.link.is_alive() { Flow::Continue } else { Flow::Stop }
    }

    fn batch_done(&mut self) {
        // Scripts run between batches: nothing checked in this one holds after it.
        self.burst.end_round();
    }
}

impl Emitter {
    /// Emits `line_received`, spawns, answers, and emits `spawned`.
    fn line(&mut self, client: ClientId, line: GString, name: Result<String, NameError>, reply: Reply) {
        let peers = &self.peers;
        let peer = || peers.get(&client).map_or_else(Variant::nil, GString::to_variant);
        if self.line_received.emit_in(&mut self.burst, || [peer(), line.to_variant()]) && !self.link.is_alive() {
            // Dropped unanswered, it answers `ERR server is gone`.
            return drop(reply);
        }
        let name = match name {
            Ok(name) => name,
            Err(e) => return reply.send(Err(e.to_string())),
        };
        if !self.spawn_nodes {
            return reply.send(Ok(name));
        }
        let spawned = self.spawner.spawn(&name);
        // Instancing and adding the node ran its scripts.
        self.burst.script_ran();
        match spawned {
            Ok(node) => {
                // The tree may have renamed it (a name taken meanwhile).
                reply.send(Ok(node.get_name().to_string()));
                // Those scripts may have freed the server.
                if self.link.is_alive() {
                    self.spawned.emit_in(&mut self.burst, || [node.to_variant(), peer()]);
                }
            }
            Err(reason) => reply.send(Err(reason)),
        }
    }
}

/// The engine's side of a line: instantiates the scene, names the instance
/// and adds it to the tree (or to the edited scene, with undo).
struct Spawner {
    server: Gd<Node>,
    scene: Option<Gd<PackedScene>>,
    spawn_parent: NodePath,
    into_edited_scene: bool,
    names: UniqueNames,
    cap: NodeCap,
}

impl Spawner {
    /// Spawns a node named after `base` (made unique under its parent).
    fn spawn(&mut self, base: &str) -> Result<Gd<Node>, String> {
        let alive = |id: u64| Gd::<Node>::try_from_instance_id(InstanceId::from_i64(id as i64)).is_ok();
        if !self.cap.has_room(alive) {
            return Err("too many nodes".into());
        }
        let mut parent = self.parent()?;
        let name = self.names.name(base, |n| parent.has_node(n));
        let mut node = self.instantiate()?;
        node.set_name(&name);
        if self.into_edited_scene {
            if let Err(reason) = self.add_with_undo(&parent, &node) {
                // Nothing else holds it: it would leak.
                node.free();
                return Err(reason);
            }
        } else {
            parent.add_child(&node);
        }
        self.cap.spawned(node.instance_id().to_i64() as u64);
        Ok(node)
    }

    fn parent(&self) -> Result<Gd<Node>, String> {
        if self.into_edited_scene {
            return EditorInterface::singleton()
                .get_edited_scene_root()
                .ok_or_else(|| "no scene is open in the editor".to_string());
        }
        let parent = if self.spawn_parent.is_empty() {
            self.server.get_parent()
        } else {
            self.server.get_node_or_null(&self.spawn_parent)
        };
        parent.ok_or_else(|| format!("spawn parent '{}' not found", self.spawn_parent))
    }

    fn instantiate(&self) -> Result<Gd<Node>, String> {
        match &self.scene {
            None => Ok(Node3D::new_alloc().upcast()),
            Some(scene) => {
                let state = if self.into_edited_scene { GenEditState::INSTANCE } else { GenEditState::DISABLED };
                scene
                    .instantiate_ex()
                    .edit_state(state)
                    .done()
                    .ok_or_else(|| format!("cannot instantiate scene '{}'", scene.get_path()))
            }
        }
    }

    /// Adds `node` to the edited scene as one undoable step, owned by the
    /// scene root so it is saved with the scene. On `Err` nothing was done.
    fn add_with_undo(&self, parent: &Gd<Node>, node: &Gd<Node>) -> Result<(), String> {
        let mut undo = EditorInterface::singleton()
            .get_editor_undo_redo()
            .ok_or_else(|| "the editor's undo history is unavailable".to_string())?;
        let root = EditorInterface::singleton().get_edited_scene_root().unwrap_or_else(|| parent.clone());
        undo.create_action(&format!("Spawn \"{}\" from TCP", node.get_name()));
        undo.add_do_method(parent, "add_child", &[node.to_variant(), true.to_variant()]);
        undo.add_do_method(node, "set_owner", &[root.to_variant()]);
        undo.add_do_reference(node);
        undo.add_undo_method(parent, "remove_child", &[node.to_variant()]);
        undo.commit_action();
        if node.get_parent().is_none() {
            parent.clone().add_child(node);
        }
        Ok(())
    }
}
