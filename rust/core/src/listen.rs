//! Where a server node listens: its `host` and `port` properties resolved and
//! bound at once, so a bad address or a port in use fails `start()` with a
//! clear message (TcpSpawnerServer, HttpServer).

use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};

/// `host` (an IP, bracketed or not, or a name) and `port` as an address.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, port)),
        Err(_) => (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| format!("cannot resolve host '{host}'")),
    }
}

/// A non-blocking listener on `address` (for tokio's `from_std`).
pub fn bind(address: SocketAddr) -> Result<TcpListener, String> {
    let listener = TcpListener::bind(address).map_err(|e| format!("cannot listen on {address}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| format!("cannot listen on {address}: {e}"))?;
    Ok(listener)
}
