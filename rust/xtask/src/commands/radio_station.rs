//! `cargo xtask radio-station [--port N] [--file MP3] [--port-file F]`: the project's own
//! internet-radio station, for trying RadioStream by hand: builds the testbed and runs its
//! `radio-station` (rust/testbed/src/radio_station/) in the foreground on 127.0.0.1:N (default
//! 8000; 0 picks a free port), playing MP3 or, by default, the demo music xtask generates
//! (`target/media/station.mp3`). It prints the URLs of its routes and serves until Ctrl-C.

use std::process::ExitCode;

use anyhow::{Context, Result};

use super::build::Profile;
use crate::cli::Args;
use crate::{media, testbed};

/// `cargo xtask radio-station [--port N] [--file MP3] [--port-file F]` (see the module docs).
pub fn main(mut args: Args) -> Result<ExitCode> {
    let port = args.number("--port")?;
    let file = args.value("--file")?;
    let port_file = args.value("--port-file")?;
    args.finish()?;
    let file = match file {
        Some(file) => file.into(),
        None => media::station_mp3()?,
    };
    let mut cmd = testbed::command(&testbed::build(Profile::Debug)?, "radio-station");
    cmd.arg("--file").arg(file);
    if let Some(port) = port {
        cmd.args(["--port", &port.to_string()]);
    }
    if let Some(port_file) = port_file {
        cmd.args(["--port-file", &port_file]);
    }
    let status = cmd.status().context("running the testbed's radio station")?;
    Ok(super::exit_code(status))
}
