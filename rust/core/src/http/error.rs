//! Transport failures as messages that name the cause: which server refused,
//! which name did not resolve, why TLS failed, which limit was passed.

use std::error::Error as StdError;
use std::time::Duration;

use crate::redact;

/// Every message in `error`'s chain of causes, joined with ": ", skipping
/// one that only repeats what the previous one said.
pub fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// What went wrong with `method url`, from reqwest's error; `proxy` is the proxy the request
/// went through (`host:port`) and whether that is sure (see `ProxyChoice::route`).
pub fn describe(
    method: &str,
    url: &str,
    error: reqwest::Error,
    connect_timeout: Duration,
    proxy: Option<(String, bool)>,
) -> String {
    let target = format!("{method} {}", redact(url));
    // The message shows the URL itself, redacted.
    let error = error.without_url();
    let causes = specific(&chain(&error));
    let lower = causes.to_ascii_lowercase();
    let hint = if error.is_connect() && error.is_timeout() {
        format!("connecting timed out after {:.1} s (connect_timeout_sec)", connect_timeout.as_secs_f64())
    } else if lower.contains("connection refused") {
        // Through a proxy, the refusal is the proxy's (a refused target is its 502).
        match proxy {
            Some((proxy, true)) => format!("connection refused by the proxy {proxy} (is it running?)"),
            Some((proxy, false)) => format!(
                "connection refused by the proxy {proxy}, or by {} if NO_PROXY bypasses it (is it running?)",
                host_of(url)
            ),
            None => format!("connection refused by {} (is the server running?)", host_of(url)),
        }
    } else if lower.contains("failed to lookup address") || lower.contains("dns error") {
        format!("cannot resolve host '{}'", host_of(url).rsplit_once(':').map_or(host_of(url), |(h, _)| h.to_string()))
    } else if lower.contains("certificate") || lower.contains("tls handshake") || lower.contains("invalid peer") {
        format!("TLS failed: {causes} (a private CA? set ca_file to the CA that signed the server's certificate)")
    } else if lower.contains("tunnel error") {
        format!(
            "the proxy refused to open a tunnel (CONNECT) to {}: check the proxy's address and credentials",
            host_of(url)
        )
    } else if lower.contains("message head is too large") || lower.contains("header list size") {
        format!("the response's headers are too large ({causes})")
    } else if error.is_redirect() {
        causes.trim_start_matches("error following redirect: ").to_string()
    } else if let Some(transport) = (error.is_body() || error.is_decode()).then(|| hyper_cause(&error)).flatten() {
        // reqwest calls a body's read failure a decode error too: the cause tells them apart.
        format!("the connection failed while the body arrived: {}", chain(transport))
    } else if error.is_decode() {
        format!("the body could not be decoded: {causes}")
    } else if error.is_body() {
        format!("the connection failed while the body arrived: {causes}")
    } else {
        causes
    };
    format!("{target}: {hint}")
}

/// `causes` without reqwest's and hyper's wrappers, which say nothing about the cause.
fn specific(causes: &str) -> String {
    const GENERIC: [&str; 4] = [
        "error sending request: ",
        "client error (Connect): ",
        "client error (SendRequest): ",
        "request or response body error: ",
    ];
    let mut text = causes;
    while let Some(rest) = GENERIC.iter().find_map(|prefix| text.strip_prefix(prefix)) {
        text = rest;
    }
    text.to_string()
}

/// The connection's own failure (hyper's), if that is what ended the body.
fn hyper_cause<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = next {
        if e.is::<hyper::Error>() {
            return Some(e);
        }
        next = e.source();
    }
    None
}

/// `host:port` of `url`, for messages.
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .unwrap_or_else(|| redact(url))
}
