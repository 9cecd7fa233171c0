//! Sizing the process's descriptor table before a burst of clients needs it.
//!
//! Linux keeps each process's open descriptors in a table that grows by
//! doubling when a new descriptor does not fit, and never shrinks. In a
//! process with several threads (every game) each growth waits for an RCU
//! grace period (`expand_files` → `synchronize_rcu`) inside the call that
//! opened the descriptor. For the spawner that call is `accept` on the main
//! thread, in the middle of a burst of connections: the soak measured the
//! main thread blocked 4–18 ms there, once per doubling. Growing the table
//! once when the server starts moves that wait to the start.

/// Makes room in the descriptor table for `count` more descriptors past
/// `near` (the listener), capped by the soft `RLIMIT_NOFILE`. Costs nothing
/// when the table is already that large; does nothing off Linux.
#[cfg(unix)]
pub fn reserve(near: &impl std::os::fd::AsRawFd, count: usize) {
    #[cfg(target_os = "linux")]
    {
        let fd = near.as_raw_fd();
        let Ok(base) = usize::try_from(fd) else { return };
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return;
        }
        let ceiling = usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX).saturating_sub(1);
        let want = base.saturating_add(count).min(ceiling).min(libc::c_int::MAX as usize);
        if want <= base {
            return;
        }
        // F_DUPFD returns the lowest free descriptor at or above `want`, growing
        // the table to hold it; the copy of the listener is closed at once.
        // SAFETY: `fd` is open for the duration of the borrow; the duplicate is
        // ours alone and closed here.
        let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, want as libc::c_int) };
        if copy >= 0 {
            unsafe { libc::close(copy) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (near, count);
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The descriptor table's size, from /proc.
    fn table_size() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("FDSize:")).unwrap();
        line["FDSize:".len()..].trim().parse().unwrap()
    }

    #[test]
    fn grows_the_table_to_fit_and_leaves_no_descriptor_open() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let want = std::os::fd::AsRawFd::as_raw_fd(&listener) as usize + 3000;
        reserve(&listener, 3000);
        assert!(table_size() > want, "FDSize {} after reserving room up to {want}", table_size());
        // The copy was closed: the next descriptor opened is a low one again.
        let next = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(std::os::fd::AsRawFd::as_raw_fd(&next) < 1000);
    }

    #[test]
    fn stops_at_the_descriptor_limit() {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes the struct it is given.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        if limit.rlim_cur > 1 << 16 {
            return; // A table that large is not worth making in a test.
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        reserve(&listener, usize::MAX);
        let size = table_size() as u64;
        assert!(
            size >= limit.rlim_cur - 1 && size <= limit.rlim_cur.next_power_of_two(),
            "FDSize {size}, limit {}",
            limit.rlim_cur
        );
    }
}
