//! `RadioStream`: icecast / SHOUTcast internet radio played through an
//! `AudioStreamGenerator`. The stream client and decoder live in
//! `async_net_core::radio`; this file picks the player, prebuffers, pushes PCM
//! each frame and turns what happens into signals.

use std::{cell::RefCell, rc::Rc, sync::Arc, time::Duration, time::Instant};

use async_net_core::{
    radio::{self, PcmEvent, PcmFormat, PcmQueue, RadioConfig, RadioHandler, RadioStats, StationInfo},
    state::NetState,
};
use godot::{
    classes::{
        AudioStreamGenerator, AudioStreamGeneratorPlayback, AudioStreamPlayer, AudioStreamPlayer2D,
        AudioStreamPlayer3D, INode, Node, node::InternalMode,
    },
    prelude::*,
};

use crate::{
    net_node::{NetNode, NodeLink, unbound},
    settings::{self, seconds},
};

/// Frames the PCM queue holds beyond the prebuffer: decoded audio waiting for room in the
/// generator. The generator itself holds [member buffer_sec].
const QUEUE_MARGIN_SEC: f64 = 0.5;
/// The highest sample rate the queue is sized for (frames = seconds × this).
const QUEUE_RATE: f64 = 48_000.0;

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
/// tells when it ran dry. Decoding happens on a worker thread; only PCM
/// reaches the main thread.
///
/// The node feeds the generator in [method Node._process], so it pauses with
/// the scene tree as the player does; to keep a radio playing while the game
/// is paused, set both its and the player's [member Node.process_mode] to
/// [constant Node.PROCESS_MODE_ALWAYS].
#[derive(GodotClass)]
#[class(tool, base = Node)]
pub struct RadioStream {
    /// Start playing [member url] when the node is ready (in a running game, not in the editor).
    #[export]
    autoplay: bool,
    /// The stream: [code]http://[/code] or [code]https://[/code], or a
    /// [code].pls[/code] / [code].m3u[/code] playlist (its first stream is played).
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
    base: Base<Node>,
}

/// One `play()`: the queue the decoder fills, what the session told, and the generator.
struct Playback {
    pcm: Arc<PcmQueue>,
    shared: Rc<RefCell<Shared>>,
    stats: Rc<RadioStats>,
    prebuffer_sec: f64,
    buffer_sec: f64,
    /// The format of the audio at the head of the queue.
    format: Option<PcmFormat>,
    generator: Option<Generator>,
    events: Vec<PcmEvent>,
    /// `started` is due for the latest format (emitted once audio plays).
    started_due: bool,
    frames_pushed: u64,
    underruns: u64,
    started_at: Instant,
    first_push: Option<Duration>,
    main_thread: Duration,
    main_thread_frames: u64,
}

/// What the session (a task that never binds the node) hands over.
#[derive(Default)]
struct Shared {
    station: Option<StationInfo>,
    title: String,
}

/// The generator playing on the player, and its skip count.
struct Generator {
    player: Player,
    playback: Gd<AudioStreamGeneratorPlayback>,
    rate: u32,
    /// Frames the generator's ring holds (its free space when empty).
    capacity: i32,
    skips_seen: i32,
    skips: u64,
    in_skip_run: bool,
    buffer: PackedVector2Array,
}

/// Signals decided while the node is bound, emitted once it is not.
enum Emit {
    Started(VarDictionary),
    Underrun,
    Stopped,
    Error(String),
}

#[godot_api]
impl INode for RadioStream {
    fn init(base: Base<Node>) -> Self {
        let defaults = RadioConfig::default();
        Self {
            autoplay: false,
            url: GString::new(),
            player: NodePath::default(),
            buffer_sec: 2.0,
            prebuffer_sec: 0.5,
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
            base,
        }
    }

    fn ready(&mut self) {
        if NetNode::autostarts(self.autoplay) && !self.url.is_empty() {
            self.play(GString::new());
        }
    }

    fn process(&mut self, _delta: f64) {
        let emits = self.pump();
        if !emits.is_empty() {
            self.emit_all(emits);
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
        let link = self.link();
        let config = match self.config() {
            Ok(config) => config,
            Err(message) => {
                return unbound(self, || {
                    link.error(&message);
                    link.set_state(NetState::Failed);
                });
            }
        };
        let queue_frames = ((self.prebuffer_sec + QUEUE_MARGIN_SEC).max(1.0) * QUEUE_RATE) as usize;
        let pcm = PcmQueue::new(queue_frames);
        let shared = Rc::new(RefCell::new(Shared::default()));
        let stats = Rc::new(RadioStats::default());
        let glue = Glue { node: self.to_gd(), link: link.clone(), shared: shared.clone() };
        let name = format!("RadioStream {}", async_net_core::redact(config.url.trim()));
        let (session_pcm, session_stats) = (pcm.clone(), stats.clone());
        self.net.spawn(&link, &name, async move {
            radio::run(config, session_pcm, glue, session_stats).await;
            Ok(())
        });
        self.playback = Some(Playback {
            pcm,
            shared,
            stats,
            prebuffer_sec: self.prebuffer_sec,
            buffer_sec: self.buffer_sec,
            format: None,
            generator: None,
            events: Vec::new(),
            started_due: false,
            frames_pushed: 0,
            underruns: 0,
            started_at: Instant::now(),
            first_push: None,
            main_thread: Duration::ZERO,
            main_thread_frames: 0,
        });
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
        self.playback.as_ref().map_or_else(GString::new, |p| p.shared.borrow().title.as_str().into())
    }

    /// Counters since the last play(): frames_pushed, skips, underruns,
    /// buffered_sec (queued plus in the generator), bytes_received,
    /// decode_errors, connects, reconnects, start_latency_msec (play() to the
    /// first audio pushed, -1 before), main_thread_usec_per_frame (this node's
    /// own work per frame, averaged), state.
    #[func]
    pub fn get_stats(&self) -> VarDictionary {
        let state = self.net.state().code();
        let Some(p) = self.playback.as_ref() else {
            return vdict! { "state" => state };
        };
        let net = p.stats.snapshot();
        let generator = p.generator.as_ref();
        let rate = p.format.as_ref().map_or(0, |f| f.sample_rate);
        let in_generator = generator.map_or(0, |g| (g.capacity - g.playback.get_frames_available()).max(0) as usize);
        let buffered = if rate > 0 { (p.pcm.len() + in_generator) as f64 / rate as f64 } else { 0.0 };
        vdict! {
            "frames_pushed" => p.frames_pushed as i64,
            "skips" => generator.map_or(0, |g| g.skips) as i64,
            "underruns" => p.underruns as i64,
            "buffered_sec" => buffered,
            "bytes_received" => net.bytes_received as i64,
            "decode_errors" => p.pcm.decode_errors() as i64,
            "connects" => net.connects as i64,
            "reconnects" => net.reconnects as i64,
            "start_latency_msec" => p.first_push.map_or(-1.0, |d| d.as_secs_f64() * 1000.0),
            "main_thread_usec_per_frame" => p.main_thread.as_secs_f64() * 1e6 / p.main_thread_frames.max(1) as f64,
            "state" => state,
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
        let Some(playback) = self.playback.take() else { return false };
        playback.pcm.close();
        let _ = playback.pcm.stop_recording();
        if let Some(generator) = playback.generator {
            generator.player.stop();
        }
        true
    }

    /// This frame's work: the decoder's events, starting playback after the
    /// prebuffer, topping up the generator, noticing skips.
    fn pump(&mut self) -> Vec<Emit> {
        let mut emits = Vec::new();
        let Some(mut p) = self.playback.take() else { return emits };
        let start = Instant::now();
        p.pcm.take_events(&mut p.events);
        for event in std::mem::take(&mut p.events) {
            match event {
                PcmEvent::Format(format) => {
                    if p.generator.as_ref().is_some_and(|g| g.rate != format.sample_rate) {
                        // A new rate needs a new generator; restart after the prebuffer.
                        if let Some(g) = p.generator.take() {
                            g.player.stop();
                        }
                    }
                    p.format = Some(format);
                    p.started_due = true;
                }
                PcmEvent::DecodeError(_) => {}
                PcmEvent::RecordingStopped(message) => emits.push(Emit::Error(message)),
            }
        }
        if p.generator.is_none()
            && let Some(format) = p.format.clone()
            && p.pcm.len() as f64 >= p.prebuffer_sec * format.sample_rate as f64
            && !p.pcm.is_empty()
        {
            match self.start_generator(&format, p.buffer_sec) {
                Ok(generator) => p.generator = Some(generator),
                Err(message) => {
                    emits.push(Emit::Error(message));
                    p.pcm.close();
                }
            }
        }
        if let Some(g) = p.generator.as_mut() {
            let pushed = g.push_from(&p.pcm);
            if pushed > 0 && p.first_push.is_none() {
                p.first_push = Some(p.started_at.elapsed());
            }
            p.frames_pushed += pushed as u64;
            if g.skipped_anew() {
                p.underruns += 1;
                emits.push(Emit::Underrun);
            }
            if p.started_due && pushed > 0 {
                p.started_due = false;
                emits.push(Emit::Started(p.info()));
            }
        }
        let ended = p.pcm.is_closed();
        p.main_thread += start.elapsed();
        p.main_thread_frames += 1;
        if ended {
            // The session ended by itself (it failed for good): stop the player.
            if let Some(g) = p.generator.take() {
                g.player.stop();
            }
            emits.push(Emit::Stopped);
        } else {
            self.playback = Some(p);
        }
        emits
    }

    fn emit_all(&mut self, emits: Vec<Emit>) {
        let link = self.link();
        let node = self.to_gd();
        unbound(self, || {
            for emit in emits {
                if !link.is_alive() {
                    return;
                }
                match emit {
                    Emit::Started(info) => node.signals().started().emit(&info),
                    Emit::Underrun => node.signals().underrun().emit(),
                    Emit::Stopped => node.signals().stopped().emit(),
                    Emit::Error(message) => link.error(&message),
                }
            }
        });
    }

    /// A generator at the stream's rate, playing on the player.
    fn start_generator(&mut self, format: &PcmFormat, buffer_sec: f64) -> Result<Generator, String> {
        let player = self.resolve_player()?;
        let mut generator = AudioStreamGenerator::new_gd();
        generator.set_mix_rate(format.sample_rate as f32);
        generator.set_buffer_length(buffer_sec as f32);
        player.set_stream(generator);
        let playback = player.play_generator()?;
        let capacity = playback.get_frames_available();
        let skips_seen = playback.get_skips();
        Ok(Generator {
            player,
            playback,
            rate: format.sample_rate,
            capacity,
            skips_seen,
            skips: 0,
            in_skip_run: false,
            buffer: PackedVector2Array::new(),
        })
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
        let mut child = AudioStreamPlayer::new_alloc();
        child.set_name(&name);
        self.base_mut().add_child_ex(&child).internal(InternalMode::FRONT).done();
        Ok(Player::Flat(child))
    }

    fn config(&self) -> Result<RadioConfig, String> {
        let url = self.url.to_string().trim().to_string();
        if url.is_empty() {
            return Err("url is empty: set it or pass one to play()".into());
        }
        seconds("buffer_sec", self.buffer_sec, 0.05)?;
        seconds("prebuffer_sec", self.prebuffer_sec, 0.0)?;
        Ok(RadioConfig {
            url,
            metadata: self.metadata,
            reconnect: self.reconnect,
            reconnect_min: seconds("reconnect_min_sec", self.reconnect_min_sec, 0.0)?,
            reconnect_max: seconds("reconnect_max_sec", self.reconnect_max_sec, 0.0)?,
            connect_timeout: seconds("connect_timeout_sec", self.connect_timeout_sec, 0.001)?,
            read_timeout: seconds("read_timeout_sec", self.read_timeout_sec, 0.001)?,
            ca_file: settings::file_path(&self.ca_file.to_string()),
            // A quarter of the generator's buffer at most, so batching never starves playback.
            read_batch: Duration::from_secs_f64((self.buffer_sec / 4.0).min(0.2)),
        })
    }
}

impl Playback {
    fn info(&self) -> VarDictionary {
        let shared = self.shared.borrow();
        let format = self.format.as_ref();
        let mut info = vdict! {
            "sample_rate" => format.map_or(0, |f| f.sample_rate) as i64,
            "channels" => format.map_or(0, |f| f.channels) as i64,
            "codec" => format.map_or("", |f| f.codec.name()),
        };
        if let Some(station) = shared.station.as_ref() {
            let head = &station.head;
            info.set("bitrate", head.bitrate_kbps.unwrap_or(0) as i64);
            info.set("name", head.name.as_str());
            info.set("genre", head.genre.as_str());
            info.set("content_type", head.content_type.as_str());
            info.set("url", head.url.as_str());
        }
        info
    }
}

impl Generator {
    /// Moves as many queued frames as the generator has room for; returns how many.
    fn push_from(&mut self, pcm: &PcmQueue) -> usize {
        let room = self.playback.get_frames_available().max(0) as usize;
        let n = room.min(pcm.len());
        if n == 0 {
            return 0;
        }
        self.buffer.resize(n);
        let out = self.buffer.as_mut_slice();
        let mut at = 0;
        let popped = pcm.pop_with(n, |frames| {
            for (dst, src) in out[at..at + frames.len()].iter_mut().zip(frames) {
                *dst = Vector2::new(src[0], src[1]);
            }
            at += frames.len();
        });
        if popped < n {
            self.buffer.resize(popped);
        }
        if popped > 0 {
            self.playback.push_buffer(&self.buffer);
        }
        popped
    }

    /// Whether the playback skipped since the last frame after not skipping before: a new underrun.
    fn skipped_anew(&mut self) -> bool {
        let skips = self.playback.get_skips();
        let skipped = skips != self.skips_seen;
        if skipped {
            self.skips += skips.wrapping_sub(self.skips_seen).max(0) as u64;
            self.skips_seen = skips;
        }
        let new_run = skipped && !self.in_skip_run;
        self.in_skip_run = skipped;
        new_run
    }
}

/// The three player classes, typed.
enum Player {
    Flat(Gd<AudioStreamPlayer>),
    Positional2D(Gd<AudioStreamPlayer2D>),
    Positional3D(Gd<AudioStreamPlayer3D>),
}

impl Player {
    fn from_node(node: Gd<Node>) -> Option<Player> {
        let node = match node.try_cast::<AudioStreamPlayer>() {
            Ok(p) => return Some(Player::Flat(p)),
            Err(node) => node,
        };
        let node = match node.try_cast::<AudioStreamPlayer2D>() {
            Ok(p) => return Some(Player::Positional2D(p)),
            Err(node) => node,
        };
        node.try_cast::<AudioStreamPlayer3D>().ok().map(Player::Positional3D)
    }

    fn set_stream(&self, generator: Gd<AudioStreamGenerator>) {
        match self {
            Player::Flat(p) => p.clone().set_stream(&generator),
            Player::Positional2D(p) => p.clone().set_stream(&generator),
            Player::Positional3D(p) => p.clone().set_stream(&generator),
        }
    }

    /// Starts playing and returns the generator's playback.
    fn play_generator(&self) -> Result<Gd<AudioStreamGeneratorPlayback>, String> {
        let playback = match self {
            Player::Flat(p) => {
                p.clone().play();
                p.clone().get_stream_playback()
            }
            Player::Positional2D(p) => {
                p.clone().play();
                p.clone().get_stream_playback()
            }
            Player::Positional3D(p) => {
                p.clone().play();
                p.clone().get_stream_playback()
            }
        };
        playback
            .and_then(|p| p.try_cast::<AudioStreamGeneratorPlayback>().ok())
            .ok_or_else(|| "the player did not start playing (is it inside the scene tree?)".to_string())
    }

    fn stop(&self) {
        match self {
            Player::Flat(p) => p.clone().stop(),
            Player::Positional2D(p) => p.clone().stop(),
            Player::Positional3D(p) => p.clone().stop(),
        }
    }
}

/// The session's events, handed to the node without binding it.
struct Glue {
    node: Gd<RadioStream>,
    link: NodeLink,
    shared: Rc<RefCell<Shared>>,
}

impl RadioHandler for Glue {
    fn state_changed(&mut self, state: NetState) {
        self.link.set_state(state);
    }

    fn connected(&mut self, info: &StationInfo) {
        self.shared.borrow_mut().station = Some(info.clone());
    }

    fn title_changed(&mut self, title: &str) {
        self.shared.borrow_mut().title = title.to_string();
        if self.link.is_alive() {
            self.node.signals().title_changed().emit(title);
        }
    }

    fn error(&mut self, message: &str) {
        self.link.error(message);
    }
}
