//! What goes wrong, and what the session says about it: oversize replies, passwords (never
//! shown), refused ports, unknown hosts, servers that are not Redis, and retrying.

use super::*;

#[test]
fn a_reply_over_max_message_bytes_closes_the_connection_and_says_why() {
    let Some(server) = Server::start(None) else { return };
    let mut cfg = config(&server.url());
    cfg.address = cfg.address.clone().with_max_message_bytes(1024);
    local(async {
        let s = subscribed(cfg, "big", 100).await;
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
