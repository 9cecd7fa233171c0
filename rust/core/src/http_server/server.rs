//! The server's own task on the I/O worker: accepts connections (TLS when
//! configured), serves each with hyper-util's auto connection (HTTP/1.1,
//! HTTP/2 by prior knowledge or ALPN, WebSocket upgrades), and carries out
//! the node's broadcasts. Every connection and WebSocket peer runs inside
//! this one future, so dropping it (the node stopped) closes them all.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, RwLock},
    time::Duration,
};

use futures_util::{StreamExt, stream::FuturesUnordered};
use hyper::{Response, StatusCode, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::mpsc,
    time::timeout,
};
use tokio_rustls::TlsAcceptor;

use super::{
    ServerConfig, ServerHandler,
    answer::status_text,
    cache::AnswerCache,
    config::MIN_HEADER_BUFFER,
    router::Routes,
    service::{self, Shared},
    slow_head,
    stats::{Count, Gauge, ServerStats},
    websocket::{Outgoing, Peers, message_of},
};

/// Work the server owns: a connection, or a WebSocket peer's loop.
pub type Work = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the node asks of its running server.
pub enum Command<T> {
    /// Send to every peer of a WebSocket pattern.
    Broadcast(String, Outgoing<T>),
}

/// Pause after a failed accept (out of descriptors, say), so the loop does not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Everything a server runs with, made by the node when it starts.
pub struct Server<H: ServerHandler> {
    pub config: ServerConfig,
    pub tls: Option<TlsAcceptor>,
    pub routes: Arc<RwLock<Routes>>,
    pub peers: Arc<Peers<H::Text>>,
    pub handler: Arc<H>,
    pub stats: Arc<ServerStats>,
    /// The kept answers of routes with `cache_sec` (the node clears them).
    pub cache: Arc<AnswerCache>,
    pub commands: mpsc::Receiver<Command<H::Text>>,
}

/// Serves `listener` until dropped (or its listener fails for good).
pub async fn serve<H: ServerHandler>(listener: TcpListener, server: Server<H>) -> Result<(), String> {
    let Server { config, tls, routes, peers, handler, stats, cache, mut commands } = server;
    let address = listener.local_addr().map_err(|e| format!("cannot listen: {e}"))?;
    let (spawn, mut spawned) = mpsc::unbounded_channel::<Work>();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.request_timeout)
        .max_buf_size(config.max_header_bytes.max(MIN_HEADER_BUFFER));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    let max_connections = config.max_connections;
    let shared = Arc::new(Shared {
        loopback_only: config.token.is_none() && address.ip().is_loopback(),
        config,
        handler: handler.clone(),
        routes,
        peers: peers.clone(),
        stats: stats.clone(),
        cache,
        spawn,
    });
    let mut work = FuturesUnordered::<Work>::new();
    let mut commands_open = true;
    // After a failed accept, accepting waits a little; everything else goes on.
    let mut accept_pause = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
    let mut paused = false;
    handler.listening(address.port());
    loop {
        tokio::select! {
            () = &mut accept_pause, if paused => paused = false,
            accepted = listener.accept(), if !paused => match accepted {
                Ok((tcp, peer)) => {
                    stats.count(Count::Accepted);
                    let _ = tcp.set_nodelay(true);
                    let open = stats.snapshot().connections as usize;
                    // Past the limit a connection gets its 503; far past it, not even that.
                    if open < max_connections.saturating_mul(2) {
                        let busy = open >= max_connections;
                        work.push(Box::pin(connection(shared.clone(), builder.clone(), tls.clone(), tcp, peer, busy)));
                    }
                }
                Err(e) => {
                    handler.error(&format!("accept failed (will retry): {e}"));
                    accept_pause.as_mut().reset(tokio::time::Instant::now() + ACCEPT_RETRY);
                    paused = true;
                }
            },
            Some(peer) = spawned.recv() => work.push(peer),
            command = commands.recv(), if commands_open => match command {
                Some(Command::Broadcast(pattern, message)) => {
                    peers.broadcast(&pattern, message_of(message));
                }
                None => commands_open = false,
            },
            Some(()) = work.next(), if !work.is_empty() => {}
        }
    }
}

/// One connection: TLS (bounded by request_timeout), then hyper until it ends.
async fn connection<H: ServerHandler>(
    shared: Arc<Shared<H>>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    tls: Option<TlsAcceptor>,
    tcp: TcpStream,
    peer: SocketAddr,
    busy: bool,
) {
    let _open = shared.stats.open(Gauge::Connections);
    match tls {
        None => serve_io(shared, &builder, tcp, peer, busy).await,
        Some(acceptor) => {
            let limit = shared.config.request_timeout;
            // A failed or slow handshake is the client's problem; nothing to answer it with.
            if let Ok(Ok(stream)) = timeout(limit, acceptor.accept(tcp)).await {
                serve_io(shared, &builder, stream, peer, busy).await;
            }
        }
    }
}

async fn serve_io<H: ServerHandler, I>(
    shared: Arc<Shared<H>>,
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    peer: SocketAddr,
    busy: bool,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if busy {
        let service = service_fn(move |_| {
            let shared = shared.clone();
            async move {
                shared.stats.count(Count::Refused);
                shared.stats.answered(503);
                let mut response: Response<_> =
                    status_text(StatusCode::SERVICE_UNAVAILABLE, "too many connections (max_connections)");
                response
                    .headers_mut()
                    .insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
                Ok::<_, Infallible>(response)
            }
        });
        let _ = builder.serve_connection(TokioIo::new(io), service).await;
        return;
    }
    let service = service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(service::handle(shared, request, peer).await) }
    });
    let (lent, returned) = slow_head::lend(io);
    let result = builder.serve_connection_with_upgrades(TokioIo::new(lent), service).await;
    if result.is_err_and(|error| slow_head::is_head_timeout(error.as_ref())) {
        slow_head::answer_timeout(returned).await;
    }
}
