//! Reading test logs: cargo's `test result:` lines, and the Godot runner's output with the
//! engine errors that must fail a run (script errors, extension load errors, unexpected panics,
//! and errors logged where no test runner judged them).

/// Passed and failed test counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
}

/// Sums every `test result: ok. N passed; M failed; ...` line of `cargo test` output.
pub fn cargo_counts(log: &str) -> Counts {
    let mut counts = Counts::default();
    for line in log.lines().map(strip_ansi) {
        let Some(rest) = line.trim().strip_prefix("test result:") else {
            continue;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match label {
                "passed" => counts.passed += n,
                "failed" => counts.failed += n,
                _ => {}
            }
        }
    }
    counts
}

/// The `test NAME ... FAILED` lines of `cargo test` output, as `cargo test NAME`.
pub fn cargo_failures(log: &str) -> Vec<String> {
    log.lines()
        .map(strip_ansi)
        .filter_map(|l| {
            let name = l.trim().strip_prefix("test ")?.strip_suffix(" ... FAILED")?;
            Some(format!("cargo test {name}"))
        })
        .collect()
}

/// What a Godot test run printed, judged.
#[derive(Debug, Default)]
pub struct GodotReport {
    /// The runner's final `N passed, N failed` line, if it printed one.
    pub summary: Option<Counts>,
    /// The runner's `FAIL ...` lines.
    pub failures: Vec<String>,
    /// Engine output that fails the run even when every test passed.
    pub problems: Vec<String>,
    /// `ERROR:` lines outside the test runner's span (see [`RUNNER_START`]), which no test
    /// announced: a problem in a run that should log none (tests, the packaged addon), but
    /// not in one that provokes errors on purpose (the soak).
    pub errors: Vec<String>,
}

/// Marker the runner prints when a test announces a Rust panic it provokes on purpose.
const EXPECT_PANIC: &str = "EXPECT-PANIC: ";

/// What tests/runner/runner.gd prints before its first test. From there to its summary line it
/// judges every logged error itself, against the errors each test announced (`expect_error`).
const RUNNER_START: &str = "RUNNING tests in ";

/// Text that shows the extension did not load.
const LOAD_ERRORS: [&str; 2] = ["Can't open dynamic library", "Error loading extension"];

/// Whether Godot crashed (its own `handle_crash` backtrace) before any test reported, with no
/// frame of this project's library in the backtrace: the editor's startup crash inside Godot
/// (see docs/testing.md, "Known upstream crash"), not a result of any test.
pub fn upstream_crash_before_any_test(log: &str) -> bool {
    let lines: Vec<String> = log.lines().map(|l| strip_ansi(l).trim_end().to_string()).collect();
    let Some(start) = lines.iter().position(|l| l.starts_with("handle_crash: ")) else {
        return false;
    };
    let reported = lines[..start].iter().any(|l| l.starts_with("PASS ") || l.starts_with("FAIL "));
    let ours =
        lines[start..].iter().take_while(|l| !l.contains("END OF C++ BACKTRACE")).any(|l| l.contains("async_net"));
    !reported && !ours
}

/// Reads the Godot runner's log: the summary, FAIL lines, and problems: `SCRIPT ERROR`s,
/// extension load errors, and Rust panics no test announced (a panic is expected when an
/// `EXPECT-PANIC: <text>` line of the same test precedes it and `<text>` occurs in its report);
/// and the other `ERROR:` lines logged outside the runner's tests.
pub fn godot_report(log: &str) -> GodotReport {
    let lines: Vec<String> = log.lines().map(|l| strip_ansi(l).trim_end().to_string()).collect();
    let mut report = GodotReport::default();
    let mut expected: Vec<&str> = Vec::new();
    let mut in_runner = false;
    for (i, line) in lines.iter().enumerate() {
        let context = || {
            let next = lines.get(i + 1).map(|l| l.trim()).filter(|l| l.starts_with("at:"));
            match next {
                Some(at) => format!("{} ({at})", line.trim()),
                None => line.trim().to_string(),
            }
        };
        if let Some(counts) = parse_summary(line) {
            report.summary = Some(counts);
            in_runner = false;
        } else if line.starts_with(RUNNER_START) {
            in_runner = true;
        } else if line.starts_with("PASS ") || line.starts_with("FAIL ") {
            if line.starts_with("FAIL ") {
                report.failures.push(line.clone());
            }
            expected.clear();
        } else if let Some(text) = line.strip_prefix(EXPECT_PANIC) {
            expected.push(text.trim());
        } else if line.contains("SCRIPT ERROR") {
            report.problems.push(context());
        } else if LOAD_ERRORS.iter().any(|e| line.contains(e)) {
            report.problems.push(format!("extension not loaded: {}", context()));
        } else if is_panic(line) {
            // gdext puts a multi-line message on the lines after `[panic file:line]`.
            let block = lines[i..lines.len().min(i + 4)].join("\n");
            if !expected.iter().any(|e| !e.is_empty() && block.contains(e)) {
                let mut shown = line.trim().to_string();
                let next = lines.get(i + 1).filter(|l| l.starts_with("  ") && !l.trim().starts_with("at:"));
                if let Some(next) = next {
                    shown = format!("{shown} {}", next.trim());
                }
                report.problems.push(format!("unexpected Rust panic: {shown}"));
            }
        } else if !in_runner && is_error_line(line) {
            report.errors.push(context());
        }
    }
    report
}

/// A line Godot prints for an error (`ERROR: ...`, `SCRIPT ERROR: ...`, `USER ERROR: ...`).
pub fn is_error_line(line: &str) -> bool {
    let line = strip_ansi(line);
    let line = line.trim_start();
    ["ERROR:", "SCRIPT ERROR:", "USER ERROR:"].iter().any(|e| line.starts_with(e))
}

/// gdext reports panics as `[panic file:line]`; Rust's default hook as `thread '…' panicked at`.
fn is_panic(line: &str) -> bool {
    line.contains("[panic ") || line.contains("[panic]") || line.contains("' panicked at ")
}

/// Parses a line that is exactly `N passed, M failed`.
pub fn parse_summary(line: &str) -> Option<Counts> {
    let (passed, failed) = line.trim().split_once(", ")?;
    let passed = passed.strip_suffix(" passed")?.parse().ok()?;
    let failed = failed.strip_suffix(" failed")?.parse().ok()?;
    Some(Counts { passed, failed })
}

/// Removes ANSI escape sequences (colours) from a line.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The editor's startup crash as CI logged it (two of six runs, same frames).
    const STARTUP_CRASH: &str = "\
[  16% ] loading_editor_layout | Loading docks...
[ DONE ] loading_editor_layout

================================================================
handle_crash: Program crashed with signal 11
Engine version: Godot Engine v4.6.3.stable.debian4.6.3+ds-3
[1] /x/usr/lib/x86_64-linux-gnu/libc.so.6(+0x406b0) [0x7f868464a6b0] (??:0)
[2] /x/usr/bin/godot(+0x17e82a7) [0x7f868a1e82a7] (??:0)
[3] /x/usr/lib/x86_64-linux-gnu/libc.so.6(+0x112f98) [0x7f868471cf98] (??:0)
-- END OF C++ BACKTRACE --
================================================================
";

    #[test]
    fn an_upstream_crash_before_any_test_is_told_apart() {
        assert!(upstream_crash_before_any_test(STARTUP_CRASH));
        let after_a_test = format!("PASS editor.gd::test_f1\n{STARTUP_CRASH}");
        assert!(!upstream_crash_before_any_test(&after_a_test), "a crash after a test reported is a failure");
        let ours = STARTUP_CRASH
            .replace("[2] /x/usr/bin/godot", "[2] /x/addons/async_net/bin/libasync_net.linux.template_debug.x86_64.so");
        assert!(!upstream_crash_before_any_test(&ours), "a crash with a frame of ours is a failure");
        assert!(!upstream_crash_before_any_test("PASS a\n1 passed, 0 failed\n"));
    }

    #[test]
    fn sums_cargo_results() {
        let log = "running 2 tests\ntest result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\
                   test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out\n\
                   \u{1b}[32mtest result: ok. 0 passed; 0 failed; 0 ignored\u{1b}[0m\n";
        assert_eq!(cargo_counts(log), Counts { passed: 5, failed: 2 });
        let log = "test a::b ... ok\ntest a::c ... FAILED\n";
        assert_eq!(cargo_failures(log), ["cargo test a::c"]);
    }

    #[test]
    fn reads_summary_and_failures() {
        let log = "PASS a.gd::test_x (3 ms)\nFAIL a.gd::test_y: boom\n1 passed, 1 failed\n";
        let r = godot_report(log);
        assert_eq!(r.summary, Some(Counts { passed: 1, failed: 1 }));
        assert_eq!(r.failures, ["FAIL a.gd::test_y: boom"]);
        assert!(r.problems.is_empty());
        assert_eq!(parse_summary("10 passed, 0 failed"), Some(Counts { passed: 10, failed: 0 }));
        assert_eq!(parse_summary("got 1 passed, 0 failed"), None);
    }

    #[test]
    fn flags_script_and_load_errors() {
        let log = "SCRIPT ERROR: Invalid call.\n          at: test_err (res://t.gd:11)\n\
                   ERROR: Can't open dynamic library: res://addons/x.so\n0 passed, 0 failed\n";
        let r = godot_report(log);
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert!(r.problems[0].contains("res://t.gd:11"));
    }

    #[test]
    fn errors_outside_the_runners_tests_are_reported() {
        let log = "ERROR: before the runner\n   at: f (a.cpp:1)\nRUNNING tests in res://cases\n\
                   EXPECT-ERROR: refused\nERROR: refused\nPASS a.gd::test_x (1 ms)\n\
                   ERROR: between tests, the runner's to judge\nWARNING: slow poll\n1 passed, 0 failed\n\
                   \u{1b}[1;31mERROR:\u{1b}[0m at exit\n";
        let r = godot_report(log);
        assert_eq!(r.errors, ["ERROR: before the runner (at: f (a.cpp:1))", "ERROR: at exit"]);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        // Without the runner (the editor tests, the packaged addon) every error line counts.
        let r = godot_report("PASS editor.gd::test_y\nERROR: oops\n1 passed, 0 failed\n");
        assert_eq!(r.errors, ["ERROR: oops"]);
    }

    #[test]
    fn recognizes_error_lines() {
        assert!(is_error_line("ERROR: Failed to load"));
        assert!(is_error_line("\u{1b}[1;31mERROR:\u{1b}[0m x"));
        assert!(is_error_line("  SCRIPT ERROR: Parse Error"));
        assert!(!is_error_line("PASS package::ws_echo"));
        assert!(!is_error_line("WARNING: something"));
    }

    #[test]
    fn panics_need_an_announcement_in_the_same_test() {
        let log = "EXPECT-PANIC: deliberate\nERROR: [panic src/lib.rs:3]  deliberate failure\nPASS a.gd::test_p (1 ms)\n\
                   ERROR: [panic src/lib.rs:3]  deliberate failure\n\
                   thread 'main' panicked at src/x.rs:1:1:\nother\n1 passed, 0 failed\n";
        let r = godot_report(log);
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert!(r.problems.iter().all(|p| p.starts_with("unexpected Rust panic")));
    }
}
