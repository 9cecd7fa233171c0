//! One request as the glue describes it (from `request()`'s options), and
//! the reqwest request it becomes: the URL resolved against `base_url`, the
//! query, the headers, and a body from text, bytes, JSON, a form or a file
//! streamed from disk.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, header};
use url::Url;

use super::{HttpConfig, config::header_map};
use crate::redact;

/// What a request sends.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum RequestBody {
    /// Nothing.
    #[default]
    Empty,
    /// Bytes, with the content type used when the headers set none.
    Bytes {
        /// The body.
        data: bytes::Bytes,
        /// `text/plain; charset=utf-8`, `application/json`, ...
        content_type: &'static str,
    },
    /// `application/x-www-form-urlencoded` fields.
    Form(Vec<(String, String)>),
    /// A file's content, read from disk as it is sent.
    File(PathBuf),
}

impl RequestBody {
    /// UTF-8 text (`text/plain`).
    pub fn text(text: impl Into<String>) -> Self {
        RequestBody::Bytes { data: text.into().into(), content_type: "text/plain; charset=utf-8" }
    }

    /// A JSON document already serialized.
    pub fn json(json: impl Into<String>) -> Self {
        RequestBody::Bytes { data: json.into().into(), content_type: "application/json" }
    }

    /// Raw bytes (`application/octet-stream`).
    pub fn binary(data: impl Into<bytes::Bytes>) -> Self {
        RequestBody::Bytes { data: data.into(), content_type: "application/octet-stream" }
    }
}

/// One request: method, URL and what `request()`'s options add.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestSpec {
    /// `GET`, `POST`, ... (any token; upper-cased).
    pub method: String,
    /// Absolute, or relative to the session's `base_url`.
    pub url: String,
    /// Headers of this request; they replace the session's of the same name.
    pub headers: Vec<(String, String)>,
    /// Query parameters added to the URL's own.
    pub query: Vec<(String, String)>,
    /// The body.
    pub body: RequestBody,
    /// Overrides the session's `timeout` for this request.
    pub timeout: Option<Duration>,
}

impl RequestSpec {
    /// A request of `method` to `url` with nothing else.
    pub fn new(method: &str, url: &str) -> Self {
        RequestSpec { method: method.to_string(), url: url.to_string(), ..RequestSpec::default() }
    }

    /// The method, upper-cased and checked.
    pub fn method(&self) -> Result<Method, String> {
        let name = self.method.trim().to_ascii_uppercase();
        let name = if name.is_empty() { "GET".to_string() } else { name };
        Method::from_bytes(name.as_bytes()).map_err(|_| format!("'{}' is not an HTTP method", self.method))
    }

    /// The absolute URL: resolved against `base_url`, with `query` added.
    pub fn resolve(&self, config: &HttpConfig) -> Result<Url, String> {
        let written = self.url.trim();
        let mut url = match (Url::parse(written), config.base()?) {
            (Ok(url), _) => url,
            (Err(url::ParseError::RelativeUrlWithoutBase), Some(base)) => {
                base.join(written).map_err(|e| format!("'{}' cannot be joined to base_url: {e}", redact(written)))?
            }
            (Err(url::ParseError::RelativeUrlWithoutBase), None) => {
                return Err(format!("'{}' is not an absolute URL (and base_url is empty)", redact(written)));
            }
            (Err(e), _) => return Err(format!("'{}' is not a URL: {e}", redact(written))),
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("'{}': the scheme must be http or https, not {}", redact(written), url.scheme()));
        }
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        Ok(url)
    }

    /// The timeout of this request.
    pub fn timeout(&self, config: &HttpConfig) -> Duration {
        self.timeout.unwrap_or(config.timeout)
    }

    /// The reqwest request, ready to send (files are opened now).
    pub async fn build(
        &self,
        client: &reqwest::Client,
        config: &HttpConfig,
    ) -> Result<reqwest::RequestBuilder, String> {
        let url = self.resolve(config)?;
        let mut headers = header_map(&self.headers)?;
        let mut request = client.request(self.method()?, url);
        let content_type = |headers: &mut header::HeaderMap, value: &'static str| {
            if !headers.contains_key(header::CONTENT_TYPE) {
                headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(value));
            }
        };
        match &self.body {
            RequestBody::Empty => {}
            RequestBody::Bytes { data, content_type: kind } => {
                content_type(&mut headers, kind);
                request = request.body(data.clone());
            }
            RequestBody::Form(fields) => {
                content_type(&mut headers, "application/x-www-form-urlencoded");
                let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
                request = request.body(encoded);
            }
            RequestBody::File(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| format!("cannot open the file to upload '{}': {e}", path.display()))?;
                let length = file.metadata().await.map(|m| m.len()).ok();
                content_type(&mut headers, "application/octet-stream");
                if let Some(length) = length {
                    headers.insert(header::CONTENT_LENGTH, length.into());
                }
                request = request.body(reqwest::Body::from(file));
            }
        }
        // Replace, not add to, the session's headers of the same names.
        Ok(request.headers(headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_resolve_against_base_url_and_take_the_query() {
        let config = HttpConfig { base_url: "https://api.example/v1/".into(), ..HttpConfig::default() };
        let mut spec = RequestSpec::new("get", "items?page=2");
        spec.query = vec![("q".into(), "a b&c".into())];
        assert_eq!(spec.resolve(&config).unwrap().as_str(), "https://api.example/v1/items?page=2&q=a+b%26c");
        assert_eq!(RequestSpec::new("GET", "/root").resolve(&config).unwrap().as_str(), "https://api.example/root");
        let other = RequestSpec::new("GET", "http://other.example/x");
        assert_eq!(other.resolve(&config).unwrap().as_str(), "http://other.example/x");
        let alone = RequestSpec::new("GET", "items").resolve(&HttpConfig::default()).unwrap_err();
        assert!(alone.contains("not an absolute URL (and base_url is empty)"), "{alone}");
        let ftp = RequestSpec::new("GET", "ftp://user:pw@host/").resolve(&config).unwrap_err();
        assert!(ftp.contains("scheme must be http or https") && !ftp.contains("pw"), "{ftp}");
    }

    #[test]
    fn methods_are_upper_cased_and_checked() {
        assert_eq!(RequestSpec::new("patch", "x").method().unwrap(), Method::PATCH);
        assert_eq!(RequestSpec::new("", "x").method().unwrap(), Method::GET);
        assert!(RequestSpec::new("BAD METHOD", "x").method().unwrap_err().contains("not an HTTP method"));
    }
}
