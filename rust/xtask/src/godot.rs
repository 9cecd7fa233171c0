//! Finding a Godot 4.5+ binary: $GODOT, a `godot`/`godot4` on PATH, or a private copy of
//! Debian's `godot` package fetched with apt into `target/godot/` without touching the system.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::{apt, paths, process};

/// The oldest Godot the extension supports (`compatibility_minimum` in the .gdextension file).
const MIN_VERSION: (u32, u32) = (4, 5);

/// A Godot binary that xtask runs.
#[derive(Clone, Debug)]
pub struct Godot {
    /// The program to run.
    pub path: PathBuf,
    /// What `godot --version` printed, e.g. `4.6.3.stable.debian4.6.3+ds-3`.
    pub version: String,
}

impl Godot {
    /// A command running this Godot.
    pub fn command(&self) -> Command {
        Command::new(&self.path)
    }
}

/// Finds Godot: $GODOT, else `godot`/`godot4` 4.5+ on PATH, else (where apt-get exists) a
/// private copy of Debian's package under `target/godot/`, else an error saying what to install.
pub fn find() -> Result<Godot> {
    if let Some(value) = std::env::var_os("GODOT").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(&value);
        let path =
            if path.components().count() == 1 { process::which(&path.to_string_lossy()).unwrap_or(path) } else { path };
        let version = version_of(&path).with_context(|| format!("GODOT={} does not run", path.display()))?;
        if !is_supported(&version) {
            bail!(
                "GODOT={} is Godot {version}; this project needs {}.{} or newer",
                path.display(),
                MIN_VERSION.0,
                MIN_VERSION.1
            );
        }
        return Ok(Godot { path, version });
    }
    for name in ["godot", "godot4"] {
        let Some(path) = process::which(name) else {
            continue;
        };
        match version_of(&path) {
            Ok(version) if is_supported(&version) => return Ok(Godot { path, version }),
            Ok(version) => eprintln!("xtask: skipping {} (Godot {version} is older than 4.5)", path.display()),
            Err(err) => eprintln!("xtask: skipping {}: {err:#}", path.display()),
        }
    }
    if process::which("apt-get").is_some() && cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        let dir = paths::target_dir()?.join("godot");
        let path =
            private_copy(&dir).with_context(|| format!("fetching Debian's godot package into {}", dir.display()))?;
        let version = version_of(&path)?;
        return Ok(Godot { path, version });
    }
    bail!("no Godot found: install Godot 4.5 or newer and set GODOT=/path/to/godot (or put `godot` on PATH)")
}

/// Runs `godot --headless --version` and returns the version line.
fn version_of(path: &Path) -> Result<String> {
    let mut cmd = Command::new(path);
    cmd.args(["--headless", "--version"]);
    let run = process::capture(cmd, Some(Duration::from_secs(60)))?;
    if !run.success() {
        bail!("`{} --headless --version` {}:\n{}", path.display(), run.describe(), run.log.trim_end());
    }
    run.log
        .lines()
        .map(str::trim)
        .find(|l| parse_version(l).is_some())
        .map(String::from)
        .with_context(|| format!("`{} --version` printed no version:\n{}", path.display(), run.log.trim_end()))
}

/// Major and minor of a Godot version string like `4.6.3.stable.debian4.6.3+ds-3`.
fn parse_version(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn is_supported(version: &str) -> bool {
    parse_version(version).is_some_and(|v| v >= MIN_VERSION)
}

/// Makes (once) `dir/godot`, a launcher for Debian's `godot` package unpacked in `dir/root` with
/// its own dynamic loader and libraries. apt-get runs on private state only: its own sources
/// list, status, lists and cache under `dir`, so the system's apt state is never touched.
fn private_copy(dir: &Path) -> Result<PathBuf> {
    let launcher = dir.join("godot");
    let stamp = dir.join("complete.stamp");
    if stamp.is_file() && launcher.is_file() {
        return Ok(launcher);
    }
    eprintln!(
        "xtask: no Godot 4.5+ found (set GODOT to use your own); fetching Debian's godot package into {} (one time, ~150 MB)",
        dir.display()
    );
    let _ = fs::remove_file(&stamp);
    for sub in ["etc", "lists/partial", "cache/archives/partial"] {
        fs::create_dir_all(dir.join(sub)).with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    let uri = apt::debian_mirror_uri()?;
    fs::write(dir.join("etc/sources.list"), format!("deb {uri} sid main\n"))?;
    fs::write(dir.join("status"), "")?;

    let apt = |args: &[&str]| {
        let d = dir.display();
        let mut cmd = Command::new("apt-get");
        for opt in [
            format!("Dir::Etc::SourceList={d}/etc/sources.list"),
            "Dir::Etc::SourceParts=/dev/null".into(),
            format!("Dir::State::status={d}/status"),
            format!("Dir::State::Lists={d}/lists"),
            format!("Dir::Cache={d}/cache"),
            format!("Dir::Cache::archives={d}/cache/archives"),
            "APT::Install-Recommends=false".into(),
            "Debug::NoLocking=1".into(),
        ] {
            cmd.arg("-o").arg(opt);
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    process::run(&mut apt(&["update", "-q"]))?;
    process::run(&mut apt(&["install", "-y", "-q", "--download-only", "godot"]))?;
    // Drop .debs a previous, interrupted run left behind that the archive no longer has.
    process::run(&mut apt(&["autoclean", "-q"]))?;

    let root = dir.join("root");
    if root.exists() {
        fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    fs::create_dir_all(&root)?;
    let archives = dir.join("cache/archives");
    let mut debs: Vec<PathBuf> = fs::read_dir(&archives)
        .with_context(|| format!("reading {}", archives.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    debs.retain(|p| p.extension().is_some_and(|e| e == "deb"));
    debs.sort();
    if !debs.iter().any(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("godot_"))) {
        bail!("apt-get downloaded no godot package into {}", archives.display());
    }
    eprintln!("xtask: unpacking {} packages into {}", debs.len(), root.display());
    for deb in &debs {
        process::run(Command::new("dpkg").arg("-x").arg(deb).arg(&root))?;
    }

    write_launcher(&launcher)?;
    let version = version_of(&launcher).context("the unpacked Godot does not run")?;
    if !is_supported(&version) {
        bail!("Debian's godot package is version {version}, older than 4.5; install Godot 4.5+ and set GODOT");
    }
    fs::write(&stamp, format!("{version}\n"))?;
    eprintln!("xtask: Godot {version} ready at {}", launcher.display());
    Ok(launcher)
}

/// Writes the launcher script: Godot runs with the unpacked loader and libraries, so nothing
/// of the system's (possibly older) libc or libraries is needed.
fn write_launcher(path: &Path) -> Result<()> {
    const SCRIPT: &str = r#"#!/bin/bash
# Runs the private copy of Debian's godot package unpacked next to this script (made by cargo xtask).
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)/root"
exec "$ROOT/usr/lib64/ld-linux-x86-64.so.2" --library-path "$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/usr/lib/x86_64-linux-gnu/pulseaudio" "$ROOT/usr/bin/godot" "$@"
"#;
    fs::write(path, SCRIPT).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(parse_version("4.6.3.stable.debian4.6.3+ds-3"), Some((4, 6)));
        assert_eq!(parse_version("4.5.stable.official.876b29033"), Some((4, 5)));
        assert_eq!(parse_version("Godot Engine v4.5"), None);
        assert!(is_supported("4.5.1.stable"));
        assert!(is_supported("5.0.dev"));
        assert!(!is_supported("4.4.1.stable"));
        assert!(!is_supported("3.6.stable"));
    }
}
