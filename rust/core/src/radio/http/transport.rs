//! The transport under a stream's HTTP: a TCP connection, with rustls on it for https
//! (always verifying the server), or canned bytes for the fuzz targets.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};
use url::{Host, Url};

use super::{OpenError, OpenOptions};
use crate::ws::tls;

/// Does the TLS handshake with `host` on `tcp` (connected to `host`:`port`).
pub(super) async fn tls_handshake(
    host: &str,
    port: u16,
    tcp: TcpStream,
    config: Arc<ClientConfig>,
) -> Result<Transport, OpenError> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| OpenError::permanent(format!("invalid TLS server name '{host}': {e}")))?;
    let stream = TlsConnector::from(config).connect(name, tcp).await.map_err(|e| tls_error(host, port, e))?;
    Ok(Transport::Tls(Box::new(stream)))
}

/// The rustls configuration for https, made once per [`super::open`].
pub(super) fn https_config(
    cache: &mut Option<Arc<ClientConfig>>,
    options: &OpenOptions,
) -> Result<Arc<ClientConfig>, OpenError> {
    if cache.is_none() {
        *cache = Some(tls::client_config(options.ca_file.as_deref()).map_err(OpenError::permanent)?);
    }
    Ok(cache.clone().expect("set above"))
}

/// The host to connect to (IPv6 without brackets).
pub(super) fn host_of(url: &Url) -> String {
    match url.host() {
        Some(Host::Domain(domain)) => domain.to_string(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        None => String::new(),
    }
}

/// Resolves `host` and connects to its first address that answers.
pub(super) async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, OpenError> {
    let addresses: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| OpenError::transient(format!("cannot resolve host '{host}': {e}")))?
        .collect();
    let mut error = format!("cannot resolve host '{host}': no address");
    for address in addresses {
        // `radio.example:8000 (192.0.2.1)`, or just the address when the host is one.
        let target = if host.parse::<std::net::IpAddr>().is_ok() {
            address.to_string()
        } else {
            format!("{host}:{port} ({})", address.ip())
        };
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                error = format!("connection refused by {target} (is the server running?)");
            }
            Err(e) => error = format!("cannot connect to {target}: {e}"),
        }
    }
    Err(OpenError::transient(error))
}

/// A failed TLS handshake: permanent when rustls refused (certificate, protocol), transient
/// when the connection broke.
fn tls_error(host: &str, port: u16, error: io::Error) -> OpenError {
    let refused = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).is_some();
    let hint = crate::ws::tls::untrusted_hint(&error);
    let message = format!("TLS handshake with {host}:{port} failed: {error}{hint}");
    if refused { OpenError::permanent(message) } else { OpenError::transient(message) }
}

/// A TCP or TLS stream.
pub(super) enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Canned server bytes (the fuzz targets' server).
    #[cfg(feature = "fuzzing")]
    Memory(crate::fuzzing::MemoryIo),
}

impl Transport {
    /// The TCP socket's descriptor (-1 for none).
    #[cfg(unix)]
    pub(super) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Transport::Plain(s) => s.as_raw_fd(),
            Transport::Tls(s) => s.get_ref().0.as_raw_fd(),
            #[cfg(feature = "fuzzing")]
            Transport::Memory(_) => -1,
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            #[cfg(feature = "fuzzing")]
            Transport::Memory(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            #[cfg(feature = "fuzzing")]
            Transport::Memory(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            #[cfg(feature = "fuzzing")]
            Transport::Memory(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
            #[cfg(feature = "fuzzing")]
            Transport::Memory(_) => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(feature = "fuzzing")]
            Transport::Memory(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(feature = "fuzzing")]
            Transport::Memory(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
