//! A session's client: the reqwest client its config built, the request
//! every kind of call starts with (sent within the timeout, failures made
//! into messages), and `fetch`, which holds the body in memory within
//! `max_response_bytes`.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering::Relaxed},
};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::proxy::{self, ProxyChoice};
use super::{HttpConfig, RequestSpec, error};

/// The status line and headers of a response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// `HTTP/1.1`, `HTTP/2`, ...
    pub version: &'static str,
    /// The URL that answered (after redirects).
    pub url: String,
    /// Lower-case names in the order they came; a repeated header's values joined with ", ".
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub(super) fn from_response(response: &reqwest::Response) -> Self {
        Head {
            status: response.status().as_u16(),
            version: version_name(response.version()),
            url: response.url().to_string(),
            headers: joined_headers(response.headers()),
        }
    }

    /// The value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The media type without parameters, lower-case ("" when none).
    pub fn media_type(&self) -> String {
        let value = self.header("content-type").unwrap_or("");
        value.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
    }
}

/// A response whose body was read whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// Status and headers.
    pub head: Head,
    /// The body, decompressed.
    pub body: Bytes,
}

/// Counters of a session, written on the I/O worker, read by `get_stats()`.
#[derive(Debug, Default)]
pub struct HttpStats {
    requests: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
    bytes_received: AtomicU64,
}

/// A copy of [`HttpStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpStatsSnapshot {
    /// Requests started (each reconnect of an event stream counts).
    pub requests: u64,
    /// Requests that got a response (of any status) and read it to the end.
    pub completed: u64,
    /// Requests that failed (transport, timeout, limit).
    pub failed: u64,
    /// Requests going on now.
    pub in_flight: u64,
    /// Body bytes received, after decompression.
    pub bytes_received: u64,
}

impl HttpStats {
    /// The counters now.
    pub fn snapshot(&self) -> HttpStatsSnapshot {
        HttpStatsSnapshot {
            requests: self.requests.load(Relaxed),
            completed: self.completed.load(Relaxed),
            failed: self.failed.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
        }
    }

    pub(super) fn received(&self, bytes: usize) {
        self.bytes_received.fetch_add(bytes as u64, Relaxed);
    }
}

/// One request in flight, counted until it ends one way or another (a
/// cancelled one is dropped: neither completed nor failed).
pub(super) struct InFlight<'a>(&'a HttpStats);

impl<'a> InFlight<'a> {
    fn new(stats: &'a HttpStats) -> Self {
        stats.requests.fetch_add(1, Relaxed);
        stats.in_flight.fetch_add(1, Relaxed);
        InFlight(stats)
    }

    /// Counts the outcome and hands it back.
    pub(super) fn end<T>(self, result: Result<T, String>) -> Result<T, String> {
        let counter = if result.is_ok() { &self.0.completed } else { &self.0.failed };
        counter.fetch_add(1, Relaxed);
        result
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

/// A session's client: shared by its requests (one pool, one cookie jar).
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    config: Arc<HttpConfig>,
    /// The proxies it routes through, to name the one that failed.
    proxy: Arc<ProxyChoice>,
    stats: Arc<HttpStats>,
}

impl HttpClient {
    /// Builds the client for `config`, reading proxies from the process environment.
    pub fn new(config: HttpConfig) -> Result<Self, String> {
        Self::with_env(config, |name| std::env::var(name).ok())
    }

    /// Builds the client for `config`, reading proxies through `env`.
    pub fn with_env(config: HttpConfig, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        config.validate()?;
        let proxy = proxy::choose(&config.proxy, &env)?;
        let client = config.build_client(&proxy)?;
        Ok(HttpClient { client, config: Arc::new(config), proxy: Arc::new(proxy), stats: Arc::default() })
    }

    /// The settings it was built with.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Its counters.
    pub fn stats(&self) -> &Arc<HttpStats> {
        &self.stats
    }

    pub(super) fn in_flight(&self) -> InFlight<'_> {
        InFlight::new(&self.stats)
    }

    /// Sends `spec` (with `extra` headers) and waits for the response's
    /// headers, within `timeout`.
    pub(super) async fn send(
        &self,
        spec: &RequestSpec,
        extra: &[(HeaderName, HeaderValue)],
        timeout: Duration,
    ) -> Result<reqwest::Response, String> {
        let mut request = spec.build(&self.client, &self.config).await?;
        for (name, value) in extra {
            request = request.header(name, value);
        }
        let method = spec.method.trim().to_ascii_uppercase();
        match tokio::time::timeout(timeout, request.send()).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(self.describe(spec, e)),
            Err(_) => {
                Err(format!("{method} {}: {}", crate::redact(spec.url.trim()), timed_out(timeout, "timeout_sec")))
            }
        }
    }

    /// The message for a reqwest error of `spec`.
    pub(super) fn describe(&self, spec: &RequestSpec, e: reqwest::Error) -> String {
        let url = spec.resolve(&self.config).map(|u| u.to_string()).unwrap_or_else(|_| spec.url.clone());
        let proxy = self.proxy.route(&url);
        error::describe(&spec.method.trim().to_ascii_uppercase(), &url, e, self.config.connect_timeout, proxy)
    }

    /// The next piece of `response`'s body (`None` at its end), waiting at
    /// most the read timeout for it.
    pub(super) async fn next_chunk(
        &self,
        spec: &RequestSpec,
        response: &mut reqwest::Response,
    ) -> Result<Option<Bytes>, String> {
        let chunk = response.chunk();
        let result = if self.config.read_timeout.is_zero() {
            chunk.await
        } else {
            tokio::time::timeout(self.config.read_timeout, chunk).await.map_err(|_| {
                format!(
                    "{} {}: {}",
                    spec.method.trim().to_ascii_uppercase(),
                    crate::redact(spec.url.trim()),
                    stalled(self.config.read_timeout)
                )
            })?
        };
        let chunk = result.map_err(|e| self.describe(spec, e))?;
        if let Some(chunk) = &chunk {
            self.stats.received(chunk.len());
        }
        Ok(chunk)
    }

    /// Sends `spec` and reads the whole body, all within its timeout; the
    /// body may not pass `max_response_bytes`. Any status completes.
    pub async fn fetch(&self, spec: RequestSpec) -> Result<Response, String> {
        let in_flight = self.in_flight();
        let timeout = spec.timeout(&self.config);
        let method = spec.method.trim().to_ascii_uppercase();
        let whole = async {
            let mut response = self.send(&spec, &[], timeout).await?;
            let head = Head::from_response(&response);
            let body = self.read_body(&spec, &mut response).await?;
            Ok(Response { head, body })
        };
        let result = match tokio::time::timeout(timeout, whole).await {
            Ok(result) => result,
            Err(_) => {
                Err(format!("{method} {}: {}", crate::redact(spec.url.trim()), timed_out(timeout, "timeout_sec")))
            }
        };
        in_flight.end(result)
    }

    /// Reads a body into memory within `max_response_bytes`.
    pub(super) async fn read_body(
        &self,
        spec: &RequestSpec,
        response: &mut reqwest::Response,
    ) -> Result<Bytes, String> {
        let max = self.config.max_response_bytes;
        let too_large = |size: String| {
            format!(
                "{} {}: the response body of {size} bytes is larger than max_response_bytes ({max})",
                spec.method.trim().to_ascii_uppercase(),
                crate::redact(spec.url.trim())
            )
        };
        let announced = response.content_length().filter(|_| !is_compressed(response.headers()));
        if let Some(length) = announced.filter(|&l| l > max as u64) {
            return Err(too_large(length.to_string()));
        }
        let mut body = BytesMut::with_capacity(announced.unwrap_or(0) as usize);
        while let Some(chunk) = self.next_chunk(spec, response).await? {
            if body.len() + chunk.len() > max {
                return Err(too_large(format!("more than {}", body.len() + chunk.len() - 1)));
            }
            if body.is_empty() && chunk.len() == announced.unwrap_or(0) as usize {
                return Ok(chunk);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

/// Whether reqwest decompresses this body (its Content-Length is then the compressed size).
fn is_compressed(headers: &HeaderMap) -> bool {
    headers.get(reqwest::header::CONTENT_ENCODING).is_some_and(|v| v.as_bytes() != b"identity")
}

/// "timed out after 2.0 s (timeout_sec)".
pub(super) fn timed_out(timeout: Duration, setting: &str) -> String {
    format!("timed out after {:.1} s ({setting})", timeout.as_secs_f64())
}

/// The message of a body that stopped arriving.
pub(super) fn stalled(timeout: Duration) -> String {
    format!("the server sent nothing for {:.1} s (read_timeout_sec)", timeout.as_secs_f64())
}

fn version_name(version: reqwest::Version) -> &'static str {
    match version {
        reqwest::Version::HTTP_09 => "HTTP/0.9",
        reqwest::Version::HTTP_10 => "HTTP/1.0",
        reqwest::Version::HTTP_2 => "HTTP/2",
        reqwest::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// Header names lower-case, in their order; a repeated one's values joined with ", ".
fn joined_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .keys()
        .map(|name| {
            let values: Vec<String> =
                headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
            (name.as_str().to_string(), values.join(", "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{RequestBody, test_server::TestServer};
    use super::*;

    fn client(config: HttpConfig) -> HttpClient {
        HttpClient::with_env(config, |_| None).unwrap()
    }

    #[tokio::test]
    async fn bodies_of_every_kind_arrive_with_their_content_type() {
        let server = TestServer::start().await;
        let client = client(HttpConfig { base_url: server.url("/"), ..HttpConfig::default() });
        for (body, content_type, sent) in [
            (RequestBody::text("héllo"), "text/plain; charset=utf-8", "héllo"),
            (RequestBody::json("{\"a\":1}"), "application/json", "{\"a\":1}"),
            (RequestBody::binary(vec![1u8, 2, 3]), "application/octet-stream", "\u{1}\u{2}\u{3}"),
            (
                RequestBody::Form(vec![("name".into(), "a b".into()), ("x".into(), "&=".into())]),
                "application/x-www-form-urlencoded",
                "name=a+b&x=%26%3D",
            ),
        ] {
            let spec = RequestSpec { method: "post".into(), url: "echo".into(), body, ..RequestSpec::default() };
            let response = client.fetch(spec).await.unwrap();
            let text = String::from_utf8(response.body.to_vec()).unwrap();
            assert!(text.starts_with("POST /echo"), "{text}");
            assert!(text.contains(&format!("content-type: {content_type}\n")), "{text}");
            assert!(text.ends_with(&format!("\n\n{sent}")), "{text}");
        }
        let file = std::env::temp_dir().join(format!("async_net_upload_{}", std::process::id()));
        std::fs::write(&file, b"from disk").unwrap();
        let spec = RequestSpec {
            method: "PUT".into(),
            url: "echo".into(),
            body: RequestBody::File(file.clone()),
            ..RequestSpec::default()
        };
        let text = String::from_utf8(client.fetch(spec).await.unwrap().body.to_vec()).unwrap();
        assert!(text.contains("content-length: 9\n") && text.ends_with("\n\nfrom disk"), "{text}");
        std::fs::remove_file(&file).unwrap();
        let missing = RequestSpec {
            method: "PUT".into(),
            url: "echo".into(),
            body: RequestBody::File(file),
            ..RequestSpec::default()
        };
        assert!(client.fetch(missing).await.unwrap_err().contains("cannot open the file to upload"));
    }

    #[tokio::test]
    async fn a_status_that_is_not_2xx_completes_with_joined_headers() {
        let server = TestServer::start().await;
        let client = client(HttpConfig::default());
        let response = client.fetch(RequestSpec::new("GET", &server.url("/status/503"))).await.unwrap();
        assert_eq!(response.head.status, 503);
        assert_eq!(response.head.version, "HTTP/1.1");
        assert_eq!(response.head.header("x-test"), Some("a, b"));
        assert_eq!(&response.body[..], b"status body");
        let stats = client.stats().snapshot();
        assert_eq!((stats.requests, stats.completed, stats.failed, stats.in_flight), (1, 1, 0, 0));
    }

    #[tokio::test]
    async fn limits_timeouts_and_resets_fail_with_their_cause() {
        let server = TestServer::start().await;
        let config = HttpConfig {
            max_response_bytes: 100_000,
            read_timeout: Duration::from_millis(200),
            ..HttpConfig::default()
        };
        let client = client(config);
        let sized = client.fetch(RequestSpec::new("GET", &server.url("/bytes/200000"))).await.unwrap_err();
        assert!(
            sized.contains("the response body of 200000 bytes is larger than max_response_bytes (100000)"),
            "{sized}"
        );
        let chunked = client.fetch(RequestSpec::new("GET", &server.url("/unsized/300000"))).await.unwrap_err();
        assert!(chunked.contains("larger than max_response_bytes (100000)"), "{chunked}");
        assert_eq!(
            client.fetch(RequestSpec::new("GET", &server.url("/bytes/100000"))).await.unwrap().body.len(),
            100_000
        );
        let stall = client.fetch(RequestSpec::new("GET", &server.url("/stall"))).await.unwrap_err();
        assert!(stall.contains("the server sent nothing for 0.2 s (read_timeout_sec)"), "{stall}");
        let mut total = RequestSpec::new("GET", &server.url("/stall"));
        total.timeout = Some(Duration::from_millis(100));
        let total = client.fetch(total).await.unwrap_err();
        assert!(total.contains("timed out after 0.1 s (timeout_sec)"), "{total}");
        let reset = client.fetch(RequestSpec::new("GET", &server.url("/reset"))).await.unwrap_err();
        assert!(reset.contains("the connection failed while the body arrived"), "{reset}");
        assert_eq!(client.stats().snapshot().failed, 5);
    }

    #[tokio::test]
    async fn unreachable_servers_are_named() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let direct = client(HttpConfig::default());
        let refused = direct.fetch(RequestSpec::new("GET", &format!("http://{closed}/"))).await.unwrap_err();
        assert_eq!(refused, format!("GET http://{closed}/: connection refused by {closed} (is the server running?)"));
        let unknown = direct.fetch(RequestSpec::new("GET", "http://no-such-host.invalid/")).await.unwrap_err();
        assert!(unknown.contains("cannot resolve host 'no-such-host.invalid'"), "{unknown}");
        // Through a proxy that is down, the proxy refused (its credentials are not shown).
        let proxied = client(HttpConfig { proxy: format!("http://user:secret@{closed}"), ..HttpConfig::default() });
        let refused = proxied.fetch(RequestSpec::new("GET", "http://example.test/")).await.unwrap_err();
        assert_eq!(
            refused,
            format!("GET http://example.test/: connection refused by the proxy {closed} (is it running?)")
        );
    }

    #[tokio::test]
    async fn a_proxy_gets_basic_auth_from_its_url() {
        let proxy = TestServer::start().await;
        let config = HttpConfig { proxy: format!("http://user:pa%20ss@{}", proxy.addr), ..HttpConfig::default() };
        let response = client(config).fetch(RequestSpec::new("GET", "http://target.invalid/echo")).await.unwrap();
        let text = String::from_utf8(response.body.to_vec()).unwrap();
        assert!(text.starts_with("GET http://target.invalid/echo"), "{text}");
        assert!(text.contains("proxy-authorization: Basic dXNlcjpwYSBzcw==\n"), "{text}");
    }
}
