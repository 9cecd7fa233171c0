//! Opening one Redis connection whose driver future the caller owns: the
//! socket (TCP, TLS through rustls, or a Unix socket), the RESP3 handshake
//! (HELLO, AUTH, SELECT) within a time limit, and errors that say what went
//! wrong in a game developer's words.
//!
//! The redis crate would spawn the connection's driver on the runtime by
//! itself; building the stream here keeps the driver inside the owning task,
//! so cancelling the task closes the socket at once.

use std::{future::Future, path::Path, pin::Pin, sync::Arc, time::Duration};

use redis::{
    AsyncConnectionConfig, ConnectionAddr, ErrorKind, RedisError, ServerErrorKind, aio::MultiplexedConnection,
};
use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{
    address::RedisAddress,
    inbox::{InboxSender, MessageSink},
    limit::RespLimit,
    tap::PushTap,
};

/// The future that reads and writes the connection's socket. It ends when the
/// connection closes, with the reason when we closed it (a reply over
/// `max_message_bytes`); dropping it closes the socket.
pub type Driver = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// A byte stream the redis crate can run a connection over.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Why a connection attempt failed, and whether trying again can help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectError {
    /// A sentence naming the address (redacted) and the cause.
    pub message: String,
    /// Retrying cannot help (wrong password, server too old): give up.
    pub fatal: bool,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Connects and performs the handshake within `timeout`. With an `inbox`,
/// the connection's pub/sub messages go there (through the [`PushTap`]) and
/// its other pushes to the session; without one (the publisher's
/// connection) pushes are dropped.
pub async fn connect(
    address: &RedisAddress,
    timeout: Duration,
    inbox: Option<Arc<dyn MessageSink>>,
) -> Result<(MultiplexedConnection, Driver), ConnectError> {
    open(address, timeout, inbox, AsyncConnectionConfig::new()).await
}

/// Connects a connection for commands only (no pushes) whose replies may take up to
/// `response_timeout` (`None`: no limit), for commands that wait on the server, such as a
/// blocking XREADGROUP or a WAIT; the crate's default limit is half a second.
pub async fn connect_commands(
    address: &RedisAddress,
    timeout: Duration,
    response_timeout: Option<Duration>,
) -> Result<(MultiplexedConnection, Driver), ConnectError> {
    open(address, timeout, None, AsyncConnectionConfig::new().set_response_timeout(response_timeout)).await
}

async fn open(
    address: &RedisAddress,
    timeout: Duration,
    inbox: Option<Arc<dyn MessageSink>>,
    mut config: AsyncConnectionConfig,
) -> Result<(MultiplexedConnection, Driver), ConnectError> {
    let attempt = async {
        // The bound sits under the tap too: the tap also holds a frame until it is whole.
        let limited = RespLimit::new(open_stream(address).await?, address.max_message_bytes());
        let refusal = limited.refusal();
        let mut stream: Box<dyn Io> = Box::new(limited);
        if let Some(inbox) = inbox {
            stream = Box::new(PushTap::new(stream, inbox.clone()));
            config = config.set_push_sender(InboxSender(inbox));
        }
        let (connection, driver) =
            MultiplexedConnection::new_with_config(address.info().redis_settings(), stream, config)
                .await
                .map_err(|e| describe(address, &e))?;
        let driver = async move {
            driver.await;
            refusal.get().cloned()
        };
        Ok((connection, Box::pin(driver) as Driver))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError {
            message: format!(
                "{}: no Redis handshake within {:.1} s (is this a Redis server, and is the network up?)",
                address.shown(),
                timeout.as_secs_f64()
            ),
            fatal: false,
        }),
    }
}

async fn open_stream(address: &RedisAddress) -> Result<Box<dyn Io>, ConnectError> {
    let io_error = |what: &str, e: std::io::Error| ConnectError {
        message: format!("{}: {what}: {}", address.shown(), io_reason(&e)),
        fatal: false,
    };
    match address.info().addr() {
        ConnectionAddr::Tcp(host, port) => {
            let tcp = tcp_connect(host, *port).await.map_err(|e| io_error("cannot connect", e))?;
            Ok(Box::new(tcp))
        }
        ConnectionAddr::TcpTls { host, port, insecure, .. } => {
            let config = tls_config(*insecure, address.ca_file())
                .map_err(|e| ConnectError { message: format!("{}: {e}", address.shown()), fatal: true })?;
            let tcp = tcp_connect(host, *port).await.map_err(|e| io_error("cannot connect", e))?;
            let server_name = ServerName::try_from(host.clone()).map_err(|_| ConnectError {
                message: format!("{}: '{host}' is not a valid TLS server name", address.shown()),
                fatal: true,
            })?;
            let connector = tokio_rustls::TlsConnector::from(config);
            let tls = connector.connect(server_name, tcp).await.map_err(|e| {
                let hint = crate::ws::tls::untrusted_hint(&e);
                let mut error = io_error("TLS handshake failed", e);
                error.message.push_str(hint);
                error
            })?;
            Ok(Box::new(tls))
        }
        #[cfg(unix)]
        ConnectionAddr::Unix(path) => {
            let unix = tokio::net::UnixStream::connect(path).await.map_err(|e| io_error("cannot connect", e))?;
            Ok(Box::new(unix))
        }
        other => {
            Err(ConnectError { message: format!("{}: unsupported address {other:?}", address.shown()), fatal: true })
        }
    }
}

async fn tcp_connect(host: &str, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((host, port)).await?;
    // Subscriptions and publishes are small writes that must not wait for Nagle.
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused (is redis-server running on that port?)".into(),
        K::TimedOut => "connection timed out".into(),
        _ if e.to_string().contains("failed to lookup address")
            || e.to_string().contains("Name or service not known") =>
        {
            format!("unknown host ({e})")
        }
        _ => e.to_string(),
    }
}

/// Turns a crate error into a sentence, and says whether retrying can help.
pub fn describe(address: &RedisAddress, e: &RedisError) -> ConnectError {
    let shown = address.shown();
    let detail = e.detail().unwrap_or("");
    let code = e.code().unwrap_or("");
    let auth = matches!(e.kind(), ErrorKind::AuthenticationFailed)
        || matches!(code, "WRONGPASS" | "NOAUTH")
        || detail.contains("WRONGPASS")
        || detail.contains("NOAUTH");
    let (message, fatal) = if auth {
        let hint = if code == "NOAUTH" || detail.contains("NOAUTH") {
            "the server requires a password: put it in the url (redis://:password@host:port)"
        } else {
            "wrong user name or password"
        };
        (format!("{shown}: authentication failed: {hint}"), true)
    } else if matches!(e.kind(), ErrorKind::Parse) {
        (format!("{shown}: the server's reply is not Redis protocol (is this port a Redis server?)"), false)
    } else if matches!(e.kind(), ErrorKind::RESP3NotSupported) || detail.contains("unknown command 'HELLO'") {
        (format!("{shown}: the server does not speak RESP3 (Redis 6 or newer is needed)"), true)
    } else if matches!(e.kind(), ErrorKind::Server(ServerErrorKind::ResponseError))
        && code == "ERR"
        && detail.contains("DB index")
    {
        (format!("{shown}: {detail}"), true)
    } else if let Some(io) = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>()) {
        (format!("{shown}: {}", io_reason(io)), false)
    } else if e.is_connection_dropped() || e.is_io_error() {
        (format!("{shown}: connection closed by the server ({e})"), false)
    } else {
        (format!("{shown}: {e}"), false)
    };
    // The server's own words may echo what we sent it.
    ConnectError { message: address.scrub(&message), fatal }
}

/// Verifying (public roots, or `ca_file`'s CAs) unless the url says `#insecure`.
fn tls_config(insecure: bool, ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    if !insecure {
        return crate::ws::tls::client_config(ca_file);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `rediss://...#insecure`: encrypt, but accept any certificate (a dev server
/// with a self-signed one). Signatures are still checked.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
