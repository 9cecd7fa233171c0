//! `testbed ws-echo`: the WebSocket echo and flood server of the WsEcho benchmarks
//! (`tests/bench/bench_ws.gd`, from a release build) and of the WsEcho demo (`cargo xtask demo`).
//! Loopback only; it always exits by itself.
//!
//! `testbed ws-echo --port-file FILE [--port P] [--max-sec S] [--stop-file F] [--parent PID]`
//! listens on 127.0.0.1:P (0, the default, picks a free port), writes the port to FILE (through a
//! temporary file and a rename, so a reader polling for FILE never sees half of it), then serves
//! until F exists, S seconds have passed, or process PID is gone, and exits. Without `--parent`
//! the time limit is S (default 180, at most 600); with it, the server lives as long as its
//! parent unless S is given.
//!
//! The server itself, with its `flood` command, is [`server`].

mod server;

use std::ffi::OsString;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lexopt::prelude::*;

use crate::files::write_atomically;
use crate::lifetime::{End, Lifetime};

/// Longest a server may run when given a time limit.
const MAX_RUN: Duration = Duration::from_secs(600);

/// The time limit of a server started without `--max-sec` nor `--parent`.
const DEFAULT_RUN: Duration = Duration::from_secs(180);

/// `testbed ws-echo --port-file FILE [--port P] [--max-sec S] [--stop-file F] [--parent PID]`
/// (see the module docs).
pub fn main(args: Vec<OsString>) -> Result<ExitCode> {
    let (mut port_file, mut port, mut max, mut stop_file, mut parent) = (None, 0u16, None, None, None);
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("port-file") => port_file = Some(PathBuf::from(parser.value()?)),
            Long("port") => port = parser.value()?.parse()?,
            Long("max-sec") => max = Some(Duration::from_secs(parser.value()?.parse()?)),
            Long("stop-file") => stop_file = Some(PathBuf::from(parser.value()?)),
            Long("parent") => parent = Some(parser.value()?.parse()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let port_file = port_file.context("--port-file is required")?;
    let max = match (max, parent) {
        (Some(max), _) => Some(max.min(MAX_RUN)),
        (None, None) => Some(DEFAULT_RUN),
        (None, Some(_)) => None,
    };

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .with_context(|| format!("binding 127.0.0.1:{port} for the WebSocket echo server"))?;
    let port = listener.local_addr()?.port();
    server::serve(listener)?;
    write_atomically(&port_file, &format!("{port}\n"))?;
    let limit = max.map_or_else(|| "as long as its parent".into(), |max| format!("for at most {} s", max.as_secs()));
    eprintln!("testbed ws-echo: serving ws://127.0.0.1:{port} {limit}");

    // Returning from main ends the process, and every connection thread with it.
    let lifetime = Lifetime { stop_file, deadline: max.map(|max| Instant::now() + max), parent };
    if lifetime.wait() == End::TimeLimit {
        eprintln!("testbed ws-echo: --max-sec reached, exiting");
    }
    Ok(ExitCode::SUCCESS)
}
