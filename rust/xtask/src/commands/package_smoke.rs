//! The packaged addon in a brand-new Godot project: `cargo xtask test` unpacks
//! `dist/async_net-<version>.zip` into a fresh project made from `tests/package_smoke/`, checks
//! that it carries the licence, enables the plugin in a headless editor the way the Plugins tab
//! does (so the addon's own `_enable_plugin` registers the AsyncHub autoload; it is disabled once
//! in between, and `_disable_plugin` must remove the autoload again), checks that the
//! editor loaded a library with gdext's strict safeguards and that project.godot lists the
//! autoload, and returns the project, whose main scene then uses every node against the test
//! services.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::build::{self, Profile};
use super::package::{self, LICENSE, Options};
use crate::godot::Godot;
use crate::paths::{self, Project};
use crate::{log_check, process};

/// The template of the new project (with a `.gdignore`, so the tests project skips it).
const TEMPLATE: &str = "tests/package_smoke";

/// The tests project's environment constants, which smoke.gd reads the services' ports through;
/// copied to the same `res://` path in the new project.
const ENV_SCRIPT: &str = "runner/env.gd";

/// What the plugin writes under `[autoload]` of project.godot.
const AUTOLOAD_LINE: &str = "AsyncHub=\"*res://addons/async_net/async_hub.tscn\"";

/// gdext's safeguard level that the editor library must have (`strict`: every check of a debug
/// build; `balanced` is release's).
const SAFEGUARDS: &str = "strict";

/// How long the editor run that enables the plugin may take (it takes seconds; a broken addon
/// can leave the editor running).
const EDITOR_LIMIT: Duration = Duration::from_secs(120);

/// Unpacks the addon zip `zip` (or one packaged now) into a new project under
/// `target/package-smoke/` and enables the plugin there; returns the project folder.
pub fn prepare(godot: &Godot, zip: Option<&Path>) -> Result<PathBuf> {
    let zip = match zip {
        Some(zip) => zip.to_path_buf(),
        // Only the library the editor loads: the release one would cost a build of its own
        // that nothing here runs (`cargo xtask package` makes both).
        None => package::package(&Options { build: vec![Profile::Debug], ..Options::default() })?.addon_zip,
    };
    let project = paths::target_dir()?.join("package-smoke");
    if project.exists() {
        fs::remove_dir_all(&project).with_context(|| format!("removing {}", project.display()))?;
    }
    copy_template(&paths::root().join(TEMPLATE), &project)?;
    let env_script = project.join(ENV_SCRIPT);
    fs::create_dir_all(env_script.parent().unwrap_or(&project))?;
    fs::copy(Project::Tests.dir().join(ENV_SCRIPT), &env_script)
        .with_context(|| format!("copying {ENV_SCRIPT} into {}", project.display()))?;
    package::unzip(&zip, &project)?;
    let bin = project.join("addons/async_net/bin");
    let libraries = fs::read_dir(&bin).with_context(|| format!("{} is not in the zip", bin.display()))?.count();
    eprintln!("xtask: unpacked {} ({libraries} libraries) into {}", zip.display(), project.display());
    let license = fs::read(project.join("addons/async_net").join(LICENSE))
        .with_context(|| format!("{} has no addons/async_net/{LICENSE}", zip.display()))?;
    if license != fs::read(paths::root().join(LICENSE))? {
        bail!("addons/async_net/{LICENSE} in {} differs from the repository's {LICENSE}", zip.display());
    }

    // As with every project xtask imports: a headless editor that discovers an extension during
    // its first scan crashes at exit (see the README's known issues), so list it beforehand.
    build::ensure_extension_listed(&project)?;
    let mut cmd = godot.command();
    cmd.args(["--headless", "--editor", "--path"]).arg(&project);
    enable_plugin(cmd)?;
    let settings = fs::read_to_string(project.join("project.godot"))?;
    if !settings.lines().any(|l| l.trim() == AUTOLOAD_LINE) {
        bail!("enabling the plugin did not register the autoload: project.godot reads\n{settings}");
    }
    Ok(project)
}

/// The run of the smoke project's main scene (`smoke.gd`), as a user runs a project from the
/// editor: without `RUST_BACKTRACE` / `RUST_LIB_BACKTRACE`, a debugging aid with which gdext's
/// strict safeguards capture a backtrace at every `bind()` (about 5 µs per idle step, which
/// the scene's `idle_step` check bounds).
pub fn run_command(godot: &Godot, project: &Path) -> Command {
    let mut cmd = godot.command();
    cmd.args(["--headless", "--path"]).arg(project);
    cmd.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
    cmd
}

/// Runs the editor, whose helper plugin enables Async Net, disables it (the autoload must go) and
/// enables it again, and quits; fails on its errors, and
/// unless the library it loaded has gdext's [`SAFEGUARDS`].
fn enable_plugin(cmd: Command) -> Result<()> {
    let what = process::describe(&cmd);
    eprintln!("xtask: {what}");
    let run = process::capture(cmd, Some(EDITOR_LIMIT))?;
    let errors: Vec<&str> = run.log.lines().filter(|l| log_check::is_error_line(l)).collect();
    if !run.success()
        || !errors.is_empty()
        || !run.log.contains("async_net plugin disabled: autoload removed: true")
        || !run.log.contains("async_net plugin enabled: true")
    {
        bail!("`{what}` {} enabling the plugin; it printed:\n{}", run.describe(), run.log.trim_end());
    }
    match safeguards_level(&run.log) {
        Some(SAFEGUARDS) => Ok(()),
        Some(level) => bail!("the packaged editor library has gdext's {level} safeguards, not {SAFEGUARDS}"),
        None => bail!("`{what}` did not print gdext's `Initialize godot-rust (...)` line:\n{}", run.log.trim_end()),
    }
}

/// The safeguard level that gdext's start-up line (`Initialize godot-rust (API 4.5, runtime
/// 4.6.3.stable, safeguards strict)`) reports: what its build scripts compiled in.
fn safeguards_level(log: &str) -> Option<&str> {
    let line = log.lines().find(|l| l.contains("Initialize godot-rust ("))?;
    let level = line.split("safeguards ").nth(1)?;
    Some(level.trim_end().trim_end_matches(')'))
}

/// Copies the template project (without its `.gdignore` and README) to `to`.
fn copy_template(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".gdignore" || name == "README.md" {
            continue;
        }
        let dest = to.join(&name);
        if entry.file_type()?.is_dir() {
            copy_template(&entry.path(), &dest)?;
        } else {
            fs::create_dir_all(to)?;
            fs::copy(entry.path(), &dest).with_context(|| format!("copying to {}", dest.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_safeguards_level() {
        let log =
            "Godot Engine v4.6.3.stable\nInitialize godot-rust (API 4.5, runtime 4.6.3.stable, safeguards strict)\n";
        assert_eq!(safeguards_level(log), Some("strict"));
        assert_eq!(
            safeguards_level("Initialize godot-rust (API 4.5, runtime 4.5.1, safeguards balanced)\r\n"),
            Some("balanced")
        );
        assert_eq!(safeguards_level("Godot Engine v4.6.3.stable\n"), None);
    }
}
