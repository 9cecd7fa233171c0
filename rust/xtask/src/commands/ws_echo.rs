//! `xtask ws-echo`: the WebSocket echo server of the WsEcho benchmarks (`tests/bench/bench_ws.gd`),
//! a separate process run from the release build of xtask, so the server is neither the
//! bottleneck nor on Godot's main thread. Loopback only; it always exits by itself.
//!
//! `xtask ws-echo --port-file FILE [--port P] [--max-sec S] [--stop-file F]` listens on
//! 127.0.0.1:P (0, the default, picks a free port), writes the port to FILE (through a temporary
//! file and a rename, so a reader polling for FILE never sees half of it), then serves until F
//! exists or S seconds (default 180, at most 600) have passed, and exits.
//!
//! The server itself, with its `flood` command, is [`crate::ws_echo_server`].

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cli::Args;
use crate::ws_echo_server;

/// Longest a server may run.
const MAX_RUN: Duration = Duration::from_secs(600);

/// How often the main thread checks the stop file and the deadline.
const STOP_POLL: Duration = Duration::from_millis(50);

/// `xtask ws-echo --port-file FILE [--port P] [--max-sec S] [--stop-file F]` (see the module docs).
pub fn main(mut args: Args) -> Result<ExitCode> {
    let port_file = PathBuf::from(args.value("--port-file")?.context("--port-file is required")?);
    let port = u16::try_from(args.number("--port")?.unwrap_or(0)).context("--port")?;
    let max = Duration::from_secs(args.number("--max-sec")?.unwrap_or(180)).min(MAX_RUN);
    let stop_file = args.value("--stop-file")?.map(PathBuf::from);
    args.finish()?;

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .with_context(|| format!("binding 127.0.0.1:{port} for the WebSocket echo server"))?;
    let port = listener.local_addr()?.port();
    ws_echo_server::serve(listener)?;
    write_atomically(&port_file, &format!("{port}\n"))?;
    eprintln!("xtask ws-echo: serving ws://127.0.0.1:{port} for at most {} s", max.as_secs());

    // Returning from main ends the process, and every connection thread with it.
    let deadline = Instant::now() + max;
    loop {
        if stop_file.as_deref().is_some_and(Path::exists) {
            return Ok(ExitCode::SUCCESS);
        }
        if Instant::now() >= deadline {
            eprintln!("xtask ws-echo: --max-sec reached, exiting");
            return Ok(ExitCode::SUCCESS);
        }
        thread::sleep(STOP_POLL);
    }
}

fn write_atomically(out: &Path, text: &str) -> Result<()> {
    let tmp = out.with_extension("tmp");
    fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, out).with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))
}
