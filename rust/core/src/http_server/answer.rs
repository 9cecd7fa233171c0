//! What a handler answers, as it crosses from the main thread to the I/O
//! worker ([`Answer`], through a [`Responder`]), and how the worker turns it
//! into a response: text is made UTF-8 there, not on the main thread.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{
    HeaderMap, Response, StatusCode,
    header::{self, HeaderName, HeaderValue},
};
use tokio::sync::oneshot;

use super::{
    cache::{Kept, keepable},
    events::EventBody,
    router::RouteId,
    stats::ServerStats,
};
use crate::ws::OutgoingText;

/// The body type of every response the server sends.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// An answer's body, in the form the handler gave it.
pub enum AnswerBody<T> {
    /// No body.
    Empty,
    /// Text (`text/plain` unless a header says otherwise).
    Text(T),
    /// JSON already encoded (`application/json`).
    Json(T),
    /// Bytes (`application/octet-stream`).
    Bytes(Bytes),
    /// Server-sent events, sent as they come (`text/event-stream`).
    Events(EventBody<T>),
}

/// A handler's answer.
pub struct Answer<T> {
    /// The status code (100 to 999).
    pub status: u16,
    /// Headers to send; a `Content-Type` among them replaces the body's.
    pub headers: Vec<(String, String)>,
    pub body: AnswerBody<T>,
}

impl<T> Answer<T> {
    /// A 200 with `body`.
    pub fn ok(body: AnswerBody<T>) -> Self {
        Answer { status: 200, headers: Vec::new(), body }
    }
}

/// Where a request's answer goes: to the connection waiting on the I/O
/// worker. Dropped unanswered, the client gets a 500.
pub struct Responder<T>(oneshot::Sender<Answer<T>>);

impl<T> Responder<T> {
    /// A responder and what the connection waits on.
    pub fn new() -> (Self, oneshot::Receiver<Answer<T>>) {
        let (sender, receiver) = oneshot::channel();
        (Responder(sender), receiver)
    }

    /// Sends the answer (lost if the client is gone or the answer came too late).
    pub fn respond(self, answer: Answer<T>) {
        let _ = self.0.send(answer);
    }

    /// Whether the connection still waits for the answer.
    pub fn is_waiting(&self) -> bool {
        !self.0.is_closed()
    }
}

/// On the I/O worker: the response for a handler's answer.
pub fn into_response<T: OutgoingText>(answer: Answer<T>, stats: &Arc<ServerStats>) -> Response<Body> {
    let (status, headers, body) = encode(answer);
    assemble(status, headers, body, stats)
}

/// On the I/O worker: the response for a handler's answer, and a copy to
/// keep for `keep` when the answer may be kept (see [`keepable`]).
pub(super) fn respond_and_keep<T: OutgoingText>(
    answer: Answer<T>,
    route: RouteId,
    keep: Duration,
    stats: &Arc<ServerStats>,
) -> (Response<Body>, Option<Kept>) {
    let (status, headers, body) = encode(answer);
    match body {
        Encoded::Full(bytes) if keepable(status, &headers) => {
            let kept = Kept::new(route, keep, status, headers, bytes.unwrap_or_default());
            (kept.response(), Some(kept))
        }
        body => (assemble(status, headers, body, stats), None),
    }
}

/// An answer's body once encoded: all of it (`None`: no body), or events to come.
enum Encoded<T> {
    Full(Option<Bytes>),
    Events(EventBody<T>),
}

/// The status, headers and body of an answer, text made UTF-8.
fn encode<T: OutgoingText>(answer: Answer<T>) -> (StatusCode, HeaderMap, Encoded<T>) {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (content_type, body) = match answer.body {
        AnswerBody::Empty => (None, Encoded::Full(None)),
        AnswerBody::Text(text) => (Some("text/plain; charset=utf-8"), Encoded::Full(Some(text.into_string().into()))),
        AnswerBody::Json(text) => (Some("application/json"), Encoded::Full(Some(text.into_string().into()))),
        AnswerBody::Bytes(bytes) => (Some("application/octet-stream"), Encoded::Full(Some(bytes))),
        AnswerBody::Events(events) => (Some("text/event-stream"), Encoded::Events(events)),
    };
    let mut headers = HeaderMap::with_capacity(answer.headers.len() + 1);
    if let Some(content_type) = content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    for (name, value) in answer.headers {
        // The glue checked them; one that is still invalid is skipped, not sent broken.
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.insert(name, value);
        }
    }
    (status, headers, body)
}

fn assemble<T: OutgoingText>(
    status: StatusCode,
    headers: HeaderMap,
    body: Encoded<T>,
    stats: &Arc<ServerStats>,
) -> Response<Body> {
    let body = match body {
        Encoded::Full(bytes) => bytes.map_or_else(empty, super::files::full),
        Encoded::Events(events) => events.into_body(stats),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A short text answer with `status` (the server's own: errors and refusals).
pub fn status_text(status: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(super::files::full(Bytes::from(format!("{text}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// Whether a header may be set by a handler's answer (a valid name and value).
pub fn valid_header(name: &str, value: &str) -> bool {
    HeaderName::try_from(name).is_ok() && HeaderValue::try_from(value).is_ok()
}
