//! The consumer against a real `redis-server` (the pub/sub tests' harness):
//! own pending entries first after a restart, acknowledgements, claims from a
//! dead consumer, dead-lettering, and `add` with and without WAIT.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use redis::AsyncCommands;
use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::{
    pubsub::{
        RedisAddress,
        tests::{LIMIT, Server, local, wait_until},
    },
    relay::Closed,
    state::NetState,
};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    State(NetState),
    Entry(String, Vec<(String, String)>),
    Dead(String),
    Error(String),
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Ev>>>);

impl Recorder {
    fn entries(&self) -> Vec<String> {
        let events = self.0.lock().unwrap();
        events.iter().filter_map(|e| if let Ev::Entry(id, _) = e { Some(id.clone()) } else { None }).collect()
    }
    fn dead(&self) -> Vec<String> {
        let events = self.0.lock().unwrap();
        events.iter().filter_map(|e| if let Ev::Dead(id) = e { Some(id.clone()) } else { None }).collect()
    }
    fn has(&self, ev: &Ev) -> bool {
        self.0.lock().unwrap().contains(ev)
    }
}

fn text(entry: &Entry) -> Vec<(String, String)> {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    entry.fields.iter().map(|(n, v)| (s(n), s(v))).collect()
}

impl ConsumerEvents for Recorder {
    fn state_changed(&self, state: NetState) {
        self.0.lock().unwrap().push(Ev::State(state));
    }
    fn error(&self, message: &str) {
        self.0.lock().unwrap().push(Ev::Error(message.into()));
    }
    async fn entry(&self, entry: Entry) -> Result<(), Closed> {
        self.0.lock().unwrap().push(Ev::Entry(entry.id.to_string(), text(&entry)));
        Ok(())
    }
    async fn dead_lettered(&self, entry: Entry) -> Result<(), Closed> {
        self.0.lock().unwrap().push(Ev::Dead(entry.id.to_string()));
        Ok(())
    }
}

struct Consumer {
    acks: mpsc::UnboundedSender<Vec<EntryId>>,
    events: Recorder,
    stats: Arc<ConsumerStats>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Consumer {
    fn ack(&self, ids: &[String]) {
        self.acks.send(ids.iter().map(|id| id.parse().unwrap()).collect()).unwrap();
    }

    async fn stop(self) {
        drop(self.acks);
        tokio::time::timeout(LIMIT, self.task).await.expect("stops").unwrap().unwrap();
    }
}

fn config(url: &str, consumer: &str, claim_idle_ms: u64) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(RedisAddress::parse(url).unwrap(), "orders", "shop");
    config.consumer = consumer.into();
    config.start_id = "0".into();
    config.claim_idle = Duration::from_millis(claim_idle_ms);
    config.reconnect_min = Duration::from_millis(50);
    config.reconnect_max = Duration::from_millis(200);
    config.block = Duration::from_millis(200);
    config
}

async fn start(config: ConsumerConfig) -> Consumer {
    let (acks, receiver) = mpsc::unbounded_channel();
    let events = Recorder::default();
    let stats = Arc::new(ConsumerStats::default());
    let task = tokio::task::spawn_local(run(config, receiver, events.clone(), stats.clone()));
    wait_until("connected", || events.has(&Ev::State(NetState::Connected))).await;
    Consumer { acks, events, stats, task }
}

async fn outside(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

async fn xadd(con: &mut redis::aio::MultiplexedConnection, value: &str) -> String {
    con.xadd("orders", "*", &[("item", value)]).await.unwrap()
}

async fn pending_of(con: &mut redis::aio::MultiplexedConnection, consumer: &str) -> usize {
    let reply: redis::streams::StreamPendingCountReply =
        con.xpending_consumer_count("orders", "shop", "-", "+", 100, consumer).await.unwrap();
    reply.ids.len()
}

#[test]
fn own_pending_entries_come_first_after_a_restart_and_acks_clear_them() {
    let Some(server) = Server::start(None) else { return };
    local(async {
        let url = server.url();
        let mut con = outside(&url).await;
        let a = start(config(&url, "a", 60_000)).await;
        let ids = [xadd(&mut con, "one").await, xadd(&mut con, "two").await, xadd(&mut con, "three").await];
        wait_until("three entries", || a.events.entries().len() == 3).await;
        assert_eq!(a.events.entries(), ids);
        assert!(a.events.has(&Ev::Entry(ids[0].clone(), vec![("item".into(), "one".into())])));
        a.ack(&ids[..2]);
        wait_until("two acked", || a.stats.acked.load(std::sync::atomic::Ordering::Relaxed) == 2).await;
        a.stop().await;
        assert_eq!(pending_of(&mut con, "a").await, 1, "the unacknowledged one stays pending");

        let four = xadd(&mut con, "four").await;
        let again = start(config(&url, "a", 60_000)).await;
        wait_until("pending then new", || again.events.entries().len() == 2).await;
        assert_eq!(again.events.entries(), [ids[2].clone(), four.clone()], "own pending entry first");
        assert_eq!(again.stats.redelivered.load(std::sync::atomic::Ordering::Relaxed), 1);
        again.ack(&[ids[2].clone(), four]);
        wait_until("acked", || again.stats.acked.load(std::sync::atomic::Ordering::Relaxed) == 2).await;
        assert_eq!(pending_of(&mut con, "a").await, 0);
        again.stop().await;
    });
}

#[test]
fn a_dead_consumers_entries_are_claimed_and_a_poison_entry_is_dead_lettered() {
    let Some(server) = Server::start(None) else { return };
    local(async {
        let url = server.url();
        let mut con = outside(&url).await;
        // "dead" reads two entries and dies without acknowledging them.
        let dead = start(config(&url, "dead", 60_000)).await;
        let ids = [xadd(&mut con, "x").await, xadd(&mut con, "poison").await];
        wait_until("read by the dead one", || dead.events.entries().len() == 2).await;
        dead.stop().await;

        let mut claiming = config(&url, "alive", 150);
        claiming.max_deliveries = 3;
        let alive = start(claiming).await;
        wait_until("claimed", || alive.events.entries().len() >= 2).await;
        assert_eq!(alive.events.entries()[..2], ids, "claimed in order");
        alive.ack(&ids[..1]);
        // The poison entry is never acknowledged: claimed again (deliveries 2, 3), then dead-lettered.
        wait_until("dead-lettered", || alive.events.dead() == [ids[1].clone()]).await;
        let deliveries = alive.events.entries().iter().filter(|id| **id == ids[1]).count();
        assert_eq!(deliveries, 2, "delivered 3 times in all: once to the dead consumer, twice here");
        let dead_entries: redis::streams::StreamRangeReply = con.xrange_all("orders:dead").await.unwrap();
        assert_eq!(dead_entries.ids.len(), 1);
        assert_eq!(dead_entries.ids[0].get::<String>("item").as_deref(), Some("poison"));
        assert_eq!(pending_of(&mut con, "alive").await, 0, "acknowledged once dead-lettered");
        alive.stop().await;
    });
}

#[test]
fn add_answers_with_the_id_and_wait_without_replicas_says_so() {
    let Some(server) = Server::start(None) else { return };
    local(async {
        let url = server.url();
        let config = config(&url, "adder", 60_000);
        let add = |durability: Durability| {
            let (sender, receiver) = mpsc::unbounded_channel();
            let stats = Arc::new(AddStats::default());
            tokio::task::spawn_local(run_adder(config.clone(), durability, receiver, stats));
            sender
        };
        let request = |sender: &mpsc::UnboundedSender<AddRequest>, stream: &str| {
            let (reply, answer) = oneshot::channel();
            let fields = vec![(b"k".to_vec(), vec![0xff, 0])];
            sender.send(AddRequest { stream: stream.into(), fields, reply }).unwrap();
            answer
        };
        let plain = add(Durability { replicas: 0, timeout: Duration::from_millis(100) });
        let first = request(&plain, "log").await.unwrap().unwrap();
        let second = request(&plain, "log").await.unwrap().unwrap();
        assert!(first.parse::<EntryId>().unwrap() < second.parse::<EntryId>().unwrap(), "{first} {second}");
        let mut con = outside(&url).await;
        let stored: redis::streams::StreamRangeReply = con.xrange_all("log").await.unwrap();
        assert_eq!(stored.ids[0].get::<Vec<u8>>("k"), Some(vec![0xff, 0]), "bytes kept");
        // A key of another type: that add fails, the next one works.
        let _: () = con.set("not-a-stream", "x").await.unwrap();
        assert!(request(&plain, "not-a-stream").await.unwrap().unwrap_err().contains("WRONGTYPE"));
        assert!(request(&plain, "log").await.unwrap().is_ok());

        let waiting = add(Durability { replicas: 1, timeout: Duration::from_millis(100) });
        let error = request(&waiting, "log").await.unwrap().unwrap_err();
        assert!(error.contains("only 0 of 1 replicas"), "{error}");
    });
}
