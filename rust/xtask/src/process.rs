//! Running child processes: plain runs, captured output, and streamed runs with a time limit.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A `cargo` command (the cargo that runs xtask, when known), without the package variables
/// that `cargo run` gave xtask (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...). Build scripts such
/// as ring's rerun when those change, so a build from xtask after one from a shell (or the
/// other way round) would rebuild ring and every crate above it: minutes in optimized profiles.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("CARGO_PKG_") || k.starts_with("CARGO_MANIFEST_")) {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Describes a command for messages: program and arguments.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Runs `cmd` with inherited stdio and fails unless it exits successfully.
pub fn run(cmd: &mut Command) -> Result<()> {
    let what = describe(cmd);
    let status = cmd.status().with_context(|| format!("could not start `{what}`"))?;
    if !status.success() {
        bail!("`{what}` failed ({})", exit_text(status));
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout; fails (showing stderr) unless it exits successfully.
pub fn output(cmd: &mut Command) -> Result<String> {
    let what = describe(cmd);
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("could not start `{what}`"))?;
    if !out.status.success() {
        bail!("`{what}` failed ({}):\n{}", exit_text(out.status), String::from_utf8_lossy(&out.stderr).trim_end());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// How a run ended, with everything it printed (stdout and stderr interleaved as written).
pub struct Finished {
    /// Exit status; after a timeout, the status of the killed process.
    pub status: ExitStatus,
    /// Whether the time limit was reached and the process was killed.
    pub timed_out: bool,
    /// stdout and stderr, merged.
    pub log: String,
}

impl Finished {
    /// Success: not timed out and exit code 0.
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    /// "exit code N", "killed by a signal" or "timed out", for messages.
    pub fn describe(&self) -> String {
        if self.timed_out { "timed out and was killed".into() } else { exit_text(self.status) }
    }
}

/// Runs `cmd` with stdout and stderr merged into one pipe, echoing it to our stdout as it
/// arrives and keeping a copy; kills the process once `limit` has passed.
pub fn stream(cmd: Command, limit: Option<Duration>) -> Result<Finished> {
    run_merged(cmd, limit, true)
}

/// Like [`stream`] but silent: the output is only returned.
pub fn capture(cmd: Command, limit: Option<Duration>) -> Result<Finished> {
    run_merged(cmd, limit, false)
}

fn run_merged(mut cmd: Command, limit: Option<Duration>, echo: bool) -> Result<Finished> {
    let what = describe(&cmd);
    let (mut reader, writer) = std::io::pipe().context("creating a pipe")?;
    cmd.stdin(Stdio::null()).stdout(writer.try_clone().context("cloning a pipe")?).stderr(writer);
    let mut child = cmd.spawn().with_context(|| format!("could not start `{what}`"))?;
    // The Command holds our copies of the pipe's write end: drop them, or the reader never sees EOF.
    drop(cmd);

    let log = Arc::new(Mutex::new(Vec::new()));
    let (eof_tx, eof_rx) = mpsc::channel();
    let sink = Arc::clone(&log);
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            if echo {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&buf[..n]);
                let _ = out.flush();
            }
            sink.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(&buf[..n]);
        }
        let _ = eof_tx.send(());
    });

    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().with_context(|| format!("waiting for `{what}`"))? {
            break status;
        }
        if limit.is_some_and(|limit| start.elapsed() >= limit) {
            timed_out = true;
            let _ = child.kill();
            break child.wait().with_context(|| format!("waiting for `{what}` after killing it"))?;
        }
        thread::sleep(Duration::from_millis(50));
    };
    // A grandchild may still hold the pipe open; don't wait for it forever.
    let _ = eof_rx.recv_timeout(Duration::from_secs(5));
    let log = String::from_utf8_lossy(&log.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    Ok(Finished { status, timed_out, log })
}

/// "exit code N" or "killed by a signal".
pub fn exit_text(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => format!("killed by a signal ({status})"),
    }
}

/// Finds an executable named `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    std::env::split_paths(&path).map(|dir| dir.join(&file)).find(|p| is_executable(p))
}

/// Whether `path` is an executable file.
pub fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;

    #[test]
    fn capture_merges_stdout_and_stderr_in_order() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo one; echo two >&2; echo three; exit 3"]);
        let run = capture(cmd, Some(Duration::from_secs(10))).unwrap();
        assert_eq!(run.log, "one\ntwo\nthree\n");
        assert!(!run.success());
        assert_eq!(run.describe(), "exit code 3");
    }

    #[test]
    fn capture_kills_at_the_time_limit() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; exec sleep 30"]);
        let start = Instant::now();
        let run = capture(cmd, Some(Duration::from_millis(300))).unwrap();
        assert!(run.timed_out);
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(run.log, "started\n");
    }
}
