//! STUB (helper C writes it): `cargo xtask radio-station`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::Args;

pub fn main(_args: Args) -> Result<ExitCode> {
    bail!("not written yet")
}
