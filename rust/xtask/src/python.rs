//! A private Python virtual environment under `target/venv` for test helpers written in Python
//! (e.g. an independent WebSocket echo server using the `websockets` package).
#![allow(dead_code, reason = "the WebSocket tests use it")]

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::apt::{self, Probe, Requirement};
use crate::{paths, process};

/// Debian's python3-venv: `python3 -m venv` needs ensurepip, which Debian ships separately.
const PYTHON_VENV: Requirement =
    Requirement { probe: Probe::Command(&["python3", "-m", "ensurepip", "--version"]), package: "python3-venv" };

/// Makes sure `target/venv` exists with `packages` (pip requirement strings) installed, and
/// returns the venv's python. Reinstalls only when the package list changes.
pub fn venv(packages: &[&str]) -> Result<PathBuf> {
    let dir = paths::target_dir()?.join("venv");
    let python = dir.join("bin/python");
    let stamp = dir.join("xtask-packages.txt");
    let wanted = packages.join("\n") + "\n";
    if python.is_file() && fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(python);
    }
    if !python.is_file() {
        apt::ensure(&[PYTHON_VENV])?;
        process::run(Command::new("python3").args(["-m", "venv"]).arg(&dir))
            .with_context(|| format!("creating a Python venv in {}", dir.display()))?;
    }
    if !packages.is_empty() {
        process::run(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                .args(packages),
        )
        .with_context(|| format!("installing Python packages {}", packages.join(" ")))?;
    }
    fs::write(&stamp, wanted)?;
    Ok(python)
}
