//! `HttpSession`: an HTTP client node (the seed's `aiohttp.ClientSession`):
//! one connection pool, cookie jar and set of defaults for its requests,
//! each an `AsyncTask` (or an `HttpStream`) owned by the session. The client
//! lives in `async_net_core::http` and runs on the I/O worker; this file
//! reads properties and options, starts the work, and turns what comes back
//! into `HttpResponse`s and signals on the main thread.

use std::sync::{Arc, Mutex};

use async_net_core::{
    http::{DownloadSpec, HttpClient, HttpConfig, RequestSpec},
    reactor::{IoEnd, OwnerId, TaskResult},
    redact,
    relay::{Bounds, Relay},
};
use godot::{
    classes::{INode, Node},
    prelude::*,
};

use crate::{
    async_task::AsyncTask,
    http_options::{self, Call, Options},
    http_response::ResponseParts,
    http_stream::HttpStream,
    net_node::{Emit, Flow, deliver},
    runtime,
    settings::{self, positive, seconds},
};

/// An HTTP client: a connection pool, cookie jar and defaults shared by its requests.
///
/// [method request] returns an [AsyncTask] completed with an
/// [HttpResponse], [method stream] an [HttpStream], [method download] writes
/// to a file. Requests share the session's connections (kept alive, and
/// multiplexed over HTTP/2), its cookies and its defaults, and run off the
/// main thread: the main thread only receives finished responses, lines and
/// events, so a big download does not cost frames.
/// [codeblock]
/// @onready var api: HttpSession = $HttpSession   # base_url = "https://api.example.com/v1/"
///
/// func _ready():
///     var res: HttpResponse = await api.request("GET", "scores", {"query": {"top": 10}}).completed
///     if res.is_ok():
///         show_scores(res.json())
///     await api.request("POST", "scores", {"json": {"name": "ada", "score": 42}}).completed
/// [/codeblock]
/// A response that is not 2xx still completes (check [member HttpResponse.status]);
/// a transport failure (DNS, refused, TLS, timeout, a limit) fails the task
/// with a message naming the cause, and [signal error] says it too.
///
/// Options of [method request] (all optional): [code]headers[/code]
/// (Dictionary), [code]query[/code] (Dictionary; an Array value repeats the
/// name), one body among [code]body[/code] (String or PackedByteArray),
/// [code]json[/code] (any value, sent as JSON), [code]form[/code] (Dictionary,
/// urlencoded) and [code]file[/code] (a path, streamed from disk), and
/// [code]timeout_sec[/code]. [method stream] also takes [code]parse[/code]
/// ("auto", "chunks", "lines", "events"), [code]reconnect[/code] and
/// [code]retry_sec[/code]; [method download] takes [code]resume[/code]. An
/// unknown option fails the request.
///
/// Freeing the session, or its leaving the tree, cancels its requests and
/// closes their connections.
#[derive(GodotClass)]
#[class(tool, base = Node)]
pub struct HttpSession {
    /// Relative URLs are resolved against this, as a browser does:
    /// [code]https://api.example.com/v1/[/code] + [code]items[/code] is
    /// [code]/v1/items[/code]. Empty: every URL must be absolute.
    #[export]
    base_url: GString,
    /// Headers sent with every request, e.g. [code]{"Authorization": "Bearer ..."}[/code];
    /// a request's own headers replace these. [code]Authorization[/code] is
    /// never sent on to another origin by a redirect.
    #[export]
    headers: VarDictionary,
    /// Time a [method request] has to complete (body included); a stream or
    /// a download has this long to receive its response headers.
    #[export(range = (0.1, 3600.0, 0.1, or_greater, suffix = "s"))]
    timeout_sec: f64,
    /// Time allowed to resolve, connect and complete the TLS handshake.
    #[export(range = (0.1, 120.0, 0.1, or_greater, suffix = "s"))]
    connect_timeout_sec: f64,
    /// Longest silence while a body arrives, once the headers have; 0
    /// disables. How a stalled stream or download is noticed.
    #[export(range = (0.0, 3600.0, 0.1, or_greater, suffix = "s"))]
    read_timeout_sec: f64,

    /// Follow redirects (3xx with a Location); off, they complete as they are.
    #[export_group(name = "Redirects")]
    #[export]
    follow_redirects: bool,
    /// Most redirects followed for one request; one more, or a loop, fails it.
    #[export(range = (0.0, 100.0, 1.0, or_greater))]
    max_redirects: i64,

    /// "" takes the proxy from the environment ([code]HTTP_PROXY[/code],
    /// [code]HTTPS_PROXY[/code], [code]NO_PROXY[/code]); "direct" uses none;
    /// [code]http://user:pass@host:port[/code] sends everything through that
    /// proxy (https through CONNECT), with Basic authentication. The
    /// environment is read when the session builds its client: at its first
    /// request, and again after any property changes.
    #[export_group(name = "Connection")]
    #[export]
    proxy: GString,
    /// Offer HTTP/2 to https servers (through ALPN): many requests then share one connection.
    #[export]
    http2: bool,
    /// Keep the cookies servers set and send them back (one jar per session).
    #[export]
    cookies: bool,

    /// Largest body held in memory by [method request], in bytes (after
    /// decompression); a larger one fails the request. Streams and downloads
    /// are not held, so not limited by it.
    #[export_group(name = "Limits")]
    #[export(range = (1.0, 4294967296.0, 1.0, or_greater, suffix = "bytes"))]
    max_response_bytes: i64,
    /// Longest line, and largest server-sent event, a stream accepts, in bytes.
    #[export(range = (1.0, 268435456.0, 1.0, or_greater, suffix = "bytes"))]
    max_line_bytes: i64,

    /// PEM file of the certificate authority that signed the servers'
    /// certificates, for a private CA; empty trusts the usual public CAs.
    /// Certificates are always verified.
    #[export_group(name = "TLS")]
    #[export(file = "*.pem,*.crt")]
    ca_file: GString,

    /// The client built from the properties, rebuilt when they change.
    client: Option<HttpClient>,
    /// The owner id of this session's tasks, once it started one.
    owner: Option<OwnerId>,
    base: Base<Node>,
}

#[godot_api]
impl INode for HttpSession {
    fn init(base: Base<Node>) -> Self {
        let defaults = HttpConfig::default();
        Self {
            base_url: GString::new(),
            headers: VarDictionary::new(),
            timeout_sec: defaults.timeout.as_secs_f64(),
            connect_timeout_sec: defaults.connect_timeout.as_secs_f64(),
            read_timeout_sec: defaults.read_timeout.as_secs_f64(),
            follow_redirects: defaults.follow_redirects,
            max_redirects: defaults.max_redirects as i64,
            proxy: GString::new(),
            http2: defaults.http2,
            cookies: defaults.cookies,
            max_response_bytes: defaults.max_response_bytes as i64,
            max_line_bytes: defaults.max_line_bytes as i64,
            ca_file: GString::new(),
            client: None,
            owner: None,
            base,
        }
    }

    fn exit_tree(&mut self) {
        self.cancel_all();
    }

    fn get_configuration_warnings(&self) -> PackedStringArray {
        // What its requests would fail with (base_url, headers, proxy), said in the Scene dock.
        let mut warnings = PackedStringArray::new();
        if let Err(problem) = self.config() {
            warnings.push(&problem);
        }
        warnings
    }
}

impl Drop for HttpSession {
    fn drop(&mut self) {
        // Freed without leaving a tree first: its requests end with it.
        if let Some(owner) = self.owner {
            runtime::with_reactor(|r| r.cancel_owner(owner));
        }
    }
}

#[godot_api]
impl HttpSession {
    /// A download made progress: [param received] bytes of [param total]
    /// (-1 when the server did not say), both counting a resumed part. At
    /// most once per frame per download, and once at its end.
    #[signal]
    pub fn download_progress(url: GString, received: i64, total: i64);
    /// A request or stream of this session failed (its task's or stream's own signal says it too).
    #[signal]
    pub fn error(message: GString);

    /// Sends [param method] [param url] (relative to [member base_url]
    /// unless absolute) with [param options] (see the class description).
    /// The task completes with an [HttpResponse] whose body is held in memory
    /// (at most [member max_response_bytes]).
    /// [codeblock]
    /// var res: HttpResponse = await session.request("PUT", "save", {"body": data}).completed
    /// [/codeblock]
    #[func]
    pub fn request(
        &mut self,
        method: GString,
        url: GString,
        #[opt(default = Options::empty())] options: Options,
    ) -> Gd<AsyncTask> {
        let spec =
            http_options::read(Call::Request, &method.to_string(), &url.to_string(), &options.0).map(|(spec, _)| spec);
        let owner = self.owner();
        start_request(self.client(), owner, spec)
    }

    /// Streams [param method] [param url]: its body arrives as the signals of
    /// the returned [HttpStream] (pieces, lines or server-sent events) as
    /// soon as it arrives. Takes [method request]'s options and
    /// [code]parse[/code], [code]reconnect[/code] (event streams; default true)
    /// and [code]retry_sec[/code] (the wait before reconnecting until the
    /// server sets one; default 3).
    #[func]
    pub fn stream(
        &mut self,
        method: GString,
        url: GString,
        #[opt(default = Options::empty())] options: Options,
    ) -> Gd<HttpStream> {
        let read = http_options::read(Call::Stream, &method.to_string(), &url.to_string(), &options.0);
        let (spec, stream_options) = match read {
            Ok((spec, extras)) => (Ok(spec), extras.stream),
            Err(message) => (Err(message), Default::default()),
        };
        let name = task_name("HttpSession.stream", &method.to_string(), &url.to_string());
        let owner = self.owner();
        HttpStream::start(self.client(), owner, &name, spec, stream_options)
    }

    /// Downloads [param url] to [param path] (res://, user:// or absolute):
    /// the body goes to [code]<path>.part[/code] as it arrives and is renamed
    /// to [param path] once complete, so [param path] never holds a partial
    /// file. A failed or cancelled download removes the part file, unless
    /// the option [code]resume[/code] is true: then it is kept, and the next
    /// download with [code]resume[/code] asks only for the rest (HTTP Range).
    /// The task completes with an [HttpResponse] without a body; a status
    /// that is not 2xx leaves [param path] untouched. Progress arrives as
    /// [signal download_progress].
    /// [codeblock]
    /// var res: HttpResponse = await session.download(url, "user://level2.pck", {"resume": true}).completed
    /// [/codeblock]
    #[func]
    pub fn download(
        &mut self,
        url: GString,
        path: GString,
        #[opt(default = Options::empty())] options: Options,
    ) -> Gd<AsyncTask> {
        let read = http_options::read(Call::Download, "GET", &url.to_string(), &options.0);
        let target = settings::file_path(&path.to_string()).ok_or_else(|| "download(): the path is empty".to_string());
        let spec =
            read.and_then(|(request, extras)| Ok(DownloadSpec { request, path: target?, resume: extras.resume }));
        let name = task_name("HttpSession.download", "GET", &url.to_string());
        let owner = self.owner();
        let client = self.client();
        let progress = Arc::new(Relay::new(Bounds { messages: 1, bytes: usize::MAX }));
        let slot: Arc<Mutex<Option<ResponseParts>>> = Arc::default();
        let io = {
            let (progress, slot) = (progress.clone(), slot.clone());
            async move {
                let (client, spec) = (client?, spec?);
                let report = |received: u64, total: Option<u64>| {
                    let _ = progress.push_dropping_oldest((received, total), 0, |_| true);
                };
                let head = client.download(spec, report).await?;
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(ResponseParts::head(head));
                TaskResult::Ok(())
            }
        };
        let io = runtime::with_reactor(|r| r.spawn_io(io));
        let emitter = Progress { session: self.to_gd(), url: url.clone() };
        AsyncTask::start_owned(&name, owner, move |_task| async move {
            deliver(progress, io.ok_or("the engine is quitting")?, emitter).await?;
            let parts = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            Ok(parts.ok_or("the download was cancelled")?.into_response().to_variant())
        })
    }

    /// Cancels every request, stream and download of this session (their
    /// connections close now) and returns how many were cancelled.
    #[func]
    pub fn cancel_all(&self) -> i64 {
        self.owner.and_then(|owner| runtime::with_reactor(|r| r.cancel_owner(owner))).unwrap_or(0) as i64
    }

    /// Counters of the current client (they restart when a property
    /// changes): requests, completed, failed, in_flight, bytes_received.
    #[func]
    pub fn get_stats(&self) -> VarDictionary {
        let s = self.client.as_ref().map(|c| c.stats().snapshot()).unwrap_or_default();
        vdict! {
            "requests" => s.requests as i64,
            "completed" => s.completed as i64,
            "failed" => s.failed as i64,
            "in_flight" => s.in_flight as i64,
            "bytes_received" => s.bytes_received as i64,
        }
    }
}

impl HttpSession {
    fn owner(&mut self) -> OwnerId {
        let owner = runtime::owner_of(&self.to_gd());
        self.owner = Some(owner);
        owner
    }

    /// The client for the properties as they are now.
    fn client(&mut self) -> Result<HttpClient, String> {
        let config = self.config()?;
        if let Some(client) = self.client.as_ref().filter(|c| *c.config() == config) {
            return Ok(client.clone());
        }
        let client = HttpClient::new(config)?;
        self.client = Some(client.clone());
        Ok(client)
    }

    fn config(&self) -> Result<HttpConfig, String> {
        let mut headers = Vec::new();
        for (key, value) in self.headers.iter_shared() {
            headers.push((key.stringify().to_string(), value.stringify().to_string()));
        }
        let config = HttpConfig {
            base_url: self.base_url.to_string(),
            headers,
            timeout: seconds("timeout_sec", self.timeout_sec, 0.001)?,
            connect_timeout: seconds("connect_timeout_sec", self.connect_timeout_sec, 0.001)?,
            read_timeout: seconds("read_timeout_sec", self.read_timeout_sec, 0.0)?,
            follow_redirects: self.follow_redirects,
            max_redirects: usize::try_from(self.max_redirects)
                .map_err(|_| "max_redirects must be at least 0".to_string())?,
            proxy: self.proxy.to_string(),
            http2: self.http2,
            cookies: self.cookies,
            max_response_bytes: positive("max_response_bytes", self.max_response_bytes)?,
            max_line_bytes: positive("max_line_bytes", self.max_line_bytes)?,
            ca_file: settings::file_path(&self.ca_file.to_string()),
            ..HttpConfig::default()
        };
        config.validate()?;
        Ok(config)
    }
}

/// Starts `spec` (or fails with its error) on `client` as a task of `owner`,
/// completed with an `HttpResponse`. The request is sent at once; the body
/// is read and its text made on the I/O worker.
pub fn start_request(
    client: Result<HttpClient, String>,
    owner: OwnerId,
    spec: Result<RequestSpec, String>,
) -> Gd<AsyncTask> {
    let name = match &spec {
        Ok(spec) => task_name("HttpSession.request", &spec.method, &spec.url),
        Err(_) => "HttpSession.request".to_string(),
    };
    let io = runtime::with_reactor(|r| {
        r.spawn_io(async move {
            let (client, spec) = (client?, spec?);
            client.fetch(spec).await.map(ResponseParts::new)
        })
    });
    AsyncTask::start_owned(&name, owner, move |_task| async move {
        let parts = io.ok_or("the engine is quitting")?.await.map_err(|end| match end {
            IoEnd::Panicked(message) => format!("panicked: {message}"),
            IoEnd::Cancelled => "the runtime shut down".to_string(),
        })??;
        Ok(parts.into_response().to_variant())
    })
}

/// "HttpSession.request GET https://host/path" (credentials hidden).
fn task_name(call: &str, method: &str, url: &str) -> String {
    let method = method.trim().to_ascii_uppercase();
    format!("{call} {} {}", if method.is_empty() { "GET" } else { &method }, redact(url.trim()))
}

/// On the main thread: a download's progress as `download_progress`.
struct Progress {
    session: Gd<HttpSession>,
    url: GString,
}

impl Emit<(u64, Option<u64>)> for Progress {
    fn emit(&mut self, (received, total): (u64, Option<u64>)) -> Flow {
        if !self.session.is_instance_valid() {
            return Flow::Stop;
        }
        let total = total.map_or(-1, |t| t as i64);
        self.session.signals().download_progress().emit(&self.url, received as i64, total);
        Flow::Continue
    }
}
