//! Credentials written into a stream URL (`http://user:password@host/`), sent as
//! `Authorization: Basic`.

use base64::{Engine, engine::general_purpose::STANDARD};
use hyper::header::{HeaderValue, InvalidHeaderValue};
use percent_encoding::percent_decode_str;
use url::Url;

/// The `Authorization: Basic` value for the user info of `url` (marked sensitive, so hyper
/// never shows it), or `None` when `url` has none. `Err` when the credentials cannot be a
/// header value.
pub(super) fn basic_auth(url: &Url) -> Result<Option<HeaderValue>, InvalidHeaderValue> {
    if url.username().is_empty() && url.password().is_none() {
        return Ok(None);
    }
    // The url crate keeps user info percent-encoded; the server wants the bytes.
    let mut credentials: Vec<u8> = percent_decode_str(url.username()).collect();
    credentials.push(b':');
    credentials.extend(percent_decode_str(url.password().unwrap_or("")));
    let mut value = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(&credentials)))?;
    value.set_sensitive(true);
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(url: &str) -> Option<String> {
        basic_auth(&Url::parse(url).unwrap()).unwrap().map(|value| value.to_str().unwrap().to_string())
    }

    #[test]
    fn user_info_becomes_basic_credentials() {
        assert_eq!(header("http://user:pass@host/").as_deref(), Some("Basic dXNlcjpwYXNz"));
        // Percent-encoded user info is decoded first; a bad escape stays as written.
        assert_eq!(header("http://alice:s3cr%40t@host/").as_deref(), Some("Basic YWxpY2U6czNjckB0"));
        assert_eq!(header("http://a%40b%3a:%zz%4@host/").as_deref(), Some("Basic YUBiOjolenolNA=="));
        // A user alone, or a password alone, still goes.
        assert_eq!(header("http://token@host/").as_deref(), Some("Basic dG9rZW46"));
        assert_eq!(header("http://:pw@host/").as_deref(), Some("Basic OnB3"));
        assert_eq!(header("http://host/"), None);
        assert!(basic_auth(&Url::parse("http://u:p@host/").unwrap()).unwrap().unwrap().is_sensitive());
    }
}
