//! The xtask subcommands.

pub mod bench;
pub mod build;
pub mod dashboard_test;
pub mod demo;
pub mod fuzz;
pub mod package;
pub mod package_smoke;
pub mod radio_station;
pub mod screenshots;
pub mod soak;
pub mod test;

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::godot;

/// `cargo xtask godot ARGS...`: runs the Godot that xtask uses, e.g. to open the editor on a project.
pub fn godot_passthrough(args: Vec<String>) -> Result<ExitCode> {
    let godot = godot::find()?;
    eprintln!("xtask: {} (Godot {})", godot.path.display(), godot.version);
    let status = godot.command().args(&args).status().context("running Godot")?;
    Ok(exit_code(status))
}

/// Our exit code for a child's exit status (1 when it died from a signal).
pub fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    }
}
