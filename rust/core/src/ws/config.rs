//! Settings of one WebSocket client, one field per inspector property, and
//! the upgrade request they make.

use std::path::PathBuf;
use std::time::Duration;

use tokio_tungstenite::tungstenite::{
    client::IntoClientRequest,
    handshake::client::Request,
    http::{HeaderName, HeaderValue, header},
};

use crate::redact;

/// Everything a [`run`](super::run) session needs to know.
///
/// The defaults are the inspector defaults of `WsEcho`; the glue copies the
/// node's properties over them and calls [`WsConfig::validate`].
#[derive(Clone, Debug, PartialEq)]
pub struct WsConfig {
    /// `ws://` or `wss://` address of the server.
    pub url: String,
    /// Subprotocols offered in `Sec-WebSocket-Protocol`, most preferred first.
    pub subprotocols: Vec<String>,
    /// Extra request headers (e.g. `Authorization`), sent with every connect.
    pub headers: Vec<(String, String)>,
    /// A ping goes out this often; a ping unanswered by the next one ends the
    /// connection as lost. Zero disables heartbeats.
    pub heartbeat: Duration,
    /// Largest message accepted in either direction, in bytes. A bigger
    /// incoming one closes the connection with 1009; a bigger outgoing one is
    /// refused.
    pub max_message_bytes: usize,
    /// Messages waiting to be sent (while connecting, reconnecting or while
    /// the socket is busy); one more is refused with an error.
    pub max_queued_messages: usize,
    /// Connect again with backoff after a failed connect or a lost connection.
    pub reconnect: bool,
    /// Ceiling of the first wait before reconnecting; each wait is drawn from the upper half of
    /// a ceiling that doubles from here ([`Backoff`](crate::backoff::Backoff)).
    pub reconnect_min: Duration,
    /// Largest ceiling, so the longest wait before reconnecting.
    pub reconnect_max: Duration,
    /// PEM file of the certificate authorities to trust for `wss://` instead
    /// of the public ones (a private CA). `None`: the Mozilla root set.
    pub ca_file: Option<PathBuf>,
    /// Time allowed for resolving, connecting, the TLS handshake and the
    /// HTTP upgrade together.
    pub connect_timeout: Duration,
    /// Time allowed for the closing handshake before the socket is dropped.
    pub close_timeout: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            url: "ws://127.0.0.1:8765".into(),
            subprotocols: Vec::new(),
            headers: Vec::new(),
            heartbeat: Duration::from_secs(20),
            max_message_bytes: 16 * 1024 * 1024,
            max_queued_messages: 1000,
            reconnect: true,
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(2),
        }
    }
}

/// Headers the handshake writes itself; setting them by hand would break it.
const RESERVED_HEADERS: [&str; 6] =
    ["host", "connection", "upgrade", "sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol"];

impl WsConfig {
    /// Refuses settings that cannot work, with a message naming the property.
    pub fn validate(&self) -> Result<(), String> {
        self.request()?;
        if self.max_message_bytes == 0 {
            return Err("max_message_bytes must be at least 1".into());
        }
        if self.max_queued_messages == 0 {
            return Err("max_queued_messages must be at least 1".into());
        }
        if self.connect_timeout.is_zero() {
            return Err("connect_timeout must be more than 0".into());
        }
        Ok(())
    }

    /// Whether the URL asks for TLS.
    pub fn is_tls(&self) -> bool {
        self.url.trim().get(..6).is_some_and(|s| s.eq_ignore_ascii_case("wss://"))
    }

    /// The upgrade request: URL, subprotocols and headers, checked.
    pub fn request(&self) -> Result<Request, String> {
        let url = self.url.trim();
        let scheme_ok =
            ["ws://", "wss://"].iter().any(|s| url.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s)));
        // Credentials in the url never reach a message.
        let shown = redact(url);
        if !scheme_ok {
            return Err(format!("url must start with ws:// or wss://, got '{shown}'"));
        }
        let mut request = url.into_client_request().map_err(|e| format!("invalid url '{shown}': {e}"))?;
        if request.uri().host().is_none_or(str::is_empty) {
            return Err(format!("invalid url '{shown}': no host"));
        }
        let headers = request.headers_mut();
        if !self.subprotocols.is_empty() {
            for protocol in &self.subprotocols {
                let token_ok = !protocol.is_empty()
                    && protocol.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
                if !token_ok {
                    return Err(format!("invalid subprotocol '{protocol}': use letters, digits and .-_~ only"));
                }
            }
            let value = HeaderValue::from_str(&self.subprotocols.join(", ")).map_err(|e| e.to_string())?;
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
        }
        for (name, value) in &self.headers {
            let header_name =
                HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| format!("invalid header name '{name}'"))?;
            if RESERVED_HEADERS.contains(&header_name.as_str()) {
                let hint = if header_name == header::SEC_WEBSOCKET_PROTOCOL { " (use subprotocols)" } else { "" };
                return Err(format!("header '{name}' is set by the WebSocket handshake itself{hint}"));
            }
            let header_value =
                HeaderValue::from_str(value).map_err(|_| format!("invalid value for header '{name}'"))?;
            headers.append(header_name, header_value);
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_node_and_are_valid() {
        let c = WsConfig::default();
        assert_eq!(c.url, "ws://127.0.0.1:8765");
        assert_eq!(c.max_message_bytes, 16_777_216);
        assert_eq!(c.max_queued_messages, 1000);
        assert_eq!(c.heartbeat, Duration::from_secs(20));
        c.validate().unwrap();
        assert!(!c.is_tls());
    }

    #[test]
    fn request_carries_subprotocols_and_headers() {
        let c = WsConfig {
            url: "WSS://example.com/chat?x=1".into(),
            subprotocols: vec!["chat.v2".into(), "echo".into()],
            headers: vec![("Authorization".into(), "Bearer t".into()), ("X-A".into(), "1".into())],
            ..WsConfig::default()
        };
        assert!(c.is_tls());
        let r = c.request().unwrap();
        assert_eq!(r.headers()["sec-websocket-protocol"], "chat.v2, echo");
        assert_eq!(r.headers()["authorization"], "Bearer t");
        assert_eq!(r.uri().path(), "/chat");
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = |c: WsConfig| c.validate().unwrap_err();
        assert!(bad(WsConfig { url: "http://x".into(), ..Default::default() }).contains("ws://"));
        assert!(bad(WsConfig { url: "ws://".into(), ..Default::default() }).contains("invalid url"));
        // Credentials in a bad url stay out of the message.
        let error = bad(WsConfig { url: "http://bob:hunter2@x".into(), ..Default::default() });
        assert!(error.contains("'http://***@x/'") && !error.contains("bob") && !error.contains("hunter2"), "{error}");
        let error = bad(WsConfig { url: "ws://bob:hunter2@".into(), ..Default::default() });
        assert!(!error.contains("hunter2"), "{error}");
        assert!(bad(WsConfig { subprotocols: vec!["a b".into()], ..Default::default() }).contains("subprotocol"));
        let header = |n: &str, v: &str| WsConfig { headers: vec![(n.into(), v.into())], ..Default::default() };
        assert!(bad(header("Bad Name", "x")).contains("header name"));
        assert!(bad(header("X-Ok", "line\nbreak")).contains("value"));
        assert!(bad(header("Sec-WebSocket-Protocol", "x")).contains("use subprotocols"));
        assert!(bad(WsConfig { max_queued_messages: 0, ..Default::default() }).contains("max_queued_messages"));
        assert!(bad(WsConfig { max_message_bytes: 0, ..Default::default() }).contains("max_message_bytes"));
    }
}
