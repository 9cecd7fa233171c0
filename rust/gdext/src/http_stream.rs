//! `HttpStream`: a response delivered as it arrives. The request, TLS,
//! decompression, line splitting, event parsing and the strings of lines
//! and events are made on the I/O worker (`Forwarder`); the main thread
//! takes them from one bounded relay and emits them (`Emitter`).

use std::{
    rc::Rc,
    sync::Arc,
    task::{Context, Poll},
};

use async_net_core::{
    http::{Head, HttpClient, RequestSpec, SseEvent, StreamHandler, StreamOptions},
    reactor::{OwnerId, TaskEnd},
    relay::{Bounds, Relay},
};
use bytes::Bytes;
use godot::prelude::*;

use crate::{
    async_task::TaskProgress,
    http_response::{header_strings, headers_dictionary},
    net_node::{Emit, Flow, deliver},
    runtime,
    signals::HotSignal,
};

/// Most pieces, lines and events waiting for the main thread; past it (or
/// [`WINDOW_BYTES`]) the stream stops reading and TCP makes the server wait.
const WINDOW_MESSAGES: usize = 65_536;
/// Most bytes waiting for the main thread (one larger piece passes alone).
const WINDOW_BYTES: usize = 8 * 1024 * 1024;

/// A response that arrives over time, from [method HttpSession.stream].
///
/// Pieces of the body, lines of a newline-delimited body (NDJSON), or
/// server-sent events arrive each as a signal as soon as it arrives (no
/// per-frame cap on bytes). The stream keeps itself alive while it runs.
/// [codeblock]
/// var feed := $HttpSession.stream("GET", "https://example.com/ticker")
/// feed.event_received.connect(func(event, data, id): print(event, ": ", data))
/// feed.failed.connect(func(message): push_warning(message))
/// [/codeblock]
/// The body is cut by its content type ([code]text/event-stream[/code]: events;
/// [code]application/x-ndjson[/code] and kin: lines; else pieces only), or as
/// the [code]parse[/code] option says. An event stream reconnects when its
/// connection ends or drops, after the server's [code]retry[/code] delay and with
/// [code]Last-Event-ID[/code], until the server answers 204 or you [method cancel].
/// Exactly one of [signal finished] and [signal failed] ends a stream, unless
/// it is cancelled (by [method cancel], its session's freeing, or
/// [method AsyncHub.cancel_all]), which emits nothing more.
#[derive(GodotClass)]
#[class(init, base = RefCounted)]
pub struct HttpStream {
    progress: Rc<TaskProgress>,
    base: Base<RefCounted>,
}

#[godot_api]
impl HttpStream {
    /// The response began (again after an event stream reconnected): its
    /// status and headers (lower-case names).
    #[signal]
    pub fn response_started(status: i64, headers: VarDictionary);
    /// A piece of the body arrived, decompressed, whatever the content type.
    #[signal]
    pub fn chunk_received(data: PackedByteArray);
    /// A line of a newline-delimited body arrived, without its end (empty lines are skipped).
    #[signal]
    pub fn line_received(line: GString);
    /// A server-sent event arrived: [param event] is "message" when the
    /// server named none, [param data] its data lines joined with "\n",
    /// [param id] the last event id the stream has seen ("" if none).
    #[signal]
    pub fn event_received(event: GString, data: GString, id: GString);
    /// The body ended (or an event stream's server answered 204).
    #[signal]
    pub fn finished();
    /// The stream failed: [param message] names the cause (a refused
    /// connection, TLS, a timeout, a reset, a line over
    /// [member HttpSession.max_line_bytes]).
    #[signal]
    pub fn failed(message: GString);

    /// Stops the stream now and closes its connection; nothing more is
    /// emitted. Returns [code]false[/code] if it had already ended.
    #[func]
    pub fn cancel(&self) -> bool {
        self.progress.cancel()
    }

    /// Whether the stream has ended (finished, failed or cancelled).
    #[func]
    pub fn is_done(&self) -> bool {
        self.progress.is_done()
    }
}

impl HttpStream {
    /// Starts streaming `spec` with `client` (or failing with the error of either),
    /// owned by `owner` (the session): its task ends with the owner's.
    pub fn start(
        client: Result<HttpClient, String>,
        owner: OwnerId,
        name: &str,
        spec: Result<RequestSpec, String>,
        options: StreamOptions,
    ) -> Gd<HttpStream> {
        let progress = Rc::new(TaskProgress::default());
        let stream = Gd::from_init_fn(|base| HttpStream { progress: progress.clone(), base });
        let relay = Arc::new(Relay::new(Bounds { messages: WINDOW_MESSAGES, bytes: WINDOW_BYTES }));
        let mut forwarder = Forwarder { relay: relay.clone() };
        let io = async move { client?.stream(spec?, options, &mut forwarder).await };
        let Some(io) = runtime::with_reactor(|r| r.spawn_io(io)) else {
            progress.end();
            return stream; // The engine is quitting.
        };
        let emitter = Emitter {
            stream: stream.clone(),
            chunk_received: HotSignal::of_object(stream.clone().upcast(), "chunk_received"),
            line_received: HotSignal::of_object(stream.clone().upcast(), "line_received"),
            event_received: HotSignal::of_object(stream.clone().upcast(), "event_received"),
        };
        let (hook_stream, hook_progress) = (stream.clone(), progress.clone());
        let on_end = move |end: TaskEnd| {
            hook_progress.end();
            let mut signals = hook_stream.signals();
            match end {
                TaskEnd::Completed => signals.finished().emit(),
                TaskEnd::Failed(message) => signals.failed().emit(&message),
                TaskEnd::Cancelled => {}
            }
        };
        progress.spawned(runtime::spawn(name, owner, deliver(relay, io, emitter), on_end));
        stream
    }
}

/// What the stream reports, as the main thread will emit it; strings made on the I/O worker.
enum StreamMessage {
    Started(u16, Vec<(GString, GString)>),
    Chunk(Bytes),
    Line(GString),
    Event(GString, GString, GString),
}

/// On the I/O worker: the stream's pieces, lines and events into messages.
struct Forwarder {
    relay: Arc<Relay<StreamMessage>>,
}

impl Forwarder {
    fn send(&self, message: StreamMessage, bytes: usize) {
        // Fails only once the stream was cancelled, when nothing is to be reported.
        let _ = self.relay.push_now(message, bytes);
    }
}

impl StreamHandler for Forwarder {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.relay.poll_ready(cx)
    }
    fn started(&mut self, head: Head) {
        self.send(StreamMessage::Started(head.status, header_strings(head.headers)), 0);
    }
    fn chunk(&mut self, data: Bytes) {
        let bytes = data.len();
        self.send(StreamMessage::Chunk(data), bytes);
    }
    fn line(&mut self, line: &str) {
        self.send(StreamMessage::Line(line.into()), line.len());
    }
    fn event(&mut self, event: SseEvent) {
        let bytes = event.data.len();
        let message =
            StreamMessage::Event(event.event.as_str().into(), event.data.as_str().into(), event.id.as_str().into());
        self.send(message, bytes);
    }
}

/// On the main thread: messages into the stream's signals; a piece becomes
/// a `PackedByteArray` only when something is connected to receive it.
struct Emitter {
    stream: Gd<HttpStream>,
    chunk_received: HotSignal,
    line_received: HotSignal,
    event_received: HotSignal,
}

impl Emit<StreamMessage> for Emitter {
    fn emit(&mut self, message: StreamMessage) -> Flow {
        match message {
            StreamMessage::Started(status, headers) => {
                self.stream.signals().response_started().emit(i64::from(status), &headers_dictionary(&headers));
            }
            StreamMessage::Chunk(data) => {
                self.chunk_received.emit(|| [PackedByteArray::from(&data[..]).to_variant()]);
            }
            StreamMessage::Line(line) => {
                self.line_received.emit(|| [line.to_variant()]);
            }
            StreamMessage::Event(event, data, id) => {
                self.event_received.emit(|| [event.to_variant(), data.to_variant(), id.to_variant()]);
            }
        }
        Flow::Continue
    }
}
