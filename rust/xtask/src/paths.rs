//! Where things are: the repository root, cargo's target directory and the Godot projects.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};

use crate::process;

/// The repository (workspace) root.
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        // rust/xtask -> repository root
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        dir.canonicalize().unwrap_or(dir)
    })
}

/// Cargo's target directory, as cargo itself reports it (honours CARGO_TARGET_DIR and config).
pub fn target_dir() -> Result<&'static Path> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    if let Some(dir) = DIR.get() {
        return Ok(dir);
    }
    let out =
        process::output(process::cargo().args(["metadata", "--format-version", "1", "--no-deps"]).current_dir(root()))
            .context("asking cargo for the target directory")?;
    let meta: serde_json::Value = serde_json::from_str(&out).context("parsing `cargo metadata` output")?;
    let dir = meta["target_directory"].as_str().context("`cargo metadata` reported no target_directory")?;
    Ok(DIR.get_or_init(|| PathBuf::from(dir)))
}

/// The distributable addon, `addons/async_net`.
pub fn addon_dir() -> PathBuf {
    root().join("addons/async_net")
}

/// A Godot project of this repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Project {
    /// `godot_project/`, the demo.
    Demo,
    /// `tests/`, the headless test runner and benchmarks.
    Tests,
}

impl Project {
    /// The project directory.
    pub fn dir(self) -> PathBuf {
        root().join(match self {
            Project::Demo => "godot_project",
            Project::Tests => "tests",
        })
    }

    /// The directory relative to the repository root, for messages and `--path`.
    pub fn name(self) -> &'static str {
        match self {
            Project::Demo => "godot_project",
            Project::Tests => "tests",
        }
    }

    /// Whether the project exists yet (has a `project.godot`).
    pub fn exists(self) -> bool {
        self.dir().join("project.godot").is_file()
    }
}
