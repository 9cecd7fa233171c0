//! `cargo xtask demo`: build, then run the demo project `godot_project/` (in a window when a
//! display exists, else headless) for a given number of seconds.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};

use super::build::{self, Profile};
use crate::apt::{self, Requirement};
use crate::cli::Args;
use crate::paths::Project;
use crate::{godot, process};

/// System packages the demo needs (probe, Debian package).
const REQUIREMENTS: &[Requirement] = &[];

/// How long a headless demo runs when `--seconds` is not given (nobody can close its window).
const HEADLESS_SECONDS: u64 = 10;

/// Grace time after which a demo that did not quit by itself is killed.
const GRACE: Duration = Duration::from_secs(30);

/// `cargo xtask demo [--seconds N] [--headless]`.
pub fn main(mut args: Args) -> Result<ExitCode> {
    let seconds = args.number("--seconds")?;
    let headless = args.flag("--headless") || !has_display();
    args.finish()?;
    if !Project::Demo.exists() {
        bail!("{}/project.godot does not exist yet", Project::Demo.name());
    }
    apt::ensure(REQUIREMENTS)?;
    let godot = godot::find()?;
    build::build(Profile::Debug, &[Project::Demo], &godot)?;

    let seconds = seconds.or(headless.then_some(HEADLESS_SECONDS));
    let mut cmd = godot.command();
    if headless {
        cmd.arg("--headless");
    }
    cmd.arg("--path").arg(Project::Demo.dir());
    if let Some(seconds) = seconds {
        cmd.arg("--").arg(format!("--seconds={seconds}"));
    }
    eprintln!("xtask: {}", process::describe(&cmd));
    let run = process::stream(cmd, seconds.map(|s| Duration::from_secs(s) + GRACE))?;
    if run.timed_out {
        bail!("the demo did not quit by itself after --seconds={}; killed it", seconds.unwrap_or_default());
    }
    Ok(super::exit_code(run.status))
}

/// Whether a window can be opened: an X11 or Wayland display is set.
fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()))
}
