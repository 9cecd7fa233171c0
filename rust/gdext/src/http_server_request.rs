//! `HttpServerRequest`: one request as an `HttpServer` handler sees it, and
//! how its answer is found: the handler's return value (or, when it awaits,
//! what its function state completes with), `respond()`, or 500. The
//! request's strings were made on the I/O worker ([`RequestParts`]); the
//! answer goes back there to be encoded.

use std::rc::Rc;

use async_net_core::http_server::{Answer, AnswerBody, IncomingRequest, Responder, RouteId, valid_header};
use bytes::Bytes;
use godot::{
    classes::{Json, object::ConnectFlags},
    meta::{GodotConvert, GodotImmutable, conv::ByValue, error::ConvertError},
    prelude::*,
};

use crate::{
    http_event_stream::HttpEventStream,
    http_options::Options,
    http_response::{header_strings, headers_dictionary, parse_json},
    http_server_delivery::ServerContext,
    ws_echo::Text,
};

/// A request to an [HttpServer] route, given to its handler.
///
/// Answer by returning a value from the handler (see [HttpServer]), or with
/// [method respond] for a status and headers of your choice:
/// [codeblock]
/// func _on_item(req: HttpServerRequest):
///     if not items.has(req.params.id):
///         req.respond(404, {"error": "no such item"})
///         return
///     return items[req.params.id]
/// [/codeblock]
/// To answer later, from elsewhere, call [method defer], keep the request and
/// call [method respond] when ready (within [member HttpServer.request_timeout_sec],
/// or the client gets 503). [method open_event_stream] answers with a stream
/// of server-sent events instead.
#[derive(GodotClass)]
#[class(no_init, base = RefCounted)]
pub struct HttpServerRequest {
    /// The method, upper case: [code]"GET"[/code], [code]"POST"[/code], ...
    #[var(no_set)]
    method: GString,
    /// The path, percent-decoded, without the query: [code]"/players/7"[/code].
    #[var(no_set)]
    path: GString,
    /// The route pattern's parameters: [code]/players/:id[/code] gives [code]{"id": "7"}[/code].
    #[var(get = get_params, no_set)]
    params: PhantomVar<VarDictionary>,
    /// The query string's parameters, decoded ([code]?top=10[/code] gives
    /// [code]{"top": "10"}[/code]; a repeated name keeps its last value).
    #[var(get = get_query, no_set)]
    query: PhantomVar<VarDictionary>,
    /// The headers: lower-case names; a header sent several times has its values joined with ", ".
    #[var(get = get_headers, no_set)]
    headers: PhantomVar<VarDictionary>,
    /// The body (at most [member HttpServer.max_body_bytes]).
    #[var(get = get_body, no_set)]
    body: PhantomVar<PackedByteArray>,
    /// The client's address, [code]ip:port[/code].
    #[var(no_set)]
    peer: GString,
    parts: RequestParts,
    /// Taken by the first answer.
    responder: Option<Responder<Text>>,
    deferred: bool,
    context: Rc<ServerContext>,
    base: Base<RefCounted>,
}

#[godot_api]
impl HttpServerRequest {
    /// The body as UTF-8 text (invalid bytes become U+FFFD).
    #[func]
    pub fn text(&self) -> GString {
        String::from_utf8_lossy(&self.parts.body).as_ref().into()
    }

    /// The body parsed as JSON; [code]null[/code], with an error logged, when it is not valid JSON.
    #[func]
    pub fn json(&self) -> Variant {
        parse_json(&self.text(), || format!("HttpServerRequest.json(): the body of {} {}", self.method, self.path))
    }

    /// The value of header [param name] (any case), or [param default] when it was not sent.
    #[func]
    pub fn get_header(&self, name: GString, #[opt(default = "")] default: GString) -> GString {
        let key = name.to_string().to_ascii_lowercase();
        self.parts.headers.iter().find(|(n, _)| *n == key.as_str()).map_or(default, |(_, v)| v.clone())
    }

    /// Answers with [param status], [param body] (a String, a Dictionary or
    /// Array sent as JSON, a PackedByteArray, or null for none) and
    /// [param headers] (e.g. [code]{"Content-Type": "text/html"}[/code], which
    /// replaces the body's own). Only the first answer counts: returns
    /// [code]false[/code] if the request was already answered (or timed out).
    #[func]
    pub fn respond(
        &mut self,
        status: i64,
        #[opt(default = AnyValue::empty_string())] body: AnyValue,
        #[opt(default = Options::empty())] headers: Options,
    ) -> bool {
        let (body, headers) = (body.0, headers.0);
        let answer = answer_body(&body).and_then(|body| {
            let status = u16::try_from(status)
                .ok()
                .filter(|s| (100..=999).contains(s))
                .ok_or_else(|| format!("respond(): {status} is not an HTTP status"))?;
            Ok(Answer { status, headers: header_pairs(&headers)?, body })
        });
        match answer {
            Ok(answer) => self.send(answer),
            Err(message) => {
                self.fail(&message);
                false
            }
        }
    }

    /// Says the handler will answer later with [method respond] (so returning
    /// [code]null[/code] does not answer 500).
    #[func]
    pub fn defer(&mut self) {
        self.deferred = true;
    }

    /// Whether the request has been answered (or can no longer be: the client
    /// left, or [member HttpServer.request_timeout_sec] passed).
    #[func]
    pub fn is_answered(&self) -> bool {
        self.responder.as_ref().is_none_or(|r| !r.is_waiting())
    }

    /// Answers with a stream of server-sent events ([code]text/event-stream[/code],
    /// what a browser's [code]EventSource[/code] reads) and returns it; send
    /// events with [method HttpEventStream.send]. [code]null[/code] (and an
    /// error) if the request was already answered.
    #[func]
    pub fn open_event_stream(&mut self) -> Option<Gd<HttpEventStream>> {
        if self.is_answered() {
            self.context.error(format!("open_event_stream(): {} {} was already answered", self.method, self.path));
            return None;
        }
        let (id, sender, body) = self.context.open_stream();
        let mut answer = Answer::ok(AnswerBody::Events(body));
        answer.headers.push(("cache-control".into(), "no-cache".into()));
        self.send(answer);
        let stream = HttpEventStream::create(sender);
        self.context.keep_stream(id, stream.clone());
        Some(stream)
    }

    /// See the property of the same name.
    #[func]
    fn get_params(&self) -> VarDictionary {
        headers_dictionary(&self.parts.params)
    }

    /// See the property of the same name.
    #[func]
    fn get_query(&self) -> VarDictionary {
        headers_dictionary(&self.parts.query)
    }

    /// See the property of the same name.
    #[func]
    fn get_headers(&self) -> VarDictionary {
        headers_dictionary(&self.parts.headers)
    }

    /// See the property of the same name.
    #[func]
    fn get_body(&self) -> PackedByteArray {
        PackedByteArray::from(&self.parts.body[..])
    }
}

impl HttpServerRequest {
    /// Calls the route's handler with a new request and answers with what it
    /// returns (at once, or when its function state completes).
    pub(crate) fn dispatch(
        parts: RequestParts,
        responder: Responder<Text>,
        handler: Option<Callable>,
        context: Rc<ServerContext>,
    ) {
        let request = Gd::from_init_fn(|base| HttpServerRequest {
            method: parts.method.clone(),
            path: parts.path.clone(),
            params: PhantomVar::default(),
            query: PhantomVar::default(),
            headers: PhantomVar::default(),
            body: PhantomVar::default(),
            peer: parts.peer.clone(),
            parts,
            responder: Some(responder),
            deferred: false,
            context,
            base,
        });
        let Some(handler) = handler else {
            // A route added and then lost (cannot happen while its id is known): answer plainly.
            request.clone().bind_mut().send(Answer { status: 404, headers: Vec::new(), body: AnswerBody::Empty });
            return;
        };
        let returned = handler.call(&[request.to_variant()]);
        Self::finish(request, returned);
    }

    /// Answers with `returned` unless the request was answered or deferred;
    /// waits for a function state (a handler that awaited) to complete first.
    fn finish(mut request: Gd<Self>, returned: Variant) {
        // The type is checked first: a failed conversion builds an error, a cost on every answer.
        if returned.get_type() == VariantType::OBJECT
            && let Ok(mut state) = returned.try_to::<Gd<Object>>()
            && state.get_class() == "GDScriptFunctionState"
        {
            let waiting = request.clone();
            let on_completed = Callable::from_fn("HttpServerRequest.finish", move |args| {
                Self::finish(waiting.clone(), args.first().map_or_else(Variant::nil, |v| (*v).clone()));
            });
            state.connect_flags("completed", &on_completed, ConnectFlags::ONE_SHOT);
            return;
        }
        let problem = {
            let mut this = request.bind_mut();
            if this.is_answered() || (returned.is_nil() && this.deferred) {
                None
            } else if returned.is_nil() {
                this.send(server_error());
                Some(format!(
                    "the handler of {} {} returned null without answering (or hit a script error): answered 500",
                    this.method, this.path
                ))
            } else {
                match answer_body(&returned) {
                    Ok(body) => {
                        this.send(Answer::ok(body));
                        None
                    }
                    Err(message) => {
                        this.send(server_error());
                        Some(format!("the handler of {} {}: {message}: answered 500", this.method, this.path))
                    }
                }
            }
        };
        if let Some(message) = problem {
            let context = request.bind().context.clone();
            context.error(message);
        }
    }

    /// Sends `answer` if none was sent; whether it was.
    fn send(&mut self, answer: Answer<Text>) -> bool {
        match self.responder.take() {
            Some(responder) if responder.is_waiting() => {
                responder.respond(answer);
                true
            }
            _ => false,
        }
    }

    /// A bad `respond()`: answers 500 (if still possible) and reports why.
    fn fail(&mut self, message: &str) {
        self.send(server_error());
        self.context.error(format!("{} {}: {message}: answered 500", self.method, self.path));
    }
}

fn server_error() -> Answer<Text> {
    Answer { status: 500, headers: Vec::new(), body: AnswerBody::Empty }
}

/// The body for a value a handler answers with.
fn answer_body(value: &Variant) -> Result<AnswerBody<Text>, String> {
    Ok(match value.get_type() {
        VariantType::NIL => AnswerBody::Empty,
        VariantType::STRING => AnswerBody::Text(Text(value.to())),
        VariantType::STRING_NAME => AnswerBody::Text(Text(GString::from(&value.to::<StringName>()))),
        VariantType::DICTIONARY | VariantType::ARRAY | VariantType::INT | VariantType::FLOAT | VariantType::BOOL => {
            AnswerBody::Json(Text(Json::stringify(value)))
        }
        VariantType::PACKED_BYTE_ARRAY => {
            AnswerBody::Bytes(Bytes::copy_from_slice(value.to::<PackedByteArray>().as_slice()))
        }
        other => {
            return Err(format!("cannot answer with a {other:?} (use a String, Dictionary, Array or PackedByteArray)"));
        }
    })
}

/// The headers of `respond()` as strings, each checked.
fn header_pairs(headers: &VarDictionary) -> Result<Vec<(String, String)>, String> {
    headers
        .iter_shared()
        .map(|(name, value)| {
            let (name, value) = (name.stringify().to_string(), value.stringify().to_string());
            if valid_header(&name, &value) { Ok((name, value)) } else { Err(format!("invalid header '{name}'")) }
        })
        .collect()
}

/// A request's parts, made on the I/O worker.
pub(crate) struct RequestParts {
    pub route: RouteId,
    method: GString,
    path: GString,
    params: Vec<(GString, GString)>,
    query: Vec<(GString, GString)>,
    headers: Vec<(GString, GString)>,
    body: Bytes,
    peer: GString,
}

impl RequestParts {
    /// On the I/O worker: every string of the request.
    pub fn new(request: IncomingRequest) -> Self {
        RequestParts {
            route: request.route,
            method: request.method.as_str().into(),
            path: request.path.as_str().into(),
            params: header_strings(request.params),
            query: header_strings(request.query),
            headers: header_strings(request.headers),
            body: request.body,
            peer: request.peer.as_str().into(),
        }
    }
}

/// The `body` argument of `respond()`: any value, `""` when left out. A
/// newtype only because gdext 0.5 takes no Variant as an `#[opt(default)]`.
#[derive(Debug, Clone)]
pub struct AnyValue(Variant);

impl AnyValue {
    fn empty_string() -> Self {
        AnyValue(GString::new().to_variant())
    }
}

impl GodotConvert for AnyValue {
    type Via = Variant;
    fn godot_shape() -> godot::meta::shape::GodotShape {
        Variant::godot_shape()
    }
}

impl ToGodot for AnyValue {
    type Pass = ByValue;
    fn to_godot(&self) -> Variant {
        self.0.clone()
    }
}

impl FromGodot for AnyValue {
    fn try_from_godot(via: Variant) -> Result<Self, ConvertError> {
        Ok(AnyValue(via))
    }
}

// SAFETY: the only default made is an empty String, a value type: its clones
// offer no way to change it.
unsafe impl GodotImmutable for AnyValue {
    fn into_runtime_immutable(self) -> Self {
        self
    }
}
