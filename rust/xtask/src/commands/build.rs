//! `cargo xtask build`: build the extension, install the library where the .gdextension file
//! points, link the addon into the Godot projects and import them so Godot loads it.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cli::Args;
use crate::godot::{self, Godot};
use crate::paths::{self, Project};
use crate::{log_check, process};

/// The gdext crate, which builds the extension library (its version names the package).
pub const CRATE: &str = "async-net";

/// The package that builds the extension's sources with the `reload-probe` feature.
pub const RELOAD_PROBE_CRATE: &str = "async-net-reload-probe";

/// The extension's `res://` path, as `.godot/extension_list.cfg` lists it.
const EXTENSION_RES_PATH: &str = "res://addons/async_net/async_net.gdextension";

/// How long a project import may take.
const IMPORT_LIMIT: Duration = Duration::from_secs(600);

/// A library slot of the .gdextension file (`template_debug` / `template_release`), and the
/// cargo profile that builds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// The `*.template_debug.*` library, which the editor and debug runs load: cargo's `editor`
    /// profile (optimized, with debug assertions and gdext's strict safeguards; see Cargo.toml).
    Debug,
    /// The `*.template_release.*` library of exported games: cargo's `release` profile.
    Release,
}

impl Profile {
    /// The cargo profile, which is also its folder under `target/`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Debug => "editor",
            Profile::Release => "release",
        }
    }

    /// The slot's name in library file names (`template_debug`, `template_release`).
    fn slot(self) -> &'static str {
        match self {
            Profile::Debug => "template_debug",
            Profile::Release => "template_release",
        }
    }
}

/// `cargo xtask build [--release]`: the editor (`template_debug`) library, or with `--release`
/// the `template_release` one of exported games.
pub fn main(mut args: Args) -> Result<ExitCode> {
    let profile = if args.flag("--release") { Profile::Release } else { Profile::Debug };
    args.finish()?;
    let godot = godot::find()?;
    build(profile, &[Project::Demo, Project::Tests], &godot)?;
    Ok(ExitCode::SUCCESS)
}

/// Builds and installs the library for `profile`, then links the addon into `projects` and
/// imports those that exist.
pub fn build(profile: Profile, projects: &[Project], godot: &Godot) -> Result<()> {
    let installed = install_library(&cargo_build(profile)?, profile)?;
    eprintln!("xtask: installed {}", installed.strip_prefix(paths::root()).unwrap_or(&installed).display());
    for &project in projects {
        prepare_project(godot, project)?;
    }
    Ok(())
}

/// Links the addon into `project` and imports it, when it exists yet.
pub fn prepare_project(godot: &Godot, project: Project) -> Result<()> {
    link_addon(project)?;
    if project.exists() {
        import(godot, project)
    } else {
        eprintln!("xtask: {}/project.godot does not exist yet; not importing it", project.name());
        Ok(())
    }
}

/// Builds the extension library for `profile` with cargo; returns the file cargo wrote.
pub fn cargo_build(profile: Profile) -> Result<PathBuf> {
    let mut cargo = process::cargo();
    cargo.args(["build", "-p", CRATE, "--profile", profile.name()]).current_dir(paths::root());
    process::run(&mut cargo)?;
    built_library(profile)
}

/// Builds the reload-probe library for `profile` (rust/reload-probe: the extension's sources with
/// the `reload-probe` feature); returns the file cargo wrote.
pub fn cargo_build_reload_probe(profile: Profile) -> Result<PathBuf> {
    let mut cargo = process::cargo();
    cargo.args(["build", "-p", RELOAD_PROBE_CRATE, "--profile", profile.name()]).current_dir(paths::root());
    process::run(&mut cargo)?;
    let (built, _) = library_names(profile)?;
    let built = built.replacen("async_net", "async_net_reload_probe", 1);
    Ok(paths::target_dir()?.join(profile.name()).join(built))
}

/// The library cargo writes for `profile` (e.g. `target/editor/libasync_net.so`).
pub fn built_library(profile: Profile) -> Result<PathBuf> {
    let (built, _) = library_names(profile)?;
    Ok(paths::target_dir()?.join(profile.name()).join(built))
}

/// Where the .gdextension file expects the library of `slot` on this platform.
pub fn addon_library(slot: Profile) -> Result<PathBuf> {
    let (_, installed) = library_names(slot)?;
    Ok(paths::addon_dir().join("bin").join(installed))
}

/// (file cargo writes, file name in `addons/async_net/bin/`) for this platform, matching the
/// `[libraries]` of `async_net.gdextension`.
fn library_names(profile: Profile) -> Result<(&'static str, String)> {
    let s = profile.slot();
    Ok(match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => ("libasync_net.so", format!("libasync_net.linux.{s}.x86_64.so")),
        ("linux", "aarch64") => ("libasync_net.so", format!("libasync_net.linux.{s}.arm64.so")),
        ("windows", "x86_64") => ("async_net.dll", format!("async_net.windows.{s}.x86_64.dll")),
        ("macos", _) => ("libasync_net.dylib", format!("libasync_net.macos.{s}.universal.dylib")),
        (os, arch) => bail!("async_net.gdextension has no library entry for {os}/{arch}"),
    })
}

/// Copies `built` into the addon's `slot` through a temporary file and a rename, so a Godot
/// that has the old library loaded keeps its (unchanged) file.
pub fn install_library(built: &Path, slot: Profile) -> Result<PathBuf> {
    let dest = addon_library(slot)?;
    let tmp = dest.with_file_name(format!(".{}.tmp", dest.file_name().unwrap_or_default().to_string_lossy()));
    fs::create_dir_all(dest.parent().unwrap_or(Path::new(".")))?;
    fs::copy(built, &tmp).with_context(|| format!("copying {} to {}", built.display(), tmp.display()))?;
    fs::rename(&tmp, &dest).with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
    Ok(dest)
}

/// Makes the addon visible in `project` as `addons/async_net`, a relative symlink to the
/// repository's `addons/async_net` (gitignored).
#[cfg(unix)]
fn link_addon(project: Project) -> Result<()> {
    let addons = project.dir().join("addons");
    let link = addons.join("async_net");
    let target = Path::new("../../addons/async_net");
    match fs::symlink_metadata(&link) {
        Ok(meta) if meta.file_type().is_symlink() => {
            if fs::read_link(&link)? == target {
                return Ok(());
            }
            fs::remove_file(&link)?;
        }
        Ok(_) => bail!(
            "{} exists and is not a link to the repository's addon; remove it so xtask can link addons/async_net there",
            link.display()
        ),
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("inspecting {}", link.display())),
    }
    fs::create_dir_all(&addons).with_context(|| format!("creating {}", addons.display()))?;
    std::os::unix::fs::symlink(target, &link).with_context(|| format!("linking {}", link.display()))
}

/// Makes the addon visible in `project` as `addons/async_net`: a fresh copy, as symlinks need
/// extra privileges on Windows.
#[cfg(not(unix))]
fn link_addon(project: Project) -> Result<()> {
    fn copy_dir(from: &Path, to: &Path) -> Result<()> {
        fs::create_dir_all(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            let dest = to.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                copy_dir(&entry.path(), &dest)?;
            } else {
                fs::copy(entry.path(), dest)?;
            }
        }
        Ok(())
    }
    let copy = project.dir().join("addons/async_net");
    if copy.exists() {
        fs::remove_dir_all(&copy).with_context(|| format!("removing {}", copy.display()))?;
    }
    copy_dir(&paths::addon_dir(), &copy).with_context(|| format!("copying the addon to {}", copy.display()))
}

/// Runs `godot --headless --path <project> --import`, which creates or updates `.godot/`.
///
/// Godot only loads the extensions listed in `.godot/extension_list.cfg`. The import would
/// create that list, but then the editor discovers and loads the extension halfway through its
/// first scan, a path that has crashed at exit; listing it beforehand makes the first import
/// load it at startup like every later run.
fn import(godot: &Godot, project: Project) -> Result<()> {
    ensure_extension_listed(&project.dir())?;
    let mut cmd = godot.command();
    cmd.args(["--headless", "--path"]).arg(project.dir()).arg("--import");
    let what = process::describe(&cmd);
    eprintln!("xtask: {what}");
    let run = process::capture(cmd, Some(IMPORT_LIMIT))?;
    // Without colours and the editor's progress lines (`[ 16% ] step | ...`, `[ DONE ] step`).
    let lines: Vec<String> = run
        .log
        .lines()
        .map(log_check::strip_ansi)
        .filter(|l| !l.trim().is_empty() && !(l.starts_with('[') && (l.contains("% ]") || l.contains("[ DONE ]"))))
        .collect();
    if !run.success() {
        let tail = &lines[lines.len().saturating_sub(40)..];
        bail!("`{what}` {}; its output ends with:\n{}", run.describe(), tail.join("\n"));
    }
    for (i, line) in lines.iter().enumerate() {
        if line.contains("ERROR") {
            eprintln!("xtask: import {}: {}", project.name(), line.trim());
            if let Some(at) = lines.get(i + 1).filter(|l| l.trim().starts_with("at:")) {
                eprintln!("xtask: import {}:   {}", project.name(), at.trim());
            }
        }
    }
    ensure_extension_listed(&project.dir())
}

/// Lists the addon's extension in `project_dir/.godot/extension_list.cfg` (see [`import`]).
pub fn ensure_extension_listed(project_dir: &Path) -> Result<()> {
    let file = project_dir.join(".godot/extension_list.cfg");
    let mut text = match fs::read_to_string(&file) {
        Ok(text) => text,
        Err(err) if err.kind() == ErrorKind::NotFound => String::new(),
        Err(err) => return Err(err).with_context(|| format!("reading {}", file.display())),
    };
    if text.lines().any(|l| l.trim() == EXTENSION_RES_PATH) {
        return Ok(());
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(EXTENSION_RES_PATH);
    text.push('\n');
    fs::create_dir_all(project_dir.join(".godot"))?;
    fs::write(&file, text).with_context(|| format!("writing {}", file.display()))
}

/// Godot picks a library by feature tags. xtask always runs an editor build of Godot (it
/// needs `--import`), and an editor build has the `debug` tag, never `release`, so it only
/// loads the `linux.debug.x86_64` entry; the `template_release` file is only for exported
/// games. Running the release build (`bench`, `soak --release`) therefore means putting it
/// in the debug slot, for the run only: the editor library there is moved aside and put back
/// on drop (also after an error), so `build`, `test` and the editor keep getting the library
/// they expect. A backup left by a killed run is restored first.
pub struct ReleaseInDebugSlot {
    slot: PathBuf,
    backup: PathBuf,
    had_debug: bool,
}

impl ReleaseInDebugSlot {
    /// Installs the built release library in the debug slot; `during` names the run, for the log.
    pub fn install(during: &str) -> Result<Self> {
        let slot = addon_library(Profile::Debug)?;
        let backup =
            slot.with_file_name(format!("{}.debug-backup", slot.file_name().unwrap_or_default().to_string_lossy()));
        if backup.exists() {
            // An earlier run died before restoring: the backup is the real editor library.
            fs::rename(&backup, &slot).with_context(|| format!("restoring {}", slot.display()))?;
        }
        let had_debug = slot.exists();
        if had_debug {
            fs::rename(&slot, &backup).with_context(|| format!("moving {} aside", slot.display()))?;
        }
        install_library(&built_library(Profile::Release)?, Profile::Debug)?;
        eprintln!("xtask: the release library stands in for the editor one during {during}");
        Ok(ReleaseInDebugSlot { slot, backup, had_debug })
    }
}

impl Drop for ReleaseInDebugSlot {
    fn drop(&mut self) {
        let restored = if self.had_debug { fs::rename(&self.backup, &self.slot) } else { fs::remove_file(&self.slot) };
        if let Err(err) = restored {
            eprintln!("xtask: warning: could not put the editor library back at {}: {err}", self.slot.display());
        }
    }
}
