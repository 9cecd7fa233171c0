//! The damage of the broken streams: `/garbage.mp3` gets random bytes and half frames at a
//! steady pace, `/truncated.mp3` ends in the middle of a frame.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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
    /// Seeded: every listener of `/garbage.mp3` gets the same bytes.
    random: StdRng,
}

impl Faults {
    /// The faults of `/garbage.mp3` when `on`, else a pass-through.
    pub fn new(on: bool) -> Self {
        Faults {
            on,
            next_garbage: GARBAGE_EVERY,
            next_half: HALF_FRAME_EVERY,
            random: StdRng::seed_from_u64(0x2545_f491_4f6c_dd1d),
        }
    }

    /// Adds the frame that starts at `at` to `body`, damaged when its time has come.
    pub fn push_frame(&mut self, at: Duration, frame: &[u8], body: &mut Body) {
        if !self.on {
            body.push(frame);
            return;
        }
        if at >= self.next_garbage {
            self.next_garbage += GARBAGE_EVERY;
            let mut garbage = [0u8; GARBAGE_BYTES];
            self.random.fill_bytes(&mut garbage);
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
