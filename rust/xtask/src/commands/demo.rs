//! `cargo xtask demo`: build, then run the demo project `godot_project/` (in a window when a
//! display exists, else headless) for a given number of seconds.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};

use super::build::{self, Profile};
use crate::apt::{self, Requirement};
use crate::cli::Args;
use crate::env_contract as env;
use crate::paths::Project;
use crate::redis_cluster::RedisCluster;
use crate::services::Service;
use crate::{godot, http_services, media, process, python, services, testbed};

/// System packages the demo needs (probe, Debian package).
const REQUIREMENTS: &[Requirement] = &[];

/// How long a headless demo runs when `--seconds` is not given (nobody can close its window).
const HEADLESS_SECONDS: u64 = 10;

/// Grace time after which a demo that did not quit by itself is killed.
const GRACE: Duration = Duration::from_secs(30);

/// The port WsEcho's default `url` points at; the demo's echo server takes a free one when it is
/// taken.
const WS_ECHO_PORT: u16 = 8765;

/// The Dashboard demo's default port (`DEFAULT_PORT` in its script); a free one when it is taken.
const DASHBOARD_PORT: u16 = 8090;

/// `cargo xtask demo [--seconds N] [--headless] [-- DEMO ARGS]`.
pub fn main(mut args: Args) -> Result<ExitCode> {
    let seconds = args.number("--seconds")?;
    let headless = args.flag("--headless") || !has_display();
    // What follows `--` goes to the demo project, e.g. `-- --demo=radio --autoplay`.
    let user_args = args.finish()?;
    if !Project::Demo.exists() {
        bail!("{}/project.godot does not exist yet", Project::Demo.name());
    }
    apt::ensure(REQUIREMENTS)?;
    let godot = godot::find()?;
    build::build(Profile::Debug, &[Project::Demo], &godot)?;

    let seconds = seconds.or(headless.then_some(HEADLESS_SECONDS));
    let mut cmd = godot.command();
    if headless {
        cmd.arg("--headless");
    }
    cmd.arg("--path").arg(Project::Demo.dir());
    cmd.arg("--").args(seconds.map(|s| format!("--seconds={s}"))).args(user_args);
    let _services = DemoServices::start(&mut cmd);
    eprintln!("xtask: {}", process::describe(&cmd));
    let run = process::stream(cmd, seconds.map(|s| Duration::from_secs(s) + GRACE))?;
    if run.timed_out {
        bail!("the demo did not quit by itself after --seconds={}; killed it", seconds.unwrap_or_default());
    }
    Ok(super::exit_code(run.status))
}

/// The local services of the demos, stopped when this drops: a redis-server (when installed) for
/// the Redis feed, a six-node Redis Cluster for the Leaderboard, the testbed's WebSocket echo
/// server and radio station, and the aiohttp server of the tests (tests/helpers/http_server.py)
/// for the Fetch demo. Their URLs reach Godot in
/// `ASYNC_NET_DEMO_*` environment variables; a demo whose service did not start says so itself.
/// It also picks the port of the Dashboard demo's own server and prints its address.
pub struct DemoServices {
    _services: Vec<Service>,
    _cluster: Option<RedisCluster>,
}

impl DemoServices {
    /// Starts every service it can and tells `cmd` (the Godot command) where they are.
    pub fn start(cmd: &mut std::process::Command) -> Self {
        let mut services: Vec<Service> = redis_for_demo(cmd).into_iter().collect();
        match testbed::build(Profile::Debug) {
            Ok(testbed) => {
                services.extend(ws_echo_for_demo(&testbed, cmd));
                services.extend(radio_for_demo(&testbed, cmd));
            }
            Err(err) => eprintln!("xtask: no local WebSocket echo server nor radio station for the demo: {err:#}"),
        }
        services.extend(http_for_demo(cmd));
        dashboard_port(cmd);
        DemoServices { _services: services, _cluster: cluster_for_demo(cmd) }
    }
}

/// Starts a six-node Redis Cluster for the Leaderboard demo and tells it the URLs
/// (`ASYNC_NET_DEMO_REDIS_CLUSTER_URLS`); without it the demo uses the single redis-server.
fn cluster_for_demo(cmd: &mut std::process::Command) -> Option<RedisCluster> {
    match RedisCluster::start("demo-cluster") {
        Ok(cluster) => {
            cmd.env(env::DEMO_REDIS_CLUSTER_URLS, cluster.urls().join(","));
            Some(cluster)
        }
        Err(err) => {
            eprintln!(
                "xtask: no local Redis Cluster for the Leaderboard demo ({err:#}); it uses the single redis-server"
            );
            None
        }
    }
}

/// Starts a redis-server on a free port for the Redis feed demo and tells it the URL
/// (`ASYNC_NET_DEMO_REDIS_URL`); without redis-server the demo says how to get one.
fn redis_for_demo(cmd: &mut std::process::Command) -> Option<Service> {
    match services::start_redis("demo-redis", None) {
        Ok((service, port)) => {
            cmd.env(env::DEMO_REDIS_URL, format!("redis://127.0.0.1:{port}"));
            Some(service)
        }
        Err(err) => {
            eprintln!("xtask: no local redis-server for the Redis feed demo ({err:#}); `apt-get install redis-server`");
            None
        }
    }
}

/// Starts the testbed's WebSocket echo server (on [`WS_ECHO_PORT`] when it is free) for the WsEcho
/// demo and tells it the URL (`ASYNC_NET_DEMO_WS_URL`); without it the demo uses its default URL.
fn ws_echo_for_demo(testbed: &Path, cmd: &mut std::process::Command) -> Option<Service> {
    let start = |port: u16| {
        let mut server = testbed::command(testbed, "ws-echo");
        server.args(["--port", &port.to_string()]);
        testbed::start_server("demo-ws-echo", server)
    };
    match start(WS_ECHO_PORT).or_else(|_| start(0)) {
        Ok((service, port)) => {
            let url = format!("ws://127.0.0.1:{port}");
            eprintln!("xtask: WebSocket echo server for the demo at {url}");
            cmd.env(env::DEMO_WS_URL, url);
            Some(service)
        }
        Err(err) => {
            eprintln!("xtask: no local WebSocket echo server for the demo: {err:#}");
            None
        }
    }
}

/// Starts the testbed's radio station (playing the generated `target/media/station.mp3`) for the
/// RadioStream demo and tells it the URL (`ASYNC_NET_DEMO_RADIO_URL`); without ffmpeg to make
/// the music the demo uses its default URL.
fn radio_for_demo(testbed: &Path, cmd: &mut std::process::Command) -> Option<Service> {
    match media::station_mp3().and_then(|mp3| testbed::start_station(testbed, "demo-station", &mp3)) {
        Ok((service, port)) => {
            let url = format!("http://127.0.0.1:{port}/stream.mp3");
            eprintln!("xtask: radio station for the demo at {url}");
            cmd.env(env::DEMO_RADIO_URL, url);
            Some(service)
        }
        Err(err) => {
            eprintln!("xtask: no local radio station for the demo ({err:#})");
            None
        }
    }
}

/// Starts the aiohttp server of the tests (in the tests' venv, target/venv) for the Fetch demo and
/// tells it the base URL (`ASYNC_NET_DEMO_HTTP_URL`); without it the demo says how to get one.
fn http_for_demo(cmd: &mut std::process::Command) -> Option<Service> {
    let started = python::venv(services::TEST_PYTHON_PACKAGES)
        .and_then(|python| http_services::start_http_server("demo-aiohttp", &python));
    match started {
        Ok((service, port)) => {
            let url = format!("http://127.0.0.1:{port}/");
            eprintln!("xtask: HTTP server (feed and ticker) for the demo at {url}");
            cmd.env(env::DEMO_HTTP_URL, url);
            Some(service)
        }
        Err(err) => {
            eprintln!("xtask: no local HTTP server for the Fetch demo ({err:#})");
            None
        }
    }
}

/// Picks the Dashboard demo's port ([`DASHBOARD_PORT`] when it is free), tells the demo
/// (`ASYNC_NET_DEMO_DASHBOARD_PORT`) and prints the page's address.
fn dashboard_port(cmd: &mut std::process::Command) {
    let free = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, DASHBOARD_PORT)).is_ok();
    let port = if free { Ok(DASHBOARD_PORT) } else { services::free_port() };
    match port {
        Ok(port) => {
            eprintln!("xtask: the Dashboard demo serves its page at http://127.0.0.1:{port}/ (while its card is open)");
            cmd.env(env::DEMO_DASHBOARD_PORT, port.to_string());
        }
        Err(err) => eprintln!("xtask: no port for the Dashboard demo: {err:#}"),
    }
}

/// Whether a window can be opened: an X11 or Wayland display is set.
fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()))
}
