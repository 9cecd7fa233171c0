//! End-to-end tests: a real listener on 127.0.0.1:0, real tokio clients, the
//! server on a current-thread runtime + LocalSet; `answers` has those where
//! the answers come later from another thread, as in the game.

mod answers;
mod support;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::{Instant, sleep, timeout};

use self::support::*;
use super::*;

#[test]
fn one_client_spawns_sanitized_unique_names() {
    local(false, async {
        let server = Server::start(config()).await;
        let mut c = Client::connect(server.addr).await;
        c.send("hero\nhero\r\nhero\n a.b/c@d \n").await;
        c.expect("OK hero").await;
        c.expect("OK hero2").await;
        c.expect("OK hero3").await;
        c.expect("OK a_b_c_d").await;
        // Whitespace only: the handler refuses it, the client stays.
        c.send("   \nok\n").await;
        c.expect("ERR empty name").await;
        c.expect("OK ok").await;
        let events = server.events();
        assert_eq!(events[0], Ev::Connected(c.peer.clone()));
        assert_eq!(events[1], Ev::Line(c.peer.clone(), "hero".into()));
        assert_eq!(events[4], Ev::Line(c.peer.clone(), " a.b/c@d ".into()));
        drop(c);
        until("disconnect", || server.events().last().is_some_and(|e| matches!(e, Ev::Disconnected(_)))).await;
        let s = server.stats.snapshot();
        assert_eq!((s.lines, s.spawned, s.errors, s.clients), (6, 5, 1, 0));
    });
}

#[test]
fn empty_lines_are_silent_and_invalid_utf8_is_skipped() {
    local(false, async {
        let server = Server::start(config()).await;
        let mut c = Client::connect(server.addr).await;
        c.send(b"\n\r\n\n\xff\xfeoops\nfine\n").await;
        c.expect("ERR invalid utf-8").await;
        c.expect("OK fine").await;
        assert_eq!(server.stats.snapshot().lines, 2);
    });
}

#[test]
fn many_clients_concurrently_get_their_replies_in_order() {
    local(false, async {
        let server = Server::start(config()).await;
        let clients = 100;
        let per_client = 20;
        let mut tasks = Vec::new();
        for i in 0..clients {
            let addr = server.addr;
            tasks.push(tokio::task::spawn_local(async move {
                let mut c = Client::connect(addr).await;
                // Half in one write, half line by line.
                let first: String = (0..per_client / 2).map(|j| format!("c{i}_{j}\n")).collect();
                c.send(first).await;
                for j in per_client / 2..per_client {
                    c.send(format!("c{i}_{j}\r\n")).await;
                }
                for j in 0..per_client {
                    c.expect(&format!("OK c{i}_{j}")).await;
                }
                // And shared base names come out unique across clients.
                c.send("dup\n").await;
                c.line().await.unwrap()
            }));
        }
        let mut dups = HashSet::new();
        for t in tasks {
            let reply = t.await.unwrap();
            assert!(reply.starts_with("OK dup"), "{reply}");
            assert!(dups.insert(reply));
        }
        assert_eq!(dups.len(), clients);
        let s = server.stats.snapshot();
        assert_eq!(s.spawned, (clients * (per_client + 1)) as u64);
        assert_eq!(s.accepted, clients as u64);
    });
}

#[test]
fn client_past_max_clients_is_refused_and_slot_is_reused() {
    local(false, async {
        let server = Server::start(SpawnerConfig { max_clients: 2, ..config() }).await;
        let mut a = Client::connect(server.addr).await;
        let mut b = Client::connect(server.addr).await;
        a.send("a\n").await;
        b.send("b\n").await;
        a.expect("OK a").await;
        b.expect("OK b").await;

        let mut c = Client::connect(server.addr).await;
        c.expect("ERR too many clients").await;
        c.expect_closed().await;
        assert_eq!(server.rejections(), ["too many clients"]);
        assert!(!server.events().contains(&Ev::Connected(c.peer.clone())));

        // The refused one held nothing; when `a` leaves there is room again.
        drop(a);
        until("a's slot to free", || server.stats.clients() == 1).await;
        let mut d = Client::connect(server.addr).await;
        d.send("d\n").await;
        d.expect("OK d").await;
        b.send("b\n").await;
        b.expect("OK b2").await;
    });
}

#[test]
fn token_must_be_the_first_line() {
    local(false, async {
        let token = SpawnerConfig { token: Some("s3cret".into()), ..config() };
        let server = Server::start(token).await;

        let mut good = Client::connect(server.addr).await;
        good.send("\ns3cret\r\nbob\n").await;
        good.expect("OK authenticated").await;
        good.expect("OK bob").await;

        let mut bad = Client::connect(server.addr).await;
        bad.send("s3cre\nbob\n").await;
        bad.expect("ERR bad token").await;
        bad.expect_closed().await;

        let mut garbage = Client::connect(server.addr).await;
        garbage.send(b"\xffs3cret\n").await;
        garbage.expect("ERR bad token").await;
        garbage.expect_closed().await;

        assert_eq!(server.rejections(), ["bad token", "bad token"]);
        // Only the authenticated client's real line reached the handler.
        let lines: Vec<_> = server.events().into_iter().filter(|e| matches!(e, Ev::Line(..))).collect();
        assert_eq!(lines, [Ev::Line(good.peer.clone(), "bob".into())]);
    });
}

#[test]
fn line_too_long_closes_without_buffering_it() {
    local(false, async {
        let server = Server::start(config()).await;
        let stream = TcpStream::connect(server.addr).await.unwrap();
        let (rd, mut wr) = stream.into_split();
        let flood = tokio::task::spawn_local(async move {
            let chunk = vec![b'a'; 64 * 1024];
            let mut sent = 0usize;
            // 10 MB, no newline; stops when the server closes on us.
            while sent < 10 * 1024 * 1024 {
                if wr.write_all(&chunk).await.is_err() {
                    break;
                }
                sent += chunk.len();
            }
            sent
        });
        let mut rd = BufReader::new(rd);
        assert_eq!(reply(&mut rd).await.as_deref(), Some("ERR line too long"));
        assert_eq!(reply(&mut rd).await, None);
        let sent = flood.await.unwrap();

        let s = server.stats.snapshot();
        assert!(s.peak_line_buffer <= 4096 + 1 + READ_CHUNK, "held {} bytes", s.peak_line_buffer);
        // Reading stopped soon after the limit (plus the short drain before
        // closing), whatever the client pushed.
        assert!(s.bytes_in < 1024 * 1024, "read {} of {sent} bytes", s.bytes_in);
        assert_eq!(server.rejections(), ["line too long"]);

        // Others are still served.
        let mut other = Client::connect(server.addr).await;
        other.send("still here\n").await;
        other.expect("OK still here").await;
    });
}

#[test]
fn exact_limit_passes_and_one_more_byte_closes() {
    local(false, async {
        let server = Server::start(SpawnerConfig { max_line_bytes: 32, max_name_chars: 64, ..config() }).await;
        let mut c = Client::connect(server.addr).await;
        c.send(format!("{}\r\n", "n".repeat(32))).await;
        c.expect(&format!("OK {}", "n".repeat(32))).await;
        c.send(format!("{}\n", "m".repeat(33))).await;
        c.expect("ERR line too long").await;
        c.expect_closed().await;
    });
}

#[test]
fn excess_lines_are_rate_limited_and_the_client_kept() {
    local(false, async {
        let server = Server::start(SpawnerConfig { max_spawns_per_second: 5, ..config() }).await;
        let mut c = Client::connect(server.addr).await;
        let burst: String = (0..10).map(|i| format!("r{i}\n")).collect();
        c.send(burst).await;
        for i in 0..5 {
            c.expect(&format!("OK r{i}")).await;
        }
        for _ in 5..10 {
            c.expect("ERR rate limited").await;
        }
        // One token is back after 200 ms.
        sleep(Duration::from_millis(250)).await;
        c.send("later\n").await;
        c.expect("OK later").await;
        assert!(server.rejections().is_empty());
    });
}

#[test]
fn a_fast_flood_from_a_reading_client_is_answered_in_full() {
    local(false, async {
        let server = Server::start(SpawnerConfig { max_spawns_per_second: 0, ..config() }).await;
        let Client { mut rd, mut wr, .. } = Client::connect(server.addr).await;
        let n = 20_000;
        let writer = tokio::task::spawn_local(async move {
            let text: String = (0..n).map(|i| format!("flood{i}\n")).collect();
            // Odd-sized writes split lines across segments.
            for chunk in text.as_bytes().chunks(1777) {
                wr.write_all(chunk).await.unwrap();
            }
            wr
        });
        // Far more replies than max_reply_backlog, but read as they come:
        // batching must not mistake a busy reader for one that ignores us.
        for i in 0..n {
            assert_eq!(reply(&mut rd).await, Some(format!("OK flood{i}")));
        }
        drop(writer.await.unwrap());
        assert_eq!(reply(&mut rd).await, None);
        assert!(server.rejections().is_empty());
        assert_eq!(server.stats.snapshot().spawned, n as u64);
    });
}

#[test]
fn a_peer_that_does_not_read_is_closed_and_stalls_no_one() {
    local(false, async {
        let server = Server::start(SpawnerConfig { max_spawns_per_second: 0, ..config() }).await;

        // A small receive window so the kernel buffers fill quickly.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut slow = Client::from_stream(socket.connect(server.addr).await.unwrap());
        let slow_peer = slow.peer.clone();
        // Each "big" is answered with ~4 KB: 20000 of them would be 80 MB.
        let writer = tokio::task::spawn_local(async move {
            let lines = "big\n".repeat(1000);
            for _ in 0..20 {
                if slow.wr.write_all(lines.as_bytes()).await.is_err() {
                    break;
                }
            }
            slow
        });

        // Meanwhile another client is answered promptly, line by line.
        let mut fast = Client::connect(server.addr).await;
        for i in 0..50 {
            fast.send(format!("f{i}\n")).await;
            let reply = timeout(Duration::from_secs(2), fast.line()).await.expect("fast client stalled");
            assert_eq!(reply, Some(format!("OK f{i}")));
        }

        until("the slow reader to be closed", || {
            server.events().contains(&Ev::Rejected(slow_peer.clone(), "not reading replies".into()))
        })
        .await;
        let s = server.stats.snapshot();
        assert!(s.peak_reply_backlog <= 64 * 1024 + 4100, "backlog {}", s.peak_reply_backlog);
        let mut slow = writer.await.unwrap();
        // It gets what the kernels held, then the close (EOF or reset).
        let mut sink = Vec::new();
        let _ = timeout(Duration::from_secs(20), slow.rd.read_to_end(&mut sink)).await.expect("slow never closed");
        fast.send("after\n").await;
        fast.expect("OK after").await;
    });
}

#[test]
fn silent_clients_time_out_and_activity_keeps_them() {
    // Real time with a short timeout: tokio's paused clock auto-advances
    // whenever the runtime waits on real sockets, which fires timers early.
    local(false, async {
        let idle = Duration::from_millis(400);
        let server = Server::start(SpawnerConfig { idle_timeout: idle, ..config() }).await;
        let mut chatty = Client::connect(server.addr).await;
        let mut silent = Client::connect(server.addr).await;
        chatty.send("hi\n").await;
        chatty.expect("OK hi").await;
        silent.send("hello\n").await;
        silent.expect("OK hello").await;
        let silent_since = Instant::now();

        sleep(Duration::from_millis(200)).await;
        // An empty line is enough to show life.
        chatty.send("\n").await;

        silent.expect("ERR idle timeout").await;
        assert!(silent_since.elapsed() >= idle - Duration::from_millis(10), "closed early");
        silent.expect_closed().await;
        // Chatty's deadline is ~200 ms later.
        chatty.send("still\n").await;
        chatty.expect("OK still").await;
        assert_eq!(server.rejections(), ["idle timeout"]);

        let chatty_since = Instant::now();
        chatty.expect("ERR idle timeout").await;
        assert!(chatty_since.elapsed() >= idle - Duration::from_millis(10), "closed early");
        chatty.expect_closed().await;
        // Closing our side ends the server's short drain at once.
        drop((chatty, silent));
        until("both gone", || server.stats.clients() == 0).await;
    });
}

#[test]
fn lines_sent_before_a_half_close_are_still_answered() {
    local(false, async {
        let server = Server::start(config()).await;
        let mut c = Client::connect(server.addr).await;
        // Like `printf 'a\nb\n' | nc -q1`: send, then shut down writing.
        c.send("a\nb\npartial").await;
        c.wr.shutdown().await.unwrap();
        c.expect("OK a").await;
        c.expect("OK b").await;
        c.expect_closed().await;
        until("disconnect", || server.events().contains(&Ev::Disconnected(c.peer.clone()))).await;
        // The unterminated "partial" was dropped.
        assert_eq!(server.stats.snapshot().lines, 2);
    });
}

#[test]
fn a_client_vanishing_mid_line_is_just_disconnected() {
    local(false, async {
        let server = Server::start(config()).await;
        let mut c = Client::connect(server.addr).await;
        c.send("half a na").await;
        let peer = c.peer.clone();
        drop(c);
        until("disconnect", || server.events().contains(&Ev::Disconnected(peer.clone()))).await;
        assert_eq!(server.events(), [Ev::Connected(peer.clone()), Ev::Disconnected(peer)]);
        assert!(server.rejections().is_empty());
    });
}

#[test]
fn dropping_the_server_closes_every_client_and_frees_the_port() {
    local(false, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(SpawnerStats::default());
        let handler = Recorder::new(Log::default());
        let mut server = Box::pin(serve(listener, config(), handler, stats.clone()));

        // Drive the server and the clients in one task, so the drop below
        // happens at a known point, synchronously.
        let clients = async {
            let mut clients = Vec::new();
            for i in 0..10 {
                let mut c = Client::connect(addr).await;
                c.send(format!("n{i}\n")).await;
                c.expect(&format!("OK n{i}")).await;
                clients.push(c);
            }
            // One of them mid-line, one idle since connecting.
            clients[0].send("unfinished").await;
            clients.push(Client::connect(addr).await);
            clients
        };
        let mut clients = tokio::select! {
            r = &mut server => panic!("server ended: {r:?}"),
            c = clients => c,
        };
        until_polled(&mut server, || stats.clients() == 11).await;

        drop(server);
        assert_eq!(stats.clients(), 0);
        // The port is free at once.
        let again = TcpListener::bind(addr).await.expect("port still held");
        drop(again);
        for c in &mut clients {
            c.expect_closed().await;
        }
    });
}

/// Polls `server` alongside waiting for `cond`.
async fn until_polled<F: Future + Unpin>(server: &mut F, cond: impl Fn() -> bool) {
    tokio::select! {
        _ = server => panic!("server ended"),
        () = until("condition", cond) => {}
    }
}

/// This process's soft limit on open files (Linux), else a safe guess.
fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse().ok()
        })
        .unwrap_or(1024)
}

#[test]
fn idle_clients_are_not_polled() {
    local(false, async {
        let server = Server::start(config()).await;
        // Two descriptors per connection (both ends live in this process).
        let idle_clients = (open_file_limit().saturating_sub(200) / 2).min(1000);
        let mut idle = Vec::new();
        for _ in 0..idle_clients {
            idle.push(TcpStream::connect(server.addr).await.unwrap());
        }
        until("all admitted", || server.stats.clients() == idle_clients).await;
        let mut c = Client::connect(server.addr).await;
        c.send("warm\n").await;
        c.expect("OK warm").await;

        let before = server.stats.snapshot().client_polls;
        for i in 0..10 {
            c.send(format!("x{i}\n")).await;
            c.expect(&format!("OK x{i}")).await;
        }
        let polls = server.stats.snapshot().client_polls - before;
        eprintln!("{polls} client polls for 10 lines with {idle_clients} idle clients");
        // A handful per line for the one active client, none for the 1000.
        assert!(polls <= 10 * 6, "{polls} client polls for 10 lines");
        assert_eq!(server.stats.clients(), idle_clients + 1);
        assert!(!server.task.is_finished());
    });
}

#[test]
fn invalid_config_is_an_error() {
    local(false, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let handler = Recorder::new(Log::default());
        let bad = SpawnerConfig { max_line_bytes: 0, ..config() };
        let err = serve(listener, bad, handler, Arc::default()).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    });
}
