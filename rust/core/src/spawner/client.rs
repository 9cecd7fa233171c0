//! One client connection: read lines, hand them to the handler, write the
//! replies in line order, enforce the per-client limits, close politely.
//! Runs as a future owned by the server future, on the I/O worker.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::coop::consume_budget;
use tokio::time::{Instant, sleep_until, timeout};

use super::auth::ct_eq;
use super::codec::{LineEvent, LineReader};
use super::config::SpawnerConfig;
use super::handler::{self, Answer, Answers, Reply, Reported, SpawnHandler};
use super::rate::TokenBucket;
use super::reply::{Answered, ReplyQueue};
use super::stats::SpawnerStats;

/// Replies are batched until this many bytes are queued or input pauses:
/// one write per batch instead of one per line under a flood.
const FLUSH_AT: usize = 8 * 1024;

/// Replies held behind an unanswered line past which the client stops
/// reading until the answer comes: a flood of lines refused on the spot
/// (rate limited, invalid) must not pile up while a spawn is pending.
const MAX_HELD_BYTES: usize = 16 * 1024;

/// Lines of one client waiting for their answer past which it is not read
/// until some come back. This bounds what one client holds (its answers
/// arrive together, at the main thread's next step) and how much it can
/// take of the handler's room, while leaving room for thousands of lines a
/// frame.
const MAX_UNANSWERED: usize = 4096;

/// How long a client whose reply backlog is full may take no byte at all
/// before it is judged not to read and closed. A slow reader (one that takes
/// some bytes within this time) is never closed: while its backlog is full it
/// is simply not read, and answers wait where they are.
const REPLY_STALL: Duration = Duration::from_secs(5);

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
    pub(crate) handler: H,
    pub(crate) stats: Arc<SpawnerStats>,
}

impl<H: SpawnHandler> Shared<H> {
    /// Reports a protocol rejection to the stats and the handler; the
    /// client's last reply, if one follows, waits for `reported` to drop.
    pub(crate) fn reject(&self, peer: &str, reason: &str, reported: Reported) {
        self.stats.rejected();
        self.handler.client_rejected(peer, reason, reported);
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

/// Where a client's answers arrive; closed when the client ends, so that
/// answers given after that are dropped at once instead of kept.
struct AnswerInbox(Arc<Answers>);

impl Drop for AnswerInbox {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// How a client's session ended, which decides how politely it is closed.
#[derive(Clone, Copy)]
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
    Answers,
    Input(io::Result<LineEvent>),
    Wrote(io::Result<usize>),
    Timer,
    /// The backlog stayed full and the peer took nothing for [`REPLY_STALL`].
    Stalled,
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
    // Held by `&mut` across the session's awaits: that needs only `Send`.
    let mut client = shared.handler.client_connected(&peer);
    session(shared, &mut stream, &peer, &mut client).await;
    drop(stream);
    drop(slot);
    shared.handler.client_disconnected(client);
}

async fn session<H: SpawnHandler>(shared: &Shared<H>, stream: &mut TcpStream, peer: &str, client: &mut H::Client) {
    let config = &shared.config;
    let stats = &*shared.stats;
    let (reader, mut writer) = stream.split();
    let mut lines = LineReader::new(reader, config.max_line_bytes);
    let mut replies = ReplyQueue::new();
    let inbox = AnswerInbox(handler::answers());
    let mut arrived: VecDeque<(Answer, usize)> = VecDeque::new();
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
    // Once set, input is over: the loop only waits for the answers still
    // owed to earlier lines (they come before the last reply), then ends.
    let mut ending: Option<Close> = None;
    // The last write found the socket full: the peer is behind.
    let mut socket_full = false;
    // Replies past this are not queued: the answers wait in `arrived` and
    // input is not read until the peer takes some (bounds our memory).
    let backlog_limit = config.max_reply_backlog;
    // Armed from the last write that made progress while the backlog is full.
    let mut stall = pin!(sleep_until(Instant::now() + REPLY_STALL));
    let mut stall_armed = false;

    let close = loop {
        if let Some(end) = ending
            && replies.unanswered() == 0
        {
            break end;
        }
        // Whether this client waited on us (a full handler, held replies,
        // answers owed) rather than the other way round: that is not idleness.
        let mut held_back = false;
        let step = poll_fn(|cx| {
            stats.client_polled();
            if replies.len() >= FLUSH_AT {
                match replies.poll_write_to(cx, &mut writer) {
                    Poll::Ready(r) => return Poll::Ready(Step::Wrote(r)),
                    Poll::Pending => socket_full = true,
                }
            }
            let backlog_full = replies.len() >= backlog_limit;
            if backlog_full {
                if !stall_armed {
                    stall.as_mut().reset(Instant::now() + REPLY_STALL);
                    stall_armed = true;
                }
                if stall.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Step::Stalled);
                }
            } else {
                stall_armed = false;
            }
            if !arrived.is_empty() && !backlog_full && (replies.len() < FLUSH_AT || socket_full) {
                return Poll::Ready(Step::Answers);
            }
            if arrived.is_empty()
                && replies.unanswered() > 0
                && inbox.0.poll_take(cx, &mut arrived, usize::MAX).is_ready()
            {
                return Poll::Ready(Step::Answers);
            }
            if ending.is_none() {
                held_back = replies.held_bytes() >= MAX_HELD_BYTES
                    || replies.unanswered() >= MAX_UNANSWERED
                    || backlog_full
                    || shared.handler.poll_ready(cx).is_pending();
                if !held_back {
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
                }
            }
            if !replies.is_empty() && replies.len() < FLUSH_AT {
                match replies.poll_write_to(cx, &mut writer) {
                    Poll::Ready(r) => return Poll::Ready(Step::Wrote(r)),
                    Poll::Pending => socket_full = true,
                }
            }
            if ending.is_none() && idle_enabled && timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Step::Timer);
            }
            Poll::Pending
        })
        .await;

        let line = match step {
            Step::Answers => {
                // A step's worth of answers comes at once: written as they
                // are placed while the peer takes them; what does not fit
                // in the backlog waits here until the peer reads.
                while replies.len() < backlog_limit
                    && let Some(((line, answer), _)) = arrived.pop_front()
                {
                    let answered = match &answer {
                        Ok(name) => replies.answer(line, "OK", name),
                        Err(reason) => replies.answer(line, "ERR", reason),
                    };
                    if answered == Answered::Used {
                        if answer.is_ok() { stats.spawned() } else { stats.error_reply() }
                    }
                    stats.reply_backlog(replies.len());
                    if replies.len() >= FLUSH_AT && !socket_full {
                        break;
                    }
                }
                continue;
            }
            Step::Wrote(Ok(_)) => {
                socket_full = false;
                // Progress: a full backlog's stall clock starts again.
                stall_armed = false;
                continue;
            }
            Step::Stalled => {
                // It sends but does not read: its kernel buffers are full
                // and so is its backlog here.
                shared.reject(peer, "not reading replies", Reported::nothing());
                break Close::Abort;
            }
            Step::Wrote(Err(_)) | Step::Input(Err(_)) => break Close::Abort,
            Step::Input(Ok(LineEvent::Eof)) => {
                ending = Some(Close::Finished);
                continue;
            }
            Step::Timer => {
                if held_back {
                    last_input = Instant::now();
                }
                let deadline = deadline_after(last_input, idle);
                if Instant::now() >= deadline {
                    reject_fatal(shared, &mut replies, &inbox, peer, "idle timeout");
                    ending = Some(Close::Fatal);
                    continue;
                }
                timer.as_mut().reset(deadline);
                continue;
            }
            Step::Input(Ok(LineEvent::TooLong)) => {
                stats.line();
                reject_fatal(shared, &mut replies, &inbox, peer, "line too long");
                ending = Some(Close::Fatal);
                continue;
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
                reject_fatal(shared, &mut replies, &inbox, peer, "bad token");
                ending = Some(Close::Fatal);
                continue;
            }
            authenticated = true;
            replies.push_reply("OK", "authenticated");
        } else if let Some(text) = line {
            // No clock read per line when unlimited (the flood benchmark).
            if unlimited || bucket.try_take(Instant::now()) {
                let reply = Reply::new(inbox.0.clone(), replies.await_answer());
                shared.handler.line_received(client, text, reply);
            } else {
                error_reply(stats, &mut replies, "rate limited");
            }
        } else {
            error_reply(stats, &mut replies, "invalid utf-8");
        }

        stats.reply_backlog(replies.len());
        // A flood is processed from buffered bytes without touching the
        // socket; spend tokio's budget per line so the worker's other tasks
        // get their turn.
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

/// Reports a fatal rejection, and queues its `ERR <reason>` to go out once
/// it is reported.
fn reject_fatal<H: SpawnHandler>(
    shared: &Shared<H>,
    replies: &mut ReplyQueue,
    inbox: &AnswerInbox,
    peer: &str,
    reason: &str,
) {
    shared.stats.error_reply();
    let line = replies.push_reply_after_answer("ERR", reason);
    shared.reject(peer, reason, Reported::new(inbox.0.clone(), line));
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
