//! Against a real `redis-server` each test starts on a free loopback port
//! (no persistence); the session runs on a current-thread runtime and
//! `LocalSet`, as in the game. Without `redis-server` on PATH the tests say
//! so and pass (`cargo xtask test` installs it).

use std::{
    cell::RefCell,
    future::Future,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command as Process, Stdio},
    rc::Rc,
    sync::Arc,
    time::Duration,
};

use tokio::{sync::mpsc, task::LocalSet};

use super::*;
use crate::{state::NetState, test_pki::TestPki};

/// Generous hang guard for waits; never an assertion about speed.
const LIMIT: Duration = Duration::from_secs(20);

fn redis_server_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file())
}

/// A redis-server child process; killed on drop.
struct Server {
    port: u16,
    child: Child,
}

impl Server {
    /// Starts one on a free port, or `None` (with a message) if redis-server is missing.
    fn start(password: Option<&str>) -> Option<Server> {
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
        let Some(program) = redis_server_path() else {
            eprintln!("SKIPPED: redis-server is not installed (`cargo xtask test` installs it)");
            return None;
        };
        let mut cmd = Process::new(program);
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]).args(args);
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let server = Server { port, child };
        wait_for_port(port);
        Some(server)
    }

    fn url(&self) -> String {
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

fn local<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    LocalSet::new().block_on(&rt, f)
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
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
    stats: Rc<SessionStats>,
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
    let inbox = Arc::new(Inbox::new(capacity));
    let (commands, receiver) = mpsc::unbounded_channel();
    let events = Recorder::default();
    let stats = Rc::new(SessionStats::default());
    let task = tokio::task::spawn_local(run(config, inbox.clone(), receiver, events.clone(), stats.clone()));
    Session { inbox, commands, events, stats, task }
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
    std::iter::from_fn(|| inbox.pop()).collect()
}

#[test]
fn channels_patterns_and_runtime_changes() {
    let Some(server) = Server::start(None) else { return };
    local(async {
        let mut cfg = config(&server.url());
        cfg.channels = vec!["news".into(), "news".into()];
        cfg.patterns = vec!["game.*".into()];
        let s = start(cfg, 1000);
        wait_until("connected", || s.events.has(&Ev::State(NetState::Connected))).await;
        assert_eq!(s.events.count(&Ev::Subscribed("news".into(), Kind::Channel)), 1, "a duplicate is subscribed once");
        assert!(s.events.has(&Ev::Subscribed("game.*".into(), Kind::Pattern)));

        let mut cli = outside(&server.url()).await;
        assert_eq!(publish(&mut cli, "news", "hello").await, 1);
        assert_eq!(publish(&mut cli, "game.start", "go").await, 1);
        assert_eq!(publish(&mut cli, "other", "nobody").await, 0);
        wait_until("two messages", || s.inbox.len() == 2).await;
        let got = drain(&s.inbox);
        assert_eq!(got[0], Message { channel: "news".into(), payload: "hello".into(), pattern: None });
        assert_eq!(got[1].pattern.as_deref(), Some(&b"game.*"[..]));
        assert_eq!(got[1].channel, &b"game.start"[..]);

        s.commands.send(Command::Subscribe(Kind::Channel, "extra".into())).unwrap();
        s.commands.send(Command::Unsubscribe(Kind::Channel, "news".into())).unwrap();
        s.commands.send(Command::Unsubscribe(Kind::Pattern, "game.*".into())).unwrap();
        s.commands.send(Command::Unsubscribe(Kind::Channel, "never-subscribed".into())).unwrap();
        wait_until("unsubscribed", || s.events.has(&Ev::Unsubscribed("game.*".into(), Kind::Pattern))).await;
        assert!(s.events.has(&Ev::Subscribed("extra".into(), Kind::Channel)));
        assert!(s.events.has(&Ev::Unsubscribed("news".into(), Kind::Channel)));
        assert!(!s.events.has(&Ev::Unsubscribed("never-subscribed".into(), Kind::Channel)));
        assert_eq!(publish(&mut cli, "news", "x").await, 0);
        assert_eq!(publish(&mut cli, "game.x", "x").await, 0);
        assert_eq!(publish(&mut cli, "extra", "x").await, 1);
        assert_eq!((s.stats.channels.get(), s.stats.patterns.get()), (1, 0));
        assert!(s.events.errors().is_empty(), "{:?}", s.events.errors());
        s.task.abort();
    });
}

#[test]
fn restart_restores_every_subscription_exactly_once() {
    let Some(server) = Server::start(None) else { return };
    local(async {
        let url = server.url();
        let mut cfg = config(&url);
        cfg.channels = vec!["a".into(), "b".into()];
        cfg.patterns = vec!["p.*".into()];
        let s = start(cfg, 1000);
        wait_until("connected", || s.events.has(&Ev::State(NetState::Connected))).await;
        s.commands.send(Command::Subscribe(Kind::Channel, "runtime".into())).unwrap();
        wait_until("runtime subscribed", || s.events.has(&Ev::Subscribed("runtime".into(), Kind::Channel))).await;

        let port = server.kill();
        wait_until("reconnecting", || s.events.has(&Ev::State(NetState::Reconnecting))).await;
        // Changes made while disconnected apply to the next connection.
        s.commands.send(Command::Subscribe(Kind::Pattern, "q.*".into())).unwrap();
        s.commands.send(Command::Unsubscribe(Kind::Channel, "b".into())).unwrap();
        wait_until("offline unsubscribe", || s.events.has(&Ev::Unsubscribed("b".into(), Kind::Channel))).await;
        let errors = s.events.errors();
        assert!(errors.iter().any(|e| e.contains("reconnecting in")), "{errors:?}");

        let server = Server::start_on(port, None).unwrap();
        wait_until("reconnected", || s.events.count(&Ev::State(NetState::Connected)) == 2).await;
        let mut cli = outside(&server.url()).await;
        for channel in ["a", "runtime"] {
            assert_eq!(numsub(&mut cli, channel).await, 1, "{channel} subscribed once");
        }
        assert_eq!(numsub(&mut cli, "b").await, 0);
        assert_eq!(numpat(&mut cli).await, 2, "p.* and q.*, once each");
        assert_eq!(s.events.count(&Ev::Subscribed("a".into(), Kind::Channel)), 2, "once per connection");
        drain(&s.inbox);
        assert_eq!(publish(&mut cli, "runtime", "after restart").await, 1);
        assert_eq!(publish(&mut cli, "q.1", "pattern").await, 1);
        wait_until("messages", || s.inbox.len() == 2).await;
        let got = drain(&s.inbox);
        assert_eq!(got[0].payload, &b"after restart"[..]);
        assert_eq!(got[1].pattern.as_deref(), Some(&b"q.*"[..]));
        assert!(s.stats.reconnects.get() >= 1);
        assert_eq!(s.stats.connects.get(), 2);
        s.task.abort();
    });
}

#[test]
fn payloads_are_exact_bytes_up_to_a_megabyte() {
    let Some(server) = Server::start(None) else { return };
    local(async {
        let mut cfg = config(&server.url());
        cfg.channels = vec!["bin".into()];
        let s = start(cfg, 1000);
        wait_until("connected", || s.events.has(&Ev::State(NetState::Connected))).await;
        let mut cli = outside(&server.url()).await;
        let big: Vec<u8> = (0..1_048_576u32).map(|i| (i * 7 % 251) as u8).collect();
        let invalid = vec![0xff, 0xfe, b'a', 0x00, 0xc3];
        publish(&mut cli, "bin", &big).await;
        publish(&mut cli, "bin", &invalid).await;
        publish(&mut cli, "bin", "").await;
        wait_until("three messages", || s.inbox.len() == 3).await;
        let got = drain(&s.inbox);
        assert_eq!(got[0].payload, big);
        assert_eq!(got[1].payload, invalid);
        assert!(got[2].payload.is_empty());
        s.task.abort();
    });
}

#[test]
fn a_flood_beyond_the_backlog_drops_the_oldest_and_counts_them() {
    let Some(server) = Server::start(None) else { return };
    local(async {
        let mut cfg = config(&server.url());
        cfg.channels = vec!["flood".into()];
        let s = start(cfg, 100);
        wait_until("connected", || s.events.has(&Ev::State(NetState::Connected))).await;
        let mut cli = outside(&server.url()).await;
        let mut pipe = redis::pipe();
        for i in 0..1000 {
            pipe.cmd("PUBLISH").arg("flood").arg(i).ignore();
        }
        pipe.query_async::<()>(&mut cli).await.unwrap();
        wait_until("all received", || s.inbox.stats().received == 1000).await;
        let stats = s.inbox.stats();
        assert_eq!((stats.dropped, stats.backlog, stats.overflows), (900, 100, 1));
        let got = drain(&s.inbox);
        assert_eq!(got.first().unwrap().payload, &b"900"[..], "the oldest went first");
        assert_eq!(got.last().unwrap().payload, &b"999"[..]);
        assert_eq!(s.inbox.take_overflow_report(), Some(900));
        s.task.abort();
    });
}

#[test]
fn delivery_from_a_real_server_comes_in_ordered_batches_of_at_most_a_frames_quota() {
    let Some(server) = Server::start(None) else { return };
    local(async {
        let mut cfg = config(&server.url());
        cfg.channels = vec!["flood".into()];
        let s = start(cfg, 10_000);
        wait_until("connected", || s.events.has(&Ev::State(NetState::Connected))).await;
        let frames = Rc::new(FrameGate::default());
        // The batches so far: each is the payloads handed over before a `BatchEnd`.
        let batches = Rc::new(RefCell::new(vec![Vec::<String>::new()]));
        let (inbox, gate, sink) = (s.inbox.clone(), frames.clone(), batches.clone());
        let delivery = tokio::task::spawn_local(async move {
            deliver(
                &inbox,
                &gate,
                || 100,
                |d| match d {
                    Delivery::Message(m) => {
                        sink.borrow_mut().last_mut().unwrap().push(String::from_utf8(m.payload.to_vec()).unwrap())
                    }
                    Delivery::BatchEnd => sink.borrow_mut().push(Vec::new()),
                    Delivery::Overflow { .. } => panic!("nothing overflows here"),
                },
            )
            .await
        });
        let mut cli = outside(&server.url()).await;
        let mut pipe = redis::pipe();
        for i in 0..1000 {
            pipe.cmd("PUBLISH").arg("flood").arg(i).ignore();
        }
        pipe.query_async::<()>(&mut cli).await.unwrap();
        let delivered = || batches.borrow().iter().map(Vec::len).sum::<usize>();
        let deadline = tokio::time::Instant::now() + LIMIT;
        while delivered() < 1000 {
            assert!(tokio::time::Instant::now() < deadline, "delivered {} of 1000", delivered());
            tokio::time::sleep(Duration::from_millis(2)).await;
            frames.tick();
        }
        tokio::task::yield_now().await;
        let mut batches = batches.take();
        assert_eq!(batches.pop(), Some(Vec::new()), "the last message is followed by a BatchEnd");
        assert!(batches.iter().all(|b| (1..=100).contains(&b.len())), "no empty batch, none over the quota");
        let all: Vec<String> = batches.concat();
        assert_eq!(all, (0..1000).map(|i| i.to_string()).collect::<Vec<_>>(), "every message once, in order");
        delivery.abort();
        s.task.abort();
    });
}

#[test]
fn publish_counts_receivers_on_its_own_connection() {
    let Some(server) = Server::start(None) else { return };
    local(async {
        let mut cfg = config(&server.url());
        cfg.channels = vec!["room".into()];
        let s = start(cfg.clone(), 1000);
        wait_until("connected", || s.events.has(&Ev::State(NetState::Connected))).await;
        let (sender, receiver) = mpsc::unbounded_channel();
        let stats = Rc::new(PublishStats::default());
        let publisher =
            tokio::task::spawn_local(run_publisher(cfg.address.clone(), cfg.connect_timeout, receiver, stats.clone()));
        let mut replies = Vec::new();
        for (channel, payload) in [("room", "one"), ("nobody", "two"), ("room", "three")] {
            let (reply, answer) = tokio::sync::oneshot::channel();
            sender.send(PublishRequest { channel: channel.into(), payload: payload.into(), reply }).unwrap();
            replies.push(answer);
        }
        let mut counts = Vec::new();
        for answer in replies {
            counts.push(answer.await.unwrap().unwrap());
        }
        assert_eq!(counts, [1, 0, 1]);
        wait_until("two messages", || s.inbox.len() == 2).await;
        let payloads: Vec<_> = drain(&s.inbox).into_iter().map(|m| m.payload).collect();
        assert_eq!(payloads, [b"one".to_vec(), b"three".to_vec()], "in order");
        assert_eq!(stats.published.get(), 3);

        let port = server.kill();
        let (reply, answer) = tokio::sync::oneshot::channel();
        sender.send(PublishRequest { channel: b"room".to_vec(), payload: b"lost".to_vec(), reply }).unwrap();
        let failed = answer.await.map_err(|_| "dropped".to_string()).and_then(|r| r);
        assert!(failed.is_err(), "{failed:?}");
        // The next publish reconnects.
        let _server = Server::start_on(port, None).unwrap();
        let (reply, answer) = tokio::sync::oneshot::channel();
        sender.send(PublishRequest { channel: b"room".to_vec(), payload: b"back".to_vec(), reply }).unwrap();
        let result = answer.await.unwrap();
        assert!(result.is_ok(), "{result:?}");
        publisher.abort();
        s.task.abort();
    });
}

#[test]
fn rediss_encrypts_verifies_the_certificate_and_delivers() {
    let pki = TestPki::new("rediss");
    let tls_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let Some(server) = Server::start_tls(&pki, tls_port) else { return };

    // The server's certificate is signed by a private CA: verification (on by default) refuses it.
    let (error, _) = fails_with(config(&format!("rediss://127.0.0.1:{tls_port}")));
    assert!(error.contains("TLS handshake failed: invalid peer certificate"), "{error}");

    // `#insecure` encrypts without verifying: the session subscribes and receives over TLS.
    receives_cleanly(config(&format!("rediss://127.0.0.1:{tls_port}/#insecure")), &server);
}

/// Runs a session with `cfg` subscribed to one channel, publishes to it from `server`'s plain
/// port, and checks the message arrives without any error.
fn receives_cleanly(mut cfg: SessionConfig, server: &Server) {
    cfg.channels = vec!["secure".into()];
    local(async {
        let s = start(cfg, 100);
        wait_until("connected", || s.events.has(&Ev::State(NetState::Connected))).await;
        let mut cli = outside(&server.url()).await;
        assert_eq!(publish(&mut cli, "secure", "over tls").await, 1);
        wait_until("the message", || s.inbox.len() == 1).await;
        assert_eq!(drain(&s.inbox)[0].payload, &b"over tls"[..]);
        assert!(s.events.errors().is_empty(), "{:?}", s.events.errors());
        s.task.abort();
    });
}

#[test]
fn rediss_with_ca_file_trusts_a_private_ca_and_only_that_one() {
    let pki = TestPki::new("rediss-ca-file");
    let tls_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let Some(server) = Server::start_tls(&pki, tls_port) else { return };
    let with_ca = |file: &str| {
        let mut cfg = config(&format!("rediss://127.0.0.1:{tls_port}"));
        cfg.address = cfg.address.clone().with_ca_file(Some(pki.dir.join(file)));
        cfg
    };

    // Signed by another CA: refused, even with a ca_file.
    let (error, _) = fails_with(with_ca("wrong-ca.pem"));
    assert!(error.contains("TLS handshake failed: invalid peer certificate"), "{error}");
    // A ca_file that is not there: a clear, fatal error naming it.
    let (error, _) = fails_with(with_ca("missing.pem"));
    assert!(error.contains("ca_file") && error.contains("missing.pem"), "{error}");

    // The CA that signed it: verified, subscribes and receives, without #insecure.
    receives_cleanly(with_ca("ca.pem"), &server);
}

#[test]
fn a_reply_over_max_message_bytes_closes_the_connection_and_says_why() {
    let Some(server) = Server::start(None) else { return };
    let mut cfg = config(&server.url());
    cfg.address = cfg.address.clone().with_max_message_bytes(1024);
    cfg.channels = vec!["big".into()];
    local(async {
        let s = start(cfg, 100);
        wait_until("connected", || s.events.has(&Ev::State(NetState::Connected))).await;
        let mut cli = outside(&server.url()).await;
        assert_eq!(publish(&mut cli, "big", vec![b'x'; 4096]).await, 1);
        wait_until("the refusal", || !s.events.errors().is_empty()).await;
        let error = &s.events.errors()[0];
        assert!(error.contains("larger than max_message_bytes (1024 bytes)"), "{error}");
        assert!(error.contains("reconnecting in"), "{error}");
        assert_eq!(s.inbox.len(), 0, "the oversize message is not delivered");

        // The session reconnects and resubscribes; messages within the limit flow again.
        wait_until("resubscribed", || s.events.count(&Ev::Subscribed("big".into(), Kind::Channel)) == 2).await;
        assert_eq!(publish(&mut cli, "big", vec![b'y'; 512]).await, 1);
        wait_until("the small message", || s.inbox.len() == 1).await;
        assert_eq!(drain(&s.inbox)[0].payload.len(), 512);
        s.task.abort();
    });
}

#[test]
fn a_server_echoing_the_password_never_gets_it_shown() {
    // Answers every handshake with an error that repeats the password it was sent.
    let fake = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = fake.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in fake.incoming().flatten() {
            let mut buf = [0u8; 4096];
            // One error reply per command (each starts a line with `*`), until the client gives up.
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                let commands = buf[..n].split(|&b| b == b'\n').filter(|line| line.starts_with(b"*")).count();
                let reply = b"-ERR invalid password 'pw-echoed-42' for user default\r\n".repeat(commands);
                let _ = stream.write_all(&reply);
            }
        }
    });
    let (error, errors) = fails_with(config(&format!("redis://:pw-echoed-42@127.0.0.1:{port}")));
    assert!(error.contains("invalid password '***'"), "{error}");
    assert!(!error.contains("pw-echoed-42") && errors.iter().all(|e| !e.contains("pw-echoed-42")), "{error}");
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

#[test]
fn wrong_or_missing_password_is_fatal_and_never_shown() {
    let Some(server) = Server::start(Some("s3cret-pw")) else { return };
    let mut cfg = config(&format!("redis://:wrong-pw@127.0.0.1:{}", server.port));
    cfg.reconnect = true; // Even so: a wrong password does not get better by retrying.
    let (error, _) = local(async {
        let s = start(cfg, 10);
        let error = tokio::time::timeout(LIMIT, s.task).await.expect("ends").unwrap().unwrap_err();
        (error, s.events.errors())
    });
    assert!(error.contains("authentication failed") && error.contains("wrong"), "{error}");
    assert!(
        !error.contains("wrong-pw") && error.contains(&format!("redis://***@127.0.0.1:{}", server.port)),
        "{error}"
    );

    let (error, _) = fails_with(config(&server.url()));
    assert!(error.contains("requires a password"), "{error}");

    let mut cfg = config(&format!("redis://:s3cret-pw@127.0.0.1:{}", server.port));
    cfg.channels = vec!["ok".into()];
    local(async {
        let s = start(cfg, 10);
        wait_until("connected with the right password", || s.events.has(&Ev::State(NetState::Connected))).await;
        s.task.abort();
    });
}

#[test]
fn refused_port_unknown_host_and_non_redis_servers_are_explained() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (error, _) = fails_with(config(&format!("redis://127.0.0.1:{port}")));
    assert!(error.contains("connection refused"), "{error}");

    let (error, _) = fails_with(config("redis://no-such-host.invalid:6379"));
    assert!(error.contains("unknown host") || error.contains("lookup"), "{error}");

    // Something that answers, but not in RESP.
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_port = http.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in http.incoming().flatten() {
            let mut buf = [0u8; 256];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let (error, _) = fails_with(config(&format!("redis://127.0.0.1:{http_port}")));
    assert!(error.contains("not Redis protocol"), "{error}");

    // Something that accepts and says nothing.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = config(&format!("redis://127.0.0.1:{}", silent.local_addr().unwrap().port()));
    cfg.connect_timeout = Duration::from_millis(300);
    let (error, _) = fails_with(cfg);
    assert!(error.contains("no Redis handshake"), "{error}");
    drop(silent);

    // TLS to a server that answers in plain text fails the handshake, clearly.
    let (error, _) = fails_with(config(&format!("rediss://127.0.0.1:{http_port}/#insecure")));
    assert!(error.contains("TLS handshake failed"), "{error}");
}

#[test]
fn retrying_reports_each_failure_and_stops_when_told() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    local(async {
        let s = start(config(&format!("redis://127.0.0.1:{port}")), 10);
        wait_until("two failed attempts", || s.events.errors().len() >= 2).await;
        assert!(s.events.has(&Ev::State(NetState::Reconnecting)));
        assert!(s.events.errors()[0].contains("reconnecting in"), "{:?}", s.events.errors());
        drop(s.commands);
        let result = tokio::time::timeout(LIMIT, s.task).await.expect("ends").unwrap();
        assert_eq!(result, Ok(()), "dropping the command sender stops the session");
    });
}
