//! What the spawner server asks of its owner (the node glue), and how the
//! owner answers a line: later, from any thread, through its [`Reply`].

use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::relay::{Bounds, Relay};

/// Callbacks from [`serve`](super::serve) to the code that spawns nodes.
///
/// Calls are synchronous, on the thread polling the server (the runtime's
/// I/O worker in the game), from inside the server future. Every client of
/// the server calls the same handler, hence `&self`. A line is answered
/// later through its [`Reply`], from any thread: the glue spawns the node on
/// the main thread and answers from there. When the server future is
/// dropped (the node stopped) no callback runs; the handler is simply
/// dropped with it.
pub trait SpawnHandler: Send + Sync {
    /// What the handler keeps per client, made when it connects (the glue:
    /// the peer as the engine's string, made once) and handed back with each
    /// of its lines.
    type Client: Send;

    /// Whether the handler can take another line or client now; when not, it
    /// wakes `cx` once it can. The server reads no line and accepts no client
    /// before this is ready, so a busy consumer makes clients wait (TCP flow
    /// control) instead of filling memory. The default is always ready.
    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let _ = cx;
        Poll::Ready(())
    }

    /// A client was admitted. `peer` is `ip:port` (`[ip]:port` for IPv6).
    fn client_connected(&self, peer: &str) -> Self::Client;

    /// A non-empty line arrived (after the token, within the rate limit).
    /// `line` is the raw text without its terminator, the handler's to keep;
    /// sanitizing it into a node name is the handler's job. The client's
    /// replies to later lines wait for this one's, given through `reply`.
    fn line_received(&self, client: &Self::Client, line: String, reply: Reply);

    /// A client's connection is closed, whatever the reason. Called once for
    /// every `client_connected`, with what it made.
    fn client_disconnected(&self, client: Self::Client);

    /// A client was refused or closed for a protocol reason (`too many
    /// clients`, `bad token`, `line too long`, `idle timeout`, `not reading
    /// replies`), for the node's `error` signal and log. For `too many
    /// clients` no `client_connected` came first. The client's `ERR <reason>`
    /// is written once `reported` is dropped: whoever watches the reports
    /// learns of the rejection before the client does.
    fn client_rejected(&self, peer: &str, reason: &str, reported: Reported) {
        let _ = (peer, reason, reported);
    }

    /// `accept` failed (out of file descriptors, ...). The server keeps
    /// running and retries after a growing pause (10 ms up to 1 s).
    fn accept_failed(&self, error: &io::Error) {
        let _ = error;
    }
}

/// The answer a dropped [`Reply`] gives: whoever held it is gone.
const GONE: &str = "server is gone";

/// One line's answer, as its client receives it: its number in the client's
/// line order, and `Ok(name)` or `Err(reason)`.
pub(crate) type Answer = (u64, Result<String, String>);

/// Where a client's answers arrive, from any thread, in any order.
pub(crate) type Answers = Relay<Answer>;

/// A new, empty [`Answers`]. Answers need no bound: each one is for a line
/// the client read, and the handler's [`SpawnHandler::poll_ready`] bounds those.
pub(crate) fn answers() -> Arc<Answers> {
    Arc::new(Relay::new(Bounds { messages: usize::MAX, bytes: usize::MAX }))
}

/// The answer owed to one line. [`send`](Self::send) it once, from any
/// thread: `Ok(name)` is written `OK <name>`, `Err(reason)` `ERR <reason>`
/// (the client stays). Dropped unanswered, it answers `ERR server is gone`,
/// so a client never waits for a line no one will answer.
#[derive(Debug)]
pub struct Reply {
    answers: Option<Arc<Answers>>,
    line: u64,
}

impl Reply {
    pub(crate) fn new(answers: Arc<Answers>, line: u64) -> Self {
        Reply { answers: Some(answers), line }
    }

    /// Answers the line.
    pub fn send(mut self, answer: Result<String, String>) {
        self.answer(answer);
    }

    fn answer(&mut self, answer: Result<String, String>) {
        if let Some(answers) = self.answers.take() {
            // Fails only once the client is gone, when no one is waiting.
            let _ = answers.push_now((self.line, answer), 0);
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if self.answers.is_some() {
            self.answer(Err(GONE.to_owned()));
        }
    }
}

/// Held while a rejection is reported (see [`SpawnHandler::client_rejected`]);
/// dropping it, on any thread, lets the client's `ERR <reason>` go out.
#[derive(Debug)]
pub struct Reported {
    /// Answered (with anything) when this drops.
    _go_ahead: Reply,
}

impl Reported {
    /// What the client's last reply waits for: its place in the line order.
    pub(crate) fn new(answers: Arc<Answers>, line: u64) -> Self {
        Reported { _go_ahead: Reply::new(answers, line) }
    }

    /// For a rejection no reply follows (the client is closed at once).
    pub(crate) fn nothing() -> Self {
        Reported { _go_ahead: Reply { answers: None, line: 0 } }
    }
}
