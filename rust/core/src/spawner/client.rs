//! One client connection: read lines, answer them, enforce the per-client
//! limits, close politely. Runs as a future owned by the server future.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::coop::consume_budget;
use tokio::time::{Instant, sleep_until, timeout};

use crate::reactor::yield_if_over_budget;

use super::auth::ct_eq;
use super::codec::{LineEvent, LineReader};
use super::config::SpawnerConfig;
use super::handler::SpawnHandler;
use super::rate::TokenBucket;
use super::reply::ReplyQueue;
use super::stats::SpawnerStats;

/// Replies are batched until this many bytes are queued or input pauses:
/// one write per batch instead of one per line under a flood.
const FLUSH_AT: usize = 8 * 1024;

/// How long a closing client may take to receive its last replies (and to
/// see our FIN) before the socket is dropped regardless.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Input discarded after a fatal error before closing. Closing with unread
/// input makes the kernel send RST, and some stacks then throw away the
/// `ERR` reply the peer has not read yet; a short drain avoids that for a
/// peer that stops sending, without letting a flooder keep us busy.
const CLOSE_DRAIN_BYTES: usize = 64 * 1024;

/// State every client future shares, owned by the server future.
pub(crate) struct Shared<H> {
    pub(crate) config: SpawnerConfig,
    /// Borrowed mutably only for the duration of one synchronous callback,
    /// and never across an `.await`, so borrows cannot overlap.
    pub(crate) handler: RefCell<H>,
    pub(crate) stats: std::rc::Rc<SpawnerStats>,
}

impl<H: SpawnHandler> Shared<H> {
    pub(crate) fn handler(&self) -> std::cell::RefMut<'_, H> {
        self.handler.borrow_mut()
    }

    /// Reports a protocol rejection to the stats and the handler.
    pub(crate) fn reject(&self, peer: &str, reason: &str) {
        self.stats.rejected();
        self.handler().client_rejected(peer, reason);
    }
}

/// Counts a client in [`SpawnerStats::clients`] from admission until its
/// future is dropped, whether it finished or the server was dropped.
pub(crate) struct ClientSlot<'a>(&'a SpawnerStats);

impl<'a> ClientSlot<'a> {
    pub(crate) fn new(stats: &'a SpawnerStats) -> Self {
        stats.client_opened();
        ClientSlot(stats)
    }
}

impl Drop for ClientSlot<'_> {
    fn drop(&mut self) {
        self.0.client_closed();
    }
}

/// How a client's session ended, which decides how politely it is closed.
enum Close {
    /// The peer finished sending: answer what it sent, then close.
    Finished,
    /// A fatal `ERR` is queued: deliver it, then close.
    Fatal,
    /// The connection is broken or the peer ignores us: close now.
    Abort,
}

/// What woke the client loop.
enum Step {
    Input(io::Result<LineEvent>),
    Wrote(io::Result<usize>),
    Timer,
}

/// Serves one admitted client until it leaves or is closed.
pub(crate) async fn run<H: SpawnHandler>(
    shared: &Shared<H>,
    mut stream: TcpStream,
    peer: String,
    slot: ClientSlot<'_>,
) {
    // Replies are tiny and batched already; Nagle would only add latency.
    let _ = stream.set_nodelay(true);
    shared.handler().client_connected(&peer);
    session(shared, &mut stream, &peer).await;
    drop(stream);
    drop(slot);
    shared.handler().client_disconnected(&peer);
}

async fn session<H: SpawnHandler>(shared: &Shared<H>, stream: &mut TcpStream, peer: &str) {
    let config = &shared.config;
    let stats = &*shared.stats;
    let (reader, mut writer) = stream.split();
    let mut lines = LineReader::new(reader, config.max_line_bytes);
    let mut replies = ReplyQueue::new();
    let token = config.required_token();
    let mut authenticated = token.is_none();
    let unlimited = config.max_spawns_per_second == 0;
    let mut bucket = TokenBucket::new(config.max_spawns_per_second, Instant::now());

    // Idle detection without touching the timer per byte: the sleep is armed
    // for `last_input + idle`; when it fires early because input came in
    // meanwhile, it is re-armed once from the newer `last_input`.
    let idle = config.idle_timeout;
    let idle_enabled = !idle.is_zero();
    let mut last_input = Instant::now();
    let mut timer = pin!(sleep_until(deadline_after(last_input, idle)));
    let mut bytes_seen = 0u64;

    let close = loop {
        // Once the step's time is spent, this client waits for the next
        // frame before reading (and so before spawning). The server polls
        // every woken client in one go: after a burst that is a thousand of
        // them, each of which must then cost a clock read, not a read and a
        // spawn (tokio's budget alone allows 128 spawns a poll).
        yield_if_over_budget().await;
        let step = poll_fn(|cx| {
            stats.client_polled();
            if replies.len() >= FLUSH_AT
                && let Poll::Ready(r) = replies.poll_write_to(cx, &mut writer)
            {
                return Poll::Ready(Step::Wrote(r));
            }
            let input = lines.poll_event(cx);
            let read = lines.bytes_read();
            if read != bytes_seen {
                // Any byte counts as life, including partial and empty lines.
                stats.bytes_in(read - bytes_seen);
                stats.line_buffer(lines.peak_buffered());
                bytes_seen = read;
                last_input = Instant::now();
            }
            if let Poll::Ready(event) = input {
                return Poll::Ready(Step::Input(event));
            }
            if !replies.is_empty()
                && replies.len() < FLUSH_AT
                && let Poll::Ready(r) = replies.poll_write_to(cx, &mut writer)
            {
                return Poll::Ready(Step::Wrote(r));
            }
            if idle_enabled && timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Step::Timer);
            }
            Poll::Pending
        })
        .await;

        let line = match step {
            Step::Wrote(Ok(_)) => continue,
            Step::Wrote(Err(_)) | Step::Input(Err(_)) => break Close::Abort,
            Step::Input(Ok(LineEvent::Eof)) => break Close::Finished,
            Step::Timer => {
                let deadline = deadline_after(last_input, idle);
                if Instant::now() >= deadline {
                    error_reply(stats, &mut replies, "idle timeout");
                    shared.reject(peer, "idle timeout");
                    break Close::Fatal;
                }
                timer.as_mut().reset(deadline);
                continue;
            }
            Step::Input(Ok(LineEvent::TooLong)) => {
                stats.line();
                error_reply(stats, &mut replies, "line too long");
                shared.reject(peer, "line too long");
                break Close::Fatal;
            }
            Step::Input(Ok(LineEvent::InvalidUtf8)) => {
                stats.line();
                None
            }
            Step::Input(Ok(LineEvent::Line(text))) => {
                stats.line();
                Some(text)
            }
        };
        if !authenticated {
            // Invalid UTF-8 cannot be the token either.
            let good = match (&line, token) {
                (Some(text), Some(token)) => ct_eq(text.as_bytes(), token.as_bytes()),
                _ => false,
            };
            if !good {
                error_reply(stats, &mut replies, "bad token");
                shared.reject(peer, "bad token");
                break Close::Fatal;
            }
            authenticated = true;
            replies.push_reply("OK", "authenticated");
        } else if let Some(text) = line {
            // No clock read per line when unlimited (the flood benchmark).
            if unlimited || bucket.try_take(Instant::now()) {
                let result = shared.handler().line_received(peer, &text);
                match result {
                    Ok(name) => {
                        stats.spawned();
                        replies.push_reply("OK", &name);
                    }
                    Err(reason) => error_reply(stats, &mut replies, &reason),
                }
            } else {
                error_reply(stats, &mut replies, "rate limited");
            }
        } else {
            error_reply(stats, &mut replies, "invalid utf-8");
        }

        stats.reply_backlog(replies.len());
        if replies.len() > config.max_reply_backlog {
            // It sends but does not read: holding its replies would let it
            // grow our memory; the kernel buffers are already full too.
            shared.reject(peer, "not reading replies");
            break Close::Abort;
        }
        // A flood is processed from buffered bytes without touching the
        // socket; spend tokio's budget per line so the step can end on time
        // and other clients get their turn.
        consume_budget().await;
    };

    match close {
        Close::Abort => {}
        Close::Finished => {
            let _ = timeout(CLOSE_LINGER, async {
                replies.flush_to(&mut writer).await?;
                writer.shutdown().await
            })
            .await;
        }
        Close::Fatal => {
            let _ = timeout(CLOSE_LINGER, async {
                replies.flush_to(&mut writer).await?;
                writer.shutdown().await?;
                drain(lines.get_mut(), CLOSE_DRAIN_BYTES).await
            })
            .await;
        }
    }
}

/// Queues `ERR <reason>` and counts it.
fn error_reply(stats: &SpawnerStats, replies: &mut ReplyQueue, reason: &str) {
    stats.error_reply();
    replies.push_reply("ERR", reason);
}

/// `from + idle`, saturating far in the future (also for "no idle timeout").
fn deadline_after(from: Instant, idle: Duration) -> Instant {
    let idle = if idle.is_zero() { Duration::from_secs(86_400 * 365) } else { idle };
    from.checked_add(idle).unwrap_or(from + Duration::from_secs(86_400 * 365))
}

/// Reads and drops input until EOF or `limit` bytes.
async fn drain<R: AsyncRead + Unpin>(reader: &mut R, limit: usize) -> io::Result<()> {
    let mut sink = [0u8; 1024];
    let mut left = limit;
    while left > 0 {
        let n = reader.read(&mut sink).await?;
        if n == 0 {
            break;
        }
        left = left.saturating_sub(n);
    }
    Ok(())
}
