//! Server-sent events: the handler's side ([`EventSender`], held by an
//! `HttpEventStream`) and the response body that sends them ([`EventBody`]),
//! which formats each event on the I/O worker and says when the client left.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use tokio::sync::mpsc;

use super::{
    answer::Body,
    stats::{Gauge, Open, ServerStats},
};
use crate::ws::OutgoingText;

/// One event: its name (empty: "message"), data and id (empty: none).
pub struct Event<T> {
    pub event: T,
    pub data: T,
    pub id: T,
}

/// Sends events to one client's stream. Dropping it ends the stream.
pub struct EventSender<T>(mpsc::Sender<Event<T>>);

impl<T> EventSender<T> {
    /// Queues an event; false when the queue is full or the client left.
    pub fn send(&self, event: Event<T>) -> bool {
        self.0.try_send(event).is_ok()
    }

    /// Whether the client is still connected.
    pub fn is_open(&self) -> bool {
        !self.0.is_closed()
    }
}

/// The body of an event-stream response. `on_end` runs once when it ends or is
/// dropped (the client left, the sender was dropped, the server stopped).
pub struct EventBody<T> {
    receiver: mpsc::Receiver<Event<T>>,
    on_end: Option<Box<dyn FnOnce() + Send>>,
    /// Counts the stream in the server's stats while it is open.
    open: Option<Open>,
}

/// A stream of at most `capacity` waiting events, and its body.
pub fn channel<T>(capacity: usize, on_end: impl FnOnce() + Send + 'static) -> (EventSender<T>, EventBody<T>) {
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    (EventSender(sender), EventBody { receiver, on_end: Some(Box::new(on_end)), open: None })
}

impl<T: OutgoingText> EventBody<T> {
    pub(super) fn into_body(mut self, stats: &Arc<ServerStats>) -> Body {
        self.open = Some(stats.open(Gauge::EventStreams));
        self.boxed_unsync()
    }
}

impl<T> Drop for EventBody<T> {
    fn drop(&mut self) {
        if let Some(on_end) = self.on_end.take() {
            on_end();
        }
    }
}

impl<T: OutgoingText> hyper::body::Body for EventBody<T> {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.receiver.poll_recv(cx).map(|event| event.map(|e| Ok(Frame::data(format(e)))))
    }
}

/// An event as the text/event-stream format writes it. Line breaks in the
/// data become several `data:` lines; in the name and id they cannot be
/// sent, so they become spaces.
pub fn format<T: OutgoingText>(event: Event<T>) -> Bytes {
    let (name, data, id) = (event.event.into_string(), event.data.into_string(), event.id.into_string());
    let one_line = |s: &str| s.replace(['\r', '\n'], " ");
    let mut out = String::with_capacity(data.len() + name.len() + id.len() + 24);
    if !name.is_empty() {
        out.push_str("event: ");
        out.push_str(&one_line(&name));
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    if !id.is_empty() {
        out.push_str("id: ");
        out.push_str(&one_line(&id));
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, data: &str, id: &str) -> Event<String> {
        Event { event: event.into(), data: data.into(), id: id.into() }
    }

    #[test]
    fn events_are_formatted_as_browsers_read_them() {
        assert_eq!(format(event("", "hi", "")), "data: hi\n\n");
        assert_eq!(format(event("score", "a\nb\r\nc", "7")), "event: score\ndata: a\ndata: b\ndata: c\nid: 7\n\n");
        assert_eq!(format(event("x\ny", "", "1\n2")), "event: x y\ndata: \nid: 1 2\n\n");
    }

    #[test]
    fn the_end_is_reported_once_when_the_body_goes() {
        let ended = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = ended.clone();
        let (sender, body) = channel::<String>(2, move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        assert!(sender.send(event("", "1", "")));
        assert!(sender.send(event("", "2", "")));
        assert!(!sender.send(event("", "3", "")), "full");
        drop(body);
        assert_eq!(ended.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(!sender.is_open());
    }
}
