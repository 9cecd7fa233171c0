//! One request's way through the server, on the I/O worker: the host and
//! origin checks, CORS, the token, the route, the body's limits, then a
//! handler on the main thread (through the node), a served file or a
//! WebSocket upgrade. Every refusal is an answer with its status, never a
//! dropped connection.

use std::{
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::Duration,
};

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::{
    HeaderMap, Method, Request, Response, StatusCode, Version,
    body::Incoming,
    header::{self, HeaderValue},
};
use subtle::ConstantTimeEq;
use tokio::{
    sync::mpsc,
    time::{Instant, timeout, timeout_at},
};

use super::{
    IncomingRequest, ServerConfig, ServerHandler,
    answer::{Body, Responder, empty, into_response, respond_and_keep, status_text},
    cache::{AnswerCache, Lookup},
    files,
    router::{Found, Routes},
    server::Work,
    stats::{Count, ServerStats},
    websocket::{self, Peers},
};

/// What every request of a server shares.
pub(super) struct Shared<H: ServerHandler> {
    pub config: ServerConfig,
    pub handler: Arc<H>,
    pub routes: Arc<RwLock<Routes>>,
    pub peers: Arc<Peers<H::Text>>,
    pub stats: Arc<ServerStats>,
    /// The kept answers of routes with `cache_sec`.
    pub cache: Arc<AnswerCache>,
    /// Where WebSocket peers' loops go to run.
    pub spawn: mpsc::UnboundedSender<Work>,
    /// Bound to loopback without a token: only loopback host names are served.
    pub loopback_only: bool,
}

/// Answers `request` from `peer` and reports it (`answered`, stats).
pub(super) async fn handle<H: ServerHandler>(
    shared: Arc<Shared<H>>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let method = request.method().as_str().to_string();
    let path = percent_encoding::percent_decode_str(request.uri().path()).decode_utf8_lossy().into_owned();
    let version = request.version();
    let cors = allowed_cors_origin(&shared.config.cors_origins, request.headers());
    let mut response = route(&shared, request, peer, cors.is_some()).await;
    let status = response.status();
    let headers = response.headers_mut();
    if let Some(origin) = cors {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if matches!(status, StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE) && version < Version::HTTP_2 {
        // The rest of the request is not read: the connection cannot carry another.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if matches!(status.as_u16(), 401 | 403 | 408 | 413 | 431) {
        shared.stats.count(Count::Refused);
    }
    shared.stats.answered(status.as_u16());
    // A flood of requests (refused ones too) waits here, in TCP, when the node lags behind.
    std::future::poll_fn(|cx| shared.handler.poll_ready(cx)).await;
    shared.handler.answered(&method, &path, status.as_u16());
    response
}

async fn route<H: ServerHandler>(
    shared: &Shared<H>,
    request: Request<Incoming>,
    peer: SocketAddr,
    cors_listed: bool,
) -> Response<Body> {
    let headers = request.headers();
    if shared.loopback_only && !loopback_host(&request) {
        return status_text(
            StatusCode::FORBIDDEN,
            "this server answers to localhost only (set a token to serve other names)",
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN)
        && !cors_listed
        && !same_origin(origin, &request)
    {
        return status_text(StatusCode::FORBIDDEN, "origin not allowed (see cors_origins)");
    }
    if request.method() == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return preflight(headers);
    }
    if let Some(token) = &shared.config.token
        && !bearer_matches(headers, token)
    {
        let mut response = status_text(StatusCode::UNAUTHORIZED, "missing or wrong token (Authorization: Bearer)");
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let found =
        shared.routes.read().unwrap_or_else(|p| p.into_inner()).find(request.method().as_str(), request.uri().path());
    match found {
        Found::Route { id, params, keep } => handler_answer(shared, request, peer, id, params, keep).await,
        Found::WebSocket { pattern, .. } => {
            let headers = header_pairs(request.headers());
            let upgrade = websocket::Upgrade {
                handler: shared.handler.clone(),
                peers: shared.peers.clone(),
                pattern,
                peer: peer.to_string(),
                max_message_bytes: shared.config.max_body_bytes,
                max_queued_messages: shared.config.max_queued_messages,
                spawn: shared.spawn.clone(),
                stats: shared.stats.clone(),
                heartbeat: shared.config.websocket_heartbeat,
            };
            websocket::upgrade(request, headers, upgrade)
        }
        Found::Files { mount, rest } => {
            shared.stats.count(Count::File);
            files::serve(mount.directory.clone(), rest, request.method(), request.headers()).await
        }
        Found::MethodNotAllowed(methods) => {
            let mut response = status_text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            if let Ok(allow) = HeaderValue::try_from(methods.join(", ")) {
                response.headers_mut().insert(header::ALLOW, allow);
            }
            response
        }
        Found::NotFound => status_text(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Reads the body within the limits, then answers from a kept answer (a GET
/// or HEAD of a route with `cache_sec`), or hands the request to the node and
/// waits for the answer.
async fn handler_answer<H: ServerHandler>(
    shared: &Shared<H>,
    request: Request<Incoming>,
    peer: SocketAddr,
    route: u64,
    params: Vec<(String, String)>,
    keep: Duration,
) -> Response<Body> {
    let config = &shared.config;
    let (parts, body) = request.into_parts();
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > config.max_body_bytes as u64) {
        return too_large(config.max_body_bytes);
    }
    let body = match timeout(config.request_timeout, Limited::new(body, config.max_body_bytes).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(config.max_body_bytes),
        Ok(Err(e)) => return status_text(StatusCode::BAD_REQUEST, &format!("cannot read the body: {e}")),
        Err(_) => return request_timeout(config.request_timeout),
    };
    shared.stats.received(body.len());
    // One limit for the answer: waiting for another request's, then (if not kept) making its own.
    let deadline = Instant::now() + config.request_timeout;
    let mut lease = None;
    if !keep.is_zero() && matches!(parts.method, Method::GET | Method::HEAD) {
        let key = parts.uri.path_and_query().map_or_else(|| parts.uri.path(), |pq| pq.as_str());
        if parts.method == Method::HEAD {
            // HEAD shares GET's kept answer, but never makes one (its handler may answer it differently).
            if let Some(kept) = shared.cache.fresh(key) {
                return kept.response();
            }
        } else {
            match shared.cache.lookup(key) {
                Lookup::Hit(kept) => return kept.response(),
                Lookup::Wait(waiter) => match timeout_at(deadline, waiter.answer()).await {
                    Ok(Some(kept)) => return kept.response(),
                    // Not kept: this request runs the handler itself.
                    Ok(None) => {}
                    Err(_) => return no_answer(config.request_timeout),
                },
                Lookup::Lead(made_here) => lease = Some(made_here),
            }
        }
    }
    let query = parts.uri.query().map_or_else(Vec::new, |q| {
        url::form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    });
    let incoming = IncomingRequest {
        route,
        method: parts.method.as_str().to_string(),
        path: percent_encoding::percent_decode_str(parts.uri.path()).decode_utf8_lossy().into_owned(),
        params,
        query,
        headers: header_pairs(&parts.headers),
        body,
        peer: peer.to_string(),
    };
    let wait = async {
        std::future::poll_fn(|cx| shared.handler.poll_ready(cx)).await;
        let (responder, answer) = Responder::new();
        shared.handler.request(incoming, responder);
        answer.await
    };
    shared.stats.count(Count::Handled);
    match timeout_at(deadline, wait).await {
        Ok(Ok(answer)) => match lease {
            Some(lease) => {
                let (response, kept) = respond_and_keep(answer, route, keep, &shared.stats);
                lease.finish(kept);
                response
            }
            None => into_response(answer, &shared.stats),
        },
        Ok(Err(_)) => status_text(StatusCode::INTERNAL_SERVER_ERROR, "the handler did not answer"),
        Err(_) => no_answer(config.request_timeout),
    }
}

fn no_answer(after: Duration) -> Response<Body> {
    status_text(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("no answer within {:.1} s (request_timeout_sec)", after.as_secs_f64()),
    )
}

fn too_large(max: usize) -> Response<Body> {
    status_text(StatusCode::PAYLOAD_TOO_LARGE, &format!("the body is larger than {max} bytes (max_body_bytes)"))
}

fn request_timeout(after: Duration) -> Response<Body> {
    status_text(
        StatusCode::REQUEST_TIMEOUT,
        &format!("the request did not arrive within {:.1} s (request_timeout_sec)", after.as_secs_f64()),
    )
}

/// Whether the request carries `Authorization: Bearer <token>`, compared in constant time.
pub(super) fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(sent) = headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes) else { return false };
    let Some(sent) = sent.strip_prefix(b"Bearer ").or_else(|| sent.strip_prefix(b"bearer ")) else { return false };
    sent.ct_eq(token.as_bytes()).into()
}

/// The value for `Access-Control-Allow-Origin` when the request's origin is listed in `origins`.
pub(super) fn allowed_cors_origin(origins: &[String], headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    origins.iter().any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(text)).then(|| origin.clone())
}

/// A CORS preflight from a listed origin (others were refused before).
fn preflight(headers: &HeaderMap) -> Response<Body> {
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
    );
    if let Some(asked) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

/// The host the client asked for (HTTP/1's Host, HTTP/2's authority), without the port.
fn requested_host<B>(request: &Request<B>) -> Option<String> {
    let authority = match request.uri().authority() {
        Some(authority) => authority.as_str().to_string(),
        None => request.headers().get(header::HOST)?.to_str().ok()?.to_string(),
    };
    Some(authority)
}

/// Whether the client asked for a loopback name (a page from elsewhere that
/// made its own name resolve to 127.0.0.1, DNS rebinding, does not).
fn loopback_host<B>(request: &Request<B>) -> bool {
    let Some(authority) = requested_host(request) else { return true };
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(':') => host,
        _ => authority.as_str(),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `Origin` is the server itself (a page it served).
fn same_origin<B>(origin: &HeaderValue, request: &Request<B>) -> bool {
    let (Ok(origin), Some(authority)) = (origin.to_str(), requested_host(request)) else { return false };
    origin.split_once("://").is_some_and(|(_, rest)| rest.trim_end_matches('/').eq_ignore_ascii_case(&authority))
}

/// Headers as name and value strings: lower-case names, repeated ones joined with ", ".
pub(super) fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let values: Vec<String> =
            headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
        pairs.push((name.as_str().to_string(), values.join(", ")));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (header::HeaderName::try_from(*k).unwrap(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    fn request(host: &str, origin: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().uri("/x").header(header::HOST, host);
        if let Some(origin) = origin {
            builder = builder.header(header::ORIGIN, origin);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn the_token_must_be_sent_as_bearer_exactly() {
        assert!(bearer_matches(&headers(&[("authorization", "Bearer s3cret")]), "s3cret"));
        assert!(!bearer_matches(&headers(&[("authorization", "Bearer s3cre")]), "s3cret"));
        assert!(!bearer_matches(&headers(&[("authorization", "Bearer s3cretX")]), "s3cret"));
        assert!(!bearer_matches(&headers(&[("authorization", "Basic s3cret")]), "s3cret"));
        assert!(!bearer_matches(&headers(&[]), "s3cret"));
    }

    #[test]
    fn cors_allows_listed_origins_only() {
        let listed = vec!["https://tools.example".to_string()];
        let from = |o| headers(&[("origin", o)]);
        assert!(allowed_cors_origin(&listed, &from("https://tools.example")).is_some());
        assert!(allowed_cors_origin(&listed, &from("https://evil.example")).is_none());
        assert!(allowed_cors_origin(&["*".into()], &from("https://any.example")).is_some());
        assert!(allowed_cors_origin(&listed, &headers(&[])).is_none());
    }

    #[test]
    fn loopback_names_and_same_origin() {
        for host in ["127.0.0.1:8080", "localhost:8080", "[::1]:80", "LOCALHOST", "app.localhost:1"] {
            assert!(loopback_host(&request(host, None)), "{host}");
        }
        for host in ["evil.example:8080", "192.168.1.2:8080", "evil.example"] {
            assert!(!loopback_host(&request(host, None)), "{host}");
        }
        let own = request("127.0.0.1:8080", Some("http://127.0.0.1:8080"));
        assert!(same_origin(own.headers().get(header::ORIGIN).unwrap(), &own));
        let other = request("127.0.0.1:8080", Some("http://evil.example"));
        assert!(!same_origin(other.headers().get(header::ORIGIN).unwrap(), &other));
    }

    #[test]
    fn repeated_headers_are_joined() {
        let mut map = headers(&[("x-a", "1")]);
        map.append("x-a", HeaderValue::from_static("2"));
        map.insert("content-type", HeaderValue::from_static("text/plain"));
        let mut pairs = header_pairs(&map);
        pairs.sort();
        assert_eq!(pairs, [("content-type".into(), "text/plain".into()), ("x-a".into(), "1, 2".into())]);
    }
}
