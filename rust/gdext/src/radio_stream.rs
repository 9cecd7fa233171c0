//! `RadioStream`: icecast / SHOUTcast internet radio played through an
//! `AudioStreamGenerator`. The stream client and decoder live in
//! `async_net_core::radio`; the session runs on the I/O worker, and its
//! `Forwarder` relays what happens (states, the station, titles, errors) to
//! the main thread, whose `Emitter` emits it. Decoded audio takes its own
//! path: each frame the node moves what the PCM queue holds into the
//! generator (`radio_playback`), starting after the prebuffer.

use std::{
    rc::Rc,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use async_net_core::{
    radio::{self, PcmQueue, PlaybackConfig, RadioConfig, RadioHandler, StationInfo},
    redact,
    relay::{Bounds, Relay},
    state::NetState,
};
use godot::{
    classes::{INode, Node, node::InternalMode},
    prelude::*,
};

use crate::{
    net_node::{Emit, Flow, NetNode, NodeLink, unbound},
    radio_playback::{Counters, Due, Playback, Player, Shared, Station},
    settings::{self, seconds},
};

/// Events waiting for the main thread at most (titles wait for room; the
/// few others never do).
const RELAY_MESSAGES: usize = 64;
/// Bytes of titles waiting for the main thread at most.
const RELAY_BYTES: usize = 64 * 1024;

/// Plays an internet radio stream (icecast, SHOUTcast, or a [code].pls[/code] /
/// [code].m3u[/code] playlist pointing to one): MP3, AAC or Ogg Vorbis over
/// http or https, decoded off the main thread and fed to an
/// [AudioStreamGenerator] on [member player]. A radio in a 3D world plays
/// positionally when [member player] is an [AudioStreamPlayer3D].
/// [codeblock]
/// $RadioStream.title_changed.connect(func(title): $Title.text = title)
/// $RadioStream.play("http://127.0.0.1:8000/stream.mp3")
/// [/codeblock]
/// Playback starts once [member prebuffer_sec] of audio is decoded; each
/// frame the node tops the generator up to [member buffer_sec], so the game
/// may stall for nearly that long without a gap. A dropped stream is
/// reconnected with backoff while the buffer plays on; [signal underrun]
/// tells when it ran dry, and playback resumes once [member rebuffer_sec]
/// is decoded again. The stream is read (HTTP, TLS, ICY metadata) on
/// the hub's I/O thread and decoded on a worker thread; the main thread only
/// moves decoded audio into the generator and emits the signals.
///
/// The node feeds the generator in [method Node._process] while it plays,
/// so it pauses with the scene tree as the player does; to keep a radio
/// playing while the game is paused, set both its and the player's
/// [member Node.process_mode] to [constant Node.PROCESS_MODE_ALWAYS].
#[derive(GodotClass)]
#[class(tool, base = Node)]
pub struct RadioStream {
    /// Start playing [member url] when the node is ready (in a running game, not in the editor).
    #[export]
    autoplay: bool,
    /// The stream: [code]http://[/code] or [code]https://[/code], or a
    /// [code].pls[/code], [code].m3u[/code] or [code].xspf[/code] playlist (its first stream is played).
    #[export]
    url: GString,
    /// The [AudioStreamPlayer], [AudioStreamPlayer2D] or [AudioStreamPlayer3D]
    /// to play through. Empty: the parent when it is one, else an internal AudioStreamPlayer.
    #[export(node_path = ("AudioStreamPlayer", "AudioStreamPlayer2D", "AudioStreamPlayer3D"))]
    player: NodePath,
    /// Seconds of audio the generator holds: how long the game may stall, or
    /// the network pause, before playback skips.
    #[export(range = (0.1, 30.0, 0.1, or_greater, suffix = "s"))]
    buffer_sec: f64,
    /// Seconds of audio decoded before playback starts.
    #[export(range = (0.0, 10.0, 0.05, or_greater, suffix = "s"))]
    prebuffer_sec: f64,
    /// Seconds of audio decoded again before playback resumes after it ran dry (a stream
    /// that came back after an outage): the margin that keeps it from skipping again at the
    /// next hiccup. 0 resumes with whatever arrives.
    #[export(range = (0.0, 10.0, 0.05, or_greater, suffix = "s"))]
    rebuffer_sec: f64,
    /// Ask the station for ICY metadata, which brings [signal title_changed].
    #[export]
    metadata: bool,

    /// Reconnect when the stream drops (with backoff; the buffer plays on meanwhile).
    #[export_group(name = "Reconnect")]
    #[export]
    reconnect: bool,
    /// First delay before reconnecting; it doubles up to [member reconnect_max_sec], with jitter.
    #[export(range = (0.0, 60.0, 0.01, or_greater, suffix = "s"))]
    reconnect_min_sec: f64,
    /// Longest delay between reconnect attempts.
    #[export(range = (0.0, 600.0, 0.1, or_greater, suffix = "s"))]
    reconnect_max_sec: f64,
    /// Time allowed for each connect (DNS, TCP, TLS and the response head).
    #[export(range = (0.1, 120.0, 0.1, or_greater, suffix = "s"))]
    connect_timeout_sec: f64,
    /// A stream that sends nothing for this long counts as lost.
    #[export(range = (0.1, 120.0, 0.1, or_greater, suffix = "s"))]
    read_timeout_sec: f64,

    /// PEM file of the certificate authority of an https station with a
    /// private CA; empty trusts the usual public CAs. Certificates are always verified.
    #[export_group(name = "TLS")]
    #[export(file = "*.pem,*.crt")]
    ca_file: GString,

    /// The connection's state: one of the STOPPED, CONNECTING, CONNECTED, RECONNECTING, FAILED constants.
    #[var(get = get_state, no_set)]
    state: PhantomVar<i32>,
    /// The station's current title (from ICY metadata), or "".
    #[var(get = get_title, no_set)]
    title: PhantomVar<GString>,

    net: NetNode,
    playback: Option<Playback>,
    /// The counters of the last play(), kept after it stops.
    counters: Counters,
    base: Base<Node>,
}

#[godot_api]
impl INode for RadioStream {
    fn init(base: Base<Node>) -> Self {
        let defaults = RadioConfig::default();
        let playback = PlaybackConfig::default();
        Self {
            autoplay: false,
            url: GString::new(),
            player: NodePath::default(),
            buffer_sec: playback.buffer.as_secs_f64(),
            prebuffer_sec: playback.prebuffer.as_secs_f64(),
            rebuffer_sec: playback.rebuffer.as_secs_f64(),
            metadata: defaults.metadata,
            reconnect: defaults.reconnect,
            reconnect_min_sec: defaults.reconnect_min.as_secs_f64(),
            reconnect_max_sec: defaults.reconnect_max.as_secs_f64(),
            connect_timeout_sec: defaults.connect_timeout.as_secs_f64(),
            read_timeout_sec: defaults.read_timeout.as_secs_f64(),
            ca_file: GString::new(),
            state: PhantomVar::default(),
            title: PhantomVar::default(),
            net: NetNode::default(),
            playback: None,
            counters: Counters::default(),
            base,
        }
    }

    fn ready(&mut self) {
        // Frames are processed only while playing (the engine turned processing on for `process`).
        let playing = self.playback.is_some();
        self.base_mut().set_process(playing);
        if NetNode::autostarts(self.autoplay) && !self.url.is_empty() {
            self.play(GString::new());
        }
    }

    fn process(&mut self, _delta: f64) {
        let due = self.pump();
        if !due.is_empty() {
            self.emit_all(due);
        }
    }

    fn exit_tree(&mut self) {
        self.stop();
    }

    fn get_configuration_warnings(&self) -> PackedStringArray {
        let mut warnings = PackedStringArray::new();
        if !self.player.is_empty() {
            match self.base().get_node_or_null(&self.player) {
                None => warnings.push(&format!("player: no node at \"{}\".", self.player)),
                Some(node) if Player::from_node(node.clone()).is_none() => {
                    warnings.push("player must be an AudioStreamPlayer, AudioStreamPlayer2D or AudioStreamPlayer3D.")
                }
                Some(_) => {}
            }
        }
        if self.autoplay && self.url.is_empty() {
            warnings.push("autoplay is on but url is empty.");
        }
        warnings
    }
}

#[godot_api]
impl RadioStream {
    /// Audio is playing: [param info] has sample_rate, channels, codec,
    /// bitrate (kbit/s, 0 if unknown), name, genre, content_type and url.
    /// Emitted again after a reconnect.
    #[signal]
    pub fn started(info: VarDictionary);
    /// The station's title changed (ICY [code]StreamTitle[/code]).
    #[signal]
    pub fn title_changed(title: GString);
    /// Playback ran out of audio and skipped (once per run of skips: the network was slower than real time, or lost).
    #[signal]
    pub fn underrun();
    /// Playback stopped: [method stop] was called, or the stream failed for good.
    #[signal]
    pub fn stopped();
    /// [member state] changed.
    #[signal]
    pub fn state_changed(state: i64);
    /// Something went wrong: a failed connect, a lost stream, audio that cannot be decoded, a recording that failed.
    #[signal]
    pub fn error(message: GString);

    /// Plays [param url], or [member url] when empty (restarting if already
    /// playing). Properties are read now; changes apply at the next play().
    #[func]
    pub fn play(&mut self, #[opt(default = "")] url: GString) {
        self.stop_quietly();
        if !url.is_empty() {
            self.url = url;
        }
        self.counters = Counters::default();
        let link = self.link();
        let (config, playback) = match self.config() {
            Ok(configs) => configs,
            Err(message) => return unbound(self, || link.fail(&message)),
        };
        let pcm = PcmQueue::new(playback.queue_frames());
        let shared = Rc::new(Shared::default());
        let relay = Arc::new(Relay::new(Bounds { messages: RELAY_MESSAGES, bytes: RELAY_BYTES }));
        let forwarder = Forwarder { relay: relay.clone() };
        let emitter = Emitter { node: self.to_gd(), link: link.clone(), shared: shared.clone() };
        let name = format!("RadioStream {}", redact(config.url.trim()));
        let (session_pcm, stats) = (pcm.clone(), self.counters.session.clone());
        let io = async move {
            radio::run(config, session_pcm, forwarder, stats).await;
            Ok(())
        };
        self.net.start(&link, &name, relay, io, emitter);
        self.playback = Some(Playback::new(pcm, shared, playback));
        self.base_mut().set_process(true);
        unbound(self, || link.set_state(NetState::Connecting));
    }

    /// Stops playing and disconnects; a recording in progress is finished.
    #[func]
    pub fn stop(&mut self) {
        let was_playing = self.stop_quietly();
        let link = self.link();
        let node = self.to_gd();
        unbound(self, || {
            link.set_state(NetState::Stopped);
            if was_playing && link.is_alive() {
                node.signals().stopped().emit();
            }
        });
    }

    /// Whether the node is playing or trying to (connecting, buffering, reconnecting).
    #[func]
    pub fn is_playing(&self) -> bool {
        self.playback.as_ref().is_some_and(|p| !p.pcm.is_closed())
    }

    /// Writes the decoded audio from now on to a 16-bit WAV file at [param path]
    /// ([code]user://[/code], [code]res://[/code] from the editor, or absolute),
    /// with the stream's channels and sample rate, until [method stop_recording]
    /// or [method stop]. Returns [code]false[/code] and emits [signal error] if
    /// not playing or the file cannot be created.
    #[func]
    pub fn record_to(&mut self, path: GString) -> bool {
        let result = match self.playback.as_ref().filter(|p| !p.pcm.is_closed()) {
            None => Err("record_to: not playing (call play() first)".to_string()),
            Some(p) => p.pcm.start_recording(&settings::globalize(&path.to_string())),
        };
        match result {
            Ok(()) => true,
            Err(message) => {
                let link = self.link();
                unbound(self, || link.error(&message));
                false
            }
        }
    }

    /// Finishes the recording started by [method record_to]. Returns whether one was in progress.
    #[func]
    pub fn stop_recording(&mut self) -> bool {
        let Some(p) = self.playback.as_ref() else { return false };
        match p.pcm.stop_recording() {
            Ok(was) => was,
            Err(message) => {
                let link = self.link();
                unbound(self, || link.error(&message));
                true
            }
        }
    }

    /// Whether a recording is in progress.
    #[func]
    pub fn is_recording(&self) -> bool {
        self.playback.as_ref().is_some_and(|p| p.pcm.is_recording())
    }

    /// The state as one of the class constants.
    #[func]
    pub fn get_state(&self) -> i32 {
        self.net.state().code()
    }

    /// The station's current title, or "".
    #[func]
    pub fn get_title(&self) -> GString {
        self.playback.as_ref().map_or_else(GString::new, |p| p.shared.title.borrow().clone())
    }

    /// Counters since the last play() (kept once stopped; all zero before
    /// the first): frames_pushed, skips, underruns, buffered_sec (queued
    /// plus in the generator; 0 when stopped), bytes_received,
    /// decode_errors, connects (streams that answered, the first one
    /// included), reconnects (retries after a lost stream or a failed
    /// attempt, as in every network node: the first connect is not one),
    /// start_latency_msec (play() to the first audio pushed, -1 before),
    /// main_thread_usec_per_frame (this node's own work per frame,
    /// averaged), state.
    #[func]
    pub fn get_stats(&self) -> VarDictionary {
        let c = &self.counters;
        let net = c.session.snapshot();
        let playing = self.playback.as_ref();
        let decode_errors = playing.map_or(c.decode_errors, |p| p.pcm.decode_errors());
        let buffered = playing.map_or(0.0, Playback::buffered_sec);
        vdict! {
            "frames_pushed" => c.frames_pushed as i64,
            "skips" => c.skips as i64,
            "underruns" => c.underruns as i64,
            "buffered_sec" => buffered,
            "bytes_received" => net.bytes_received as i64,
            "decode_errors" => decode_errors as i64,
            "connects" => net.connects as i64,
            "reconnects" => net.reconnects as i64,
            "start_latency_msec" => c.first_push.map_or(-1.0, |d| d.as_secs_f64() * 1000.0),
            "main_thread_usec_per_frame" => c.usec_per_frame(),
            "state" => self.net.state().code(),
        }
    }
}

crate::net_state_constants!(RadioStream);

impl RadioStream {
    fn link(&self) -> NodeLink {
        self.net.link(self.to_gd().upcast())
    }

    /// Ends the session and the playback; returns whether something was playing.
    fn stop_quietly(&mut self) -> bool {
        let link = self.link();
        self.net.cancel_tasks(&link);
        self.end_playback()
    }

    /// Ends the playback, if any (returns whether there was one); frames are
    /// not processed again until the next play().
    fn end_playback(&mut self) -> bool {
        let Some(playback) = self.playback.take() else { return false };
        playback.end(&mut self.counters);
        self.base_mut().set_process(false);
        true
    }

    /// This frame's work: the decoder's events, starting playback after the
    /// prebuffer, topping up the generator, noticing skips.
    fn pump(&mut self) -> Vec<Due> {
        let mut due = Vec::new();
        let Some(p) = self.playback.as_mut() else { return due };
        let start = Instant::now();
        p.take_events(&mut due);
        let mut ended = p.is_over();
        if !ended && p.prebuffered() {
            let player = self.resolve_player();
            if let Some(playback) = self.playback.as_mut()
                && let Err(message) = player.and_then(|player| playback.start(player))
            {
                // Nothing can play: end the session before anything more it relayed is emitted.
                self.net.cancel_tasks(&self.link());
                due.push(Due::Failed(message));
                ended = true;
            }
        }
        if let Some(p) = self.playback.as_mut().filter(|_| !ended) {
            p.feed(&mut self.counters, start, &mut due);
        }
        self.counters.frame_took(start.elapsed());
        // The session ended by itself (it failed for good, or its task was cancelled).
        if ended && self.end_playback() {
            due.push(Due::Stopped);
        }
        due
    }

    fn emit_all(&mut self, due: Vec<Due>) {
        let link = self.link();
        let node = self.to_gd();
        unbound(self, || {
            for signal in due {
                if !link.is_alive() {
                    return;
                }
                match signal {
                    Due::Started(info) => node.signals().started().emit(&info),
                    Due::Underrun => node.signals().underrun().emit(),
                    Due::Stopped => node.signals().stopped().emit(),
                    Due::Error(message) => link.error(&message),
                    Due::Failed(message) => link.fail(&message),
                }
            }
        });
    }

    /// [member player], else the parent when it is a player, else an internal AudioStreamPlayer child.
    fn resolve_player(&mut self) -> Result<Player, String> {
        if !self.player.is_empty() {
            let path = self.player.clone();
            let node = self.base().get_node_or_null(&path).ok_or_else(|| format!("player: no node at \"{path}\""))?;
            return Player::from_node(node).ok_or_else(|| {
                format!("player \"{path}\" is not an AudioStreamPlayer, AudioStreamPlayer2D or AudioStreamPlayer3D")
            });
        }
        if let Some(player) = self.base().get_parent().and_then(Player::from_node) {
            return Ok(player);
        }
        let name = StringName::from("RadioPlayer");
        if let Some(player) = self.base().get_node_or_null(&NodePath::from(&name)).and_then(Player::from_node) {
            return Ok(player);
        }
        let mut child = godot::classes::AudioStreamPlayer::new_alloc();
        child.set_name(&name);
        self.base_mut().add_child_ex(&child).internal(InternalMode::FRONT).done();
        Ok(Player::Flat(child))
    }

    fn config(&self) -> Result<(RadioConfig, PlaybackConfig), String> {
        let url = self.url.to_string().trim().to_string();
        if url.is_empty() {
            return Err("url is empty: set it or pass one to play()".into());
        }
        let playback = PlaybackConfig {
            buffer: seconds("buffer_sec", self.buffer_sec, 0.05)?,
            prebuffer: seconds("prebuffer_sec", self.prebuffer_sec, 0.0)?,
            rebuffer: seconds("rebuffer_sec", self.rebuffer_sec, 0.0)?,
        };
        let config = RadioConfig {
            url,
            metadata: self.metadata,
            reconnect: self.reconnect,
            reconnect_min: seconds("reconnect_min_sec", self.reconnect_min_sec, 0.0)?,
            reconnect_max: seconds("reconnect_max_sec", self.reconnect_max_sec, 0.0)?,
            connect_timeout: seconds("connect_timeout_sec", self.connect_timeout_sec, 0.001)?,
            read_timeout: seconds("read_timeout_sec", self.read_timeout_sec, 0.001)?,
            ca_file: settings::file_path(&self.ca_file.to_string()),
            read_batch: playback.read_batch(),
        };
        Ok((config, playback))
    }
}

/// What the session reports, as the main thread will emit it.
enum RadioEvent {
    State(NetState),
    Connected(Station),
    Title(GString),
    Error(String),
}

/// On the I/O worker: the session's events into messages for the main thread,
/// their strings made there.
struct Forwarder {
    relay: Arc<Relay<RadioEvent>>,
}

impl Forwarder {
    fn send(&self, event: RadioEvent, bytes: usize) {
        // Fails only once the node stopped, when nothing is to be reported.
        let _ = self.relay.push_now(event, bytes);
    }
}

impl RadioHandler for Forwarder {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.relay.poll_ready(cx)
    }

    fn state_changed(&mut self, state: NetState) {
        self.send(RadioEvent::State(state), 0);
    }

    fn connected(&mut self, info: &StationInfo) {
        let head = &info.head;
        let station = Station {
            connection: info.connection,
            bitrate: head.bitrate_kbps.unwrap_or(0).into(),
            name: head.name.as_str().into(),
            genre: head.genre.as_str().into(),
            content_type: head.content_type.as_str().into(),
            url: head.url.as_str().into(),
        };
        self.send(RadioEvent::Connected(station), 0);
    }

    fn title_changed(&mut self, title: &str) {
        self.send(RadioEvent::Title(title.into()), title.len());
    }

    fn error(&mut self, message: &str) {
        self.send(RadioEvent::Error(message.to_string()), 0);
    }
}

/// On the main thread: the session's events as the node's signals, never
/// bound to the node.
struct Emitter {
    node: Gd<RadioStream>,
    link: NodeLink,
    shared: Rc<Shared>,
}

impl Emit<RadioEvent> for Emitter {
    fn emit(&mut self, event: RadioEvent) -> Flow {
        match event {
            RadioEvent::State(state) => self.link.set_state(state),
            RadioEvent::Connected(station) => {
                *self.shared.station.borrow_mut() = Some(station);
                return Flow::Continue;
            }
            RadioEvent::Title(title) => {
                self.shared.title.replace(title.clone());
                if self.link.is_alive() {
                    self.node.signals().title_changed().emit(&title);
                }
            }
            RadioEvent::Error(message) => self.link.error(message),
        }
        if self.link.is_alive() { Flow::Continue } else { Flow::Stop }
    }
}

impl Drop for Emitter {
    /// The node's task ended or was cancelled: the next frame ends the playback.
    fn drop(&mut self) {
        self.shared.over.set(true);
    }
}
