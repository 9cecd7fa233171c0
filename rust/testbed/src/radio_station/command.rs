//! `testbed radio-station [--port N] [--file MP3] [--port-file F] [--parent PID]`: runs the
//! project's own internet-radio station ([`super`]) on 127.0.0.1:N (default 8000; 0 picks a free
//! port) with MP3 (default: the demo music that `cargo xtask` generates, `target/media/station.mp3`),
//! prints the URLs of its routes, writes the port to F once listening (through a temporary file
//! and a rename, for scripts) and serves until killed, or until process PID is gone.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use lexopt::prelude::*;

use super::routes::ROUTES;
use crate::files::{generated_media, write_atomically};
use crate::lifetime::Lifetime;

/// The port when `--port` is not given (icecast's usual one).
const DEFAULT_PORT: u16 = 8000;

/// `testbed radio-station [--port N] [--file MP3] [--port-file F] [--parent PID]` (see the
/// module docs).
pub fn main(args: Vec<OsString>) -> Result<ExitCode> {
    let (mut port, mut file, mut port_file, mut parent) = (DEFAULT_PORT, None, None, None);
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("port") => port = parser.value()?.parse()?,
            Long("file") => file = Some(PathBuf::from(parser.value()?)),
            Long("port-file") => port_file = Some(PathBuf::from(parser.value()?)),
            Long("parent") => parent = Some(parser.value()?.parse()?),
            _ => return Err(arg.unexpected().into()),
        }
    }

    let file = match file {
        Some(file) => file,
        None => generated_media("station.mp3")?,
    };
    let station = super::start_on(&file, port)
        .with_context(|| format!("starting the station (is port {port} taken? `--port 0` picks a free one)"))?;
    if let Some(port_file) = &port_file {
        write_atomically(port_file, &format!("{}\n", station.port()))?;
    }
    println!("testbed radio-station: playing {} on 127.0.0.1:{}", file.display(), station.port());
    for (path, what) in ROUTES {
        println!("  {:<44} {what}", station.url_of(path));
    }
    println!("(stop with Ctrl-C; {} logs each request)", super::DEBUG_ENV);
    Lifetime { parent, ..Lifetime::default() }.wait();
    Ok(ExitCode::SUCCESS)
}
