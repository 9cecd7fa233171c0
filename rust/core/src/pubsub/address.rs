//! The subscriber's `url`: parsed by the redis crate, checked for what this
//! client supports, and redacted wherever it is shown (a password never
//! reaches a log line or an `error` signal).

use std::{
    fmt,
    path::{Path, PathBuf},
};

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, ProtocolVersion};

use crate::redact;

/// Default of [`RedisAddress::max_message_bytes`]: 16 MiB, like WsEcho's `max_message_bytes`.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The address a subscriber uses when none is given: a local server on Redis's port.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// A parsed, supported Redis address with its display form, and how to talk to it.
#[derive(Clone)]
pub struct RedisAddress {
    info: ConnectionInfo,
    shown: String,
    /// The url's password ("" when none), kept only to scrub it from server replies.
    password: String,
    ca_file: Option<PathBuf>,
    max_message_bytes: usize,
}

impl RedisAddress {
    /// Parses `redis://[user][:password@]host[:port][/db]`, `rediss://...`
    /// (TLS; `#insecure` skips certificate checks) or `redis+unix:///path`.
    /// The error is written for a game developer and never contains the password.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let shown = redact(url);
        if url.is_empty() {
            return Err("url is empty; expected e.g. redis://127.0.0.1:6379".into());
        }
        if !url.contains("://") {
            return Err(format!("url '{shown}' has no scheme; expected e.g. redis://{shown}"));
        }
        let info = url.into_connection_info().map_err(|e| {
            let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
            format!(
                "invalid url '{shown}' ({}{detail}); expected redis://[user:password@]host[:port][/db] or rediss://...",
                e.category()
            )
        })?;
        if let ConnectionAddr::Tcp(host, _) | ConnectionAddr::TcpTls { host, .. } = info.addr()
            && host.is_empty()
        {
            return Err(format!("url '{shown}' has no host"));
        }
        // Subscriptions arrive as RESP3 pushes on an ordinary connection.
        let redis = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let password = redis.password().unwrap_or_default().to_string();
        Ok(Self {
            info: info.set_redis_settings(redis),
            shown,
            password,
            ca_file: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        })
    }

    /// For `rediss://`: trust the CA certificates of this PEM file instead of the public roots
    /// (a private CA). Certificates are still verified; only `#insecure` turns that off.
    pub fn with_ca_file(mut self, ca_file: Option<PathBuf>) -> Self {
        self.ca_file = ca_file;
        self
    }

    /// The PEM file of a private CA for `rediss://`, if set.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// Largest reply (one message, subscription confirmation or command reply) accepted from the
    /// server; a larger one closes the connection with an error (see [`super::limit`]).
    pub fn with_max_message_bytes(mut self, max_message_bytes: usize) -> Self {
        self.max_message_bytes = max_message_bytes.max(1);
        self
    }

    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// `text` (e.g. an error the server sent) with the url's password replaced by `***`, in case
    /// the server echoes it.
    pub fn scrub(&self, text: &str) -> String {
        if self.password.is_empty() { text.to_string() } else { text.replace(&self.password, "***") }
    }

    /// The same settings (credentials, TLS, limits) for another node of the same cluster.
    pub fn at(&self, host: &str, port: u16) -> RedisAddress {
        let (addr, scheme) = match self.info.addr() {
            ConnectionAddr::TcpTls { insecure, tls_params, .. } => {
                let addr = ConnectionAddr::TcpTls {
                    host: host.into(),
                    port,
                    insecure: *insecure,
                    tls_params: tls_params.clone(),
                };
                (addr, "rediss")
            }
            _ => (ConnectionAddr::Tcp(host.into(), port), "redis"),
        };
        let credentials = self.password.is_empty() && self.info.redis_settings().username().is_none();
        let user = if credentials { "" } else { "***@" };
        RedisAddress {
            info: self.info.clone().set_addr(addr),
            shown: format!("{scheme}://{user}{host}:{port}"),
            ..self.clone()
        }
    }

    /// The crate's connection settings (RESP3).
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// The url with its credentials replaced by `***` ([`crate::redact`]), for messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

/// Shows the redacted url only: the crate's settings and `password` hold the password.
impl fmt::Debug for RedisAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisAddress")
            .field("url", &self.shown)
            .field("ca_file", &self.ca_file)
            .field("max_message_bytes", &self.max_message_bytes)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_the_password_from_any_text() {
        let address = RedisAddress::parse("redis://u:hunter2@127.0.0.1").unwrap();
        assert_eq!(address.scrub("ERR bad password hunter2 (hunter2)"), "ERR bad password *** (***)");
        let none = RedisAddress::parse("redis://127.0.0.1").unwrap();
        assert_eq!(none.scrub("nothing to hide"), "nothing to hide");
        assert_eq!(address.max_message_bytes(), DEFAULT_MAX_MESSAGE_BYTES);
        assert_eq!(address.with_max_message_bytes(0).max_message_bytes(), 1);
    }

    #[test]
    fn another_node_of_a_cluster_keeps_the_credentials_tls_and_limits() {
        let seed =
            RedisAddress::parse("rediss://u:topsecret@10.0.0.5:7000/#insecure").unwrap().with_max_message_bytes(99);
        let other = seed.at("10.0.0.6", 7001);
        assert_eq!(other.shown(), "rediss://***@10.0.0.6:7001");
        assert!(
            matches!(other.info().addr(), ConnectionAddr::TcpTls { host, port: 7001, insecure: true, .. } if host == "10.0.0.6")
        );
        assert_eq!(other.info().redis_settings().password(), Some("topsecret"));
        assert_eq!(other.max_message_bytes(), 99);
        assert_eq!(other.scrub("topsecret"), "***");
        let plain = RedisAddress::parse("redis://10.0.0.5:7000").unwrap().at("10.0.0.7", 7002);
        assert_eq!(plain.shown(), "redis://10.0.0.7:7002");
        assert!(matches!(plain.info().addr(), ConnectionAddr::Tcp(host, 7002) if host == "10.0.0.7"));
    }

    #[test]
    fn urls_parse_or_say_why_without_the_password() {
        let address = RedisAddress::parse("redis://u:topsecret@127.0.0.1:7000/2").unwrap();
        assert_eq!(address.shown(), "redis://***@127.0.0.1:7000/2");
        assert_eq!(address.info().redis_settings().db(), 2);
        assert_eq!(address.info().redis_settings().protocol(), ProtocolVersion::RESP3);
        assert!(matches!(address.info().addr(), ConnectionAddr::Tcp(h, 7000) if h == "127.0.0.1"));
        let tls = RedisAddress::parse("rediss://cache.example/#insecure").unwrap();
        assert!(matches!(tls.info().addr(), ConnectionAddr::TcpTls { insecure: true, port: 6379, .. }));
        let debug = format!("{address:?}");
        assert!(debug.contains("redis://***@127.0.0.1:7000/2") && !debug.contains("topsecret"), "{debug}");

        for bad in [
            "",
            "   ",
            "127.0.0.1:6379",
            "http://127.0.0.1",
            "redis://:topsecret@127.0.0.1:99999",
            "redis://:topsecret@h/notadb",
            "redis://topsecret@127.0.0.1:99999",
            "topsecret@127.0.0.1:6379",
            "::::",
        ] {
            let error = RedisAddress::parse(bad).unwrap_err();
            assert!(!error.contains("topsecret"), "{bad}: {error}");
            assert!(error.contains("url"), "{bad}: {error}");
        }
    }
}
