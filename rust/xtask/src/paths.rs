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

/// `cargo metadata --no-deps` of the workspace (asked once).
fn metadata() -> Result<&'static serde_json::Value> {
    static META: OnceLock<serde_json::Value> = OnceLock::new();
    if let Some(meta) = META.get() {
        return Ok(meta);
    }
    let out =
        process::output(process::cargo().args(["metadata", "--format-version", "1", "--no-deps"]).current_dir(root()))
            .context("asking cargo for the workspace metadata")?;
    let meta = serde_json::from_str(&out).context("parsing `cargo metadata` output")?;
    Ok(META.get_or_init(|| meta))
}

/// Cargo's target directory, as cargo itself reports it (honours CARGO_TARGET_DIR and config).
pub fn target_dir() -> Result<&'static Path> {
    let dir = metadata()?["target_directory"].as_str().context("`cargo metadata` reported no target_directory")?;
    Ok(Path::new(dir))
}

/// The version of the workspace package `name` (e.g. `async-net`), from its Cargo.toml.
pub fn package_version(name: &str) -> Result<String> {
    let packages = metadata()?["packages"].as_array().context("`cargo metadata` listed no packages")?;
    let package = packages
        .iter()
        .find(|p| p["name"] == name)
        .with_context(|| format!("`cargo metadata` has no package {name}"))?;
    let version = package["version"].as_str().with_context(|| format!("package {name} has no version"))?;
    Ok(version.to_string())
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
