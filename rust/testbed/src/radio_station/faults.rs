//! The damage of the broken streams: `/garbage.mp3` gets random bytes and half frames at a
//! steady pace, `/truncated.mp3` ends in the middle of a frame.

use std::time::Duration;

use super::body::Body;

/// Audio sent by `/truncated.mp3` before the cut.
pub const TRUNCATED_AFTER: Duration = Duration::from_secs(2);

/// `/garbage.mp3`: how often random bytes are inserted, and how many.
const GARBAGE_EVERY: Duration = Duration::from_secs(2);
const GARBAGE_BYTES: usize = 3000;

/// `/garbage.mp3`: how often a frame loses its second half.
const HALF_FRAME_EVERY: Duration = Duration::from_secs(3);

/// The faults of `/garbage.mp3` (random bytes, half frames); a pass-through for other streams.
pub struct Faults {
    on: bool,
    next_garbage: Duration,
    next_half: Duration,
    random: XorShift,
}

impl Faults {
    /// The faults of `/garbage.mp3` when `on`, else a pass-through.
    pub fn new(on: bool) -> Self {
        Faults { on, next_garbage: GARBAGE_EVERY, next_half: HALF_FRAME_EVERY, random: XorShift(0x2545_f491_4f6c_dd1d) }
    }

    /// Adds the frame that starts at `at` to `body`, damaged when its time has come.
    pub fn push_frame(&mut self, at: Duration, frame: &[u8], body: &mut Body) {
        if !self.on {
            body.push(frame);
            return;
        }
        if at >= self.next_garbage {
            self.next_garbage += GARBAGE_EVERY;
            let garbage: Vec<u8> = (0..GARBAGE_BYTES).map(|_| self.random.next_byte()).collect();
            body.push(&garbage);
        }
        if at >= self.next_half {
            self.next_half += HALF_FRAME_EVERY;
            body.push(&frame[..frame.len() / 2]);
        } else {
            body.push(frame);
        }
    }
}

/// The garbage's bytes: the same sequence on every connection and every run (xorshift64 from a
/// fixed seed), so that what a decoder makes of `/garbage.mp3` does not change from run to run:
/// the RadioStream tests count the decode errors it causes.
struct XorShift(u64);

impl XorShift {
    fn next_byte(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 32) as u8
    }
}
