//! The one URL redactor: every URL a node shows (in an error, a log line, a task name or
//! stats) goes through [`redact`], so credentials written into it never leave the node.

use url::{Position, Url};

/// What stands in for the credentials.
const HIDDEN: &str = "***";

/// `url` as it may be shown: its user name and password, in whatever form they were written
/// (user only, `user:password`, `:password`, percent-encoded), replaced by `***`:
/// `redis://***@127.0.0.1:6379/0`, `http://***@[::1]:8000/live`.
///
/// The user name goes too, since a token is often written there (`https://token@host/`,
/// `redis://password@host`). A URL the `url` crate parses is rebuilt from its parts when it
/// has credentials (so it comes out normalized, as `http://***@host/`) and shown as written
/// when it has none. Text that does not parse, or has no authority (`user:password@host`
/// without a scheme), may still hold a secret, so everything from after its `://` (or from its
/// start) up to its last `@` is hidden.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) if parsed.has_authority() => {
            if parsed.username().is_empty() && parsed.password().is_none() {
                url.to_string()
            } else {
                format!("{}{HIDDEN}@{}", &parsed[..Position::BeforeUsername], &parsed[Position::BeforeHost..])
            }
        }
        _ => redact_text(url),
    }
}

/// [`redact`] for text the `url` crate cannot read as a URL with an authority.
fn redact_text(text: &str) -> String {
    let start = text.find("://").map_or(0, |i| i + 3);
    match text[start..].rfind('@') {
        Some(at) => format!("{}{HIDDEN}{}", &text[..start], &text[start + at..]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn credentials_in_every_form_are_hidden() {
        for (url, shown) in [
            // A user name alone is often a token: it was shown before, a leak.
            ("http://token@host/", "http://***@host/"),
            ("https://user@host/", "https://***@host/"),
            ("redis://hunter2@localhost", "redis://***@localhost"),
            ("http://user:pw@host/p", "http://***@host/p"),
            ("redis://:hunter2@127.0.0.1:6379/0", "redis://***@127.0.0.1:6379/0"),
            ("http://:pw@host", "http://***@host/"),
            ("ws://user:@host:8765", "ws://***@host:8765/"),
            // An `@` in the password, written raw or percent-encoded; a `@` later in the query.
            ("rediss://bob:p@ss:w@rd@cache.example/1", "rediss://***@cache.example/1"),
            ("http://user:p@w@host:8080/p?q=@:x", "http://***@host:8080/p?q=@:x"),
            ("http://alice:s3cr%40t@host/private", "http://***@host/private"),
            ("http://%61lice:%73ecret@host/", "http://***@host/"),
            // IPv6 hosts, with and without a port.
            ("http://user:pw@[::1]:8000/live", "http://***@[::1]:8000/live"),
            ("redis://:pw@[2001:db8::1]", "redis://***@[2001:db8::1]"),
            ("wss://u:p@[fe80::1]/chat", "wss://***@[fe80::1]/chat"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn text_that_does_not_parse_never_shows_what_may_be_a_secret() {
        for (text, shown) in [
            ("http://bob:hunter2@", "http://***@"),
            ("ws://user:pa/ss@host", "ws://***@host"),
            ("http://user:pa#ss@host/", "http://***@host/"),
            ("redis://u:pw@[::1", "redis://***@[::1"),
            ("garbage:secret@host", "***@host"),
            ("no scheme:pw@x", "***@x"),
            ("user:password@127.0.0.1:6379", "***@127.0.0.1:6379"),
            ("not a url", "not a url"),
            ("http://", "http://"),
            ("", ""),
        ] {
            assert_eq!(redact(text), shown, "{text}");
        }
    }

    #[test]
    fn urls_without_credentials_are_shown_as_written() {
        for url in [
            "redis://localhost:6379",
            "HTTP://Example.com:80/a/../b",
            "http://host/path@x",
            "http://host/a:b@c",
            "ws://127.0.0.1:8765",
            "http://[::1]:8000/stream?token=@",
            "redis+unix:///run/redis.sock",
            "rediss://cache.example/#insecure",
        ] {
            assert_eq!(redact(url), url);
        }
    }
}
