//! Against a real `redis-server` each test starts on a free loopback port
//! (no persistence); the session runs on a current-thread runtime and
//! `LocalSet`, as in the game. Without `redis-server` a plain `cargo test`
//! skips them with a message; under `cargo xtask test` they fail (see
//! [`require_program`]).
//!
//! This file is the harness (the server, the session, the outside client);
//! the tests are in [`delivery`], [`tls`] and [`failures`].

use std::{
    cell::RefCell,
    future::Future,
    net::TcpListener,
    process::{Child, Command as Process, Stdio},
    rc::Rc,
    sync::Arc,
    time::Duration,
};

use tokio::{sync::mpsc, task::LocalSet};

use super::*;
use crate::{state::NetState, test_pki::TestPki, test_programs::require_program};

mod delivery;
mod failures;
mod tls;

/// Generous hang guard for waits; never an assertion about speed.
pub(crate) const LIMIT: Duration = Duration::from_secs(20);

/// A redis-server child process; killed on drop.
pub(crate) struct Server {
    pub(crate) port: u16,
    child: Child,
}

impl Server {
    /// Starts one on a free port, or `None` if redis-server is missing and the test is skipped.
    pub(crate) fn start(password: Option<&str>) -> Option<Server> {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Server::start_on(port, password)
    }

    fn start_on(port: u16, password: Option<&str>) -> Option<Server> {
        let mut args = vec!["--port".to_string(), port.to_string()];
        if let Some(password) = password {
            args.extend(["--requirepass".to_string(), password.to_string()]);
        }
        Server::spawn(port, &args)
    }

    /// One with a plain port and, on `tls_port`, TLS with `pki`'s server certificate
    /// (clients are not asked for certificates).
    fn start_tls(pki: &TestPki, tls_port: u16) -> Option<Server> {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let file = |name: &str| pki.dir.join(name).display().to_string();
        let args = [
            "--port".to_string(),
            port.to_string(),
            "--tls-port".to_string(),
            tls_port.to_string(),
            "--tls-cert-file".to_string(),
            file("server.pem"),
            "--tls-key-file".to_string(),
            file("server-key.pem"),
            "--tls-ca-cert-file".to_string(),
            file("ca.pem"),
            "--tls-auth-clients".to_string(),
            "no".to_string(),
        ];
        let server = Server::spawn(port, &args)?;
        wait_for_port(tls_port);
        Some(server)
    }

    fn spawn(port: u16, args: &[String]) -> Option<Server> {
        let program = require_program("redis-server")?;
        let mut cmd = Process::new(program);
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]).args(args);
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let server = Server { port, child };
        wait_for_port(port);
        Some(server)
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    State(NetState),
    Subscribed(String, Kind),
    Unsubscribed(String, Kind),
    Error(String),
}

#[derive(Clone, Default)]
struct Recorder(Rc<RefCell<Vec<Ev>>>);

impl Recorder {
    fn has(&self, ev: &Ev) -> bool {
        self.0.borrow().contains(ev)
    }
    fn count(&self, ev: &Ev) -> usize {
        self.0.borrow().iter().filter(|e| *e == ev).count()
    }
    fn errors(&self) -> Vec<String> {
        self.0.borrow().iter().filter_map(|e| if let Ev::Error(m) = e { Some(m.clone()) } else { None }).collect()
    }
}

impl SessionEvents for Recorder {
    fn state_changed(&mut self, state: NetState) {
        self.0.borrow_mut().push(Ev::State(state));
    }
    fn subscribed(&mut self, name: &str, kind: Kind) {
        self.0.borrow_mut().push(Ev::Subscribed(name.into(), kind));
    }
    fn unsubscribed(&mut self, name: &str, kind: Kind) {
        self.0.borrow_mut().push(Ev::Unsubscribed(name.into(), kind));
    }
    fn error(&mut self, message: &str) {
        self.0.borrow_mut().push(Ev::Error(message.into()));
    }
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
fn wait_for_port(port: u16) {
    let deadline = std::time::Instant::now() + LIMIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "redis-server did not start on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn local<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    LocalSet::new().block_on(&rt, f)
}

pub(crate) async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A running session and the handles a test drives it with.
struct Session {
    inbox: Arc<Inbox>,
    commands: mpsc::UnboundedSender<Command>,
    events: Recorder,
    stats: Arc<SessionStats>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

fn config(url: &str) -> SessionConfig {
    let mut config = SessionConfig::new(RedisAddress::parse(url).unwrap());
    config.reconnect_min = Duration::from_millis(50);
    config.reconnect_max = Duration::from_millis(200);
    config.connect_timeout = Duration::from_secs(5);
    config
}

fn start(config: SessionConfig, capacity: usize) -> Session {
    let inbox = Arc::new(Inbox::new(capacity, Unconverted));
    let (commands, receiver) = mpsc::unbounded_channel();
    let events = Recorder::default();
    let stats = Arc::new(SessionStats::default());
    let task = tokio::task::spawn_local(run(config, inbox.clone(), receiver, events.clone(), stats.clone()));
    Session { inbox, commands, events, stats, task }
}

/// [`start`], then waits until the session is connected.
async fn start_connected(config: SessionConfig, capacity: usize) -> Session {
    let s = start(config, capacity);
    wait_until("connected", || s.events.has(&Ev::State(NetState::Connected))).await;
    s
}

/// [`start_connected`] with `config` subscribed to `channel` alone.
async fn subscribed(mut config: SessionConfig, channel: &str, capacity: usize) -> Session {
    config.channels = vec![channel.into()];
    start_connected(config, capacity).await
}

/// An outside client, as `redis-cli` would be.
async fn outside(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

async fn publish(con: &mut redis::aio::MultiplexedConnection, channel: &str, payload: impl redis::ToRedisArgs) -> i64 {
    redis::cmd("PUBLISH").arg(channel).arg(payload).query_async(con).await.unwrap()
}

async fn numsub(con: &mut redis::aio::MultiplexedConnection, channel: &str) -> i64 {
    let reply: (String, i64) = redis::cmd("PUBSUB").arg("NUMSUB").arg(channel).query_async(con).await.unwrap();
    reply.1
}

async fn numpat(con: &mut redis::aio::MultiplexedConnection) -> i64 {
    redis::cmd("PUBSUB").arg("NUMPAT").query_async(con).await.unwrap()
}

fn drain(inbox: &Inbox) -> Vec<Message> {
    inbox.take_all()
}

/// Runs a session that should fail without retrying; returns its error.
fn fails_with(mut cfg: SessionConfig) -> (String, Vec<String>) {
    cfg.reconnect = false;
    local(async {
        let s = start(cfg, 10);
        let error = tokio::time::timeout(LIMIT, s.task).await.expect("ends").unwrap().unwrap_err();
        (error, s.events.errors())
    })
}
