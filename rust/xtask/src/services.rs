//! Real services the Godot tests talk to (redis-server, icecast2, a WebSocket echo server, ...):
//! free loopback ports, and child processes that are killed when their guard drops.
#![allow(dead_code, reason = "the first service-backed tests use these helpers")]

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::apt::Requirement;
use crate::{paths, process, python};

/// System packages the test services need (probe, Debian package).
pub const TEST_REQUIREMENTS: &[Requirement] = &[REDIS];

/// redis-server (its package brings redis-cli and redis-benchmark along).
pub const REDIS: Requirement = Requirement::program("redis-server", "redis-server");

/// The password of the test redis-server that requires one.
pub const REDIS_TEST_PASSWORD: &str = "async-net-test-pw";

/// Python packages of the WebSocket test server (installed into target/venv from PyPI).
pub const WS_PYTHON_PACKAGES: &[&str] = &["websockets>=13", "cryptography>=42"];

/// The independent WebSocket server the WsEcho tests talk to.
pub const WS_SERVER_SCRIPT: &str = "tests/helpers/ws_server.py";

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, limit: Duration) -> Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let start = Instant::now();
    while start.elapsed() < limit {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listens on {addr} after {limit:?}")
}

/// A running service process; dropping it kills the process.
pub struct Service {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Service {
    /// Starts `cmd` as the service `name`, its output going to `target/services/<name>.log`.
    pub fn start(name: &str, mut cmd: Command) -> Result<Self> {
        let dir = paths::target_dir()?.join("services");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
        let what = process::describe(&cmd);
        let child = cmd.spawn().with_context(|| format!("starting service {name}: `{what}`"))?;
        Ok(Service { name: name.to_string(), child, log })
    }

    /// Fails with the service's log when its process has already exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            bail!("service {} exited ({}):\n{}", self.name, process::exit_text(status), log.trim_end());
        }
        Ok(())
    }

    /// Waits until the service accepts connections on `port`, failing early if it exits.
    pub fn wait_for_port(&mut self, port: u16, limit: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            self.check_running()?;
            let left = limit.saturating_sub(start.elapsed());
            match wait_for_port(port, left.min(Duration::from_millis(500))) {
                Ok(()) => return Ok(()),
                Err(err) if left.is_zero() => {
                    return Err(err).with_context(|| format!("service {} did not start", self.name));
                }
                Err(_) => {}
            }
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The services of one `cargo xtask test` run and the environment that tells Godot where they are
/// (e.g. `ASYNC_NET_TEST_REDIS_PORT`). Services stop when this is dropped.
#[derive(Default)]
pub struct TestServices {
    services: Vec<Service>,
    env: Vec<(String, String)>,
}

impl TestServices {
    /// Starts every service the Godot tests use. None yet: redis-server, icecast2 (fed by
    /// ffmpeg) and a Python WebSocket echo server come with the tests that need them.
    pub fn start() -> Result<Self> {
        let mut services = TestServices::default();
        services.start_redis()?;
        services.start_ws()?;
        Ok(services)
    }

    /// Two redis-servers (one plain, one with a password) and where the tests find redis-server
    /// and redis-cli, so a test can run (and kill, and restart) its own on a free port.
    fn start_redis(&mut self) -> Result<()> {
        let (plain, port) = start_redis("redis", None)?;
        self.add(plain, "ASYNC_NET_TEST_REDIS_PORT", port);
        let (auth, port) = start_redis("redis-auth", Some(REDIS_TEST_PASSWORD))?;
        self.add(auth, "ASYNC_NET_TEST_REDIS_AUTH_PORT", port);
        self.env.push(("ASYNC_NET_TEST_REDIS_PASSWORD".into(), REDIS_TEST_PASSWORD.into()));
        for program in ["redis-server", "redis-cli"] {
            let path = find_program(program).with_context(|| format!("{program} is not installed"))?;
            let var = format!("ASYNC_NET_TEST_{}", program.to_uppercase().replace('-', "_"));
            self.env.push((var, path.display().to_string()));
        }
        Ok(())
    }

    /// The independent WebSocket server (Python `websockets`, tests/helpers/ws_server.py): ws and
    /// wss (a CA made at start), plus what a test needs to run, kill and restart its own.
    fn start_ws(&mut self) -> Result<()> {
        let python = python::venv(WS_PYTHON_PACKAGES)?;
        let script = paths::root().join(WS_SERVER_SCRIPT);
        let cert_dir = paths::target_dir()?.join("services").join("ws-certs");
        let port = free_port()?;
        let mut tls_port = free_port()?;
        while tls_port == port {
            tls_port = free_port()?;
        }
        let mut cmd = Command::new(&python);
        cmd.arg(&script).args(["--port", &port.to_string(), "--tls-port", &tls_port.to_string(), "--cert-dir"]);
        cmd.arg(&cert_dir).args(["--parent", &std::process::id().to_string()]);
        let mut service = Service::start("ws-echo", cmd)?;
        // The TLS port opens after the certificates are written.
        service.wait_for_port(tls_port, Duration::from_secs(60))?;
        self.add(service, "ASYNC_NET_TEST_WS_PORT", port);
        self.env.push(("ASYNC_NET_TEST_WSS_PORT".into(), tls_port.to_string()));
        for (var, file) in [("ASYNC_NET_TEST_WS_CA", "ca.pem"), ("ASYNC_NET_TEST_WS_WRONG_CA", "wrong-ca.pem")] {
            self.env.push((var.into(), cert_dir.join(file).display().to_string()));
        }
        self.env.push(("ASYNC_NET_TEST_PYTHON".into(), python.display().to_string()));
        Ok(())
    }

    /// Adds a running service and the environment variable (`ASYNC_NET_TEST_*`) naming its port.
    fn add(&mut self, service: Service, var: &str, port: u16) {
        self.services.push(service);
        self.env.push((var.to_string(), port.to_string()));
    }

    /// Environment variables to pass to Godot.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }
}

/// A program on PATH or in /usr/sbin, /sbin.
pub fn find_program(name: &str) -> Option<PathBuf> {
    process::which(name).or_else(|| {
        ["/usr/sbin", "/sbin"].iter().map(|d| PathBuf::from(d).join(name)).find(|p| process::is_executable(p))
    })
}

/// Starts a redis-server on a free loopback port without persistence (optionally requiring
/// `password`) and waits until it accepts connections.
pub fn start_redis(name: &str, password: Option<&str>) -> Result<(Service, u16)> {
    let program = find_program("redis-server").context("redis-server is not installed")?;
    let port = free_port()?;
    let dir = paths::target_dir()?.join("services").join(name);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = Command::new(program);
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
    cmd.arg("--dir").arg(&dir);
    if let Some(password) = password {
        cmd.args(["--requirepass", password]);
    }
    let mut service = Service::start(name, cmd)?;
    service.wait_for_port(port, Duration::from_secs(20))?;
    Ok((service, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn service_is_killed_on_drop() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let mut service = Service::start("xtask-selftest-sleep", cmd).unwrap();
        service.check_running().unwrap();
        let proc_entry = PathBuf::from(format!("/proc/{}", service.child.id()));
        assert!(proc_entry.exists());
        drop(service);
        // kill + wait reaped it, so its /proc entry is gone.
        assert!(!proc_entry.exists());
    }
}
