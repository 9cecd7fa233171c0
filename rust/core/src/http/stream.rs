//! A response body delivered as it arrives: raw pieces, lines of a
//! newline-delimited body (NDJSON), or server-sent events, which reconnect
//! as a browser's `EventSource` does (after `retry`, with `Last-Event-ID`;
//! a 204 ends the stream). Nothing is held back and nothing is capped per
//! frame: what the handler cannot take yet waits in the socket, so TCP makes
//! the server wait.

use std::future::poll_fn;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderName, HeaderValue};

use super::RequestSpec;
use super::client::{Head, HttpClient};
use super::lines::LineSplitter;
use super::sse::{SseEvent, SseParser};

/// How a body is cut for the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// Pieces only.
    Chunks,
    /// Pieces, and lines (LF or CRLF; empty lines skipped).
    Lines,
    /// Pieces, and server-sent events.
    Events,
}

impl StreamMode {
    /// `"chunks"`, `"lines"`, `"events"`; `"auto"` or `""`: `None`, chosen by the content type.
    pub fn parse(name: &str) -> Result<Option<Self>, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(None),
            "chunks" => Ok(Some(StreamMode::Chunks)),
            "lines" => Ok(Some(StreamMode::Lines)),
            "events" => Ok(Some(StreamMode::Events)),
            other => Err(format!("parse '{other}' is not one of auto, chunks, lines, events")),
        }
    }

    /// The mode a media type asks for.
    pub fn for_media_type(media_type: &str) -> Self {
        match media_type {
            "text/event-stream" => StreamMode::Events,
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines"
            | "application/stream+json" => StreamMode::Lines,
            _ => StreamMode::Chunks,
        }
    }
}

/// How to stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamOptions {
    /// `None`: by the response's content type.
    pub mode: Option<StreamMode>,
    /// An event stream reconnects when its connection ends or fails (once it
    /// has connected); off: the end of the body finishes it.
    pub reconnect: bool,
    /// Wait before reconnecting until the server sets one with `retry`.
    pub retry: Duration,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions { mode: None, reconnect: true, retry: Duration::from_secs(3) }
    }
}

/// Receives what a stream delivers, in order, on the thread that polls it.
pub trait StreamHandler {
    /// Whether the handler can take more now; when not, it wakes `cx` once
    /// it can, and nothing more is read meanwhile.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    /// A response began (again, after an event stream's reconnect).
    fn started(&mut self, head: Head);
    /// A piece of the body, as it arrived (decompressed).
    fn chunk(&mut self, data: Bytes);
    /// A line (in [`StreamMode::Lines`]), without its end.
    fn line(&mut self, line: &str);
    /// An event (in [`StreamMode::Events`]).
    fn event(&mut self, event: SseEvent);
}

/// How one connection of a stream ended.
enum Ended {
    /// The body ended.
    Finished,
    /// The connection failed after the response began.
    Lost(String),
}

impl HttpClient {
    /// Streams `spec`'s response to `handler` until it ends (`Ok`: the
    /// body ended, or an event stream's server answered 204) or fails.
    pub async fn stream(
        &self,
        spec: RequestSpec,
        options: StreamOptions,
        handler: &mut impl StreamHandler,
    ) -> Result<(), String> {
        let in_flight = self.in_flight();
        let result = self.stream_connections(&spec, &options, handler).await;
        in_flight.end(result)
    }

    async fn stream_connections(
        &self,
        spec: &RequestSpec,
        options: &StreamOptions,
        handler: &mut impl StreamHandler,
    ) -> Result<(), String> {
        let timeout = spec.timeout(self.config());
        let max_line = self.config().max_line_bytes;
        let mut events = SseParser::new(max_line);
        let mut retry = options.retry;
        let mut connected_once = false;
        loop {
            let mut extra = Vec::new();
            if options.mode == Some(StreamMode::Events) || connected_once {
                extra.push((header::ACCEPT, HeaderValue::from_static("text/event-stream")));
                extra.push((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")));
            }
            if !events.last_event_id().is_empty()
                && let Ok(id) = HeaderValue::from_str(events.last_event_id())
            {
                extra.push((HeaderName::from_static("last-event-id"), id));
            }
            let mut response = match self.send(spec, &extra, timeout).await {
                Ok(response) => response,
                Err(message) if connected_once => {
                    // As a browser does, a stream that was up tries again until cancelled.
                    let _ = message;
                    tokio::time::sleep(retry).await;
                    continue;
                }
                Err(message) => return Err(message),
            };
            let head = Head::from_response(&response);
            let mode = options.mode.unwrap_or_else(|| StreamMode::for_media_type(&head.media_type()));
            if connected_once
                && (!head.is_success() || mode != StreamMode::Events || head.media_type() != "text/event-stream")
            {
                if head.status == 204 {
                    return Ok(());
                }
                return Err(format!(
                    "the event stream {} answered its reconnect with {} {}",
                    crate::redact(spec.url.trim()),
                    head.status,
                    head.media_type()
                ));
            }
            let is_event_stream = mode == StreamMode::Events && head.is_success();
            if is_event_stream && head.status == 204 {
                return Ok(());
            }
            handler.started(head);
            let ended = self.deliver(spec, &mut response, mode, &mut events, handler).await?;
            if !(is_event_stream && options.reconnect) {
                return match ended {
                    Ended::Finished => Ok(()),
                    Ended::Lost(message) => Err(message),
                };
            }
            connected_once = true;
            events.connection_ended();
            retry = events.retry().unwrap_or(retry);
            tokio::time::sleep(retry).await;
        }
    }

    /// Hands one connection's body to `handler`. `Err` is for what ends the
    /// stream whatever the mode (a line or an event over the limit).
    async fn deliver(
        &self,
        spec: &RequestSpec,
        response: &mut reqwest::Response,
        mode: StreamMode,
        events: &mut SseParser,
        handler: &mut impl StreamHandler,
    ) -> Result<Ended, String> {
        let mut lines = LineSplitter::new(self.config().max_line_bytes, false);
        let too_long = |e: super::lines::TooLong| {
            format!("{} {}: {e}", spec.method.trim().to_ascii_uppercase(), crate::redact(spec.url.trim()))
        };
        loop {
            poll_fn(|cx| handler.poll_ready(cx)).await;
            let chunk = match self.next_chunk(spec, response).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(message) => return Ok(Ended::Lost(message)),
            };
            match mode {
                StreamMode::Chunks => {}
                StreamMode::Lines => lines
                    .push(&chunk, |line| {
                        if !line.is_empty() {
                            handler.line(&String::from_utf8_lossy(line));
                        }
                    })
                    .map_err(too_long)?,
                StreamMode::Events => events.push(&chunk, |event| handler.event(event)).map_err(too_long)?,
            }
            handler.chunk(chunk);
        }
        if mode == StreamMode::Lines
            && let Some(last) = lines.finish()
        {
            handler.line(&String::from_utf8_lossy(&last));
        }
        Ok(Ended::Finished)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::super::{HttpConfig, test_server::TestServer};
    use super::*;

    /// Records everything as text.
    #[derive(Default, Clone)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl StreamHandler for Recorder {
        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
            Poll::Ready(())
        }
        fn started(&mut self, head: Head) {
            self.0.lock().unwrap().push(format!("started {} {}", head.status, head.media_type()));
        }
        fn chunk(&mut self, data: Bytes) {
            self.0.lock().unwrap().push(format!("chunk {}", data.len()));
        }
        fn line(&mut self, line: &str) {
            self.0.lock().unwrap().push(format!("line {line}"));
        }
        fn event(&mut self, event: SseEvent) {
            self.0.lock().unwrap().push(format!("event {} {} {}", event.event, event.data, event.id));
        }
    }

    impl Recorder {
        fn without_chunks(&self) -> Vec<String> {
            self.0.lock().unwrap().iter().filter(|l| !l.starts_with("chunk")).cloned().collect()
        }
    }

    fn pieces(server: &TestServer, text: &str, size: usize, content_type: &str) -> RequestSpec {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("text", text), ("size", &size.to_string()), ("type", content_type)])
            .finish();
        RequestSpec::new("GET", &server.url(&format!("/pieces?{query}")))
    }

    fn client(max_line_bytes: usize) -> HttpClient {
        HttpClient::with_env(HttpConfig { max_line_bytes, ..HttpConfig::default() }, |_| None).unwrap()
    }

    #[tokio::test]
    async fn ndjson_lines_arrive_whole_from_pieces_of_three_bytes() {
        let server = TestServer::start().await;
        let mut recorder = Recorder::default();
        let spec = pieces(&server, "{\"n\":1}\n{\"n\":2}\r\n\n{\"n\":3}", 3, "application/x-ndjson");
        client(1024).stream(spec, StreamOptions::default(), &mut recorder).await.unwrap();
        assert_eq!(
            recorder.without_chunks(),
            ["started 200 application/x-ndjson", "line {\"n\":1}", "line {\"n\":2}", "line {\"n\":3}"]
        );
        let chunks: usize = recorder.0.lock().unwrap().iter().filter(|l| l.starts_with("chunk")).count();
        assert!(chunks >= 2, "delivered as it arrived: {chunks} chunks");
    }

    #[tokio::test]
    async fn events_parse_by_content_type_and_a_plain_body_is_chunks_only() {
        let server = TestServer::start().await;
        let mut recorder = Recorder::default();
        let sse = pieces(&server, "event: score\ndata: 1\ndata: 2\nid: a\n\ndata: x\n\n", 5, "text/event-stream");
        let options = StreamOptions { reconnect: false, ..StreamOptions::default() };
        client(1024).stream(sse, options.clone(), &mut recorder).await.unwrap();
        assert_eq!(
            recorder.without_chunks(),
            ["started 200 text/event-stream", "event score 1\n2 a", "event message x a"]
        );
        let mut plain = Recorder::default();
        client(1024).stream(pieces(&server, "a\nb\n", 1, "text/plain"), options, &mut plain).await.unwrap();
        assert_eq!(plain.without_chunks(), ["started 200 text/plain"]);
        let mut forced = Recorder::default();
        let options = StreamOptions { mode: Some(StreamMode::Lines), ..StreamOptions::default() };
        client(1024).stream(pieces(&server, "a\nb\n", 1, "text/plain"), options, &mut forced).await.unwrap();
        assert_eq!(forced.without_chunks(), ["started 200 text/plain", "line a", "line b"]);
    }

    #[tokio::test]
    async fn an_event_stream_reconnects_after_retry_with_the_last_id_and_ends_at_204() {
        let server = TestServer::start().await;
        let mut recorder = Recorder::default();
        let spec = RequestSpec::new("GET", &server.url("/sse/reconnect"));
        client(1024).stream(spec, StreamOptions::default(), &mut recorder).await.unwrap();
        assert_eq!(
            recorder.without_chunks(),
            [
                "started 200 text/event-stream",
                "event message first 7",
                "started 200 text/event-stream",
                "event message last id 7 7"
            ]
        );
        assert_eq!(server.hits("/sse/reconnect"), 3);
    }

    #[tokio::test]
    async fn an_oversize_line_a_stall_and_a_reset_fail_the_stream() {
        let server = TestServer::start().await;
        let long = pieces(&server, &"x".repeat(100), 7, "application/x-ndjson");
        let error = client(50).stream(long, StreamOptions::default(), &mut Recorder::default()).await.unwrap_err();
        assert!(error.contains("a line longer than 50 bytes (max_line_bytes)"), "{error}");
        let config = HttpConfig { read_timeout: Duration::from_millis(150), ..HttpConfig::default() };
        let stalling = HttpClient::with_env(config, |_| None).unwrap();
        let stall = RequestSpec::new("GET", &server.url("/stall"));
        let error = stalling.stream(stall, StreamOptions::default(), &mut Recorder::default()).await.unwrap_err();
        assert!(error.contains("sent nothing for 0.1 s"), "{error}");
        let reset = RequestSpec::new("GET", &server.url("/reset"));
        let mut recorder = Recorder::default();
        let error = client(50).stream(reset, StreamOptions::default(), &mut recorder).await.unwrap_err();
        assert!(error.contains("the connection failed while the body arrived"), "{error}");
        assert_eq!(recorder.0.lock().unwrap().first().map(String::as_str), Some("started 200 "));
    }
}
