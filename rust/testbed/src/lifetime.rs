//! How long a testbed server lives: until a stop file appears, a time limit passes, or the
//! process that started it is gone (so that a server never outlives a killed test run and keeps
//! its port).

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

/// How often [`Lifetime::wait`] looks.
const POLL: Duration = Duration::from_millis(50);

/// The conditions that end a server; none set: it runs until killed.
#[derive(Debug, Default)]
pub struct Lifetime {
    /// Ends once this file exists.
    pub stop_file: Option<PathBuf>,
    /// Ends at this moment.
    pub deadline: Option<Instant>,
    /// Ends once this process is no longer our parent (it exited, and we were adopted).
    pub parent: Option<u32>,
}

/// Why a [`Lifetime`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    StopFile,
    TimeLimit,
    ParentGone,
}

impl Lifetime {
    /// Blocks until one of the conditions holds.
    pub fn wait(&self) -> End {
        loop {
            if let Some(end) = self.ended() {
                return end;
            }
            thread::sleep(POLL);
        }
    }

    /// The condition that holds now, if any.
    pub fn ended(&self) -> Option<End> {
        if self.stop_file.as_ref().is_some_and(|f| f.exists()) {
            Some(End::StopFile)
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Some(End::TimeLimit)
        } else if self.parent.is_some_and(|pid| !is_parent(pid)) {
            Some(End::ParentGone)
        } else {
            None
        }
    }
}

/// Whether `pid` is still this process's parent. Where that cannot be known (not Unix), yes.
fn is_parent(pid: u32) -> bool {
    #[cfg(unix)]
    {
        std::os::unix::process::parent_id() == pid
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_on_each_condition() {
        assert_eq!(Lifetime::default().ended(), None);
        let past = Lifetime { deadline: Some(Instant::now()), ..Lifetime::default() };
        assert_eq!(past.wait(), End::TimeLimit);
        let file = std::env::temp_dir().join(format!("testbed-lifetime-{}.stop", std::process::id()));
        let stop = Lifetime { stop_file: Some(file.clone()), ..Lifetime::default() };
        assert_eq!(stop.ended(), None);
        std::fs::write(&file, "").unwrap();
        assert_eq!(stop.ended(), Some(End::StopFile));
        std::fs::remove_file(file).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn ends_when_the_parent_is_gone() {
        let parent = std::os::unix::process::parent_id();
        assert_eq!(Lifetime { parent: Some(parent), ..Lifetime::default() }.ended(), None);
        assert_eq!(Lifetime { parent: Some(parent + 1), ..Lifetime::default() }.ended(), Some(End::ParentGone));
    }
}
