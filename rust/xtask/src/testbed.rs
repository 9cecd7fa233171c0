//! The testbed (rust/testbed): the project's own test peers, load generators and micro-benchmarks,
//! one binary that xtask builds and starts. xtask holds none of their code, only where they run:
//! the bench's release build (with the micro-benchmarks), the debug build for everything else,
//! each peer a [`Service`] that writes its port to a file and exits when xtask is gone.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::commands::build::Profile;
use crate::services::Service;
use crate::{paths, process};

/// How long a peer may take to write its port file.
const START_LIMIT: Duration = Duration::from_secs(30);

/// Builds the testbed and returns its binary: in release with the `microbench` feature (what
/// `cargo xtask bench` runs: peers and load must not be the bottleneck, and the micro-benchmarks
/// measure optimized code), in debug without it (the peers of the tests, the soak and the demo).
pub fn build(profile: Profile) -> Result<PathBuf> {
    let mut cargo = process::cargo();
    cargo.args(["build", "-p", "testbed"]).current_dir(paths::root());
    if profile == Profile::Release {
        cargo.args(["--release", "--features", "microbench"]);
    }
    process::run(&mut cargo)?;
    let dir = if profile == Profile::Release { "release" } else { "debug" };
    let binary = paths::target_dir()?.join(dir).join(format!("testbed{}", std::env::consts::EXE_SUFFIX));
    if !process::is_executable(&binary) {
        bail!("cargo built the testbed but {} is not there", binary.display());
    }
    Ok(binary)
}

/// A `testbed SUBCOMMAND` command that ends when this process does (`--parent`).
pub fn command(testbed: &Path, subcommand: &str) -> Command {
    let mut cmd = Command::new(testbed);
    cmd.arg(subcommand).args(["--parent", &std::process::id().to_string()]);
    cmd
}

/// Starts `cmd` (a testbed server) as the service `name` with `--port-file`, and waits until it
/// wrote the port it listens on; fails early, with its log, when it exits first.
pub fn start_server(name: &str, mut cmd: Command) -> Result<(Service, u16)> {
    let port_file = paths::target_dir()?.join("services").join(format!("{name}.port"));
    fs::create_dir_all(port_file.parent().unwrap_or(Path::new(".")))?;
    let _ = fs::remove_file(&port_file);
    cmd.arg("--port-file").arg(&port_file);
    let mut service = Service::start(name, cmd)?;
    let start = Instant::now();
    loop {
        service.check_running()?;
        if let Ok(text) = fs::read_to_string(&port_file) {
            let port = text.trim().parse().with_context(|| format!("{} holds {text:?}", port_file.display()))?;
            return Ok((service, port));
        }
        if start.elapsed() > START_LIMIT {
            bail!("service {name} wrote no {} within {START_LIMIT:?}:\n{}", port_file.display(), service.log_text());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the project's radio station playing `mp3` on a free port (see rust/testbed/src/radio_station/).
pub fn start_station(testbed: &Path, name: &str, mp3: &Path) -> Result<(Service, u16)> {
    let mut cmd = command(testbed, "radio-station");
    cmd.args(["--port", "0", "--file"]).arg(mp3);
    start_server(name, cmd)
}
