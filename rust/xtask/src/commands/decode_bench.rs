//! STUB (helper B writes it): `xtask decode-bench`, our decoder against ffmpeg and mpg123.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::Args;

pub fn main(_args: Args) -> Result<ExitCode> {
    bail!("not written yet")
}
