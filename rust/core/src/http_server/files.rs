//! `serve_files`: a folder served over GET and HEAD with ETag / If-None-Match,
//! single byte ranges, `index.html` and content types. A request path never
//! leaves the folder: `..` (plain or percent-encoded), backslashes, drive
//! letters and NUL are refused before the file system is asked, and the
//! resolved path (symbolic links followed) must still be inside the folder.
//! Everything here runs on the I/O worker (reads on tokio's blocking pool).

use std::{
    io::SeekFrom,
    path::{Path, PathBuf},
    time::UNIX_EPOCH,
};

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::{
    HeaderMap, Method, Response, StatusCode,
    body::Frame,
    header::{self, HeaderValue},
};
use percent_encoding::percent_decode_str;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::answer::{Body, empty, status_text};

/// Bytes read from a served file at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Why a path is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// It would leave the folder (403).
    Outside,
    /// Nothing is there, or it is not a regular file (404).
    NotFound,
}

/// The file `rest` (the request path below the prefix, percent-encoded)
/// names inside `directory` (absolute, resolved), or why none is served.
/// A folder serves its `index.html`.
pub fn resolve(directory: &Path, rest: &str) -> Result<PathBuf, Refused> {
    let decoded = percent_decode_str(rest).decode_utf8().map_err(|_| Refused::NotFound)?;
    let mut path = directory.to_path_buf();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(Refused::Outside),
            s if s.contains(['\\', '\0', ':']) => return Err(Refused::Outside),
            s => path.push(s),
        }
    }
    let mut resolved = std::fs::canonicalize(&path).map_err(|_| Refused::NotFound)?;
    if !resolved.starts_with(directory) {
        return Err(Refused::Outside);
    }
    if resolved.is_dir() {
        resolved = std::fs::canonicalize(resolved.join("index.html")).map_err(|_| Refused::NotFound)?;
        if !resolved.starts_with(directory) {
            return Err(Refused::Outside);
        }
    }
    if resolved.is_file() { Ok(resolved) } else { Err(Refused::NotFound) }
}

/// A strong validator from the file's size and modification time.
pub fn etag(len: u64, modified_nanos: u128) -> String {
    format!("\"{len:x}-{modified_nanos:x}\"")
}

/// Whether `If-None-Match` (a list of tags, or `*`) matches `etag` (weakly, as the header asks).
pub fn none_match(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeAnswer {
    /// The whole file (no range, several ranges, or one not understood).
    Whole,
    /// One range, inclusive.
    Partial(u64, u64),
    /// Nothing of it exists (416).
    Unsatisfiable,
}

/// Reads a `Range` header for a file of `len` bytes. Only a single range is
/// served partially; a request for several gets the whole file, as the
/// standard allows.
pub fn range(header: Option<&str>, len: u64) -> RangeAnswer {
    let Some(header) = header else { return RangeAnswer::Whole };
    match http_range_header::parse_range_header(header).map(|parsed| parsed.validate(len)) {
        Ok(Ok(ranges)) if ranges.len() == 1 => RangeAnswer::Partial(*ranges[0].start(), *ranges[0].end()),
        Ok(Ok(_)) => RangeAnswer::Whole,
        Ok(Err(_)) => RangeAnswer::Unsatisfiable,
        Err(http_range_header::RangeUnsatisfiableError::Rejected(_)) => RangeAnswer::Unsatisfiable,
        Err(_) => RangeAnswer::Whole,
    }
}

/// The content type of a served file; text types say UTF-8.
pub fn content_type(path: &Path) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let text = mime.type_() == mime_guess::mime::TEXT
        || matches!(mime.subtype().as_str(), "javascript" | "json" | "xml" | "svg");
    if text && mime.get_param("charset").is_none() { format!("{mime}; charset=utf-8") } else { mime.to_string() }
}

/// Answers a GET or HEAD for `rest` below `directory`.
pub async fn serve(directory: PathBuf, rest: String, method: &Method, headers: &HeaderMap) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let mut response = status_text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are served here");
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let resolved = tokio::task::spawn_blocking(move || resolve(&directory, &rest)).await;
    let path = match resolved {
        Ok(Ok(path)) => path,
        Ok(Err(Refused::Outside)) => return status_text(StatusCode::FORBIDDEN, "outside the served folder"),
        _ => return status_text(StatusCode::NOT_FOUND, "not found"),
    };
    match open(&path, method, headers).await {
        Ok(response) => response,
        Err(e) => status_text(StatusCode::NOT_FOUND, &format!("cannot read the file: {}", e.kind())),
    }
}

async fn open(path: &Path, method: &Method, headers: &HeaderMap) -> std::io::Result<Response<Body>> {
    let mut file = tokio::fs::File::open(path).await?;
    let meta = file.metadata().await?;
    let len = meta.len();
    let modified = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    let tag = etag(len, modified);
    let header = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let mut builder = Response::builder()
        .header(header::ETAG, &tag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::CONTENT_TYPE, content_type(path));
    if header(header::IF_NONE_MATCH).is_some_and(|h| none_match(h, &tag)) {
        return Ok(builder.status(StatusCode::NOT_MODIFIED).body(empty()).expect("valid response"));
    }
    // A range of another version of the file is not wanted.
    let wanted = header(header::RANGE).filter(|_| header(header::IF_RANGE).is_none_or(|h| h == tag));
    let (start, end) = match range(wanted, len) {
        RangeAnswer::Whole => (0, len.saturating_sub(1)),
        RangeAnswer::Partial(start, end) => {
            builder = builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            (start, end)
        }
        RangeAnswer::Unsatisfiable => {
            return Ok(builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(empty())
                .expect("valid response"));
        }
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    builder = builder.header(header::CONTENT_LENGTH, count);
    if method == Method::HEAD || count == 0 {
        return Ok(builder.body(empty()).expect("valid response"));
    }
    file.seek(SeekFrom::Start(start)).await?;
    let stream = ReaderStream::with_capacity(file.take(count), READ_CHUNK).map_ok(Frame::data);
    Ok(builder.body(StreamBody::new(stream).boxed_unsync()).expect("valid response"))
}

/// The bytes of a body already in memory, as a response body.
pub fn full(bytes: Bytes) -> Body {
    http_body_util::Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("async_net_files_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("www/sub")).unwrap();
        std::fs::write(dir.join("www/a.txt"), "a").unwrap();
        std::fs::write(dir.join("www/sub/index.html"), "<p>").unwrap();
        std::fs::write(dir.join("secret.txt"), "secret").unwrap();
        dir
    }

    #[test]
    fn paths_resolve_inside_the_folder_and_every_way_out_is_refused() {
        let dir = folder("resolve");
        let www = std::fs::canonicalize(dir.join("www")).unwrap();
        assert_eq!(resolve(&www, "/a.txt").unwrap(), www.join("a.txt"));
        assert_eq!(resolve(&www, "/sub/").unwrap(), www.join("sub/index.html"), "index.html");
        assert_eq!(resolve(&www, "/sub").unwrap(), www.join("sub/index.html"));
        assert_eq!(resolve(&www, "//a.txt").unwrap(), www.join("a.txt"), "an absolute path stays inside");
        assert_eq!(resolve(&www, "/./a.txt").unwrap(), www.join("a.txt"));
        for outside in ["/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2fsecret.txt", "/sub/../../secret.txt"] {
            assert_eq!(resolve(&www, outside), Err(Refused::Outside), "{outside}");
        }
        for odd in ["/..%5csecret.txt", "/a.txt%00", "/C:/x", "/c:%5cx"] {
            assert_eq!(resolve(&www, odd), Err(Refused::Outside), "{odd}");
        }
        assert_eq!(resolve(&www, "/"), Err(Refused::NotFound), "no index.html: no listing");
        assert_eq!(resolve(&www, "/missing"), Err(Refused::NotFound));
        assert_eq!(resolve(&www, "/%ff"), Err(Refused::NotFound), "not UTF-8");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.join("secret.txt"), www.join("link.txt")).unwrap();
            std::os::unix::fs::symlink(&dir, www.join("up")).unwrap();
            assert_eq!(resolve(&www, "/link.txt"), Err(Refused::Outside), "a symbolic link out");
            assert_eq!(resolve(&www, "/up/secret.txt"), Err(Refused::Outside));
            std::os::unix::fs::symlink(www.join("a.txt"), www.join("inside.txt")).unwrap();
            assert_eq!(resolve(&www, "/inside.txt").unwrap(), www.join("a.txt"), "a link inside is fine");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn ranges_and_validators() {
        assert_eq!(range(None, 100), RangeAnswer::Whole);
        assert_eq!(range(Some("bytes=0-9"), 100), RangeAnswer::Partial(0, 9));
        assert_eq!(range(Some("bytes=90-"), 100), RangeAnswer::Partial(90, 99));
        assert_eq!(range(Some("bytes=-10"), 100), RangeAnswer::Partial(90, 99));
        assert_eq!(range(Some("bytes=50-500"), 100), RangeAnswer::Partial(50, 99));
        assert_eq!(range(Some("bytes=200-300"), 100), RangeAnswer::Unsatisfiable);
        assert_eq!(range(Some("bytes=0-1,5-6"), 100), RangeAnswer::Whole, "several: the whole file");
        assert_eq!(range(Some("lines=1-2"), 100), RangeAnswer::Whole, "not understood: ignored");
        let tag = etag(100, 12345);
        assert!(none_match(&tag, &tag));
        assert!(none_match(&format!("\"x\", W/{tag}"), &tag));
        assert!(none_match("*", &tag));
        assert!(!none_match("\"other\"", &tag));
        assert_eq!(content_type(Path::new("a.html")), "text/html; charset=utf-8");
        assert_eq!(content_type(Path::new("a.js")), "text/javascript; charset=utf-8");
        assert_eq!(content_type(Path::new("a.png")), "image/png");
        assert_eq!(content_type(Path::new("a.unknownext")), "application/octet-stream");
    }
}
