//! The subscriber's connection loop: connect, restore every subscription,
//! apply subscribe / unsubscribe requests as they come, and on a lost
//! connection wait (with backoff) and start over.
//!
//! The set of wanted channels and patterns lives here, not on the
//! connection: each new connection is given the whole set once, in one
//! SUBSCRIBE and one PSUBSCRIBE, so a restored subscription is never doubled.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
    time::Duration,
};

use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{
    address::RedisAddress,
    connect::{ConnectError, Driver, connect, describe},
    inbox::MessageSink,
};
use crate::{backoff::Backoff, state::NetState};

/// A plain channel or a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `SUBSCRIBE channel`.
    Channel,
    /// `PSUBSCRIBE pattern`.
    Pattern,
    /// `SSUBSCRIBE channel`: a sharded channel of a cluster ([`super::cluster`]).
    Shard,
}

/// A change the game asks for while the session runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Start receiving a channel or pattern.
    Subscribe(Kind, String),
    /// Stop receiving it.
    Unsubscribe(Kind, String),
}

/// What the session tells the game. Called with no borrow held.
pub trait SessionEvents {
    /// The connection state changed.
    fn state_changed(&mut self, state: NetState);
    /// The server confirmed a subscription (again after each reconnect).
    fn subscribed(&mut self, name: &str, kind: Kind);
    /// A subscription ended at the game's request.
    fn unsubscribed(&mut self, name: &str, kind: Kind);
    /// A problem the session recovers from (it keeps trying).
    fn error(&mut self, message: &str);
}

/// The session's settings.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Where to connect.
    pub address: RedisAddress,
    /// Where else to connect, in turn after `address` when a connection is lost or an attempt
    /// fails: the other seed nodes of a cluster, any of which serves plain pub/sub.
    pub more_addresses: Vec<RedisAddress>,
    /// Channels subscribed from the start.
    pub channels: Vec<String>,
    /// Patterns subscribed from the start.
    pub patterns: Vec<String>,
    /// Reconnect after a lost connection or a failed attempt.
    pub reconnect: bool,
    /// Ceiling of the first wait before reconnecting; each wait is drawn from the upper half of
    /// a ceiling that doubles from here ([`Backoff`](crate::backoff::Backoff)).
    pub reconnect_min: Duration,
    /// Largest ceiling, so the longest wait before reconnecting.
    pub reconnect_max: Duration,
    /// Limit of one connection attempt, handshake included.
    pub connect_timeout: Duration,
    /// How often an idle connection is checked with PING (a silent network
    /// failure is noticed within this plus `connect_timeout`).
    pub health_check: Duration,
}

impl SessionConfig {
    /// Defaults for everything but the address.
    pub fn new(address: RedisAddress) -> Self {
        SessionConfig {
            address,
            more_addresses: Vec::new(),
            channels: Vec::new(),
            patterns: Vec::new(),
            reconnect: true,
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            health_check: Duration::from_secs(15),
        }
    }
}

/// Counters of a session, written on the I/O worker and read anywhere.
#[derive(Debug, Default)]
pub struct SessionStats {
    /// Connections made (the first one included).
    pub connects: AtomicU64,
    /// Connections lost or attempts failed, each followed by a retry.
    pub reconnects: AtomicU64,
    /// Channels subscribed now (wanted, whether or not connected).
    pub channels: AtomicUsize,
    /// Patterns subscribed now.
    pub patterns: AtomicUsize,
    /// Sharded channels subscribed now (a cluster's, [`super::cluster::run_sharded`]).
    pub shard_channels: AtomicUsize,
}

/// The wanted subscriptions, in the order they were asked for, no duplicates.
#[derive(Debug, Default)]
struct Wanted {
    channels: Vec<String>,
    patterns: Vec<String>,
    /// Sharded channels are the cluster session's; a single-node session refuses them.
    shards: Vec<String>,
}

impl Wanted {
    fn list(&mut self, kind: Kind) -> &mut Vec<String> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shards,
        }
    }

    /// Adds `name`; false if it was already there.
    fn add(&mut self, kind: Kind, name: &str) -> bool {
        let list = self.list(kind);
        if list.iter().any(|n| n == name) {
            return false;
        }
        list.push(name.to_string());
        true
    }

    /// Removes `name`; false if it was not there.
    fn remove(&mut self, kind: Kind, name: &str) -> bool {
        let list = self.list(kind);
        let before = list.len();
        list.retain(|n| n != name);
        list.len() != before
    }

    fn count(&self, stats: &SessionStats) {
        stats.channels.store(self.channels.len(), Relaxed);
        stats.patterns.store(self.patterns.len(), Relaxed);
    }
}

/// How a connection ended.
enum Ended {
    /// The game dropped its command sender: stop quietly.
    Stopped,
    /// The connection failed; the message says how.
    Lost(ConnectError),
}

/// Runs the session until the command sender is dropped (`Ok`) or a fatal
/// error (`Err`: wrong password, or any error with `reconnect` off).
/// Messages go to `inbox`; everything else to `events`.
pub async fn run(
    config: SessionConfig,
    inbox: Arc<dyn MessageSink>,
    mut commands: UnboundedReceiver<Command>,
    mut events: impl SessionEvents,
    stats: Arc<SessionStats>,
) -> Result<(), String> {
    let mut wanted = Wanted::default();
    for name in &config.channels {
        wanted.add(Kind::Channel, name);
    }
    for name in &config.patterns {
        wanted.add(Kind::Pattern, name);
    }
    wanted.count(&stats);
    let mut backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
    let addresses: Vec<&RedisAddress> = std::iter::once(&config.address).chain(&config.more_addresses).collect();
    events.state_changed(NetState::Connecting);
    let mut turn = 0;
    loop {
        // After a lost connection or a failed attempt, the next address (a cluster's next seed).
        let address = addresses[turn % addresses.len()];
        turn += 1;
        let attempt = connect(address, config.connect_timeout, Some(inbox.clone()));
        let ended = match offline(attempt, &mut commands, &mut wanted, &mut events, &stats).await {
            None => Ended::Stopped,
            Some(Err(error)) => Ended::Lost(error),
            Some(Ok((connection, driver))) => {
                stats.connects.fetch_add(1, Relaxed);
                let link = (address, connection, driver);
                online(&config, link, &mut commands, &mut wanted, &mut events, &stats, &mut backoff).await
            }
        };
        let error = match ended {
            Ended::Stopped => return Ok(()),
            Ended::Lost(error) if error.fatal || !config.reconnect => return Err(error.message),
            Ended::Lost(error) => error,
        };
        stats.reconnects.fetch_add(1, Relaxed);
        let delay = backoff.next_delay();
        events.state_changed(NetState::Reconnecting);
        events.error(&format!("{}; reconnecting in {:.1} s", error.message, delay.as_secs_f64()));
        if offline(tokio::time::sleep(delay), &mut commands, &mut wanted, &mut events, &stats).await.is_none() {
            return Ok(());
        }
    }
}

/// Awaits `work` while not connected, applying commands to the wanted set as
/// they come (an unsubscribe takes effect at once). `None`: the game stopped.
async fn offline<T>(
    work: impl Future<Output = T>,
    commands: &mut UnboundedReceiver<Command>,
    wanted: &mut Wanted,
    events: &mut impl SessionEvents,
    stats: &SessionStats,
) -> Option<T> {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            result = &mut work => return Some(result),
            command = commands.recv() => match command? {
                Command::Subscribe(kind, name) => {
                    wanted.add(kind, &name);
                }
                Command::Unsubscribe(kind, name) => {
                    if wanted.remove(kind, &name) {
                        wanted.count(stats);
                        events.unsubscribed(&name, kind);
                    }
                }
            },
        }
        wanted.count(stats);
    }
}

/// Runs one connection: restores the wanted set, then applies commands and
/// checks the connection's health until it fails or the game stops.
#[allow(clippy::too_many_arguments, reason = "the session's parts, borrowed for one connection")]
async fn online(
    config: &SessionConfig,
    (address, connection, mut driver): (&RedisAddress, MultiplexedConnection, Driver),
    commands: &mut UnboundedReceiver<Command>,
    wanted: &mut Wanted,
    events: &mut impl SessionEvents,
    stats: &SessionStats,
    backoff: &mut Backoff,
) -> Ended {
    let work = async {
        let mut connection = connection;
        let timeout = config.connect_timeout;
        let lost = |e: redis::RedisError| describe(address, &e);
        let late = || ConnectError {
            message: format!("{}: no reply within {:.1} s", address.shown(), timeout.as_secs_f64()),
            fatal: false,
        };
        for kind in [Kind::Channel, Kind::Pattern] {
            let names = wanted.list(kind).clone();
            if names.is_empty() {
                continue;
            }
            let request = change(&mut connection, kind, true, &names);
            tokio::time::timeout(timeout, request).await.map_err(|_| late())?.map_err(lost)?;
            for name in &names {
                events.subscribed(name, kind);
            }
        }
        backoff.reset();
        events.state_changed(NetState::Connected);

        let mut health = tokio::time::interval(config.health_check);
        health.reset();
        loop {
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { return Ok(()) };
                    let (kind, name, subscribe) = match &command {
                        Command::Subscribe(kind, name) => (*kind, name.as_str(), true),
                        Command::Unsubscribe(kind, name) => (*kind, name.as_str(), false),
                    };
                    let changed = if subscribe { wanted.add(kind, name) } else { wanted.remove(kind, name) };
                    wanted.count(stats);
                    if !changed {
                        continue;
                    }
                    // On failure the wanted set already says what the next connection restores.
                    let names = [name];
                    tokio::time::timeout(timeout, change(&mut connection, kind, subscribe, &names)).await.map_err(|_| late())?.map_err(lost)?;
                    if subscribe {
                        events.subscribed(name, kind);
                    } else {
                        events.unsubscribed(name, kind);
                    }
                }
                _ = health.tick() => {
                    let ping = redis::cmd("PING");
                    tokio::time::timeout(timeout, ping.query_async::<redis::Value>(&mut connection)).await.map_err(|_| late())?.map_err(lost)?;
                }
            }
        }
    };
    let result: Result<(), ConnectError> = tokio::select! {
        result = work => result,
        reason = &mut driver => Err(ConnectError {
            message: format!("{}: {}", address.shown(), reason.as_deref().unwrap_or("connection lost")),
            fatal: false,
        }),
    };
    match result {
        Ok(()) => Ended::Stopped,
        Err(error) => Ended::Lost(error),
    }
}

/// Sends one (P)(UN)SUBSCRIBE for `names` and waits for every confirmation.
async fn change(
    connection: &mut MultiplexedConnection,
    kind: Kind,
    subscribe: bool,
    names: &[impl redis::ToRedisArgs + Sync],
) -> redis::RedisResult<()> {
    match (kind, subscribe) {
        (Kind::Channel, true) => connection.subscribe(names).await,
        (Kind::Channel, false) => connection.unsubscribe(names).await,
        (Kind::Pattern, true) => connection.psubscribe(names).await,
        (Kind::Pattern, false) => connection.punsubscribe(names).await,
        (Kind::Shard, _) => Err((redis::ErrorKind::Client, "sharded channels need a cluster").into()),
    }
}
