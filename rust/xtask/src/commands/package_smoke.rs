//! The packaged addon in a brand-new Godot project: `cargo xtask test` unpacks
//! `dist/async_net-<version>.zip` into a fresh project made from `tests/package_smoke/`, enables
//! the plugin in a headless editor the way the Plugins tab does (so the addon's own
//! `_enable_plugin` registers the AsyncHub autoload), checks project.godot, and returns the
//! project, whose main scene then uses every node against the test services.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::build;
use super::package::{self, Options};
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

/// How long the editor run that enables the plugin may take (it takes seconds; a broken addon
/// can leave the editor running).
const EDITOR_LIMIT: Duration = Duration::from_secs(120);

/// Unpacks the addon zip `zip` (or one packaged now) into a new project under
/// `target/package-smoke/` and enables the plugin there; returns the project folder.
pub fn prepare(godot: &Godot, zip: Option<&Path>) -> Result<PathBuf> {
    let zip = match zip {
        Some(zip) => zip.to_path_buf(),
        None => package::package(&Options { build: true, ..Options::default() })?.addon_zip,
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

/// Runs the editor, whose helper plugin enables Async Net and quits; fails on its errors.
fn enable_plugin(cmd: Command) -> Result<()> {
    let what = process::describe(&cmd);
    eprintln!("xtask: {what}");
    let run = process::capture(cmd, Some(EDITOR_LIMIT))?;
    let errors: Vec<&str> = run.log.lines().filter(|l| log_check::is_error_line(l)).collect();
    if !run.success() || !errors.is_empty() || !run.log.contains("async_net plugin enabled: true") {
        bail!("`{what}` {} enabling the plugin; it printed:\n{}", run.describe(), run.log.trim_end());
    }
    Ok(())
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
