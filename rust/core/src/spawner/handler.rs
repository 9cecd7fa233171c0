//! What the spawner server asks of its owner (the node glue).

use std::io;

/// Callbacks from [`serve`](super::serve) to the code that spawns nodes.
///
/// Calls are synchronous, on the thread polling the server (Godot's main
/// thread), from inside the server future and never re-entrantly: the server
/// owns the handler and borrows it mutably only for the duration of one call.
/// When the server future is dropped (the node left the tree) no callback
/// runs; the handler is simply dropped with it.
pub trait SpawnHandler {
    /// A client was admitted. `peer` is `ip:port` (`[ip]:port` for IPv6).
    fn client_connected(&mut self, peer: &str) {
        let _ = peer;
    }

    /// A non-empty line arrived (after the token, within the rate limit).
    /// `line` is the raw text without its terminator; sanitizing it into a
    /// node name is the handler's job. `Ok(name)` is answered `OK <name>`,
    /// `Err(reason)` is answered `ERR <reason>` and the client stays.
    fn line_received(&mut self, peer: &str, line: &str) -> Result<String, String>;

    /// A client's connection is closed, whatever the reason. Called once for
    /// every `client_connected`.
    fn client_disconnected(&mut self, peer: &str) {
        let _ = peer;
    }

    /// A client was refused or closed for a protocol reason (`too many
    /// clients`, `bad token`, `line too long`, `idle timeout`, `not reading
    /// replies`), for the node's `error` signal and log. For `too many
    /// clients` no `client_connected` came first.
    fn client_rejected(&mut self, peer: &str, reason: &str) {
        let _ = (peer, reason);
    }

    /// `accept` failed (out of file descriptors, ...). The server keeps
    /// running and retries after a growing pause (10 ms up to 1 s).
    fn accept_failed(&mut self, error: &io::Error) {
        let _ = error;
    }
}

impl<H: SpawnHandler + ?Sized> SpawnHandler for Box<H> {
    fn client_connected(&mut self, peer: &str) {
        (**self).client_connected(peer);
    }
    fn line_received(&mut self, peer: &str, line: &str) -> Result<String, String> {
        (**self).line_received(peer, line)
    }
    fn client_disconnected(&mut self, peer: &str) {
        (**self).client_disconnected(peer);
    }
    fn client_rejected(&mut self, peer: &str, reason: &str) {
        (**self).client_rejected(peer, reason);
    }
    fn accept_failed(&mut self, error: &io::Error) {
        (**self).accept_failed(error);
    }
}
