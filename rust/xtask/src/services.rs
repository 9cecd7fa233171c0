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
use crate::{paths, process};

/// System packages the test services need (probe, Debian package).
pub const TEST_REQUIREMENTS: &[Requirement] = &[];

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
        Ok(TestServices::default())
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
