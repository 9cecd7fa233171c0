//! The bounded queue of stereo frames between the decoder thread and the main thread.
//!
//! One decoder thread at a time produces through [`PcmQueue::sink`]; the main thread drains
//! frames with [`PcmQueue::pop_with`] and events with [`PcmQueue::take_events`] once per frame.
//!
//! - Frames are always stereo `[left, right]` `f32`s: mono is duplicated, and of more than two
//!   channels the first two are kept.
//! - The queue is bounded: a producer blocks (on a condvar) while it is full, so a stream that
//!   arrives faster than it plays is held back here, then in the byte channel, then by TCP.
//! - [`PcmQueue::pop_with`] only takes the lock, hands out at most two slices of the ring and
//!   advances it; it never allocates nor touches files, and wakes the producer only when it is
//!   actually waiting and a quarter of the queue is free (a condvar notify is a system call, and
//!   waking the decoder for every 735-frame pop would cost a context switch each).
//! - The main thread's look at the queue each frame takes no lock: [`PcmQueue::len`] is an
//!   atomic kept beside the frames, and [`PcmQueue::take_events`] reads a flag before it locks.
//! - Events are bounded too: beyond [`MAX_PENDING_ERRORS`] pending decode errors, further ones
//!   are only counted, and reported as one summary event; Format events beyond
//!   [`MAX_PENDING_FORMATS`] replace the oldest pending one.
//! - Recording (`record_to`): the producer writes the decoded samples, in the stream's own channel
//!   count, to a [`WavWriter`] before queueing them, so file I/O happens on the decoder thread and
//!   never under the queue's lock. The recorder has its own lock (taken before the queue's when
//!   both are needed), and an atomic flag spares the producer that lock when nothing records.

use std::{
    collections::VecDeque,
    fs::File,
    mem,
    path::{Path, PathBuf},
    sync::{
        Arc, Condvar, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
};

use super::{Codec, decode::PcmSink, wav::WavWriter};

/// Decode error events kept pending at most; more are counted and summarized.
pub const MAX_PENDING_ERRORS: usize = 100;

/// Format events kept pending at most (the oldest goes first).
pub const MAX_PENDING_FORMATS: usize = 16;

/// The format of decoded audio.
#[derive(Clone, Debug, PartialEq)]
pub struct PcmFormat {
    pub sample_rate: u32,
    /// Channels of the stream (frames in the queue are always stereo; mono is duplicated).
    pub channels: u16,
    pub codec: Codec,
}

/// Something the main thread should hear about, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum PcmEvent {
    /// Decoding (re)started with this format (each new connection, or a format change).
    Format(PcmFormat),
    /// A packet could not be decoded (skipped).
    DecodeError(String),
    /// Recording stopped by itself (a write failed, or the format changed); the message says why.
    RecordingStopped(String),
}

/// Stereo `[left, right]` frames from the decoder thread to the main thread.
/// Bounded: a producer blocks while it is full, until frames are popped or it is closed.
pub struct PcmQueue {
    capacity: usize,
    closed: AtomicBool,
    /// `queue.frames.len()`, written under the lock, read without it.
    queued: AtomicUsize,
    /// `queue` has events to take (written under the lock).
    events_waiting: AtomicBool,
    decode_errors: AtomicU64,
    queue: Mutex<Queue>,
    /// Signalled when frames are popped (or on close) while the producer waits for room.
    room: Condvar,
    /// Whether `recorder.state` is not `Off` (read without the lock by the producer).
    recording: AtomicBool,
    recorder: Mutex<Recorder>,
}

struct Queue {
    frames: VecDeque<[f32; 2]>,
    events: VecDeque<PcmEvent>,
    /// `DecodeError`s in `events`.
    pending_errors: usize,
    /// Decode errors not queued as events since the last `take_events`.
    unlisted_errors: u64,
    /// The producer waits on `room`...
    producer_waiting: bool,
    /// ...until there is room for this many frames (or the queue is empty).
    wanted: usize,
}

struct Recorder {
    /// The stream's format, from the last `PcmSink::format`.
    format: Option<PcmFormat>,
    state: Recording,
}

enum Recording {
    Off,
    /// The file is created; the header waits for the format.
    Pending {
        path: PathBuf,
        file: File,
    },
    Active {
        path: PathBuf,
        writer: WavWriter,
    },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PcmQueue {
    /// A queue holding at most `capacity_frames` frames (a push larger than that still goes
    /// through into an empty queue).
    pub fn new(capacity_frames: usize) -> Arc<Self> {
        let capacity = capacity_frames.max(1);
        Arc::new(PcmQueue {
            capacity,
            closed: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            events_waiting: AtomicBool::new(false),
            decode_errors: AtomicU64::new(0),
            queue: Mutex::new(Queue {
                frames: VecDeque::with_capacity(capacity),
                events: VecDeque::new(),
                pending_errors: 0,
                unlisted_errors: 0,
                producer_waiting: false,
                wanted: 0,
            }),
            room: Condvar::new(),
            recording: AtomicBool::new(false),
            recorder: Mutex::new(Recorder { format: None, state: Recording::Off }),
        })
    }

    /// Frames queued (without taking the lock).
    #[inline]
    pub fn len(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes up to `max` frames, oldest first, handing them to `f` as one or two slices;
    /// returns how many. Wakes a blocked producer.
    pub fn pop_with(&self, max: usize, mut f: impl FnMut(&[[f32; 2]])) -> usize {
        let mut q = lock(&self.queue);
        let n = max.min(q.frames.len());
        if n == 0 {
            return 0;
        }
        let (a, b) = q.frames.as_slices();
        let from_a = n.min(a.len());
        f(&a[..from_a]);
        if n > from_a {
            f(&b[..n - from_a]);
        }
        // Draining from the front of a deque of plain floats only moves its head.
        q.frames.drain(..n);
        self.queued.store(q.frames.len(), Ordering::Release);
        let room = self.capacity.saturating_sub(q.frames.len());
        let wake = q.producer_waiting && (room >= q.wanted || q.frames.is_empty());
        drop(q);
        if wake {
            self.room.notify_one();
        }
        n
    }

    /// Moves the pending events into `out`.
    #[inline]
    pub fn take_events(&self, out: &mut Vec<PcmEvent>) {
        if self.events_waiting.load(Ordering::Acquire) {
            self.take_waiting_events(out);
        }
    }

    fn take_waiting_events(&self, out: &mut Vec<PcmEvent>) {
        let mut q = lock(&self.queue);
        self.events_waiting.store(false, Ordering::Release);
        if q.events.is_empty() && q.unlisted_errors == 0 {
            return;
        }
        out.extend(q.events.drain(..));
        q.pending_errors = 0;
        let unlisted = mem::take(&mut q.unlisted_errors);
        if unlisted > 0 {
            out.push(PcmEvent::DecodeError(format!("{unlisted} more packet(s) could not be decoded")));
        }
    }

    /// Stops every producer (their `frames` returns false, a blocked one wakes) and drops the frames.
    ///
    /// A recording in progress gets no more audio; [`PcmQueue::stop_recording`] (or dropping the
    /// queue) finishes its file.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let mut q = lock(&self.queue);
        q.frames.clear();
        self.queued.store(0, Ordering::Release);
        drop(q);
        self.room.notify_all();
    }

    #[inline]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Packets that could not be decoded, since creation.
    pub fn decode_errors(&self) -> u64 {
        self.decode_errors.load(Ordering::Relaxed)
    }

    /// Writes the decoded audio from now on to a 16-bit WAV file at `path` (created or
    /// truncated), with the stream's channels and rate, until [`PcmQueue::stop_recording`].
    /// Replaces a recording in progress (finishing it).
    ///
    /// The file is created right away, so a bad path fails here. Its header is written now when
    /// the stream's format is known, else with the first decoded frames. A recording whose
    /// stream format changes once audio was written to it stops by itself (see
    /// [`PcmEvent::RecordingStopped`]).
    pub fn start_recording(&self, path: &Path) -> Result<(), String> {
        let mut rec = lock(&self.recorder);
        // Finishing the previous recording is best effort: the new one is what was asked for.
        let _ = finish(mem::replace(&mut rec.state, Recording::Off), rec.format.as_ref());
        self.recording.store(false, Ordering::SeqCst);
        let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        rec.state = match &rec.format {
            Some(format) => Recording::Active {
                path: path.to_path_buf(),
                writer: WavWriter::from_file(file, format.sample_rate, format.channels)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
            },
            None => Recording::Pending { path: path.to_path_buf(), file },
        };
        self.recording.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Finishes the recording in progress (fixes the WAV header). Ok(false) when none.
    ///
    /// A recording that never learned the stream's format (no audio was decoded) leaves no file.
    pub fn stop_recording(&self) -> Result<bool, String> {
        let mut rec = lock(&self.recorder);
        let state = mem::replace(&mut rec.state, Recording::Off);
        self.recording.store(false, Ordering::SeqCst);
        if matches!(state, Recording::Off) {
            return Ok(false);
        }
        finish(state, rec.format.as_ref()).map(|()| true)
    }

    pub fn is_recording(&self) -> bool {
        self.recording.load(Ordering::SeqCst)
    }

    /// The producer side for one decoder: converts to stereo, records, blocks while full.
    pub fn sink(self: &Arc<Self>) -> impl PcmSink + Send + 'static {
        QueueSink { queue: Arc::clone(self) }
    }

    fn push_event(&self, event: PcmEvent) {
        let mut q = lock(&self.queue);
        push_event(&mut q, event);
        self.events_waiting.store(true, Ordering::Release);
    }

    /// Appends `samples` (interleaved, `channels` per frame) as stereo frames, waiting for room
    /// while the queue is full. False when the queue is (or gets) closed.
    fn push(&self, samples: &[f32], channels: usize) -> bool {
        let total = samples.len() / channels;
        let mut done = 0;
        let mut q = lock(&self.queue);
        loop {
            if self.is_closed() {
                return false;
            }
            let len = q.frames.len();
            let room = if len == 0 { total - done } else { self.capacity.saturating_sub(len) };
            let n = room.min(total - done);
            if n > 0 {
                let src = &samples[done * channels..(done + n) * channels];
                match channels {
                    1 => q.frames.extend(src.iter().map(|&s| [s, s])),
                    2 => q.frames.extend(src.chunks_exact(2).map(|c| [c[0], c[1]])),
                    _ => q.frames.extend(src.chunks_exact(channels).map(|c| [c[0], c[1]])),
                }
                done += n;
                self.queued.store(q.frames.len(), Ordering::Release);
            }
            if done == total {
                return true;
            }
            // Woken once a quarter of the queue is free, not at every pop: one wake-up (a system
            // call on both sides) per batch of packets rather than per pop.
            q.producer_waiting = true;
            q.wanted = (self.capacity / 4).max(1);
            q = self.room.wait(q).unwrap_or_else(PoisonError::into_inner);
            q.producer_waiting = false;
        }
    }

    /// Writes `samples` to the recording in progress, if any; stops it on failure.
    fn record(&self, samples: &[f32], channels: usize) {
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        let mut rec = lock(&self.recorder);
        let rec = &mut *rec;
        let result: Result<(), String> = match &mut rec.state {
            Recording::Off => return,
            Recording::Pending { .. } => {
                let Some(format) = &rec.format else { return };
                let Recording::Pending { path, file } = mem::replace(&mut rec.state, Recording::Off) else {
                    unreachable!()
                };
                match WavWriter::from_file(file, format.sample_rate, format.channels) {
                    Ok(writer) => {
                        rec.state = Recording::Active { path, writer };
                        return self.record_active(rec, samples, channels);
                    }
                    Err(e) => Err(format!("cannot write {}: {e}", path.display())),
                }
            }
            Recording::Active { .. } => return self.record_active(rec, samples, channels),
        };
        if let Err(reason) = result {
            self.recording.store(false, Ordering::SeqCst);
            self.push_event(PcmEvent::RecordingStopped(reason));
        }
    }

    fn record_active(&self, rec: &mut Recorder, samples: &[f32], channels: usize) {
        let Recording::Active { path, writer } = &mut rec.state else { return };
        let wav_channels = usize::from(rec.format.as_ref().map_or(0, |f| f.channels));
        let result = if channels != wav_channels {
            Err(format!("decoded audio has {channels} channel(s), the recording {wav_channels}"))
        } else {
            writer.write(samples).map_err(|e| format!("writing {} failed: {e}", path.display()))
        };
        if let Err(reason) = result {
            let state = mem::replace(&mut rec.state, Recording::Off);
            self.recording.store(false, Ordering::SeqCst);
            let _ = finish(state, None);
            self.push_event(PcmEvent::RecordingStopped(reason));
        }
    }

    /// The stream's format is (now) `format`: remembers it for the recorder, and queues the event.
    fn set_format(&self, format: PcmFormat) {
        let mut stopped = None;
        {
            let mut rec = lock(&self.recorder);
            let rec = &mut *rec;
            if let Recording::Active { path, writer } = &mut rec.state {
                let old = rec.format.as_ref().map(|f| (f.sample_rate, f.channels));
                if old != Some((format.sample_rate, format.channels)) {
                    if writer.frames() == 0 {
                        // Nothing recorded yet (the format known at start was the previous
                        // connection's): start the file over with the new format.
                        if let Err(e) = writer.restart(format.sample_rate, format.channels) {
                            stopped = Some(format!("writing {} failed: {e}", path.display()));
                        }
                    } else {
                        stopped = Some(format!(
                            "the stream's format changed from {} Hz, {} channel(s) to {} Hz, {} channel(s)",
                            old.map_or(0, |o| o.0),
                            old.map_or(0, |o| o.1),
                            format.sample_rate,
                            format.channels
                        ));
                    }
                    if let Some(reason) = &mut stopped
                        && let Err(e) = finish(mem::replace(&mut rec.state, Recording::Off), None)
                    {
                        reason.push_str(&format!("; finishing the file failed: {e}"));
                    }
                }
            }
            if stopped.is_some() {
                self.recording.store(false, Ordering::SeqCst);
            }
            rec.format = Some(format.clone());
        }
        let mut q = lock(&self.queue);
        push_event(&mut q, PcmEvent::Format(format));
        if let Some(reason) = stopped {
            push_event(&mut q, PcmEvent::RecordingStopped(reason));
        }
        self.events_waiting.store(true, Ordering::Release);
    }
}

/// Queues `event`, keeping the queue bounded (see the module docs).
fn push_event(q: &mut Queue, event: PcmEvent) {
    match &event {
        PcmEvent::DecodeError(_) if q.pending_errors >= MAX_PENDING_ERRORS => {
            q.unlisted_errors += 1;
            return;
        }
        PcmEvent::DecodeError(_) => q.pending_errors += 1,
        PcmEvent::Format(_) => {
            let formats = q.events.iter().filter(|e| matches!(e, PcmEvent::Format(_))).count();
            if formats >= MAX_PENDING_FORMATS
                && let Some(i) = q.events.iter().position(|e| matches!(e, PcmEvent::Format(_)))
            {
                q.events.remove(i);
            }
        }
        PcmEvent::RecordingStopped(_) => {}
    }
    q.events.push_back(event);
}

/// Ends a recording: fixes the WAV header; a pending one gets an empty WAV when the format is
/// known, else its (empty) file is removed.
fn finish(state: Recording, format: Option<&PcmFormat>) -> Result<(), String> {
    match state {
        Recording::Off => Ok(()),
        Recording::Active { path, writer } => {
            writer.finish().map_err(|e| format!("finishing {} failed: {e}", path.display()))
        }
        Recording::Pending { path, file } => match format {
            Some(f) => WavWriter::from_file(file, f.sample_rate, f.channels)
                .and_then(WavWriter::finish)
                .map_err(|e| format!("finishing {} failed: {e}", path.display())),
            None => {
                drop(file);
                let _ = std::fs::remove_file(&path);
                Ok(())
            }
        },
    }
}

/// The producer side of a [`PcmQueue`].
struct QueueSink {
    queue: Arc<PcmQueue>,
}

impl PcmSink for QueueSink {
    fn format(&mut self, format: PcmFormat) {
        self.queue.set_format(format);
    }

    fn frames(&mut self, samples: &[f32], channels: usize) -> bool {
        if self.queue.is_closed() {
            return false;
        }
        if channels == 0 || samples.is_empty() {
            return true;
        }
        self.queue.record(samples, channels);
        self.queue.push(samples, channels)
    }

    fn decode_error(&mut self, message: &str) {
        self.queue.decode_errors.fetch_add(1, Ordering::Relaxed);
        self.queue.push_event(PcmEvent::DecodeError(message.to_string()));
    }
}

#[cfg(test)]
#[path = "pcm_tests.rs"]
mod tests;
