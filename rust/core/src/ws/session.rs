//! The session loop: connect, pump messages both ways with heartbeats, and
//! on a lost connection reconnect with backoff, keeping what was queued.

use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, ready};

use futures_util::{
    FutureExt, SinkExt, StreamExt,
    stream::{SplitSink, SplitStream},
};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::{
    self, Message,
    error::{CapacityError, ProtocolError},
    protocol::{CloseFrame, frame::coding::CloseCode},
};

use super::connect::{WsStream, connect};
use super::{WsConfig, WsControl, WsHandler, WsStats};
use crate::backoff::Backoff;
use crate::state::NetState;

/// Close code reported when the connection ended without a closing handshake.
pub const CLOSE_ABNORMAL: u16 = 1006;
/// Close code reported when the server's close frame carried no code.
pub const CLOSE_NO_STATUS: u16 = 1005;

type Sink = SplitSink<WsStream, Message>;
type Source = SplitStream<WsStream>;

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
pub async fn run<H: WsHandler>(config: WsConfig, control: Rc<WsControl>, mut handler: H, stats: Rc<WsStats>) {
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
        handler.state_changed(NetState::Reconnecting);
        let delay = backoff.next_delay();
        tokio::select! {
            () = sleep(delay) => {}
            () = close_or_stop(&control) => return closed_while_offline(&control, &mut handler),
        }
    }
}

/// `close()` while not connected: nothing to close, so drop the queue and stop.
fn closed_while_offline(control: &WsControl, handler: &mut impl WsHandler) {
    if control.is_stopped() {
        return;
    }
    control.discard_queue();
    handler.state_changed(NetState::Stopped);
}

/// Resolves once the node asks to close or stop.
async fn close_or_stop(control: &WsControl) {
    while !control.is_stopped() && control.close_request().is_none() {
        control.changed().await;
    }
}

/// One open connection's loop.
struct Pump<'a> {
    config: &'a WsConfig,
    control: &'a WsControl,
    stats: &'a WsStats,
}

impl Pump<'_> {
    async fn run(&self, stream: WsStream, handler: &mut impl WsHandler) -> End {
        let (mut sink, mut source) = stream.split();
        let heartbeat = self.config.heartbeat;
        let mut next_ping = Instant::now() + heartbeat;
        let mut awaiting_pong: Option<(Instant, u64)> = None;
        let mut pending_ping: Option<Message> = None;
        let mut ping_count = 0u64;
        loop {
            tokio::select! {
                biased;
                // Writes and the heartbeat first: an incoming flood must not starve them.
                written = write_queue(&mut sink, self.control, self.stats, &mut pending_ping) => match written {
                    Ok(WriterEnd::Stop) => return End::Stopped,
                    Ok(WriterEnd::Close(code, reason)) => {
                        self.close(&mut sink, &mut source, code, &reason).await;
                        return End::ClosedByUs { code, reason };
                    }
                    Err(error) => return lost(format!("connection lost while sending: {error}")),
                },
                () = sleep_until(next_ping), if !heartbeat.is_zero() => {
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
                    next_ping = Instant::now() + heartbeat;
                }
                incoming = source.next() => {
                    if let Some(end) = self.burst(incoming, &mut sink, &mut source, handler, &mut awaiting_pong).await {
                        return end;
                    }
                }
            }
            if self.control.is_stopped() {
                return End::Stopped;
            }
        }
    }

    /// Handles `incoming` and every message already waiting behind it, taken
    /// without waiting (`now_or_never` on the stream's `next()`, which is
    /// cancel-safe), then tells the handler the batch ended if it delivered
    /// any. The burst also ends when a handler asks to close (what arrives
    /// after that is dropped by the closing handshake, as before) and is
    /// bounded by tokio's cooperative budget: once it is spent, the socket
    /// reports nothing ready. `Some` when the connection ended or the node
    /// stopped.
    async fn burst(
        &self,
        mut incoming: Option<Result<Message, tungstenite::Error>>,
        sink: &mut Sink,
        source: &mut Source,
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
                    handler.binary_received(&data);
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
                    let _ = timeout(self.config.close_timeout, sink.close()).await;
                    return Some(End::ClosedByPeer { code, reason });
                }
                Some(Err(error)) => {
                    if self.end_batch(delivered, handler) {
                        return Some(End::Stopped);
                    }
                    return Some(self.read_failed(error, sink, source).await);
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
            if self.control.close_requested() {
                break;
            }
            match source.next().now_or_never() {
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
    async fn read_failed(&self, error: tungstenite::Error, sink: &mut Sink, source: &mut Source) -> End {
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
        self.close(sink, source, code, reason).await;
        End::Failed { code, reason: reason.into(), error }
    }

    /// Sends a close frame and waits (bounded) for the server's reply or EOF,
    /// dropping whatever arrives meanwhile.
    async fn close(&self, sink: &mut Sink, source: &mut Source, code: u16, reason: &str) {
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        let handshake = async {
            if sink.send(Message::Close(Some(frame))).await.is_err() {
                return;
            }
            while let Some(Ok(message)) = source.next().await {
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

/// Sends the pending ping, then the queue in order, flushes, and waits for
/// more; returns when the node stops or asks to close (after the queue is
/// sent), or on a write error. Cancel-safe: a message leaves the queue only
/// when the socket takes it.
async fn write_queue(
    sink: &mut Sink,
    control: &WsControl,
    stats: &WsStats,
    ping: &mut Option<Message>,
) -> Result<WriterEnd, tungstenite::Error> {
    loop {
        poll_fn(|cx| {
            loop {
                if control.is_stopped() {
                    return Poll::Ready(Ok(()));
                }
                if ping.is_none() && !control.has_queued() {
                    return sink.poll_flush_unpin(cx);
                }
                ready!(sink.poll_ready_unpin(cx))?;
                let message = match ping.take() {
                    Some(ping) => ping,
                    None => match control.pop() {
                        Some(message) => {
                            stats.sent(message.len());
                            message
                        }
                        None => continue,
                    },
                };
                sink.start_send_unpin(message)?;
            }
        })
        .await?;
        if control.is_stopped() {
            return Ok(WriterEnd::Stop);
        }
        if let Some((code, reason)) = control.close_request() {
            return Ok(WriterEnd::Close(code, reason));
        }
        control.changed().await;
    }
}
