//! Where the main thread's time goes: every task poll is timed, so a step can
//! report its busy time and its longest poll, and the engine can ask which
//! task held the main thread longest during the last frame (a window of steps).

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    time::Duration,
};

use super::{OwnerId, TaskId};

/// The longest single task poll of a step: how long one task held the main
/// thread without yielding. The step budget can only end a step between
/// polls, so this is what a step's time can exceed its budget by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowPoll {
    /// The task's id.
    pub id: TaskId,
    /// The task's name.
    pub name: Rc<str>,
    /// Who owns it.
    pub owner: OwnerId,
    /// How long the poll took.
    pub duration: Duration,
}

/// Poll counts and times of the step in progress, and the longest poll of the
/// window in progress and of the last one ended.
#[derive(Debug, Default)]
pub(super) struct Profile {
    polls: Cell<u64>,
    busy: Cell<Duration>,
    slowest: RefCell<Option<SlowPoll>>,
    window_slowest: RefCell<Option<SlowPoll>>,
    last_window_slowest: RefCell<Option<SlowPoll>>,
}

/// What a step's polls added up to.
pub(super) struct StepProfile {
    pub polls: u64,
    pub busy: Duration,
    pub slowest: Option<SlowPoll>,
}

impl Profile {
    /// Starts a step's accounting.
    pub fn begin_step(&self) {
        self.polls.set(0);
        self.busy.set(Duration::ZERO);
        self.slowest.take();
    }

    /// Accounts one task poll that took `took`.
    pub fn polled(&self, id: TaskId, name: &Rc<str>, owner: OwnerId, took: Duration) {
        self.polls.set(self.polls.get() + 1);
        self.busy.set(self.busy.get() + took);
        let mut slowest = self.slowest.borrow_mut();
        if slowest.as_ref().is_none_or(|s| took > s.duration) {
            *slowest = Some(SlowPoll { id, name: name.clone(), owner, duration: took });
        }
    }

    /// Ends a step's accounting; its longest poll also counts for the window.
    pub fn end_step(&self) -> StepProfile {
        let slowest = self.slowest.take();
        if let Some(step) = &slowest {
            let mut window = self.window_slowest.borrow_mut();
            if window.as_ref().is_none_or(|w| step.duration > w.duration) {
                *window = Some(step.clone());
            }
        }
        StepProfile { polls: self.polls.get(), busy: self.busy.get(), slowest }
    }

    /// Ends a window: its longest poll becomes [`Self::last_window_slowest`].
    pub fn end_window(&self) {
        let ended = self.window_slowest.take();
        *self.last_window_slowest.borrow_mut() = ended;
    }

    /// The longest poll of the last window ended, if any task ran in it.
    pub fn last_window_slowest(&self) -> Option<SlowPoll> {
        self.last_window_slowest.borrow().clone()
    }
}
