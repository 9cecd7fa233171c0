//! The session loop: connect, pump messages both ways with heartbeats, and
//! on a lost connection reconnect with backoff, keeping what was queued.
//!
//! It runs on the I/O worker. One connection is one stream polled by one
//! function for its writes, its heartbeat and its reads (no `split()`, so no
//! lock between a read half and a write half).

use std::future::poll_fn;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::{
    self, Message,
    error::{CapacityError, ProtocolError},
    protocol::{CloseFrame, frame::coding::CloseCode},
};

use super::connect::{WsStream, connect};
use super::control::OutgoingText;
use super::{WsConfig, WsControl, WsHandler, WsStats};
use crate::backoff::Backoff;
use crate::state::NetState;

/// Close code reported when the connection ended without a closing handshake.
pub const CLOSE_ABNORMAL: u16 = 1006;
/// Close code reported when the server's close frame carried no code.
pub const CLOSE_NO_STATUS: u16 = 1005;

/// How one connection ended.
enum End {
    /// The node stopped: return without another callback.
    Stopped,
    /// `close()` was asked for and done: report it and stop.
    ClosedByUs { code: u16, reason: String },
    /// The server closed with a closing handshake.
    ClosedByPeer { code: u16, reason: String },
    /// An error ended it (we may have sent a close code for it).
    Failed { code: u16, reason: String, error: String },
}

/// What the writer stopped for.
enum WriterEnd {
    Stop,
    Close(u16, String),
}

/// Runs a WebSocket client until `control` is stopped or closed, or the
/// connection ends and `config.reconnect` is off. Every event goes to
/// `handler`; `stats` is updated live. Validate `config` first: an invalid
/// one is reported through `handler.error` and ends the session as FAILED.
///
/// Everything runs inside this future (no spawned tasks), so dropping it
/// closes the socket at once.
pub async fn run<T: OutgoingText, H: WsHandler>(
    config: WsConfig,
    control: Arc<WsControl<T>>,
    mut handler: H,
    stats: Arc<WsStats>,
) {
    if let Err(message) = config.validate() {
        handler.error(&message);
        handler.state_changed(NetState::Failed);
        return;
    }
    let mut backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
    handler.state_changed(NetState::Connecting);
    loop {
        if control.is_stopped() {
            return;
        }
        let attempt = tokio::select! {
            result = connect(&config) => Some(result),
            () = close_or_stop(&control) => None,
        };
        let clean = match attempt {
            None => return closed_while_offline(&control, &mut handler),
            Some(Err(message)) => {
                stats.connect_failed();
                handler.error(&message);
                false
            }
            Some(Ok(connection)) => {
                stats.connected();
                backoff.reset();
                handler.state_changed(NetState::Connected);
                if control.is_stopped() {
                    return;
                }
                handler.connected(&connection.protocol);
                if control.is_stopped() {
                    return;
                }
                let pump = Pump { config: &config, control: &control, stats: &stats };
                match pump.run(connection.stream, &mut handler).await {
                    End::Stopped => return,
                    End::ClosedByUs { code, reason } => {
                        handler.closed(code, &reason);
                        if !control.is_stopped() {
                            handler.state_changed(NetState::Stopped);
                        }
                        return;
                    }
                    End::ClosedByPeer { code, reason } => {
                        handler.closed(code, &reason);
                        true
                    }
                    End::Failed { code, reason, error } => {
                        handler.error(&error);
                        if control.is_stopped() {
                            return;
                        }
                        handler.closed(code, &reason);
                        false
                    }
                }
            }
        };
        if control.is_stopped() {
            return;
        }
        if !config.reconnect {
            handler.state_changed(if clean { NetState::Stopped } else { NetState::Failed });
            return;
        }
        stats.reconnecting();
        handler.state_changed(NetState::Reconnecting);
        let delay = backoff.next_delay();
        tokio::select! {
            () = sleep(delay) => {}
            () = close_or_stop(&control) => return closed_while_offline(&control, &mut handler),
        }
    }
}

/// `close()` while not connected: nothing to close, so drop the queue and stop.
fn closed_while_offline<T: OutgoingText>(control: &WsControl<T>, handler: &mut impl WsHandler) {
    if control.is_stopped() {
        return;
    }
    control.discard_queue();
    handler.state_changed(NetState::Stopped);
}

/// Resolves once the node asks to close or stop.
async fn close_or_stop<T: OutgoingText>(control: &WsControl<T>) {
    poll_fn(|cx| {
        // Registered before the check, so a request made in between wakes us.
        control.register(cx);
        if control.is_stopped() || control.close_requested() { Poll::Ready(()) } else { Poll::Pending }
    })
    .await
}

/// One open connection's loop.
struct Pump<'a, T> {
    config: &'a WsConfig,
    control: &'a WsControl<T>,
    stats: &'a WsStats,
}

/// What woke the connection's loop.
enum Wake {
    /// The writer is done: the node stopped or asked to close, or a write failed.
    Write(Result<WriterEnd, tungstenite::Error>),
    /// Time for a heartbeat.
    Ping,
    /// A message, an error or the end of the stream.
    Incoming(Option<Result<Message, tungstenite::Error>>),
}

impl<T: OutgoingText> Pump<'_, T> {
    async fn run(&self, mut stream: WsStream, handler: &mut impl WsHandler) -> End {
        let heartbeat = self.config.heartbeat;
        let mut ticker = pin!(sleep_until(Instant::now() + heartbeat));
        let mut awaiting_pong: Option<(Instant, u64)> = None;
        let mut pending_ping: Option<Message> = None;
        let mut ping_count = 0u64;
        loop {
            let wake = poll_fn(|cx| {
                // Writes and the heartbeat first: an incoming flood must not starve them.
                if let Poll::Ready(end) = self.poll_write(cx, &mut stream, &mut pending_ping) {
                    return Poll::Ready(Wake::Write(end));
                }
                if !heartbeat.is_zero() && ticker.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::Ping);
                }
                // Read only what the handler can take: a full handler stops
                // the reading, and TCP pushes back on the server.
                if handler.poll_ready(cx).is_ready()
                    && let Poll::Ready(incoming) = stream.poll_next_unpin(cx)
                {
                    return Poll::Ready(Wake::Incoming(incoming));
                }
                Poll::Pending
            })
            .await;
            match wake {
                Wake::Write(Ok(WriterEnd::Stop)) => return End::Stopped,
                Wake::Write(Ok(WriterEnd::Close(code, reason))) => {
                    self.close(&mut stream, code, &reason).await;
                    return End::ClosedByUs { code, reason };
                }
                Wake::Write(Err(error)) => return lost(format!("connection lost while sending: {error}")),
                Wake::Ping => {
                    if awaiting_pong.is_some() {
                        return lost(format!(
                            "connection lost: no pong from the server within {:.1} s (heartbeat_sec)",
                            heartbeat.as_secs_f64()
                        ));
                    }
                    ping_count += 1;
                    awaiting_pong = Some((Instant::now(), ping_count));
                    pending_ping = Some(Message::Ping(ping_count.to_be_bytes().to_vec().into()));
                    self.stats.ping_sent();
                    ticker.as_mut().reset(Instant::now() + heartbeat);
                }
                Wake::Incoming(incoming) => {
                    if let Some(end) = self.burst(incoming, &mut stream, handler, &mut awaiting_pong).await {
                        return end;
                    }
                }
            }
            if self.control.is_stopped() {
                return End::Stopped;
            }
        }
    }

    /// Sends the pending ping, then the queue in order, and flushes. Ready
    /// when the node stops or asks to close (after the queue is sent), or on
    /// a write error; pending while there is nothing to do. A message leaves
    /// the queue only when the socket takes it.
    fn poll_write(
        &self,
        cx: &mut Context<'_>,
        stream: &mut WsStream,
        ping: &mut Option<Message>,
    ) -> Poll<Result<WriterEnd, tungstenite::Error>> {
        // Registered before the checks, so a send made in between wakes us.
        self.control.register(cx);
        loop {
            if self.control.is_stopped() {
                return Poll::Ready(Ok(WriterEnd::Stop));
            }
            if ping.is_none() && !self.control.has_queued() {
                ready!(stream.poll_flush_unpin(cx))?;
                return match self.control.close_request() {
                    Some((code, reason)) => Poll::Ready(Ok(WriterEnd::Close(code, reason))),
                    None => Poll::Pending,
                };
            }
            ready!(stream.poll_ready_unpin(cx))?;
            let message = match ping.take() {
                Some(ping) => ping,
                None => match self.control.pop(|bytes| self.stats.sent(bytes)) {
                    Some(message) => message,
                    None => continue,
                },
            };
            stream.start_send_unpin(message)?;
        }
    }

    /// Handles `incoming` and every message already waiting behind it, taken
    /// without waiting (`now_or_never` on the stream's `next()`, which is
    /// cancel-safe), then tells the handler the batch ended if it delivered
    /// any. The burst also ends when a handler asks to close (what arrives
    /// after that is dropped by the closing handshake, as before) and is
    /// bounded by tokio's cooperative budget (once it is spent, the socket
    /// reports nothing ready) and by the handler's room. `Some` when the
    /// connection ended or the node stopped.
    async fn burst(
        &self,
        mut incoming: Option<Result<Message, tungstenite::Error>>,
        stream: &mut WsStream,
        handler: &mut impl WsHandler,
        awaiting_pong: &mut Option<(Instant, u64)>,
    ) -> Option<End> {
        let mut delivered = false;
        loop {
            match incoming {
                Some(Ok(Message::Text(text))) => {
                    self.stats.received(text.len());
                    delivered = true;
                    handler.text_received(text.as_str());
                }
                Some(Ok(Message::Binary(data))) => {
                    self.stats.received(data.len());
                    delivered = true;
                    handler.binary_received(data);
                }
                Some(Ok(Message::Pong(payload))) => {
                    if let Some((sent, seq)) = *awaiting_pong
                        && payload.as_ref() == seq.to_be_bytes()
                    {
                        self.stats.pong_received(sent.elapsed());
                        *awaiting_pong = None;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(frame))) => {
                    if self.end_batch(delivered, handler) {
                        return Some(End::Stopped);
                    }
                    let (code, reason) = match frame {
                        Some(f) => (u16::from(f.code), f.reason.to_string()),
                        None => (CLOSE_NO_STATUS, String::new()),
                    };
                    // Sends tungstenite's queued close reply.
                    let _ = timeout(self.config.close_timeout, SinkExt::close(stream)).await;
                    return Some(End::ClosedByPeer { code, reason });
                }
                Some(Err(error)) => {
                    if self.end_batch(delivered, handler) {
                        return Some(End::Stopped);
                    }
                    return Some(self.read_failed(error, stream).await);
                }
                None => {
                    if self.end_batch(delivered, handler) {
                        return Some(End::Stopped);
                    }
                    return Some(lost("the server closed the connection".into()));
                }
            }
            if self.control.is_stopped() {
                return Some(End::Stopped);
            }
            if self.control.close_requested()
                || !handler.poll_ready(&mut Context::from_waker(std::task::Waker::noop())).is_ready()
            {
                break;
            }
            match stream.next().now_or_never() {
                Some(next) => incoming = next,
                None => break,
            }
        }
        self.end_batch(delivered, handler).then_some(End::Stopped)
    }

    /// Ends the burst's batch if it delivered messages; true if a handler
    /// stopped the node meanwhile.
    fn end_batch(&self, delivered: bool, handler: &mut impl WsHandler) -> bool {
        if delivered {
            handler.batch_end();
        }
        self.control.is_stopped()
    }

    /// A read error: limits and bad input get their close code, the rest is a
    /// lost connection.
    async fn read_failed(&self, error: tungstenite::Error, stream: &mut WsStream) -> End {
        let (code, reason, error) = match error {
            tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => (
                1009,
                "message too big",
                format!(
                    "incoming message of {size} bytes is larger than max_message_bytes ({max_size}): closed with 1009"
                ),
            ),
            tungstenite::Error::Utf8(_) => (
                1007,
                "invalid UTF-8",
                "the server sent a text message that is not valid UTF-8: closed with 1007".into(),
            ),
            tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                return lost("connection lost: the server dropped it without a closing handshake".into());
            }
            tungstenite::Error::Protocol(e) => {
                (1002, "protocol error", format!("protocol error from the server: {e}: closed with 1002"))
            }
            other => return lost(format!("connection lost: {other}")),
        };
        self.close(stream, code, reason).await;
        End::Failed { code, reason: reason.into(), error }
    }

    /// Sends a close frame and waits (bounded) for the server's reply or EOF,
    /// dropping whatever arrives meanwhile.
    async fn close(&self, stream: &mut WsStream, code: u16, reason: &str) {
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        let handshake = async {
            if stream.send(Message::Close(Some(frame))).await.is_err() {
                return;
            }
            while let Some(Ok(message)) = stream.next().await {
                if message.is_close() {
                    break;
                }
            }
        };
        let _ = timeout(self.config.close_timeout, handshake).await;
    }
}

fn lost(error: String) -> End {
    End::Failed { code: CLOSE_ABNORMAL, reason: String::new(), error }
}
