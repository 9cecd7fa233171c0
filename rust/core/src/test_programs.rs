//! Test-only: the external programs some tests run (redis-server). A plain `cargo test` on a
//! machine without one skips those tests with a message; `cargo xtask test`, which installs
//! them, sets [`REQUIRE_SERVICES_ENV`], and then a missing program fails the test, so a run
//! that was meant to use the real servers cannot pass without them.

use std::{io::Write, path::PathBuf};

/// Set to `1` by `cargo xtask test`: a test whose program is missing fails instead of skipping.
pub const REQUIRE_SERVICES_ENV: &str = "ASYNC_NET_REQUIRE_SERVICES";

/// The path of `program` (on `PATH`, else in the usual system folders). When it is missing:
/// `None` after printing that the calling test is skipped, or a panic when
/// [`REQUIRE_SERVICES_ENV`] is set.
pub fn require_program(program: &str) -> Option<PathBuf> {
    let found = find(program);
    if found.is_none() {
        let problem = format!("{program} is not installed (`cargo xtask test` installs it)");
        if services_required() {
            panic!("{problem}; {REQUIRE_SERVICES_ENV} is set, so a missing program fails the test");
        }
        let test = std::thread::current().name().unwrap_or("a test").to_string();
        // Straight to stderr: the test harness captures `eprintln!` of passing tests.
        let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {problem}");
    }
    found
}

/// Whether [`REQUIRE_SERVICES_ENV`] is set to anything but empty or `0`.
fn services_required() -> bool {
    std::env::var(REQUIRE_SERVICES_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
