//! Limits of the TCP spawner server, one field per inspector property.

use std::io;
use std::time::Duration;

/// Every limit the spawner server enforces on its clients.
///
/// The defaults are the inspector defaults of `TcpSpawnerServer`; the glue
/// copies the node's properties over them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnerConfig {
    /// Concurrent clients served; the next one gets `ERR too many clients`.
    pub max_clients: usize,
    /// Longest line accepted, in bytes, not counting its `\n` or `\r\n`.
    pub max_line_bytes: usize,
    /// When set (and not empty), a client's first non-empty line must equal it.
    pub token: Option<String>,
    /// Lines handed to the handler per client and second (token bucket with a
    /// one-second burst); 0 means unlimited.
    pub max_spawns_per_second: u32,
    /// A client that completes no line for this long is closed; zero disables.
    pub idle_timeout: Duration,
    /// Cap on a node name's length in characters, for [`sanitize_node_name`].
    ///
    /// [`sanitize_node_name`]: super::sanitize_node_name
    pub max_name_chars: usize,
    /// Bytes of replies queued for a client that is behind: at this much its
    /// input is not read (and its answers wait) until it takes some replies;
    /// one that takes nothing for 5 s is closed (`not reading replies`).
    pub max_reply_backlog: usize,
}

impl Default for SpawnerConfig {
    fn default() -> Self {
        SpawnerConfig {
            max_clients: 64,
            max_line_bytes: 4096,
            token: None,
            max_spawns_per_second: 50,
            idle_timeout: Duration::from_secs(300),
            max_name_chars: 64,
            max_reply_backlog: 64 * 1024,
        }
    }
}

impl SpawnerConfig {
    /// The token clients must send, if any. An empty token means "no token",
    /// matching the node's `token = ""` default.
    pub fn required_token(&self) -> Option<&str> {
        self.token.as_deref().filter(|t| !t.is_empty())
    }

    /// Refuses settings that cannot serve anyone, so the glue can report them
    /// as an error instead of running a server that rejects every line.
    pub fn validate(&self) -> io::Result<()> {
        let invalid = |msg: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned()));
        if self.max_line_bytes == 0 {
            return invalid("max_line_bytes must be at least 1");
        }
        if self.max_name_chars == 0 {
            return invalid("max_name_chars must be at least 1");
        }
        if self.max_reply_backlog < 256 {
            // Below this even one `ERR <reason>` reply could overflow it.
            return invalid("max_reply_backlog must be at least 256");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_node() {
        let c = SpawnerConfig::default();
        assert_eq!(c.max_clients, 64);
        assert_eq!(c.max_line_bytes, 4096);
        assert_eq!(c.token, None);
        assert_eq!(c.max_spawns_per_second, 50);
        assert_eq!(c.idle_timeout, Duration::from_secs(300));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn empty_token_means_none() {
        let mut c = SpawnerConfig { token: Some(String::new()), ..Default::default() };
        assert_eq!(c.required_token(), None);
        c.token = Some("s3cret".into());
        assert_eq!(c.required_token(), Some("s3cret"));
    }

    #[test]
    fn validate_refuses_zero_line_limit() {
        let c = SpawnerConfig { max_line_bytes: 0, ..Default::default() };
        assert_eq!(c.validate().unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
