//! The answers of the game: given later, from another thread, while the
//! server runs on a worker; and a handler without room holding clients back.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::time::timeout;

use super::super::*;
use super::support::*;

/// Runs `f` on a multi-thread runtime with one worker, like the game's I/O side.
fn on_worker<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(f)
}

/// A handler that answers later and from another thread, as the glue does
/// from the main thread: "drop" is never answered (its reply is dropped),
/// any other line is answered with itself in upper case.
struct Later(std::sync::mpsc::Sender<(String, Reply)>);

impl Later {
    /// The handler, and the thread answering for it (ends when the server does).
    fn start() -> (Later, std::thread::JoinHandle<()>) {
        let (lines, answers) = std::sync::mpsc::channel::<(String, Reply)>();
        let thread = std::thread::spawn(move || {
            while let Ok((line, reply)) = answers.recv() {
                // Late enough for the replies made on the spot to be held.
                std::thread::sleep(Duration::from_millis(10));
                if line != "drop" {
                    reply.send(Ok(line.to_uppercase()));
                }
            }
        });
        (Later(lines), thread)
    }
}

impl SpawnHandler for Later {
    type Client = ();
    fn client_connected(&self, _peer: &str) {}
    fn line_received(&self, _client: &(), line: String, reply: Reply) {
        let _ = self.0.send((line, reply));
    }
    fn client_disconnected(&self, _client: ()) {}
}

#[test]
fn answers_from_another_thread_are_written_in_line_order() {
    let answering = on_worker(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (handler, answering) = Later::start();
        let config = SpawnerConfig { max_spawns_per_second: 4, ..config() };
        let server = tokio::spawn(serve(listener, config, handler, Arc::default()));

        // Replies made on the spot wait behind the answers still owed.
        let mut mixed = Client::connect(addr).await;
        mixed.send(b"a\n\xff\nb\ndrop\nc\nd\n").await;
        for reply in ["OK A", "ERR invalid utf-8", "OK B", "ERR server is gone", "OK C", "ERR rate limited"] {
            mixed.expect(reply).await;
        }
        // A fatal error comes after the answers owed, then the close.
        let mut long = Client::connect(addr).await;
        long.send(format!("d\n{}", "x".repeat(5000))).await;
        long.expect("OK D").await;
        long.expect("ERR line too long").await;
        long.expect_closed().await;
        // So does the close after a half-close.
        let mut done = Client::connect(addr).await;
        done.send("e\nf\n").await;
        done.wr.shutdown().await.unwrap();
        done.expect("OK E").await;
        done.expect("OK F").await;
        done.expect_closed().await;

        server.abort();
        let _ = server.await;
        answering
    });
    // The server (and so the handler) is gone: the answering thread ends.
    answering.join().unwrap();
}

/// A [`Recorder`] whose room the test opens and closes.
#[derive(Clone)]
struct Gated {
    recorder: Arc<Recorder>,
    gate: Arc<Mutex<(bool, Vec<std::task::Waker>)>>,
}

impl Gated {
    fn set_open(&self, open: bool) {
        let wakers = {
            let mut gate = self.gate.lock().unwrap();
            gate.0 = open;
            if open { std::mem::take(&mut gate.1) } else { Vec::new() }
        };
        wakers.into_iter().for_each(std::task::Waker::wake);
    }
}

impl SpawnHandler for Gated {
    type Client = String;
    fn poll_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let mut gate = self.gate.lock().unwrap();
        if gate.0 {
            return std::task::Poll::Ready(());
        }
        gate.1.push(cx.waker().clone());
        std::task::Poll::Pending
    }
    fn client_connected(&self, peer: &str) -> String {
        self.recorder.client_connected(peer)
    }
    fn line_received(&self, peer: &String, line: String, reply: Reply) {
        self.recorder.line_received(peer, line, reply);
    }
    fn client_disconnected(&self, peer: String) {
        self.recorder.client_disconnected(peer);
    }
}

#[test]
fn a_handler_without_room_holds_lines_and_new_clients_back() {
    local(false, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Log::default();
        let handler = Gated { recorder: Arc::new(Recorder::new(log.clone())), gate: Arc::default() };
        let _server = tokio::task::spawn_local(serve(listener, config(), handler.clone(), Arc::default()));

        // Closed from the start: the connection waits in the listen backlog.
        let mut c = Client::connect(addr).await;
        c.send("x\n").await;
        assert!(timeout(Duration::from_millis(300), c.line()).await.is_err(), "answered while full");
        assert!(log.lock().unwrap().is_empty(), "admitted while full: {:?}", log.lock().unwrap());
        handler.set_open(true);
        c.expect("OK x").await;

        // Full again: the line waits unread until there is room.
        handler.set_open(false);
        c.send("y\n").await;
        assert!(timeout(Duration::from_millis(300), c.line()).await.is_err(), "answered while full");
        handler.set_open(true);
        c.expect("OK y").await;
        let lines = log.lock().unwrap().iter().filter(|e| matches!(e, Ev::Line(..))).count();
        assert_eq!(lines, 2);
    });
}

/// A handler whose answers come in steps, all lines of a step at once, as
/// the main thread answers a frame's lines; it records rejections.
struct InSteps {
    lines: std::sync::mpsc::Sender<(String, Reply)>,
    rejected: Log,
}

impl InSteps {
    fn start() -> (InSteps, Log, std::thread::JoinHandle<()>) {
        let (lines, answers) = std::sync::mpsc::channel::<(String, Reply)>();
        let thread = std::thread::spawn(move || {
            while let Ok(first) = answers.recv() {
                // One "frame" of lines, then all their answers together.
                std::thread::sleep(Duration::from_millis(30));
                for (line, reply) in std::iter::once(first).chain(answers.try_iter()) {
                    reply.send(Ok(line));
                }
            }
        });
        let rejected = Log::default();
        (InSteps { lines, rejected: rejected.clone() }, rejected, thread)
    }
}

impl SpawnHandler for InSteps {
    type Client = ();
    fn client_connected(&self, _peer: &str) {}
    fn line_received(&self, _client: &(), line: String, reply: Reply) {
        let _ = self.lines.send((line, reply));
    }
    fn client_disconnected(&self, _client: ()) {}
    fn client_rejected(&self, peer: &str, reason: &str, _reported: Reported) {
        self.rejected.lock().unwrap().push(Ev::Rejected(peer.into(), reason.into()));
    }
}

#[test]
fn a_step_of_answers_larger_than_the_reply_backlog_reaches_a_reading_client() {
    let (rejected, answering) = on_worker(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (handler, rejected, answering) = InSteps::start();
        let config = SpawnerConfig { max_spawns_per_second: 0, ..config() };
        let server = tokio::spawn(serve(listener, config, handler, Arc::default()));

        // 20 000 names of 40 bytes: each step answers far more than the
        // 64 KiB a client that does not read may have waiting.
        let Client { mut rd, mut wr, .. } = Client::connect(addr).await;
        let n = 20_000;
        let name = |i: usize| format!("{i:0>40}");
        let writer = tokio::spawn(async move {
            let text: String = (0..n).map(|i| name(i) + "\n").collect();
            wr.write_all(text.as_bytes()).await.unwrap();
            wr
        });
        for i in 0..n {
            assert_eq!(reply(&mut rd).await, Some(format!("OK {}", name(i))));
        }
        drop(writer.await.unwrap());
        assert_eq!(reply(&mut rd).await, None);
        server.abort();
        let _ = server.await;
        (rejected, answering)
    });
    answering.join().unwrap();
    assert!(rejected.lock().unwrap().is_empty(), "{:?}", rejected.lock().unwrap());
}

#[test]
fn a_slow_reader_is_served_in_full_and_never_taken_for_one_that_does_not_read() {
    let (rejected, answering) = on_worker(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (handler, rejected, answering) = InSteps::start();
        let config = SpawnerConfig { max_spawns_per_second: 0, ..config() };
        let server = tokio::spawn(serve(listener, config, handler, Arc::default()));

        // A small receive window and a reader slower than the server: the
        // kernel buffers stay full and each step's answers (up to 4096 lines
        // of 44 bytes) are larger than the 64 KiB backlog.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let Client { mut rd, mut wr, .. } = Client::from_stream(socket.connect(addr).await.unwrap());
        let n = 20_000;
        let name = |i: usize| format!("{i:0>40}");
        let writer = tokio::spawn(async move {
            let text: String = (0..n).map(|i| name(i) + "\n").collect();
            wr.write_all(text.as_bytes()).await.unwrap();
            wr
        });
        // Behind from the start: several steps are answered before it reads.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while got.len() < n * 44 {
            let read = timeout(Duration::from_secs(20), rd.read(&mut chunk)).await.expect("no reply within 20 s");
            match read {
                Ok(0) | Err(_) => break,
                Ok(k) => got.extend_from_slice(&chunk[..k]),
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let expected: String = (0..n).map(|i| format!("OK {}\n", name(i))).collect();
        assert!(got == expected.as_bytes(), "{} of {} reply bytes, then the close", got.len(), expected.len());
        drop(writer.await.unwrap());
        assert_eq!(reply(&mut rd).await, None);
        server.abort();
        let _ = server.await;
        (rejected, answering)
    });
    answering.join().unwrap();
    assert!(rejected.lock().unwrap().is_empty(), "{:?}", rejected.lock().unwrap());
}

/// A handler that answers lines at once and holds every rejection's
/// [`Reported`] until the test lets it go.
#[derive(Clone, Default)]
struct Reporting {
    held: Arc<Mutex<Vec<(String, Reported)>>>,
}

impl Reporting {
    fn reasons(&self) -> Vec<String> {
        self.held.lock().unwrap().iter().map(|(reason, _)| reason.clone()).collect()
    }
    fn release(&self) {
        self.held.lock().unwrap().clear();
    }
}

impl SpawnHandler for Reporting {
    type Client = ();
    fn client_connected(&self, _peer: &str) {}
    fn line_received(&self, _client: &(), line: String, reply: Reply) {
        reply.send(Ok(line));
    }
    fn client_disconnected(&self, _client: ()) {}
    fn client_rejected(&self, _peer: &str, reason: &str, reported: Reported) {
        self.held.lock().unwrap().push((reason.to_owned(), reported));
    }
}

#[test]
fn a_fatal_reply_goes_out_only_once_the_rejection_is_reported() {
    local(false, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handler = Reporting::default();
        let config = SpawnerConfig { max_clients: 1, token: Some("s3cret".into()), ..config() };
        let stats = Arc::new(SpawnerStats::default());
        let _server = tokio::task::spawn_local(serve(listener, config, handler.clone(), stats.clone()));

        let mut bad = Client::connect(addr).await;
        bad.send("guess\n").await;
        until("the rejection", || handler.reasons() == ["bad token"]).await;
        assert!(timeout(Duration::from_millis(300), bad.line()).await.is_err(), "ERR before the report");
        handler.release();
        bad.expect("ERR bad token").await;
        bad.expect_closed().await;
        drop(bad);
        until("the slot to free", || stats.clients() == 0).await;

        // The same for a client refused at the door.
        let mut good = Client::connect(addr).await;
        good.send("s3cret\n").await;
        good.expect("OK authenticated").await;
        let mut refused = Client::connect(addr).await;
        until("the refusal", || handler.reasons() == ["too many clients"]).await;
        assert!(timeout(Duration::from_millis(300), refused.line()).await.is_err(), "ERR before the report");
        handler.release();
        refused.expect("ERR too many clients").await;
        refused.expect_closed().await;
        good.send("still\n").await;
        good.expect("OK still").await;
    });
}
