//! `cargo xtask radio-station [--port N] [--file MP3] [--port-file F]`: runs the project's own
//! internet-radio station ([`crate::radio_station`]) on 127.0.0.1:N (default 8000; 0 picks a free
//! port) with MP3 (default: the generated demo music, `target/media/station.mp3`), prints the URLs
//! of its routes, writes the port to F once listening (through a temporary file and a rename, for
//! scripts) and serves until killed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;

use anyhow::{Context, Result};

use crate::cli::Args;
use crate::{media, radio_station};

/// The port when `--port` is not given (icecast's usual one).
const DEFAULT_PORT: u64 = 8000;

/// `cargo xtask radio-station [--port N] [--file MP3] [--port-file F]` (see the module docs).
pub fn main(mut args: Args) -> Result<ExitCode> {
    let port = u16::try_from(args.number("--port")?.unwrap_or(DEFAULT_PORT)).context("--port")?;
    let file = args.value("--file")?.map(PathBuf::from);
    let port_file = args.value("--port-file")?.map(PathBuf::from);
    args.finish()?;

    let file = match file {
        Some(file) => file,
        None => media::station_mp3()?,
    };
    let station = radio_station::start_on(&file, port)
        .with_context(|| format!("starting the station (is port {port} taken? `--port 0` picks a free one)"))?;
    if let Some(port_file) = &port_file {
        write_atomically(port_file, &format!("{}\n", station.port()))?;
    }
    println!("xtask radio-station: playing {} on 127.0.0.1:{}", file.display(), station.port());
    for (path, what) in radio_station::ROUTES {
        println!("  {:<44} {what}", station.url_of(path));
    }
    println!("(stop with Ctrl-C; {} logs each request)", radio_station::DEBUG_ENV);
    loop {
        thread::park();
    }
}

/// Writes `text` to `out` through a temporary file and a rename, so a reader never sees half of it.
fn write_atomically(out: &Path, text: &str) -> Result<()> {
    let tmp = out.with_extension("tmp");
    fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, out).with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))
}
