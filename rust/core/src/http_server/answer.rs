//! What a handler answers, as it crosses from the main thread to the I/O
//! worker ([`Answer`], through a [`Responder`]), and how the worker turns it
//! into a response: text is made UTF-8 there, not on the main thread.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{
    Response, StatusCode,
    header::{self, HeaderName, HeaderValue},
};
use tokio::sync::oneshot;

use super::{events::EventBody, stats::ServerStats};
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
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (content_type, body) = match answer.body {
        AnswerBody::Empty => (None, empty()),
        AnswerBody::Text(text) => (Some("text/plain; charset=utf-8"), super::files::full(text.into_string().into())),
        AnswerBody::Json(text) => (Some("application/json"), super::files::full(text.into_string().into())),
        AnswerBody::Bytes(bytes) => (Some("application/octet-stream"), super::files::full(bytes)),
        AnswerBody::Events(events) => (Some("text/event-stream"), events.into_body(stats)),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(content_type) = content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    for (name, value) in answer.headers {
        // The glue checked them; one that is still invalid is skipped, not sent broken.
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.insert(name, value);
        }
    }
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
