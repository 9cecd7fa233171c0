//! `HttpResponse`: a finished response as GDScript sees it. Its strings are
//! made on the I/O worker ([`ResponseParts`]); the main thread only moves
//! them in and copies the body into a `PackedByteArray`.

use async_net_core::http::{Head, Response};
use bytes::Bytes;
use godot::{classes::Json, global::Error as GdError, prelude::*};

/// The answer of [method HttpSession.request] or [method AsyncHub.fetch].
///
/// A status that is not 2xx still arrives as a response: check
/// [member status] or [method is_ok]. Only a transport failure (DNS, refused,
/// TLS, timeout, a limit) fails the request's task instead.
/// [codeblock]
/// var res: HttpResponse = await AsyncHub.fetch("https://example.com/api/items").completed
/// if res.is_ok():
///     for item in res.json():
///         print(item.name)
/// else:
///     print("HTTP %d: %s" % [res.status, res.text()])
/// [/codeblock]
#[derive(GodotClass)]
#[class(init, base = RefCounted)]
pub struct HttpResponse {
    /// The status code, e.g. 200 or 404.
    #[var(no_set)]
    status: i64,
    /// The headers: lower-case names; a header sent several times has its
    /// values joined with ", ".
    #[var(no_set)]
    headers: VarDictionary,
    /// The body, decompressed (empty for a download: it went to the file).
    #[var(no_set)]
    body: PackedByteArray,
    /// The URL that answered, after redirects.
    #[var(no_set)]
    url: GString,
    /// "HTTP/1.1" or "HTTP/2".
    #[var(no_set)]
    http_version: GString,
    /// The body as text, made on the I/O worker for textual bodies.
    text: Option<GString>,
    base: Base<RefCounted>,
}

#[godot_api]
impl HttpResponse {
    /// The body as UTF-8 text (invalid bytes become U+FFFD).
    #[func]
    pub fn text(&self) -> GString {
        match &self.text {
            Some(text) => text.clone(),
            None => String::from_utf8_lossy(self.body.as_slice()).as_ref().into(),
        }
    }

    /// The body parsed as JSON; [code]null[/code], with an error logged
    /// naming the line and the problem, when it is not valid JSON.
    #[func]
    pub fn json(&self) -> Variant {
        parse_json(&self.text(), || {
            format!("HttpResponse.json(): the body of {}", async_net_core::redact(&self.url.to_string()))
        })
    }

    /// Whether [member status] is 2xx.
    #[func]
    pub fn is_ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The value of header [param name] (any case), or [param default] when it was not sent.
    #[func]
    pub fn get_header(&self, name: GString, #[opt(default = "")] default: GString) -> GString {
        let key = name.to_string().to_ascii_lowercase();
        self.headers.get(key.as_str()).map_or(default, |v| v.to::<GString>())
    }
}

/// A response made ready for the main thread on the I/O worker: every string
/// built there; the main thread makes the object, the headers' Dictionary
/// and the body's copy.
pub struct ResponseParts {
    status: u16,
    version: &'static str,
    url: GString,
    headers: Vec<(GString, GString)>,
    body: Bytes,
    text: Option<GString>,
}

impl ResponseParts {
    /// On the I/O worker: a read response (its text made now if it is textual).
    pub fn new(response: Response) -> Self {
        let text = is_textual(&response.head.media_type())
            .then(|| std::str::from_utf8(&response.body).ok().map(GString::from))
            .flatten();
        Self { text, body: response.body, ..Self::head(response.head) }
    }

    /// On the I/O worker: a response without a body (a download's).
    pub fn head(head: Head) -> Self {
        ResponseParts {
            status: head.status,
            version: head.version,
            url: GString::from(head.url.as_str()),
            headers: header_strings(head.headers),
            body: Bytes::new(),
            text: None,
        }
    }

    /// On the main thread: the object.
    pub fn into_response(self) -> Gd<HttpResponse> {
        Gd::from_init_fn(|base| HttpResponse {
            status: self.status.into(),
            headers: headers_dictionary(&self.headers),
            body: PackedByteArray::from(&self.body[..]),
            url: self.url,
            http_version: self.version.into(),
            text: self.text,
            base,
        })
    }
}

/// `text` parsed as JSON; null, with an error naming `what` (made only then),
/// the line and the problem, when it is not valid JSON.
pub fn parse_json(text: &GString, what: impl FnOnce() -> String) -> Variant {
    let mut json = Json::new_gd();
    if json.parse(text) == GdError::OK {
        return json.get_data();
    }
    godot_error!("{} is not valid JSON: {} at line {}", what(), json.get_error_message(), json.get_error_line());
    Variant::nil()
}

/// On the I/O worker: header names and values as Godot strings.
pub fn header_strings(headers: Vec<(String, String)>) -> Vec<(GString, GString)> {
    headers.into_iter().map(|(name, value)| (GString::from(name.as_str()), GString::from(value.as_str()))).collect()
}

/// On the main thread: the headers' Dictionary.
pub fn headers_dictionary(headers: &[(GString, GString)]) -> VarDictionary {
    let mut dictionary = VarDictionary::new();
    for (name, value) in headers {
        dictionary.set(name, value);
    }
    dictionary
}

/// Whether a body of this media type is text (its `text()` is made on the worker).
fn is_textual(media_type: &str) -> bool {
    media_type.starts_with("text/")
        || media_type.ends_with("+json")
        || media_type.ends_with("+xml")
        || matches!(
            media_type,
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-ndjson"
                | "application/x-www-form-urlencoded"
        )
}
