//! The Dashboard demo in a real browser, one test of `cargo xtask test` (`dashboard::browser`):
//! the demo project runs headless with only its Dashboard demo, and Debian's chromium, driven
//! through chromium-driver and Selenium (tests/helpers/dashboard_browser.py), loads the page the
//! game serves, sees its live numbers change and presses the spawn button; the game's own log
//! must then say that the character is in its scene. A missing chromium fails the test.

use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};

use super::build::{self, Profile};
use crate::apt::{self, Requirement};
use crate::env_contract as env;
use crate::godot::Godot;
use crate::log_check;
use crate::paths::{self, Project};
use crate::services::{self, Service};
use crate::{process, python};

/// The test's name in the tally, and the step `--filter` selects it by.
pub const NAME: &str = "dashboard::browser";

/// The browser and its WebDriver (Debian's build of chromedriver finds Debian's chromium).
const REQUIREMENTS: [Requirement; 2] =
    [Requirement::program("chromium", "chromium"), Requirement::program("chromedriver", "chromium-driver")];

/// The Selenium script that drives the browser.
const SCRIPT: &str = "tests/helpers/dashboard_browser.py";

/// The name the browser asks the game to spawn (the demo spawns sample names of its own).
const CHARACTER: &str = "BrowserAda";

/// How long the demo may run (the test ends it when the browser is done).
const DEMO_SECONDS: u64 = 180;

/// How long the demo may take to listen (it imports nothing: `build` did), and the browser run.
const START_LIMIT: Duration = Duration::from_secs(60);
const BROWSER_LIMIT: Duration = Duration::from_secs(150);

/// Runs the test; returns what failed (empty: passed). An `Err` is a setup that could not run
/// (no chromium and no way to install it, the build failed).
pub fn run(godot: &Godot) -> Result<Vec<String>> {
    apt::ensure(&REQUIREMENTS)?;
    let python = python::venv(services::TEST_PYTHON_PACKAGES)?;
    build::build(Profile::Debug, &[Project::Demo], godot)?;

    let port = services::free_port()?;
    let mut cmd: Command = godot.command();
    cmd.args(["--headless", "--path"]).arg(Project::Demo.dir());
    cmd.arg("--").args(["--demo=dashboard".to_string(), format!("--seconds={DEMO_SECONDS}")]);
    cmd.env(env::DEMO_DASHBOARD_PORT, port.to_string());
    let mut demo = Service::start("dashboard-demo", cmd)?;
    if let Err(err) = demo.wait_for_port(port, START_LIMIT) {
        bail!("the Dashboard demo did not listen on port {port}: {err:#}");
    }

    let mut browser = Command::new(&python);
    browser.arg(paths::root().join(SCRIPT)).args(["--url", &format!("http://127.0.0.1:{port}/"), "--name", CHARACTER]);
    eprintln!("xtask: {}", process::describe(&browser));
    let run = process::stream(browser, Some(BROWSER_LIMIT))?;
    demo.terminate(Duration::from_secs(10));
    let game_log = demo.log_text();

    let mut failures: Vec<String> =
        run.log.lines().filter_map(|l| l.strip_prefix("CHECK FAIL ")).map(|l| format!("the page: {l}")).collect();
    if !run.success() && failures.is_empty() {
        failures.push(format!("the browser script {}", run.describe()));
    }
    let spawned = format!("[dashboard] character '{CHARACTER}' is in the scene at ");
    if !game_log.lines().any(|l| l.contains(&spawned)) {
        failures.push(format!("the game's log never says \"{spawned}...\""));
    }
    failures.extend(
        game_log.lines().filter(|l| log_check::is_error_line(l)).map(|l| format!("the game logged: {}", l.trim())),
    );
    if !failures.is_empty() {
        eprintln!("xtask: the Dashboard demo's log:\n{}", game_log.trim_end());
    }
    Ok(failures)
}
