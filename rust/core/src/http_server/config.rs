//! What an `HttpServer` is started with, checked before anything binds: the
//! address (a non-loopback one only with a token), the limits, TLS and CORS.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// The smallest header buffer hyper's HTTP/1 side accepts; `max_header_bytes`
/// below it still allows this much on HTTP/1 (HTTP/2 takes the value as it is).
pub const MIN_HEADER_BUFFER: usize = 8192;

/// A server's settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (an IP or a name).
    pub host: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// When set, every request needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Most connections open at once; the next ones are answered 503 and closed.
    pub max_connections: usize,
    /// Largest request head (request line and headers) accepted: 431 beyond.
    pub max_header_bytes: usize,
    /// Largest request body (and WebSocket message) accepted: 413 beyond.
    pub max_body_bytes: usize,
    /// Time a client has to send its request (head and body; 408 and closed
    /// otherwise), and a handler has to answer (503 otherwise).
    pub request_timeout: Duration,
    /// Certificate chain and private key (PEM): https and wss, HTTP/2 through ALPN.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Origins (`https://example.com`, or `*`) allowed to call from a browser page.
    pub cors_origins: Vec<String>,
    /// Most messages waiting to go out to one WebSocket peer or event stream.
    pub max_queued_messages: usize,
    /// Time between pings to a WebSocket peer (0: none); one that sends
    /// nothing through two of them (no pong either) is dropped.
    pub websocket_heartbeat: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8080,
            token: None,
            max_connections: 256,
            max_header_bytes: 65_536,
            max_body_bytes: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            tls: None,
            cors_origins: Vec::new(),
            max_queued_messages: 1024,
            websocket_heartbeat: Duration::from_secs(20),
        }
    }
}

impl ServerConfig {
    /// The address to bind, resolved; refused when it is not loopback and no
    /// token is set (a game must not be open to the network by accident).
    pub fn address(&self) -> Result<SocketAddr, String> {
        for (name, value) in [
            ("max_connections", self.max_connections),
            ("max_header_bytes", self.max_header_bytes),
            ("max_body_bytes", self.max_body_bytes),
            ("max_queued_messages", self.max_queued_messages),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.request_timeout.is_zero() {
            return Err("request_timeout_sec must be more than 0".into());
        }
        let address = crate::listen::resolve(&self.host, self.port)?;
        if !address.ip().is_loopback() && self.token.is_none() {
            return Err(format!(
                "refusing to listen on {address} without a token: other machines could reach it. Set a token \
                 (clients then send 'Authorization: Bearer <token>'), or listen on 127.0.0.1"
            ));
        }
        Ok(address)
    }

    /// Binds the listener (non-blocking, for tokio), so errors are known at once.
    pub fn bind(&self) -> Result<std::net::TcpListener, String> {
        let address = self.address()?;
        let listener = std::net::TcpListener::bind(address).map_err(|e| format!("cannot listen on {address}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| format!("cannot listen on {address}: {e}"))?;
        Ok(listener)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_loopback_host_without_a_token_is_refused_with_a_clear_message() {
        let open = ServerConfig { host: "0.0.0.0".into(), ..Default::default() };
        let message = open.address().unwrap_err();
        assert!(message.contains("without a token") && message.contains("0.0.0.0"), "{message}");
        let with_token = ServerConfig { token: Some("s3cret".into()), ..open };
        assert!(with_token.address().is_ok());
        assert!(ServerConfig { host: "::1".into(), ..Default::default() }.address().is_ok());
        assert!(ServerConfig { host: "localhost".into(), port: 0, ..Default::default() }.address().is_ok());
    }

    #[test]
    fn zero_limits_are_refused() {
        let zero = ServerConfig { max_body_bytes: 0, ..Default::default() };
        assert!(zero.address().unwrap_err().contains("max_body_bytes"));
        let instant = ServerConfig { request_timeout: Duration::ZERO, ..Default::default() };
        assert!(instant.address().unwrap_err().contains("request_timeout_sec"));
    }
}
