//! The local WebSocket echo server, in one place for the WsEcho demo (`cargo xtask demo` starts
//! it, so the demo works without the internet) and the WsEcho benchmarks (a release build, so the
//! server is neither the bottleneck nor on Godot's main thread). Loopback only.
//!
//! Every connection has its own thread (a demo has a handful, the benchmarks at most a few
//! hundred) with Nagle off. A text or binary message is echoed at once (one write and flush per
//! message: the round-trip row has one message in flight), except the text command
//! `flood COUNT PERIOD_US TICKS BYTES text|binary`: the server then pushes COUNT messages of
//! BYTES bytes every PERIOD_US microseconds, TICKS times (on a fixed schedule: a late tick is
//! caught up at once), each tick's messages written in one batch and flushed once, so the
//! client measures receiving alone. Messages up to [`MAX_MESSAGE_BYTES`] are taken, above the
//! clients' 16 MiB default so the server is never the limit.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tungstenite::{Message, WebSocket, protocol::WebSocketConfig};

/// Largest message or frame accepted (the clients' default limit is 16 MiB).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Connections served at once; more are closed at once.
const MAX_CLIENTS: usize = 512;

/// Most messages one flood command may push, all ticks together.
const MAX_FLOOD_MESSAGES: u64 = 10_000_000;

/// Serves `listener` from a thread of its own, a thread per connection.
pub fn serve(listener: TcpListener) -> Result<()> {
    let clients = Arc::new(AtomicUsize::new(0));
    thread::Builder::new().name("ws-echo-accept".into()).spawn(move || accept(listener, clients))?;
    Ok(())
}

fn accept(listener: TcpListener, clients: Arc<AtomicUsize>) {
    for stream in listener.incoming().flatten() {
        if clients.load(Ordering::Relaxed) >= MAX_CLIENTS {
            continue;
        }
        clients.fetch_add(1, Ordering::Relaxed);
        let clients = clients.clone();
        let spawned = thread::Builder::new().name("ws-echo".into()).spawn(move || {
            if let Err(err) = serve_connection(stream) {
                eprintln!("testbed ws-echo: connection ended: {err:#}");
            }
            clients.fetch_sub(1, Ordering::Relaxed);
        });
        if spawned.is_err() {
            eprintln!("testbed ws-echo: cannot start a connection thread");
        }
    }
}

/// Serves one connection until it closes or fails.
fn serve_connection(stream: TcpStream) -> Result<()> {
    stream.set_nodelay(true)?;
    let config =
        WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE_BYTES)).max_frame_size(Some(MAX_MESSAGE_BYTES));
    let mut socket = tungstenite::accept_with_config(stream, Some(config)).context("WebSocket handshake")?;
    loop {
        // Pings are answered and closes returned by tungstenite inside `read`.
        let message = match socket.read() {
            Ok(message) => message,
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return Ok(()),
            // Clients that are freed or closed without a handshake (the benchmarks do both).
            Err(tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)) => {
                return Ok(());
            }
            Err(err) if client_left(&err) => return Ok(()),
            Err(err) => return Err(err.into()),
        };
        match message {
            Message::Text(ref text) if text.starts_with("flood ") => {
                let command = text.to_string();
                flood(&mut socket, &command).with_context(|| format!("`{command}`"))?;
            }
            Message::Text(_) | Message::Binary(_) => socket.send(message)?,
            _ => {}
        }
    }
}

/// Runs one `flood COUNT PERIOD_US TICKS BYTES text|binary` command.
fn flood(socket: &mut WebSocket<TcpStream>, command: &str) -> Result<()> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let [_, count, period_us, ticks, bytes, kind] = words[..] else {
        bail!("expected `flood COUNT PERIOD_US TICKS BYTES text|binary`");
    };
    let count: u64 = count.parse().context("COUNT")?;
    let period = Duration::from_micros(period_us.parse().context("PERIOD_US")?);
    let ticks: u64 = ticks.parse().context("TICKS")?;
    let bytes: usize = bytes.parse().context("BYTES")?;
    if count.saturating_mul(ticks) > MAX_FLOOD_MESSAGES || bytes > 64 * 1024 {
        bail!("too large a flood (at most {MAX_FLOOD_MESSAGES} messages of at most 64 KiB)");
    }
    let text = match kind {
        "text" => true,
        "binary" => false,
        other => bail!("unknown kind `{other}`"),
    };
    let payload = "x".repeat(bytes);
    let start = Instant::now();
    for tick in 0..ticks {
        let due = start + period * u32::try_from(tick).unwrap_or(u32::MAX);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        for _ in 0..count {
            let message =
                if text { Message::text(payload.as_str()) } else { Message::binary(payload.as_bytes().to_vec()) };
            match socket.write(message) {
                // The benchmarks close a client in the middle of a long flood once they measured enough.
                Err(err) if client_left(&err) => return Ok(()),
                result => result?,
            }
        }
        match socket.flush() {
            Err(err) if client_left(&err) => return Ok(()),
            result => result?,
        }
    }
    Ok(())
}

/// Whether `err` says the client went away (closed or reset its connection).
fn client_left(err: &tungstenite::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    matches!(err, tungstenite::Error::Io(io) if matches!(io.kind(), BrokenPipe | ConnectionReset | ConnectionAborted))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn serve_one() -> String {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        serve(listener).unwrap();
        format!("ws://127.0.0.1:{port}")
    }

    #[test]
    fn echoes_and_floods() {
        let (mut client, _) = tungstenite::connect(serve_one()).unwrap();
        client.send(Message::text("hello")).unwrap();
        client.send(Message::binary(vec![0u8, 255])).unwrap();
        assert_eq!(client.read().unwrap(), Message::text("hello"));
        assert_eq!(client.read().unwrap(), Message::binary(vec![0u8, 255]));
        client.send(Message::text("flood 3 1000 2 10 binary")).unwrap();
        for _ in 0..6 {
            assert_eq!(client.read().unwrap(), Message::binary(vec![b'x'; 10]));
        }
        client.send(Message::text("after")).unwrap();
        assert_eq!(client.read().unwrap(), Message::text("after"));
        client.close(None).unwrap();
    }
}
