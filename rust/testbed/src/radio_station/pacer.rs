//! When each frame of a listener's stream is due: icecast's burst-on-connect, then real time.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::POLL;
use super::mp3::Mp3;
use super::routes::StreamKind;

/// Audio sent at once when a listener connects.
pub const BURST: Duration = Duration::from_secs(1);

/// When each frame of a connection is due: the first [`BURST`] at once, then in real time.
pub struct Pacer {
    start: Instant,
    frame_seconds: f64,
    /// Frames sent so far.
    sent: u64,
    /// Frames sent at once.
    burst: u64,
}

impl Pacer {
    /// The pace of a stream of `kind` made of `audio`'s frames, starting now.
    pub fn new(audio: &Mp3, kind: StreamKind) -> Self {
        let frame_seconds = audio.frame_seconds();
        // `/truncated.mp3` sends everything at once.
        let burst =
            if kind == StreamKind::Truncated { u64::MAX } else { (BURST.as_secs_f64() / frame_seconds).ceil() as u64 };
        Pacer { start: Instant::now(), frame_seconds, sent: 0, burst }
    }

    /// Audio time at the start of the next frame.
    pub fn audio_time(&self) -> Duration {
        Duration::from_secs_f64(self.sent as f64 * self.frame_seconds)
    }

    /// When the next frame is due (after the burst: one frame duration after the previous one).
    pub fn due(&self) -> Instant {
        let paced = (self.sent + 1).saturating_sub(self.burst);
        self.start + Duration::from_secs_f64(paced as f64 * self.frame_seconds)
    }

    /// Whether the next frame may be sent now.
    pub fn next_is_due(&self) -> bool {
        self.sent < self.burst || self.due() <= Instant::now()
    }

    /// Counts the next frame as sent.
    pub fn advance(&mut self) {
        self.sent += 1;
    }

    /// Sleeps until the next frame is due, in slices of at most [`POLL`]; fails on a stop.
    pub fn wait(&self, stop: &AtomicBool) -> io::Result<()> {
        let due = self.due();
        loop {
            if stop.load(Ordering::SeqCst) {
                return Err(io::Error::other("the station stopped"));
            }
            let Some(left) = due.checked_duration_since(Instant::now()) else {
                return Ok(());
            };
            thread::sleep(left.min(POLL));
        }
    }
}
