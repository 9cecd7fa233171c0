//! Opening one connection: resolve, TCP connect, TLS handshake, HTTP upgrade,
//! each failure turned into a message that says which step failed and why.

use std::net::SocketAddr;

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, client_async_with_config,
    tungstenite::{self, http::header, protocol::WebSocketConfig},
};

use super::config::WsConfig;
use super::tls;
use crate::redact;

/// An open WebSocket, plain or TLS.
pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A connection that completed its upgrade.
pub struct Connection {
    /// The socket.
    pub stream: WsStream,
    /// The subprotocol the server chose, or "" when none was.
    pub protocol: String,
}

/// How much tungstenite reads per read call. It zero-fills that much of its
/// buffer before each read (128 KiB by default, several microseconds a read
/// when messages are small); a larger message still reserves its full length.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// The tungstenite limits for `config`: both the message and any single
/// frame are capped, so an oversize length header is refused before the
/// payload is buffered.
fn protocol_config(config: &WsConfig) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(config.max_message_bytes))
        .max_frame_size(Some(config.max_message_bytes))
}

/// Connects and upgrades, within `config.connect_timeout`.
pub async fn connect(config: &WsConfig) -> Result<Connection, String> {
    let request = config.request()?;
    let uri = request.uri().clone();
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let tls = config.is_tls();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    // Configuration errors come before any network traffic.
    let tls_config = if tls { Some(tls::client_config(config.ca_file.as_deref())?) } else { None };

    let attempt = async {
        let tcp = connect_tcp(&host, port).await?;
        let stream = match tls_config {
            None => MaybeTlsStream::Plain(tcp),
            Some(tls_config) => {
                let name =
                    ServerName::try_from(host.clone()).map_err(|e| format!("invalid TLS server name '{host}': {e}"))?;
                let stream =
                    TlsConnector::from(tls_config).connect(name, tcp).await.map_err(|e| tls_error(&host, port, &e))?;
                MaybeTlsStream::Rustls(stream)
            }
        };
        let (stream, response) = client_async_with_config(request, stream, Some(protocol_config(config)))
            .await
            .map_err(|e| upgrade_error(&host, port, e))?;
        let protocol = response
            .headers()
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok(Connection { stream, protocol })
    };
    match tokio::time::timeout(config.connect_timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "connecting to {} timed out after {:.1} s",
            redact(config.url.trim()),
            config.connect_timeout.as_secs_f64()
        )),
    }
}

/// Resolves `host` and connects to its first address that answers.
async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, String> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve host '{host}': {e}"))?
        .collect();
    let mut last_error = format!("cannot resolve host '{host}': no address");
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                // Games send small messages and want them now.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last_error = format!("connection refused by {address} (is the server running?)");
            }
            Err(e) => last_error = format!("cannot connect to {address}: {e}"),
        }
    }
    Err(last_error)
}

fn tls_error(host: &str, port: u16, error: &std::io::Error) -> String {
    format!("TLS handshake with {host}:{port} failed: {error}{}", super::tls::untrusted_hint(error))
}

fn upgrade_error(host: &str, port: u16, error: tungstenite::Error) -> String {
    match error {
        tungstenite::Error::Http(response) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(200)]).trim().replace(['\r', '\n'], " "))
                .filter(|b| !b.is_empty())
                .map(|b| format!(": {b}"))
                .unwrap_or_default();
            format!(
                "{host}:{port} refused the WebSocket upgrade with HTTP {} {}{body}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
        }
        other => format!("WebSocket handshake with {host}:{port} failed: {other}"),
    }
}
