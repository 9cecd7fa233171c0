//! Requests served on a connection of their own, pipelined and in order:
//! RedisSubscriber's `publish` and RedisStreamConsumer's `add`. The
//! connection is made on the first request, kept open, and made again on
//! the next request after a failure; whatever queued up while one pipeline
//! was in flight goes out as the next one.

use std::future::Future;

use futures_util::FutureExt;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::pubsub::connect::Driver;

/// Most requests sent in one pipeline.
pub const MAX_BATCH: usize = 1024;

/// How one kind of request is served.
pub trait Pipeline {
    /// A request from the game, with where its answer goes.
    type Request;
    /// A connection.
    type Connection;
    /// What a request is answered with when it succeeds.
    type Answer;

    /// Opens the connection; the error is what every request of the batch is answered with.
    fn connect(&mut self) -> impl Future<Output = Result<(Self::Connection, Driver), String>>;
    /// Sends `batch` as one pipeline: each request's answer, or why the
    /// connection failed (then every request of the batch fails with it).
    fn send(
        &mut self,
        connection: &mut Self::Connection,
        batch: &[Self::Request],
    ) -> impl Future<Output = Result<Vec<Result<Self::Answer, String>>, String>>;
    /// What a lost connection's driver said, as an error.
    fn lost(&self, reason: Option<String>) -> String;
    /// Answers one request (and counts it).
    fn answer(&mut self, request: Self::Request, result: Result<Self::Answer, String>);
}

/// Serves `requests` until their sender is dropped. `failed` prefixes the
/// error of a batch whose connection failed ("publish failed").
pub async fn serve<P: Pipeline>(mut pipeline: P, mut requests: UnboundedReceiver<P::Request>, failed: &str) {
    let mut connection: Option<(P::Connection, Driver)> = None;
    while let Some(first) = requests.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH
            && let Ok(request) = requests.try_recv()
        {
            batch.push(request);
        }
        // An idle connection the server closed meanwhile: notice now, reconnect.
        if let Some((_, driver)) = connection.as_mut()
            && driver.as_mut().now_or_never().is_some()
        {
            connection = None;
        }
        if connection.is_none() {
            match pipeline.connect().await {
                Ok(pair) => connection = Some(pair),
                Err(message) => {
                    batch.into_iter().for_each(|request| pipeline.answer(request, Err(message.clone())));
                    continue;
                }
            }
        }
        let Some((link, driver)) = connection.as_mut() else { continue };
        let sent = tokio::select! {
            result = pipeline.send(link, &batch) => result,
            reason = driver => Err(pipeline.lost(reason)),
        };
        match sent {
            Ok(answers) => {
                batch.into_iter().zip(answers).for_each(|(request, result)| pipeline.answer(request, result))
            }
            Err(message) => {
                // The next request reconnects.
                connection = None;
                let message = format!("{failed}: {message}");
                batch.into_iter().for_each(|request| pipeline.answer(request, Err(message.clone())));
            }
        }
    }
}
