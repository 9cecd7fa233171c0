//! Subscriptions, their restoration after a restart, payloads, backlog overflow, per-frame
//! delivery and publish.

use super::*;

#[test]
fn channels_patterns_and_runtime_changes() {
    let Some(server) = Server::start(None) else { return };
    local(async {
        let mut cfg = config(&server.url());
        cfg.channels = vec!["news".into(), "news".into()];
        cfg.patterns = vec!["game.*".into()];
        let s = start_connected(cfg, 1000).await;
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
        assert_eq!(
            (
                s.stats.channels.load(std::sync::atomic::Ordering::Relaxed),
                s.stats.patterns.load(std::sync::atomic::Ordering::Relaxed)
            ),
            (1, 0)
        );
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
        let s = start_connected(cfg, 1000).await;
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
        assert!(s.stats.reconnects.load(std::sync::atomic::Ordering::Relaxed) >= 1);
        assert_eq!(s.stats.connects.load(std::sync::atomic::Ordering::Relaxed), 2);
        s.task.abort();
    });
}

#[test]
fn payloads_are_exact_bytes_up_to_a_megabyte() {
    let Some(server) = Server::start(None) else { return };
    local(async {
        let s = subscribed(config(&server.url()), "bin", 1000).await;
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
        let s = subscribed(config(&server.url()), "flood", 100).await;
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
fn a_flood_from_a_real_server_reaches_the_relay_once_in_order_in_limited_takes() {
    let Some(server) = Server::start(None) else { return };
    local(async {
        let s = subscribed(config(&server.url()), "flood", 10_000).await;
        let mut cli = outside(&server.url()).await;
        let mut pipe = redis::pipe();
        for i in 0..1000 {
            pipe.cmd("PUBLISH").arg("flood").arg(i).ignore();
        }
        pipe.query_async::<()>(&mut cli).await.unwrap();
        let relay = s.inbox.relay();
        let mut all = Vec::new();
        let mut batch = std::collections::VecDeque::new();
        let deadline = tokio::time::Instant::now() + LIMIT;
        while all.len() < 1000 {
            assert!(tokio::time::Instant::now() < deadline, "took {} of 1000", all.len());
            let took = std::future::poll_fn(|cx| relay.poll_take(cx, &mut batch, 100)).await;
            assert!(took && (1..=100).contains(&batch.len()), "no empty take, none over the limit");
            all.extend(batch.drain(..).map(|(m, _)| String::from_utf8(m.payload.to_vec()).unwrap()));
        }
        assert_eq!(all, (0..1000).map(|i| i.to_string()).collect::<Vec<_>>(), "every message once, in order");
        s.task.abort();
    });
}

#[test]
fn publish_counts_receivers_on_its_own_connection() {
    let Some(server) = Server::start(None) else { return };
    local(async {
        let mut cfg = config(&server.url());
        cfg.channels = vec!["room".into()];
        let s = start_connected(cfg.clone(), 1000).await;
        let (sender, receiver) = mpsc::unbounded_channel();
        let stats = Arc::new(PublishStats::default());
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
        assert_eq!(stats.published.load(std::sync::atomic::Ordering::Relaxed), 3);

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
