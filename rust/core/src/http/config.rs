//! Settings of one HTTP session, one field per inspector property of
//! `HttpSession`, and the reqwest client they build.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::proxy::{self, ProxyChoice};
use super::redirect;
use crate::{redact, ws::tls};

/// What every request of a session shares.
///
/// The defaults are the inspector defaults of `HttpSession`; the glue copies
/// the node's properties over them and calls [`HttpConfig::validate`].
#[derive(Clone, Debug, PartialEq)]
pub struct HttpConfig {
    /// Relative request URLs are resolved against this (RFC 3986, as a
    /// browser does: `https://api.example/v1/` + `items` is `/v1/items`).
    /// Empty: every URL must be absolute.
    pub base_url: String,
    /// Headers sent with every request (a request's own headers win).
    pub headers: Vec<(String, String)>,
    /// A buffered request (its body held in memory) must complete within
    /// this; a stream or a download must receive its response headers within it.
    pub timeout: Duration,
    /// Time allowed for resolving, connecting and the TLS handshake.
    pub connect_timeout: Duration,
    /// Longest silence while a body arrives, once the headers have; zero: no
    /// limit. Streams rely on it to notice a server that stalls.
    pub read_timeout: Duration,
    /// Follow `3xx` answers with a `Location` (else they complete as they are).
    pub follow_redirects: bool,
    /// Most redirects followed for one request; one more fails it.
    pub max_redirects: usize,
    /// `""`: from `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY`; `"direct"`: none;
    /// else a proxy URL such as `http://user:pass@host:3128`.
    pub proxy: String,
    /// Offer HTTP/2 through ALPN on `https://` (else HTTP/1.1 only).
    pub http2: bool,
    /// Keep cookies the servers set and send them back (one jar per session).
    pub cookies: bool,
    /// Largest body held in memory (a `request()` body, an error body), after
    /// decompression. Streams and downloads are not held, so not limited by it.
    pub max_response_bytes: usize,
    /// Longest line of a newline-delimited body, and largest server-sent
    /// event, in bytes.
    pub max_line_bytes: usize,
    /// PEM file of the certificate authorities to trust instead of the
    /// public ones (a private CA). `None`: the Mozilla root set.
    pub ca_file: Option<PathBuf>,
    /// The `User-Agent` header, unless `headers` sets one.
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            base_url: String::new(),
            headers: Vec::new(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            follow_redirects: true,
            max_redirects: 10,
            proxy: String::new(),
            http2: true,
            cookies: false,
            max_response_bytes: 64 * 1024 * 1024,
            max_line_bytes: 1024 * 1024,
            ca_file: None,
            user_agent: concat!("godot-async-net/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl HttpConfig {
    /// Checks what can be checked before any traffic: the base URL, the
    /// header names and values, the proxy setting.
    pub fn validate(&self) -> Result<(), String> {
        self.base()?;
        header_map(&self.headers)?;
        proxy::choose(&self.proxy, |_| None)?;
        Ok(())
    }

    /// The base URL, if one is set.
    pub fn base(&self) -> Result<Option<Url>, String> {
        let base = self.base_url.trim();
        if base.is_empty() {
            return Ok(None);
        }
        match Url::parse(base) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Some(url)),
            Ok(url) => {
                Err(format!("base_url '{}': the scheme must be http or https, not {}", redact(base), url.scheme()))
            }
            Err(e) => Err(format!("base_url '{}' is not a URL: {e}", redact(base))),
        }
    }

    /// The reqwest client: its pool, TLS (always verified, ring), ALPN,
    /// proxies, redirect policy, cookie jar and default headers.
    /// Environment proxies are read now, through `env`.
    pub fn build_client(&self, proxy: &ProxyChoice) -> Result<reqwest::Client, String> {
        let mut tls = (*tls::client_config(self.ca_file.as_deref())?).clone();
        tls.alpn_protocols =
            if self.http2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
        let mut headers = header_map(&self.headers)?;
        if !headers.contains_key(reqwest::header::USER_AGENT)
            && let Ok(agent) = HeaderValue::from_str(&self.user_agent)
        {
            headers.insert(reqwest::header::USER_AGENT, agent);
        }
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .default_headers(headers)
            .connect_timeout(self.connect_timeout)
            .redirect(redirect::policy(self.follow_redirects, self.max_redirects))
            .cookie_store(self.cookies)
            .tcp_nodelay(true)
            // reqwest would read the environment itself: the choice is made here instead.
            .no_proxy();
        if !self.http2 {
            builder = builder.http1_only();
        }
        for proxy in proxy.proxies()? {
            builder = builder.proxy(proxy);
        }
        builder.build().map_err(|e| format!("cannot set up the HTTP client: {}", super::error::chain(&e)))
    }
}

/// `pairs` as a header map; names are case-insensitive, a repeated name adds a value.
pub(crate) fn header_map(pairs: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let header = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("'{name}' is not a valid HTTP header name"))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("the value of header '{name}' has characters HTTP does not allow"))?;
        map.append(header, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_named() {
        let bad_base = HttpConfig { base_url: "ftp://host/".into(), ..HttpConfig::default() };
        assert!(bad_base.validate().unwrap_err().contains("scheme must be http or https"));
        let relative = HttpConfig { base_url: "/api".into(), ..HttpConfig::default() };
        assert!(relative.validate().unwrap_err().contains("not a URL"));
        let header = HttpConfig { headers: vec![("Bad Name".into(), "x".into())], ..HttpConfig::default() };
        assert!(header.validate().unwrap_err().contains("'Bad Name' is not a valid HTTP header name"));
        let value = HttpConfig { headers: vec![("X-A".into(), "a\nb".into())], ..HttpConfig::default() };
        assert!(value.validate().unwrap_err().contains("header 'X-A'"));
        HttpConfig::default().validate().unwrap();
        HttpConfig::default().build_client(&ProxyChoice::Direct).unwrap();
    }

    #[test]
    fn a_missing_ca_file_fails_the_build() {
        let config = HttpConfig { ca_file: Some("/nonexistent/ca.pem".into()), ..HttpConfig::default() };
        assert!(config.build_client(&ProxyChoice::Direct).unwrap_err().contains("cannot open"));
    }
}
