//! The accept loop: admits clients into a set of futures it owns, so that
//! dropping the server future closes every connection and the port at once.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::ready;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::Either;
use futures_util::stream::FuturesUnordered;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep};

use super::client::{self, ClientSlot, Shared};
use super::config::SpawnerConfig;
use super::handler::{self, Answers, Reported, SpawnHandler};
use super::stats::SpawnerStats;

/// First pause after a failed `accept` (EMFILE and the like); doubles up to
/// [`ACCEPT_BACKOFF_MAX`] while failures continue, so a persistent failure
/// neither busy-loops nor ends the server.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves line clients on `listener` until the future is dropped.
///
/// Every client runs inside this future (no spawned tasks), so dropping it
/// closes every client socket and the listener synchronously, and the port
/// can be bound again right away. The future is `Send`: in the game it runs
/// on the runtime's I/O worker. While clients are idle it costs nothing:
/// only woken clients are polled, and each holds one timer that fires once
/// per idle period.
///
/// `handler` is shared by every client and called synchronously (see
/// [`SpawnHandler`]); `stats` is updated live for the caller to read.
///
/// The caller may size the descriptor table for `config.max_clients` first
/// ([`super::descriptors::reserve`]), so a burst of clients does not wait
/// for it to grow inside `accept`.
///
/// Returns `Err` only if the configuration is invalid or the listener itself
/// is unusable (`InvalidInput`, e.g. not listening). Other accept errors are
/// reported to [`SpawnHandler::accept_failed`] and retried after a pause.
pub async fn serve<H: SpawnHandler>(
    listener: TcpListener,
    config: SpawnerConfig,
    handler: H,
    stats: Arc<SpawnerStats>,
) -> io::Result<()> {
    config.validate()?;
    // Declared before `clients`, so it outlives the futures borrowing it.
    let shared = Shared { config, handler, stats };
    let mut clients = FuturesUnordered::new();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut accept_paused = false;
    let mut pause = pin!(sleep(Duration::ZERO));

    loop {
        tokio::select! {
            biased;
            // Finished clients free their slot before the next admission.
            Some(()) = clients.next(), if !clients.is_empty() => {}
            accepted = accept(&listener, &shared.handler), if !accept_paused => match accepted {
                Ok((stream, addr)) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    shared.stats.accepted();
                    let peer = addr.to_string();
                    if shared.stats.clients() >= shared.config.max_clients {
                        let inbox = handler::answers();
                        shared.reject(&peer, "too many clients", Reported::new(inbox.clone(), 0));
                        clients.push(Either::Right(refuse_once_reported(stream, inbox)));
                    } else {
                        let slot = ClientSlot::new(&shared.stats);
                        clients.push(Either::Left(client::run(&shared, stream, peer, slot)));
                    }
                }
                // The peer gave up while queued: nothing wrong with us.
                Err(e) if is_connection_error(&e) => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => return Err(e),
                Err(e) => {
                    shared.handler.accept_failed(&e);
                    accept_paused = true;
                    pause.as_mut().reset(Instant::now() + backoff);
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
            },
            () = &mut pause, if accept_paused => accept_paused = false,
        }
    }
}

/// The next connection, taken only once the handler has room: while it has
/// none (the main thread is behind), new clients wait in the listen backlog
/// instead of piling up events for it.
async fn accept<H: SpawnHandler>(listener: &TcpListener, handler: &H) -> io::Result<(TcpStream, SocketAddr)> {
    poll_fn(|cx| {
        ready!(handler.poll_ready(cx));
        listener.poll_accept(cx)
    })
    .await
}

/// Errors of one queued connection rather than of the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Refuses a client past `max_clients` once the handler has reported it (its
/// [`Reported`] answered or dropped), as a client's fatal reply waits for its
/// report. Meanwhile it holds only its socket, and counts as no client.
async fn refuse_once_reported(stream: TcpStream, inbox: Arc<Answers>) {
    let mut arrived = VecDeque::new();
    poll_fn(|cx| inbox.poll_take(cx, &mut arrived, usize::MAX).map(drop)).await;
    refuse(stream, "ERR too many clients\n");
}

/// Sends `message` and closes, without keeping anything for this peer: one
/// non-blocking write into the fresh (empty) send buffer, then close. If it
/// does not fit at once, the peer simply sees the close.
fn refuse(stream: TcpStream, message: &str) {
    // A just-accepted tokio stream has no readiness yet, so `try_write`
    // would refuse; the std socket (still non-blocking) writes directly.
    if let Ok(mut std_stream) = stream.into_std() {
        let _ = std_stream.write(message.as_bytes());
        let _ = std_stream.shutdown(std::net::Shutdown::Write);
    }
}
