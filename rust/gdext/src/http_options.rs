//! The `options` Dictionary of `HttpSession.request()`, `stream()`,
//! `download()` and `AsyncHub.fetch()`, read on the main thread into the
//! core's request description. An unknown key or a value of the wrong kind
//! is an error that names it (a typo must not be ignored silently).

use async_net_core::http::{RequestBody, RequestSpec, StreamMode, StreamOptions};
use godot::{
    classes::Json,
    meta::{GodotConvert, GodotImmutable, conv::ByValue, error::ConvertError},
    prelude::*,
};

use crate::settings::{self, seconds};

/// The `options` argument: a Dictionary, `{}` when left out. A newtype only
/// because gdext 0.5 takes no Dictionary as an `#[opt(default)]`: the empty
/// default it makes here is read-only, so no call can change what another sees.
#[derive(Debug, Clone)]
pub struct Options(pub VarDictionary);

impl Options {
    /// `{}`.
    pub fn empty() -> Self {
        Options(VarDictionary::new())
    }
}

impl GodotConvert for Options {
    type Via = VarDictionary;
    fn godot_shape() -> godot::meta::shape::GodotShape {
        VarDictionary::godot_shape()
    }
}

impl ToGodot for Options {
    type Pass = ByValue;
    fn to_godot(&self) -> VarDictionary {
        self.0.clone()
    }
}

impl FromGodot for Options {
    fn try_from_godot(via: VarDictionary) -> Result<Self, ConvertError> {
        Ok(Options(via))
    }
}

// SAFETY: the default is made read-only before it is stored, so its clones
// (reference counted by Godot atomically) offer no way to change it.
unsafe impl GodotImmutable for Options {
    fn into_runtime_immutable(self) -> Self {
        Options(self.0.into_read_only())
    }
}

/// Which call reads the options: each takes the common keys and a few of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `request()`.
    Request,
    /// `AsyncHub.fetch()`: `request()`'s keys and `method`.
    Fetch,
    /// `stream()`: `parse`, `reconnect`, `retry_sec`.
    Stream,
    /// `download()`: `resume`.
    Download,
}

const COMMON: &[&str] = &["headers", "query", "body", "json", "form", "file", "timeout_sec"];

impl Call {
    fn own_keys(self) -> &'static [&'static str] {
        match self {
            Call::Request => &[],
            Call::Fetch => &["method"],
            Call::Stream => &["parse", "reconnect", "retry_sec"],
            Call::Download => &["resume"],
        }
    }
}

/// What the options say besides the request itself.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// `stream()`: how to cut the body and whether to reconnect.
    pub stream: StreamOptions,
    /// `download()`: continue a partial file.
    pub resume: bool,
}

/// `method url` with `options`, as `call` reads them.
pub fn read(call: Call, method: &str, url: &str, options: &VarDictionary) -> Result<(RequestSpec, Extras), String> {
    let mut spec = RequestSpec::new(method, url);
    let mut extras = Extras::default();
    let mut bodies = Vec::new();
    for (key, value) in options.iter_shared() {
        let key = key.stringify().to_string();
        match key.as_str() {
            "headers" => spec.headers = pairs(&key, &value)?,
            "query" => spec.query = pairs(&key, &value)?,
            "body" => {
                bodies.push("body");
                spec.body = match value.get_type() {
                    VariantType::PACKED_BYTE_ARRAY => RequestBody::binary(value.to::<PackedByteArray>().to_vec()),
                    VariantType::STRING | VariantType::STRING_NAME => RequestBody::text(value.stringify().to_string()),
                    other => return Err(format!("options.body must be a String or a PackedByteArray, not {other:?}")),
                };
            }
            "json" => {
                bodies.push("json");
                spec.body = RequestBody::json(Json::stringify(&value).to_string());
            }
            "form" => {
                bodies.push("form");
                spec.body = RequestBody::Form(pairs(&key, &value)?);
            }
            "file" => {
                bodies.push("file");
                let path = value.stringify().to_string();
                spec.body = RequestBody::File(settings::file_path(&path).ok_or("options.file is empty")?);
            }
            "timeout_sec" => spec.timeout = Some(seconds("options.timeout_sec", number(&key, &value)?, 0.001)?),
            "method" if call == Call::Fetch => spec.method = value.stringify().to_string(),
            "parse" if call == Call::Stream => extras.stream.mode = StreamMode::parse(&value.stringify().to_string())?,
            "reconnect" if call == Call::Stream => extras.stream.reconnect = boolean(&key, &value)?,
            "retry_sec" if call == Call::Stream => {
                extras.stream.retry = seconds("options.retry_sec", number(&key, &value)?, 0.0)?;
            }
            "resume" if call == Call::Download => extras.resume = boolean(&key, &value)?,
            _ => {
                let known: Vec<&str> = COMMON.iter().chain(call.own_keys()).copied().collect();
                return Err(format!("unknown option '{key}' (known: {})", known.join(", ")));
            }
        }
    }
    if bodies.len() > 1 {
        return Err(format!("options {} are each a body: give one", bodies.join(" and ")));
    }
    Ok((spec, extras))
}

/// A Dictionary of names to values; an Array value gives the name once per element.
fn pairs(key: &str, value: &Variant) -> Result<Vec<(String, String)>, String> {
    let dictionary: VarDictionary =
        value.try_to().map_err(|_| format!("options.{key} must be a Dictionary, not {:?}", value.get_type()))?;
    let mut pairs = Vec::new();
    for (name, value) in dictionary.iter_shared() {
        let name = name.stringify().to_string();
        match value.try_to::<VarArray>() {
            Ok(values) => pairs.extend(values.iter_shared().map(|v| (name.clone(), v.stringify().to_string()))),
            Err(_) => pairs.push((name, value.stringify().to_string())),
        }
    }
    Ok(pairs)
}

/// A number option (int or float); an error that names `options.<key>` otherwise.
pub(crate) fn number(key: &str, value: &Variant) -> Result<f64, String> {
    match value.get_type() {
        VariantType::FLOAT | VariantType::INT => Ok(value.to::<f64>()),
        other => Err(format!("options.{key} must be a number, not {other:?}")),
    }
}

fn boolean(key: &str, value: &Variant) -> Result<bool, String> {
    value.try_to::<bool>().map_err(|_| format!("options.{key} must be true or false, not {:?}", value.get_type()))
}
