//! What the spawner's end-to-end tests share: a recording handler, the
//! server under test, a line client, and waiting helpers.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, LocalSet};
use tokio::time::{sleep, timeout};

use super::super::*;

/// What the handler saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Ev {
    Connected(String),
    Line(String, String),
    Disconnected(String),
    Rejected(String, String),
}

pub(super) type Log = Arc<Mutex<Vec<Ev>>>;

/// A handler doing what the glue does: sanitize, make unique, "spawn", and
/// answer at once.
pub(super) struct Recorder {
    pub(super) log: Log,
    names: Mutex<(HashSet<String>, UniqueNames)>,
}

impl Recorder {
    pub(super) fn new(log: Log) -> Self {
        Recorder { log, names: Mutex::default() }
    }

    fn record(&self, event: Ev) {
        self.log.lock().unwrap().push(event);
    }

    /// The answer the glue would give.
    fn spawn(&self, line: &str) -> Result<String, String> {
        if line == "big" {
            // A long refusal: lets a test pile up replies quickly.
            return Err("x".repeat(4000));
        }
        let base = sanitize_node_name(line, 64).map_err(|e| e.to_string())?;
        let mut names = self.names.lock().unwrap();
        let (taken, unique) = &mut *names;
        let name = unique.name(&base, |n| taken.contains(n));
        taken.insert(name.clone());
        Ok(name)
    }
}

impl SpawnHandler for Recorder {
    type Client = String;

    fn client_connected(&self, peer: &str) -> String {
        self.record(Ev::Connected(peer.into()));
        peer.into()
    }
    fn line_received(&self, peer: &String, line: String, reply: Reply) {
        let answer = self.spawn(&line);
        self.record(Ev::Line(peer.clone(), line));
        reply.send(answer);
    }
    fn client_disconnected(&self, peer: String) {
        self.record(Ev::Disconnected(peer));
    }
    fn client_rejected(&self, peer: &str, reason: &str, _reported: Reported) {
        self.record(Ev::Rejected(peer.into(), reason.into()));
    }
}

/// Runs `f` on a current-thread runtime inside a LocalSet, like AsyncHub.
pub(super) fn local<F: Future>(paused: bool, f: F) -> F::Output {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if paused {
        builder.start_paused(true);
    }
    let rt = builder.build().unwrap();
    LocalSet::new().block_on(&rt, f)
}

pub(super) struct Server {
    pub(super) addr: SocketAddr,
    pub(super) stats: Arc<SpawnerStats>,
    pub(super) log: Log,
    pub(super) task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub(super) async fn start(config: SpawnerConfig) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(SpawnerStats::default());
        let log = Log::default();
        let handler = Recorder::new(log.clone());
        let task = tokio::task::spawn_local(serve(listener, config, handler, stats.clone()));
        Server { addr, stats, log, task }
    }

    pub(super) fn events(&self) -> Vec<Ev> {
        self.log.lock().unwrap().clone()
    }

    pub(super) fn rejections(&self) -> Vec<String> {
        self.events().into_iter().filter_map(|e| if let Ev::Rejected(_, r) = e { Some(r) } else { None }).collect()
    }
}

/// A test client: a line reader and a writer.
pub(super) struct Client {
    pub(super) rd: BufReader<OwnedReadHalf>,
    pub(super) wr: OwnedWriteHalf,
    pub(super) peer: String,
}

impl Client {
    pub(super) async fn connect(addr: SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(addr).await.unwrap())
    }

    pub(super) fn from_stream(stream: TcpStream) -> Client {
        let peer = stream.local_addr().unwrap().to_string();
        let (rd, wr) = stream.into_split();
        Client { rd: BufReader::new(rd), wr, peer }
    }

    pub(super) async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.wr.write_all(bytes.as_ref()).await.unwrap();
    }

    /// The next reply without its `\n`; None at EOF or reset.
    pub(super) async fn line(&mut self) -> Option<String> {
        reply(&mut self.rd).await
    }

    pub(super) async fn expect(&mut self, reply: &str) {
        assert_eq!(self.line().await.as_deref(), Some(reply));
    }

    pub(super) async fn expect_closed(&mut self) {
        assert_eq!(self.line().await, None);
    }
}

/// The next reply on `rd` without its `\n`; None at EOF or reset.
pub(super) async fn reply(rd: &mut BufReader<OwnedReadHalf>) -> Option<String> {
    let mut buf = Vec::new();
    let read = timeout(Duration::from_secs(20), rd.read_until(b'\n', &mut buf)).await.expect("no reply within 20 s");
    match read {
        Ok(0) | Err(_) => None,
        Ok(_) => {
            assert_eq!(buf.pop(), Some(b'\n'), "reply without newline: {buf:?}");
            Some(String::from_utf8(buf).unwrap())
        }
    }
}

/// Waits (up to 20 s) until `cond` holds.
pub(super) async fn until(what: &str, cond: impl Fn() -> bool) {
    let wait = async {
        while !cond() {
            sleep(Duration::from_millis(2)).await;
        }
    };
    timeout(Duration::from_secs(20), wait).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

pub(super) fn config() -> SpawnerConfig {
    SpawnerConfig { max_clients: 2000, ..SpawnerConfig::default() }
}
