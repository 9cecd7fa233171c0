//! The consumer's settings, with the defaults the node shows in the
//! inspector, and the default consumer name.

use std::time::Duration;

use crate::pubsub::RedisAddress;

/// Default of [`ConsumerConfig::batch_size`].
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// Default of [`ConsumerConfig::claim_idle`], in seconds.
pub const DEFAULT_CLAIM_IDLE_SEC: f64 = 30.0;
/// Default of [`ConsumerConfig::max_deliveries`].
pub const DEFAULT_MAX_DELIVERIES: u64 = 5;
/// Default of [`ConsumerConfig::start_id`]: only entries added after the group is created.
pub const DEFAULT_START_ID: &str = "$";

/// The settings of one consumer.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// Where to connect (a seed node when `cluster`).
    pub address: RedisAddress,
    /// More seed nodes of a cluster.
    pub seeds: Vec<RedisAddress>,
    /// Talk to a Redis Cluster.
    pub cluster: bool,
    /// The stream's key.
    pub stream: String,
    /// The consumer group.
    pub group: String,
    /// This consumer's name in the group.
    pub consumer: String,
    /// Create the group (and the stream) when it does not exist.
    pub create_group: bool,
    /// Where a created group starts: `$` (new entries only) or an id (`0`: the whole stream).
    pub start_id: String,
    /// Most entries asked for in one read or claim.
    pub batch_size: usize,
    /// Pending entries idle this long (their consumer died, or never acknowledged them) are claimed.
    pub claim_idle: Duration,
    /// An entry about to be delivered more often than this is dead-lettered instead.
    pub max_deliveries: u64,
    /// Where dead entries go.
    pub dead_letter_stream: String,
    /// Reconnect after a lost connection or a failed attempt.
    pub reconnect: bool,
    /// Ceiling of the first wait before reconnecting.
    pub reconnect_min: Duration,
    /// Largest ceiling.
    pub reconnect_max: Duration,
    /// Limit of one connection attempt, and of one command's reply.
    pub connect_timeout: Duration,
    /// How long one XREADGROUP waits for new entries before asking again.
    pub block: Duration,
}

impl ConsumerConfig {
    /// The defaults, for `stream` and `group` at `address`.
    pub fn new(address: RedisAddress, stream: &str, group: &str) -> Self {
        ConsumerConfig {
            address,
            seeds: Vec::new(),
            cluster: false,
            stream: stream.into(),
            group: group.into(),
            consumer: default_consumer_name(),
            create_group: true,
            start_id: DEFAULT_START_ID.into(),
            batch_size: DEFAULT_BATCH_SIZE,
            claim_idle: Duration::from_secs_f64(DEFAULT_CLAIM_IDLE_SEC),
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            dead_letter_stream: dead_letter_stream(stream),
            reconnect: true,
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            block: Duration::from_secs(2),
        }
    }

    /// Whether the settings can work; the error says which one is wrong.
    pub fn check(&self) -> Result<(), String> {
        for (name, value) in [("stream", &self.stream), ("group", &self.group), ("consumer", &self.consumer)] {
            if value.is_empty() {
                return Err(format!("{name} is empty: set the {name} to read"));
            }
        }
        if self.start_id != "$" {
            self.start_id.parse::<super::EntryId>().map_err(|e| format!("start_id: {e}, or \"$\""))?;
        }
        if self.dead_letter_stream == self.stream {
            return Err("dead_letter_stream is the stream itself: dead entries would be read again".into());
        }
        Ok(())
    }
}

/// The dead-letter stream of `stream` when none is set: `<stream>:dead`.
pub fn dead_letter_stream(stream: &str) -> String {
    format!("{stream}:dead")
}

/// A consumer name unique per machine and process: `<host>-<pid>`. Two game
/// instances on one machine get different names; the same process keeps its
/// name across restarts of the node (its pending entries stay its own).
pub fn default_consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "godot".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ConsumerConfig {
        ConsumerConfig::new(RedisAddress::parse("redis://127.0.0.1").unwrap(), "orders", "shop")
    }

    #[test]
    fn defaults_name_the_dead_letter_stream_and_a_unique_consumer() {
        let config = config();
        assert_eq!(config.dead_letter_stream, "orders:dead");
        assert!(config.consumer.ends_with(&format!("-{}", std::process::id())), "{}", config.consumer);
        assert_eq!(config.consumer, default_consumer_name(), "stable within a process");
        assert!(config.check().is_ok());
    }

    #[test]
    fn bad_settings_say_which() {
        let mut bad = config();
        bad.group.clear();
        assert!(bad.check().unwrap_err().contains("group is empty"));
        let mut bad = config();
        bad.start_id = "yesterday".into();
        assert!(bad.check().unwrap_err().contains("start_id"));
        let mut ok = config();
        ok.start_id = "0".into();
        assert!(ok.check().is_ok());
        let mut bad = config();
        bad.dead_letter_stream = "orders".into();
        assert!(bad.check().unwrap_err().contains("dead_letter_stream"));
    }
}
