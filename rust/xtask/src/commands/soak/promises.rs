//! What each protocol promises, checked against what the harness counted on its own side:
//! pure functions over the soak's numbers, so that every rule is unit-tested here.
//!
//! - Redis pub/sub delivers a message to the subscribers connected when it is published, at
//!   most once. The publisher (testbed soak-load) knows which numbers Redis delivered to our
//!   subscriber (PUBLISH replied 1): each of those must arrive, once, in order, unless it was
//!   sent within [`IN_FLIGHT_MS`] of a kill of redis-server (Redis may have answered the
//!   publisher and died before writing to the subscriber). Numbers published while the
//!   subscriber was away (PUBLISH replied 0) are outside the promise and only counted.
//! - WsEcho's send queue keeps every message queued while disconnected and sends it, in order,
//!   once; a message the socket took before the connection died is in flight. The echo server
//!   records every message it received on which connection (tests/helpers/ws_server.py
//!   `--record`), so a number that never reached the server is in flight only when the next
//!   number the server got opened a new connection, and a number the server got but never
//!   echoed is in flight only when nothing after it on that connection came back either.
//!   Anything else missing is lost; a number seen twice or out of order breaks the promise.
//! - RadioStream skips only while its source is gone: every `underrun` must fall between a
//!   kill of the source and [`RADIO_GRACE_MS`] after it was back.
//! - The log: every `ERROR:` line of the soak scene and of the stream step's scenes must be one
//!   a fault of that run explains ([`EXPECTED_ERRORS`]).

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use super::faults::Outage;

/// A Redis number sent this close to a kill (before or after sending SIGKILL) may have been
/// answered by the dying server without reaching the subscriber.
pub const IN_FLIGHT_MS: u64 = 100;

/// After the icecast source is back, the time RadioStream may take to notice, reconnect (its
/// backoff is at most 1 s in the soak), prebuffer and fill the generator again.
pub const RADIO_GRACE_MS: u64 = 5_000;

/// What a node moved and lost, against its protocol's promise.
#[derive(Debug, Default, PartialEq)]
pub struct Verdict {
    /// Messages that made it.
    pub moved: u64,
    /// Messages the protocol promised to deliver.
    pub promised: u64,
    /// Promised messages that did not arrive (fails the run).
    pub lost: u64,
    /// Messages in flight when a connection died: not promised, reported.
    pub in_flight: u64,
    /// Messages outside the promise (sent while the receiver was away), reported.
    pub outside_promise: u64,
    /// Duplicates and messages out of order (fails the run).
    pub misordered: u64,
    /// What else fails the run.
    pub problems: Vec<String>,
}

impl Verdict {
    /// The verdict as the report's JSON.
    pub fn json(&self) -> Value {
        json!({
            "moved": self.moved,
            "promised": self.promised,
            "lost": self.lost,
            "in_flight_at_kill": self.in_flight,
            "outside_promise": self.outside_promise,
            "duplicated_or_out_of_order": self.misordered,
        })
    }
}

/// The Redis publisher's side of a run (testbed soak-load's `published`).
pub struct RedisSide<'a> {
    /// Numbers PUBLISH said it delivered to one subscriber, and when each was sent (Unix ms).
    pub delivered: &'a [u64],
    pub delivered_sent_ms: &'a [u64],
    /// Numbers whose PUBLISH got no reply.
    pub failed: &'a [u64],
    /// PUBLISH replies of 0.
    pub no_receiver: u64,
}

/// Redis pub/sub: see the module docs.
pub fn redis(side: &RedisSide, received: &[u64], outages: &[Outage]) -> Verdict {
    let mut v =
        Verdict { promised: side.delivered.len() as u64, outside_promise: side.no_receiver, ..Verdict::default() };
    let got: HashSet<u64> = received.iter().copied().collect();
    v.moved = got.len() as u64;
    v.misordered = (received.len() - got.len()) as u64 + received.windows(2).filter(|w| w[1] <= w[0]).count() as u64;
    if side.delivered.len() != side.delivered_sent_ms.len() {
        v.problems.push("the publisher's report has no send time for every delivered number".into());
    }
    let near_a_kill = |sent: u64| outages.iter().any(|o| sent.abs_diff(o.killed_ms) <= IN_FLIGHT_MS);
    for (n, sent) in side.delivered.iter().zip(side.delivered_sent_ms) {
        if !got.contains(n) {
            if near_a_kill(*sent) {
                v.in_flight += 1;
            } else {
                v.lost += 1;
            }
        }
    }
    // A publish with no reply was in flight at a kill, whether or not Redis delivered it.
    v.in_flight += side.failed.len() as u64;
    let known: HashSet<u64> = side.delivered.iter().chain(side.failed).copied().collect();
    let phantom = got.iter().filter(|n| !known.contains(n)).count();
    if phantom > 0 {
        v.problems.push(format!("redis: {phantom} numbers arrived that Redis said it delivered to no subscriber"));
    }
    v
}

/// The scene's side of the WebSocket traffic (its report's `ws` section).
pub struct WsScene<'a> {
    /// Numbers sent: 0 up to this.
    pub sent: u64,
    /// The number after the highest echo received.
    pub next_expected: u64,
    /// Numbers below `next_expected` that never came back.
    pub missing: &'a [u64],
    /// Numbers sent while WsEcho was not connected.
    pub queued_while_down: &'a [u64],
    /// Echoes that came back at or below one already received.
    pub out_of_order: u64,
}

/// Reads the echo server's record: one `<connection> seq:<n>` line per message, in the order
/// received; other lines are ignored.
pub fn parse_ws_record(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|line| {
            let (connection, message) = line.split_once(' ')?;
            Some((connection.to_string(), message.strip_prefix("seq:")?.trim().parse().ok()?))
        })
        .collect()
}

/// WsEcho: see the module docs. `record` is the server's, in order.
pub fn websocket(scene: &WsScene, record: &[(String, u64)]) -> Verdict {
    let not_echoed: HashSet<u64> = scene.missing.iter().copied().chain(scene.next_expected..scene.sent).collect();
    let mut v = Verdict {
        moved: scene.sent.saturating_sub(not_echoed.len() as u64),
        promised: scene.queued_while_down.len() as u64,
        misordered: scene.out_of_order + record.windows(2).filter(|w| w[1].1 <= w[0].1).count() as u64,
        ..Verdict::default()
    };
    // Where each number reached the server, and whether it was the first on its connection.
    let mut at_server: BTreeMap<u64, (usize, bool)> = BTreeMap::new();
    let mut connections: HashSet<&str> = HashSet::new();
    for (i, (connection, n)) in record.iter().enumerate() {
        let first = connections.insert(connection);
        at_server.entry(*n).or_insert((i, first));
    }
    let queued: HashSet<u64> = scene.queued_while_down.iter().copied().collect();
    let mut queue_broken = 0;
    for &n in &not_echoed {
        let in_flight = match at_server.get(&n) {
            // Queued while disconnected: the queue promised it.
            _ if queued.contains(&n) => {
                queue_broken += 1;
                false
            }
            // Never reached the server: in flight if the next number that did opened a
            // connection (this one went down with the one before).
            None => at_server.range(n..).next().is_some_and(|(_, &(_, first))| first),
            // Reached it and never came back: in flight if nothing after it on its connection
            // came back either (the server died before its echoes did).
            Some(&(i, _)) => {
                let connection = &record[i].0;
                record[i..].iter().filter(|(c, _)| c == connection).all(|(_, later)| not_echoed.contains(later))
            }
        };
        if in_flight {
            v.in_flight += 1;
        } else {
            v.lost += 1;
        }
    }
    if queue_broken > 0 {
        v.problems.push(format!("websocket: {queue_broken} messages queued while disconnected never came back"));
    }
    let phantom = (0..scene.next_expected).filter(|n| !not_echoed.contains(n) && !at_server.contains_key(n)).count();
    if phantom > 0 {
        v.problems.push(format!("websocket: {phantom} echoes of messages the server never recorded"));
    }
    v
}

/// RadioStream's underruns (Unix ms) that no outage of its source explains.
pub fn unexplained_underruns(underruns: &[u64], outages: &[Outage]) -> Vec<u64> {
    underruns
        .iter()
        .copied()
        .filter(|t| !outages.iter().any(|o| *t >= o.killed_ms && *t <= o.back_ms + RADIO_GRACE_MS))
        .collect()
}

/// The `ERROR:` lines the soak's faults cause: (node class in the line, text in the line,
/// the fault that explains it).
pub const EXPECTED_ERRORS: [(&str, &str, Fault); 12] = [
    ("@RedisSubscriber@", ": connection lost; reconnecting", Fault::Redis),
    ("@RedisSubscriber@", ": cannot connect: connection refused", Fault::Redis),
    ("@WsEcho@", ": connection lost: the server dropped it without a closing handshake", Fault::WebSocket),
    // A server killed with our bytes unread in its socket resets the connection.
    ("@WsEcho@", ": connection lost: IO error: Connection reset by peer", Fault::WebSocket),
    ("@WsEcho@", ": connection lost while sending: IO error: ", Fault::WebSocket),
    ("@WsEcho@", ": connection refused by 127.0.0.1:", Fault::WebSocket),
    ("@RadioStream@", ": the stream ended", Fault::RadioSource),
    ("@RadioStream@", ": HTTP 404 File Not Found from ", Fault::RadioSource),
    // The stream step: the cluster master serving the stream is killed.
    ("@RedisStreamConsumer@", "; reconnecting in ", Fault::StreamMaster),
    // HttpSession's downloads (a failed task logs), nginx or tinyproxy killed (soak/http.rs).
    ("'HttpSession.download GET ", ": the connection failed while the body arrived: ", Fault::Http),
    ("'HttpSession.download GET ", ": connection refused by the proxy 127.0.0.1:", Fault::Http),
    // Random bytes on the spawner's port: a run of 4096 without a newline now and then.
    ("@TcpSpawnerServer@", ": line too long", Fault::Garbage),
];

/// A kind of fault the soak injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Redis,
    WebSocket,
    RadioSource,
    StreamMaster,
    Http,
    /// Random bytes sent to the spawner's port.
    Garbage,
}

/// The `ERROR:` lines of the scene's log that no fault of this run explains (`ran` says which
/// kinds ran at least once).
pub fn unexpected_errors<'a>(errors: &'a [String], ran: &[Fault]) -> Vec<&'a str> {
    errors
        .iter()
        .filter(|line| {
            !EXPECTED_ERRORS
                .iter()
                .any(|(class, text, fault)| ran.contains(fault) && line.contains(class) && line.contains(text))
        })
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outage(killed_ms: u64) -> Outage {
        Outage { killed_ms, back_ms: killed_ms + 1000 }
    }

    #[test]
    fn redis_tells_in_flight_from_lost_by_the_kill_times() {
        let side = RedisSide {
            delivered: &[0, 1, 2, 3, 4],
            delivered_sent_ms: &[1000, 1005, 1950, 3000, 3005],
            failed: &[5],
            no_receiver: 7,
        };
        // 1 is missing far from any kill: lost. 2 was sent 50 ms before the kill at 2000.
        let v = redis(&side, &[0, 3, 4], &[outage(2000)]);
        assert_eq!((v.moved, v.promised, v.lost, v.in_flight, v.outside_promise), (3, 5, 1, 2, 7));
        assert_eq!(v.misordered, 0);
        assert!(v.problems.is_empty());
    }

    #[test]
    fn redis_counts_duplicates_disorder_and_phantoms() {
        let side = RedisSide { delivered: &[0, 1, 2], delivered_sent_ms: &[0, 5, 10], failed: &[], no_receiver: 0 };
        let v = redis(&side, &[0, 2, 1, 1, 9], &[]);
        assert_eq!(v.lost, 0);
        assert_eq!(v.misordered, 1 + 2);
        assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
    }

    fn record(lines: &[(&str, u64)]) -> Vec<(String, u64)> {
        lines.iter().map(|(c, n)| (c.to_string(), *n)).collect()
    }

    #[test]
    fn websocket_in_flight_is_only_at_a_connection_boundary() {
        // Connection a got 0..=3 and died; 4 never reached anyone; b got 5..=7.
        // 2 and 3 reached a but were not echoed (the server died): in flight.
        let rec = record(&[("a", 0), ("a", 1), ("a", 2), ("a", 3), ("b", 5), ("b", 6), ("b", 7)]);
        let scene =
            WsScene { sent: 8, next_expected: 8, missing: &[2, 3, 4], queued_while_down: &[5, 6], out_of_order: 0 };
        let v = websocket(&scene, &rec);
        assert_eq!((v.moved, v.promised, v.lost, v.in_flight, v.misordered), (5, 2, 0, 3, 0));
        assert!(v.problems.is_empty(), "{:?}", v.problems);
    }

    #[test]
    fn websocket_holes_inside_a_connection_are_lost() {
        // 1 never reached the server though 2 did on the same connection; 3 reached it and
        // was not echoed though 4, after it on that connection, was.
        let rec = record(&[("a", 0), ("a", 2), ("a", 3), ("a", 4)]);
        let scene = WsScene { sent: 5, next_expected: 5, missing: &[1, 3], queued_while_down: &[], out_of_order: 0 };
        let v = websocket(&scene, &rec);
        assert_eq!((v.lost, v.in_flight), (2, 0));
    }

    #[test]
    fn websocket_queue_promise_and_order() {
        // 4 was queued while down and never came back; the server saw 2 twice.
        let rec = record(&[("a", 0), ("a", 1), ("a", 2), ("b", 2), ("b", 3)]);
        let scene = WsScene { sent: 5, next_expected: 4, missing: &[], queued_while_down: &[4], out_of_order: 1 };
        let v = websocket(&scene, &rec);
        assert_eq!(v.misordered, 2);
        assert_eq!(v.lost, 1);
        assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
    }

    #[test]
    fn reads_the_echo_servers_record() {
        let rec = parse_ws_record("12.1 seq:0\n12.1 seq:1\n13.1 seq:4\n12.1 hello\ngarbage\n");
        assert_eq!(rec, record(&[("12.1", 0), ("12.1", 1), ("13.1", 4)]));
    }

    #[test]
    fn underruns_outside_the_sources_outages_are_unexplained() {
        let outages = [Outage { killed_ms: 10_000, back_ms: 11_500 }];
        let got = unexplained_underruns(&[9_000, 10_200, 16_000, 17_000], &outages);
        assert_eq!(got, [9_000, 17_000]);
    }

    #[test]
    fn errors_need_a_fault_that_ran() {
        let errors = vec![
            "ERROR: /root/Soak/@RedisSubscriber@3: redis://127.0.0.1:1: connection lost; reconnecting in 0.1 s"
                .to_string(),
            "ERROR: /root/Soak/@WsEcho@4: connection refused by 127.0.0.1:5 (is the server running?)".to_string(),
            "ERROR: /root/Soak/@TcpSpawnerServer@7: something else".to_string(),
        ];
        assert_eq!(unexpected_errors(&errors, &[Fault::Redis, Fault::WebSocket]), [errors[2].as_str()]);
        assert_eq!(unexpected_errors(&errors, &[Fault::Redis]).len(), 2);
        let long = ["ERROR: /root/Soak/@TcpSpawnerServer@7: client 127.0.0.1:4: line too long".to_string()];
        assert!(unexpected_errors(&long, &[Fault::Garbage]).is_empty(), "random bytes explain it");
        assert_eq!(unexpected_errors(&long, &[Fault::Redis]).len(), 1);
    }
}
