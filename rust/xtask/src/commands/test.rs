//! `cargo xtask test`: the Rust tests (`cargo test --workspace`), then the headless Godot tests
//! of `tests/` against real services; ends with one `N passed, N failed` line.

use std::io::IsTerminal;
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::Result;

use super::build::{self, Profile};
use super::soak;
use crate::cli::Args;
use crate::log_check::{self, Counts};
use crate::paths::{self, Project};
use crate::services::{self, TestServices};
use crate::{apt, godot, process};

/// Length of the shortened soak that `cargo xtask test` runs.
const SOAK_SECONDS: Duration = Duration::from_secs(25);

/// Time limit of the whole Godot test run.
const GODOT_LIMIT: Duration = Duration::from_secs(15 * 60);

/// `cargo xtask test [--filter SUBSTR] [--no-cargo-test]`.
pub fn main(mut args: Args) -> Result<ExitCode> {
    let filter = args.value("--filter")?;
    let cargo_tests = !args.flag("--no-cargo-test");
    args.finish()?;
    apt::ensure(services::TEST_REQUIREMENTS)?;

    let mut tally = Tally::default();
    if cargo_tests {
        cargo_test(&mut tally)?;
    }
    if let Err(err) = godot_test(filter.as_deref(), &mut tally) {
        tally.step_failed(format!("the Godot tests did not run: {err:#}"));
    }

    println!();
    if !tally.failures.is_empty() {
        println!("Failed tests:");
        tally.failures.iter().for_each(|f| println!("  {f}"));
    }
    if !tally.problems.is_empty() {
        println!("Problems:");
        tally.problems.iter().for_each(|p| println!("  {p}"));
    }
    println!("{} passed, {} failed", tally.counts.passed, tally.counts.failed);
    Ok(if tally.counts.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Results of every step. A step that fails without a failed test (crash, missing summary,
/// script error) counts as one failure, so the final line never says `0 failed` for a failed run.
#[derive(Default)]
struct Tally {
    counts: Counts,
    failures: Vec<String>,
    problems: Vec<String>,
}

impl Tally {
    /// Adds a step's test counts and problems.
    fn add(&mut self, counts: Counts, failures: Vec<String>, problems: Vec<String>) {
        self.counts.passed += counts.passed;
        self.counts.failed += counts.failed;
        if counts.failed == 0 && !problems.is_empty() {
            self.counts.failed += 1;
        }
        self.failures.extend(failures);
        self.problems.extend(problems);
    }

    fn step_failed(&mut self, problem: String) {
        self.add(Counts::default(), Vec::new(), vec![problem]);
    }
}

fn cargo_test(tally: &mut Tally) -> Result<()> {
    let mut cmd = process::cargo();
    cmd.args(["test", "--workspace"]).current_dir(paths::root());
    if std::io::stdout().is_terminal() {
        cmd.env("CARGO_TERM_COLOR", "always");
    }
    eprintln!("xtask: {}", process::describe(&cmd));
    let run = process::stream(cmd, None)?;
    let counts = log_check::cargo_counts(&run.log);
    let mut problems = Vec::new();
    if !run.success() && counts.failed == 0 {
        problems.push(format!("`cargo test --workspace` {}", run.describe()));
    }
    tally.add(counts, log_check::cargo_failures(&run.log), problems);
    Ok(())
}

fn godot_test(filter: Option<&str>, tally: &mut Tally) -> Result<()> {
    let godot = godot::find()?;
    eprintln!("xtask: using Godot {} ({})", godot.version, godot.path.display());
    build::build(Profile::Debug, &[Project::Tests], &godot)?;
    let services = TestServices::start()?;

    let mut cmd: Command = godot.command();
    cmd.args(["--headless", "--path"]).arg(Project::Tests.dir()).arg("--");
    if let Some(filter) = filter {
        cmd.arg(format!("--filter={filter}"));
    }
    cmd.envs(services.env().iter().map(|(k, v)| (k, v)));
    // The lifecycle tests run this Godot as a subprocess (its launcher, not the binary Godot
    // reports as its own executable, which may be the dynamic loader of a private copy).
    cmd.env("ASYNC_NET_TEST_GODOT", std::path::absolute(&godot.path)?);
    run_godot(cmd, "the Godot tests", tally)?;
    drop(services);

    // The shortened soak (every node at once under faults, see soak.rs) counts as one test.
    if filter.is_none_or(|f| "soak".contains(f) || f.contains("soak")) {
        soak_test(&godot, tally);
    }

    // Editor mode (the spawner writing into the edited scene, with undo) needs a real
    // editor: the tests project's own editor plugin runs those tests and quits.
    if filter.is_none_or(|f| "editor".contains(f) || f.contains("editor")) {
        let mut cmd: Command = godot.command();
        cmd.args(["--headless", "--editor", "--path"]).arg(Project::Tests.dir()).args(["--", "--run-editor-tests"]);
        run_godot(cmd, "the Godot editor tests", tally)?;
    }
    Ok(())
}

/// Runs `cargo xtask soak` for [`SOAK_SECONDS`] and counts it as the test `soak`.
fn soak_test(godot: &godot::Godot, tally: &mut Tally) {
    let name = format!("xtask soak --seconds {}", SOAK_SECONDS.as_secs());
    match soak::run(godot, SOAK_SECONDS) {
        Ok(outcome) if outcome.problems.is_empty() => {
            println!("PASS {name}");
            tally.add(Counts { passed: 1, failed: 0 }, Vec::new(), Vec::new());
        }
        Ok(outcome) => {
            let failure = format!("FAIL {name}: {}", outcome.problems.join("; "));
            println!("{failure}");
            tally.add(Counts { passed: 0, failed: 1 }, vec![failure], Vec::new());
        }
        Err(err) => tally.step_failed(format!("{name} did not run: {err:#}")),
    }
}

/// Runs one Godot test session and adds what its log says to `tally`.
fn run_godot(cmd: Command, what: &str, tally: &mut Tally) -> Result<()> {
    eprintln!("xtask: {}", process::describe(&cmd));
    let run = process::stream(cmd, Some(GODOT_LIMIT))?;
    let report = log_check::godot_report(&run.log);
    let mut problems = report.problems;
    if report.summary.is_none() {
        problems.push(format!("{what} printed no `N passed, N failed` summary"));
    }
    if run.timed_out {
        let minutes = GODOT_LIMIT.as_secs() / 60;
        problems.push(format!("{what} ran longer than {minutes} min and were killed"));
    } else if !run.success() && report.summary.is_none_or(|c| c.failed == 0) {
        // Exit code 1 with failed tests is just those failures; anything else is a problem.
        problems.push(format!("{what}: Godot {}", run.describe()));
    }
    tally.add(report.summary.unwrap_or_default(), report.failures, problems);
    Ok(())
}
