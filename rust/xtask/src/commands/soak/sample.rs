//! The soak scene's Godot process as /proc shows it: open descriptors and resident memory, at
//! the start, at the end and at their peak.

use std::fs;
use std::thread;
use std::time::Duration;

use super::Stop;

/// Open descriptors and resident memory of a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Open file descriptors.
    pub fds: u64,
    /// Resident memory, KiB.
    pub rss_kib: u64,
}

impl Sample {
    fn take(pid: u32) -> Option<Sample> {
        let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kib = status_kib(&status, "VmRSS:")?;
        Some(Sample { fds, rss_kib })
    }

    /// The fewest descriptors over one second (a socket being opened or closed at that very
    /// moment is not a leak), and the RSS of that moment.
    pub fn settled(pid: u32) -> Sample {
        let mut best: Option<Sample> = None;
        for _ in 0..10 {
            if let Some(s) = Sample::take(pid) {
                best = Some(best.map_or(s, |b| if s.fds < b.fds { s } else { b }));
            }
            thread::sleep(Duration::from_millis(100));
        }
        best.unwrap_or_default()
    }
}

/// A `Name:   1234 kB` line of /proc/PID/status, in KiB.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix(name))?.split_whitespace().next()?.parse().ok()
}

/// The most descriptors and RSS seen, sampled every 500 ms until `stop`.
pub fn peak_samples(pid: u32, stop: &Stop) -> Sample {
    let mut peak = Sample::default();
    while !stop.is_set() {
        if let Some(s) = Sample::take(pid) {
            peak.fds = peak.fds.max(s.fds);
            peak.rss_kib = peak.rss_kib.max(s.rss_kib);
        }
        stop.sleep(Duration::from_millis(500));
    }
    peak
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_status_lines() {
        let status = "Name:\tgodot\nVmHWM:\t  20480 kB\nVmRSS:\t  10240 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(10240));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn samples_this_process() {
        let s = Sample::take(std::process::id()).unwrap();
        assert!(s.fds >= 3 && s.rss_kib > 0);
    }
}
