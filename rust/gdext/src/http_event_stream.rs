//! `HttpEventStream`: server-sent events to one client, from
//! [`HttpServerRequest::open_event_stream`](crate::http_server_request). Each
//! event is queued as Godot strings and formatted on the I/O worker.

use async_net_core::http_server::{Event, EventSender};
use godot::prelude::*;

use crate::ws_echo::Text;

/// A stream of server-sent events to one client, from [method HttpServerRequest.open_event_stream].
///
/// The client is a browser's [code]EventSource[/code], or any client reading
/// [code]text/event-stream[/code].
/// [codeblock]
/// $HttpServer.route("GET", "/scores", func(req):
///     var stream := req.open_event_stream()
///     score_changed.connect(func(score): stream.send("score", str(score)))
///     stream.closed.connect(func(): print("viewer left")))
/// [/codeblock]
/// The stream stays open (and this object alive) until the client leaves,
/// [method close] is called or the server stops.
#[derive(GodotClass)]
#[class(no_init, base = RefCounted)]
pub struct HttpEventStream {
    sender: Option<EventSender<Text>>,
    base: Base<RefCounted>,
}

#[godot_api]
impl HttpEventStream {
    /// The stream ended: the client left, or [method close] was called.
    /// (Not emitted when the server stops.)
    #[signal]
    pub fn closed();

    /// Sends an event named [param event] ("" for the default "message") with
    /// [param data] (line breaks become several data lines, as the format
    /// wants) and, if given, [param id] (what a reconnecting browser sends
    /// back as Last-Event-ID). Returns [code]false[/code] when the stream is
    /// closed or its queue ([code]1024[/code] events) is full.
    #[func]
    pub fn send(&self, event: GString, data: GString, #[opt(default = "")] id: GString) -> bool {
        self.sender.as_ref().is_some_and(|s| s.send(Event { event: Text(event), data: Text(data), id: Text(id) }))
    }

    /// Ends the stream (after the events already sent); [signal closed] follows.
    #[func]
    pub fn close(&mut self) {
        self.sender = None;
    }

    /// Whether the client is still connected and [method close] was not called.
    #[func]
    pub fn is_open(&self) -> bool {
        self.sender.as_ref().is_some_and(EventSender::is_open)
    }
}

impl HttpEventStream {
    pub(crate) fn create(sender: EventSender<Text>) -> Gd<Self> {
        Gd::from_init_fn(|base| HttpEventStream { sender: Some(sender), base })
    }

    /// The stream's body is gone (its client left, or it was closed).
    pub(crate) fn ended(mut stream: Gd<Self>) {
        stream.bind_mut().sender = None;
        stream.signals().closed().emit();
        Self::release(&mut stream);
    }

    /// The stream will emit nothing more: lets go of what its signal holds.
    pub(crate) fn release(stream: &mut Gd<Self>) {
        stream.bind_mut().sender = None;
        crate::signals::disconnect_all(&mut stream.clone().upcast(), &["closed"]);
    }
}
