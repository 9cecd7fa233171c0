//! The WsEcho demo's local WebSocket echo server, so `cargo xtask demo` works without the
//! internet: every text and binary message goes back to its sender. Blocking tungstenite, one
//! thread per connection (a demo has a handful); it lives until xtask exits.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use anyhow::{Context, Result};
use tungstenite::{Message, protocol::WebSocketConfig};

/// The port WsEcho's default `url` points at; a free one is used when it is taken.
pub const DEFAULT_PORT: u16 = 8765;

/// Largest message echoed (the node's default `max_message_bytes`).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Connections served at once; more are closed at once.
const MAX_CLIENTS: usize = 256;

/// Starts the server on 127.0.0.1 (port 8765 if free) and returns its `ws://` URL.
pub fn start() -> Result<String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, DEFAULT_PORT))
        .or_else(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .context("binding the demo's WebSocket echo server")?;
    let port = listener.local_addr()?.port();
    let clients = Arc::new(AtomicUsize::new(0));
    thread::Builder::new().name("ws-echo-accept".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            if clients.load(Ordering::Relaxed) >= MAX_CLIENTS {
                continue;
            }
            clients.fetch_add(1, Ordering::Relaxed);
            let clients = clients.clone();
            let spawned = thread::Builder::new().name("ws-echo".into()).spawn(move || {
                echo(stream);
                clients.fetch_sub(1, Ordering::Relaxed);
            });
            if spawned.is_err() {
                eprintln!("xtask: ws echo server: cannot start a connection thread");
            }
        }
    })?;
    Ok(format!("ws://127.0.0.1:{port}"))
}

/// Serves one connection until it closes or fails.
fn echo(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let config =
        WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE_BYTES)).max_frame_size(Some(MAX_MESSAGE_BYTES));
    let Ok(mut socket) = tungstenite::accept_with_config(stream, Some(config)) else {
        return;
    };
    // Pings are answered and closes returned by tungstenite inside `read`.
    while let Ok(message) = socket.read() {
        if matches!(message, Message::Text(_) | Message::Binary(_)) && socket.send(message).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_text_and_binary() {
        let url = start().unwrap();
        let (mut client, _) = tungstenite::connect(&url).unwrap();
        client.send(Message::text("hello")).unwrap();
        client.send(Message::binary(vec![0u8, 255])).unwrap();
        assert_eq!(client.read().unwrap(), Message::text("hello"));
        assert_eq!(client.read().unwrap(), Message::binary(vec![0u8, 255]));
        client.close(None).unwrap();
    }
}
