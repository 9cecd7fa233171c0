//! The xtask subcommands.

pub mod bench;
pub mod build;
#[cfg(feature = "microbench")]
pub mod decode_bench;
pub mod demo;
pub mod fuzz;
pub mod loadgen;
#[cfg(feature = "microbench")]
pub mod microbench;
pub mod package;
pub mod package_smoke;
pub mod radio_station;
pub mod screenshots;
pub mod soak;
pub mod test;
pub mod ws_echo;

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

/// `xtask decode-bench` in a build without the `microbench` feature.
#[cfg(not(feature = "microbench"))]
pub mod decode_bench {
    use std::process::ExitCode;

    use anyhow::{Result, bail};

    use crate::cli::Args;

    /// Says how to get a build that has it.
    pub fn main(_args: Args) -> Result<ExitCode> {
        bail!(
            "this xtask was built without the `microbench` feature: run `cargo run --release -p xtask --features microbench -- decode-bench`"
        )
    }
}

/// `xtask microbench` in a build without the `microbench` feature.
#[cfg(not(feature = "microbench"))]
pub mod microbench {
    use std::process::ExitCode;

    use anyhow::{Result, bail};

    use crate::cli::Args;

    /// Says how to get a build that has it.
    pub fn main(_args: Args) -> Result<ExitCode> {
        bail!(
            "this xtask was built without the `microbench` feature: run `cargo run --release -p xtask --features microbench -- microbench`"
        )
    }
}
