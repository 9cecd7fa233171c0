//! `RadioStream`'s main-thread side of one `play()`: what the session
//! relayed (the station, the title, whether it is over), and the audio path,
//! from the PCM queue into an `AudioStreamGenerator` playing on an
//! AudioStreamPlayer, 2D or 3D, once a frame after the prebuffer. Not a
//! class of its own: `RadioStream` holds a [`Playback`] while it plays.

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    sync::Arc,
    time::{Duration, Instant},
};

use async_net_core::radio::{PcmEvent, PcmFormat, PcmQueue, PlaybackConfig, RadioStats};
use godot::{
    classes::{
        AudioStreamGenerator, AudioStreamGeneratorPlayback, AudioStreamPlayer, AudioStreamPlayer2D, AudioStreamPlayer3D,
    },
    prelude::*,
};

/// One `play()`: the queue the decoder fills, what the session relayed, and the generator.
pub struct Playback {
    pub pcm: Arc<PcmQueue>,
    pub shared: Rc<Shared>,
    config: PlaybackConfig,
    /// The format of the audio at the head of the queue.
    format: Option<PcmFormat>,
    generator: Option<Generator>,
    events: Vec<PcmEvent>,
    /// `started` is due for the latest format (emitted once audio plays).
    started_due: bool,
}

/// What the node's `Emitter` keeps for the playback (its task never binds the node).
#[derive(Default)]
pub struct Shared {
    /// The station of the latest stream that answered.
    pub station: RefCell<Option<Station>>,
    pub title: RefCell<GString>,
    /// The session's main-thread task is gone: it ended (failed for good, or
    /// it was cancelled), and everything it relayed has been emitted.
    pub over: Cell<bool>,
}

/// A stream's head as `started` reports it; its strings are made on the I/O worker.
pub struct Station {
    /// [`StationInfo::connection`](async_net_core::radio::StationInfo::connection).
    pub connection: u64,
    pub bitrate: i64,
    pub name: GString,
    pub genre: GString,
    pub content_type: GString,
    pub url: GString,
}

/// `get_stats()`'s counters of one `play()`.
pub struct Counters {
    /// The session's, counted on the I/O worker.
    pub session: Arc<RadioStats>,
    pub frames_pushed: u64,
    pub skips: u64,
    pub underruns: u64,
    /// Read from the PCM queue when the playback ends.
    pub decode_errors: u64,
    started_at: Instant,
    /// From play() to the first audio pushed.
    pub first_push: Option<Duration>,
    main_thread: Duration,
    main_thread_frames: u64,
}

/// Signals decided while the node is bound, emitted once it is not.
pub enum Due {
    Started(VarDictionary),
    Underrun,
    Stopped,
    Error(String),
    Failed(String),
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            session: Arc::default(),
            frames_pushed: 0,
            skips: 0,
            underruns: 0,
            decode_errors: 0,
            started_at: Instant::now(),
            first_push: None,
            main_thread: Duration::ZERO,
            main_thread_frames: 0,
        }
    }
}

impl Counters {
    /// Counts one frame's work of the node, which took `time`.
    pub fn frame_took(&mut self, time: Duration) {
        self.main_thread += time;
        self.main_thread_frames += 1;
    }

    /// The node's own work per frame, averaged, in microseconds.
    pub fn usec_per_frame(&self) -> f64 {
        self.main_thread.as_secs_f64() * 1e6 / self.main_thread_frames.max(1) as f64
    }
}

impl Playback {
    pub fn new(pcm: Arc<PcmQueue>, shared: Rc<Shared>, config: PlaybackConfig) -> Self {
        Playback { pcm, shared, config, format: None, generator: None, events: Vec::new(), started_due: false }
    }

    /// Takes the decoder's events: a new format (a new generator when the rate
    /// changed, `started` due), a recording that stopped (into `due`).
    pub fn take_events(&mut self, due: &mut Vec<Due>) {
        self.pcm.take_events(&mut self.events);
        for event in self.events.drain(..) {
            match event {
                PcmEvent::Format(format) => {
                    if self.generator.as_ref().is_some_and(|g| g.rate != format.sample_rate) {
                        // A new rate needs a new generator; restart after the prebuffer.
                        if let Some(g) = self.generator.take() {
                            g.stop();
                        }
                    }
                    self.format = Some(format);
                    self.started_due = true;
                }
                PcmEvent::DecodeError(_) => {}
                PcmEvent::RecordingStopped(message) => due.push(Due::Error(message)),
            }
        }
    }

    /// Whether the session is over (see [`Shared::over`]). Its end closes
    /// the queue first, so the flag is read only then: the queue's state
    /// is on the cache line the frame reads anyway.
    pub fn is_over(&self) -> bool {
        self.pcm.is_closed() && self.shared.over.get()
    }

    /// Whether playback waits for a generator and the prebuffer is decoded.
    pub fn prebuffered(&self) -> bool {
        let Some(format) = self.format.as_ref().filter(|_| self.generator.is_none()) else { return false };
        let queued = self.pcm.len();
        queued > 0 && queued as f64 >= self.config.prebuffer.as_secs_f64() * format.sample_rate as f64
    }

    /// Starts a generator at the stream's rate on `player`.
    pub fn start(&mut self, player: Player) -> Result<(), String> {
        let rate = self.format.as_ref().map_or(0, |f| f.sample_rate);
        let rebuffer = (self.config.rebuffer.as_secs_f64() * f64::from(rate)) as usize;
        self.generator = Some(Generator::start(player, rate, self.config.buffer.as_secs_f64(), rebuffer)?);
        Ok(())
    }

    /// Tops the generator up from the queue and counts it (`now` is this
    /// frame's time); `started` and `underrun` go into `due`.
    pub fn feed(&mut self, counters: &mut Counters, now: Instant, due: &mut Vec<Due>) {
        let Some(generator) = self.generator.as_mut() else { return };
        let fed = generator.feed(&self.pcm, now);
        if fed.frames > 0 && counters.first_push.is_none() {
            counters.first_push = Some(counters.started_at.elapsed());
        }
        counters.frames_pushed += fed.frames as u64;
        counters.skips += fed.skips;
        if fed.underrun {
            counters.underruns += 1;
            due.push(Due::Underrun);
        }
        if self.started_due
            && fed.frames > 0
            && let Some(info) = self.info(counters.session.connects.get())
        {
            self.started_due = false;
            due.push(Due::Started(info));
        }
    }

    /// Closes the queue, finishes its recording and stops the player.
    pub fn end(self, counters: &mut Counters) {
        self.pcm.close();
        let _ = self.pcm.stop_recording();
        counters.decode_errors = self.pcm.decode_errors();
        if let Some(generator) = self.generator {
            generator.stop();
        }
    }

    /// `started`'s info, once the station of the latest stream (`connects`) has arrived.
    fn info(&self, connects: u64) -> Option<VarDictionary> {
        let station = self.shared.station.borrow();
        let station = station.as_ref().filter(|s| s.connection == connects)?;
        let format = self.format.as_ref()?;
        Some(vdict! {
            "sample_rate" => format.sample_rate as i64,
            "channels" => format.channels as i64,
            "codec" => format.codec.name(),
            "bitrate" => station.bitrate,
            "name" => &station.name,
            "genre" => &station.genre,
            "content_type" => &station.content_type,
            "url" => &station.url,
        })
    }

    /// Seconds of audio queued and in the generator.
    pub fn buffered_sec(&self) -> f64 {
        let rate = self.format.as_ref().map_or(0, |f| f.sample_rate);
        let in_generator = self.generator.as_ref().map_or(0, Generator::frames_held);
        if rate > 0 { (self.pcm.len() + in_generator) as f64 / rate as f64 } else { 0.0 }
    }
}

/// The generator playing on a player, and what it has skipped.
struct Generator {
    player: Player,
    playback: Gd<AudioStreamGeneratorPlayback>,
    /// The generator's mix rate.
    rate: u32,
    /// Frames the generator's ring holds (its free space when empty).
    capacity: i32,
    /// Room worth a look: frames a look waits for before it tops the ring up.
    refill: i32,
    /// Frames in the ring after the last look's push, when that look was,
    /// and the feeds since.
    level: i32,
    looked_at: Instant,
    unlooked: u32,
    skips_seen: i32,
    in_skip_run: bool,
    /// Queued frames a dry ring waits for before it is fed again, and whether it waits.
    rebuffer: usize,
    rebuffering: bool,
    /// Reused for every push: its storage stays allocated while the size is the same.
    buffer: PackedVector2Array,
}

/// What one [`Generator::feed`] did.
#[derive(Debug, Default, Clone, Copy)]
struct Fed {
    /// Frames moved from the queue into the generator.
    frames: usize,
    /// Mixes the generator filled with silence since the last feed.
    skips: u64,
    /// Those skips began a new run of skips (an underrun).
    underrun: bool,
}

/// How fast the generator's ring is assumed to drain at most: its rate, times this (a
/// player's `pitch_scale` above it, or a movie written faster than real time, drains faster:
/// then [`LOOK_EVERY`] bounds how late the node notices).
const DRAIN_FACTOR: f64 = 2.0;
/// Feeds between two looks at most, whatever the estimate says.
const LOOK_EVERY: u32 = 8;
/// Frames the audio server may take from the ring at once, beyond its rate (it mixes ahead,
/// in blocks); a ring known to hold less than this may run dry before the next look.
const MIX_SLACK: i32 = 8192;
/// The ring is topped up once at least this part of it may be free.
const REFILL_PART: i32 = 8;

impl Generator {
    /// A generator at `rate` holding `buffer_sec` of audio, playing on `player`, that waits
    /// for `rebuffer` queued frames before it resumes after running dry.
    fn start(player: Player, rate: u32, buffer_sec: f64, rebuffer: usize) -> Result<Generator, String> {
        let mut generator = AudioStreamGenerator::new_gd();
        generator.set_mix_rate(rate as f32);
        generator.set_buffer_length(buffer_sec as f32);
        player.set_stream(generator);
        let playback = player.play_generator()?;
        let capacity = playback.get_frames_available();
        let skips_seen = playback.get_skips();
        Ok(Generator {
            player,
            playback,
            rate,
            capacity,
            refill: capacity / REFILL_PART,
            level: 0,
            looked_at: Instant::now(),
            unlooked: 0,
            skips_seen,
            in_skip_run: false,
            rebuffer,
            rebuffering: false,
            buffer: PackedVector2Array::new(),
        })
    }

    /// Moves queued frames into the generator when it has room for them,
    /// and notices skips.
    ///
    /// Every engine call here costs the main thread cold caches, so a frame
    /// makes none unless it must. The ring only drains between two looks,
    /// and no faster than [`DRAIN_FACTOR`] times its rate plus
    /// [`MIX_SLACK`]: from the level left by the last look that bounds the
    /// room there can be now, and the least audio it can still hold. The
    /// node looks (`get_frames_available`) only when audio is queued and at
    /// least a [`REFILL_PART`] of the ring may be free, or when the ring may
    /// be running dry. A skip (a mix that found the ring empty) can only have
    /// happened when the ring may have run dry, so `get_skips` is asked only
    /// then: when a look finds the ring holding less than [`MIX_SLACK`] (it
    /// is asked after the push, which also covers a skip between the look
    /// and the push). Nothing is pushed between looks, so a ring that ran
    /// dry is still empty at the next one: however wrong the estimate, skips
    /// are counted, at most [`LOOK_EVERY`] feeds late.
    fn feed(&mut self, pcm: &PcmQueue, now: Instant) -> Fed {
        let drained = (now - self.looked_at).as_secs_f64() * f64::from(self.rate) * DRAIN_FACTOR;
        let least_held = f64::from(self.level) - drained - f64::from(MIX_SLACK);
        let queued = pcm.len();
        let worth_a_push = queued > 0 && f64::from(self.capacity) - least_held >= f64::from(self.refill);
        self.unlooked += 1;
        if !worth_a_push && least_held >= f64::from(MIX_SLACK) && self.unlooked < LOOK_EVERY {
            self.in_skip_run = false;
            return Fed::default();
        }
        self.unlooked = 0;
        let room = self.playback.get_frames_available().clamp(0, self.capacity);
        let held = self.capacity - room;
        let mut frames = 0;
        // After running dry, nothing until the rebuffer is queued (or the stream's last audio
        // is), then all of it at once.
        let waiting = self.rebuffering && queued < self.rebuffer && !pcm.is_closed();
        let n = if waiting { 0 } else { (room as usize).min(queued) };
        self.rebuffering &= waiting;
        if n > 0 {
            self.buffer.resize(n);
            let out = self.buffer.as_mut_slice();
            frames = pcm.pop_with(n, |queued| {
                for (dst, src) in out[frames..frames + queued.len()].iter_mut().zip(queued) {
                    *dst = Vector2::new(src[0], src[1]);
                }
                frames += queued.len();
            });
            if frames < n {
                self.buffer.resize(frames);
            }
            if frames > 0 {
                self.playback.push_buffer(&self.buffer);
            }
        }
        self.level = held + frames as i32;
        self.looked_at = now;
        let (skips, underrun) = if held < MIX_SLACK {
            self.skipped(held + frames as i32 > 0)
        } else {
            self.in_skip_run = false;
            (0, false)
        };
        Fed { frames, skips, underrun }
    }

    /// Skips since the last look, and whether they begin a run of skips (`playing`: the ring
    /// holds audio after this look's push).
    ///
    /// A run of skips lasts until audio plays again: the audio server mixes in blocks, so
    /// looks of consecutive frames can find no new skip while the ring is still dry, and
    /// that is not the end of the run (one outage of the stream is one underrun).
    fn skipped(&mut self, playing: bool) -> (u64, bool) {
        let skips = self.playback.get_skips();
        let skipped = skips != self.skips_seen;
        let new = skips.wrapping_sub(self.skips_seen).max(0) as u64;
        self.skips_seen = skips;
        let underrun = skipped && !self.in_skip_run;
        // The run goes on while the ring is dry or the node waits for the rebuffer.
        self.in_skip_run = skipped || (self.in_skip_run && (!playing || self.rebuffering));
        // A new run waits for the rebuffer; the skips a resuming push is looked at with belong
        // to the run it ends.
        self.rebuffering |= underrun;
        (new, underrun)
    }

    /// Frames in the generator, not played yet.
    fn frames_held(&self) -> usize {
        (self.capacity - self.playback.get_frames_available()).max(0) as usize
    }

    /// Stops the player.
    fn stop(self) {
        self.player.stop();
    }
}

/// The three player classes, typed.
pub enum Player {
    Flat(Gd<AudioStreamPlayer>),
    Positional2D(Gd<AudioStreamPlayer2D>),
    Positional3D(Gd<AudioStreamPlayer3D>),
}

impl Player {
    /// `node` as a player, if it is one.
    pub fn from_node(node: Gd<Node>) -> Option<Player> {
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
