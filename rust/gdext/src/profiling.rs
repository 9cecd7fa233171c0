//! The runtime's main-thread time as the engine shows it: per frame (the
//! `async_net/step_usec` monitor, `AsyncHub.get_last_step_usec()`), and a
//! warning naming the task when one poll is long enough to be a visible hitch.

use std::{
    cell::Cell,
    time::{Duration, Instant},
};

use async_net_core::reactor::{SlowPoll, StepReport};
use godot::global::godot_warn;

use crate::runtime::owner_label;

/// A task poll this long is a hitch a player can see (a 60 Hz frame); it is
/// logged with the task's name and owner.
const SLOW_POLL_WARNING: Duration = Duration::from_millis(16);

/// Step times of the frame in progress and of the last one, and when a slow
/// poll was last logged.
#[derive(Debug, Default)]
pub struct FrameProfile {
    last_frame_usec: Cell<f64>,
    /// This frame's steps so far: the frame step and any extra steps.
    pending_usec: Cell<f64>,
    last_slow_warning: Cell<Option<Instant>>,
}

impl FrameProfile {
    /// Accounts one step made with `budget`, and logs its longest poll if that
    /// was a hitch (at most once a second).
    pub fn add_step(&self, report: &StepReport, budget: Duration) {
        if report.skipped {
            return;
        }
        self.pending_usec.set(self.pending_usec.get() + report.elapsed.as_secs_f64() * 1e6);
        if let Some(slow) = report.slowest.as_ref().filter(|s| s.duration >= SLOW_POLL_WARNING) {
            self.warn_slow_poll(slow, budget);
        }
    }

    /// The frame step is done: the frame's figures become the last frame's.
    pub fn end_frame(&self) {
        self.last_frame_usec.set(self.pending_usec.replace(0.0));
    }

    /// Main-thread time of the runtime in the last frame, in microseconds.
    pub fn last_step_usec(&self) -> f64 {
        self.last_frame_usec.get()
    }

    fn warn_slow_poll(&self, slow: &SlowPoll, budget: Duration) {
        let now = Instant::now();
        if self.last_slow_warning.get().is_some_and(|last| now.duration_since(last) < Duration::from_secs(1)) {
            return;
        }
        self.last_slow_warning.set(Some(now));
        godot_warn!(
            "async_net: task '{}' of {} held the main thread for {:.1} ms in one poll, past the step budget of {:.1} ms \
             (wall time, so time the OS gave to other threads counts too)",
            slow.name,
            owner_label(slow.owner),
            slow.duration.as_secs_f64() * 1e3,
            budget.as_secs_f64() * 1e3,
        );
    }
}
