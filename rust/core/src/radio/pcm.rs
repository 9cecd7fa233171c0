//! CONTRACT STUB (helper B replaces the bodies; keep the public signatures).
//! The bounded queue of stereo frames between the decoder thread and the main thread.

use std::{path::Path, sync::Arc};

use super::{Codec, decode::PcmSink};

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
    _private: (),
}

impl PcmQueue {
    /// A queue holding at most `capacity_frames` frames (a push larger than that still goes
    /// through into an empty queue).
    pub fn new(capacity_frames: usize) -> Arc<Self> {
        let _ = capacity_frames;
        todo!()
    }

    /// Frames queued.
    pub fn len(&self) -> usize {
        todo!()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes up to `max` frames, oldest first, handing them to `f` as one or two slices;
    /// returns how many. Wakes a blocked producer.
    pub fn pop_with(&self, max: usize, f: impl FnMut(&[[f32; 2]])) -> usize {
        let _ = (max, f);
        todo!()
    }

    /// Moves the pending events into `out`.
    pub fn take_events(&self, out: &mut Vec<PcmEvent>) {
        let _ = out;
        todo!()
    }

    /// Stops every producer (their `frames` returns false, a blocked one wakes) and drops the frames.
    pub fn close(&self) {
        todo!()
    }

    pub fn is_closed(&self) -> bool {
        todo!()
    }

    /// Packets that could not be decoded, since creation.
    pub fn decode_errors(&self) -> u64 {
        todo!()
    }

    /// Writes the decoded audio from now on to a 16-bit WAV file at `path` (created or
    /// truncated), with the stream's channels and rate, until [`PcmQueue::stop_recording`].
    /// Replaces a recording in progress (finishing it).
    pub fn start_recording(&self, path: &Path) -> Result<(), String> {
        let _ = path;
        todo!()
    }

    /// Finishes the recording in progress (fixes the WAV header). Ok(false) when none.
    pub fn stop_recording(&self) -> Result<bool, String> {
        todo!()
    }

    pub fn is_recording(&self) -> bool {
        todo!()
    }

    /// The producer side for one decoder: converts to stereo, records, blocks while full.
    pub fn sink(self: &Arc<Self>) -> impl PcmSink + Send + 'static {
        NoSink
    }
}

struct NoSink;

impl PcmSink for NoSink {
    fn format(&mut self, _: PcmFormat) {}
    fn frames(&mut self, _: &[f32], _: usize) -> bool {
        false
    }
    fn decode_error(&mut self, _: &str) {}
}
