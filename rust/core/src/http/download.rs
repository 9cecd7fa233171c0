//! Downloads to a file: the body goes to `<path>.part` as it arrives and is
//! renamed to `<path>` once complete, so `<path>` is never a partial file. A
//! failed or cancelled download removes the `.part` file, unless `resume`
//! asked to keep it: the next download with `resume` then asks for the rest
//! with `Range` and appends it (or starts over when the server sends the
//! whole file again).

use std::path::{Path, PathBuf};

use reqwest::header::{self, HeaderValue};
use tokio::io::AsyncWriteExt;

use super::RequestSpec;
use super::client::{Head, HttpClient};

/// Bytes gathered before a write to the file (fewer, larger writes).
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// One download.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadSpec {
    /// The request (usually a GET).
    pub request: RequestSpec,
    /// Where the file goes.
    pub path: PathBuf,
    /// Keep the partial file when the download fails, and continue one found
    /// from an earlier attempt.
    pub resume: bool,
}

/// The `.part` file of `path`.
pub fn part_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// Removes the partial file when the download ends without completing
/// (an error, or its future dropped: a cancel), unless it is to be resumed.
struct PartGuard {
    path: PathBuf,
    keep: bool,
}

impl Drop for PartGuard {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl HttpClient {
    /// Downloads `spec` to its path; `progress(received, total)` is called
    /// after each piece (`total` when the server said it; both count the
    /// resumed part). A response that is not 2xx completes without touching
    /// the file (check the status).
    pub async fn download(
        &self,
        spec: DownloadSpec,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<Head, String> {
        let in_flight = self.in_flight();
        let part = part_path(&spec.path);
        let result = async {
            let offset = if spec.resume { std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) } else { 0 };
            let mut guard = PartGuard { path: part.clone(), keep: spec.resume };
            // The file's own bytes: a Range counts in them, and sizes are true.
            let mut extra = vec![(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"))];
            if offset > 0 {
                extra.push((
                    header::RANGE,
                    HeaderValue::from_str(&format!("bytes={offset}-")).unwrap_or(HeaderValue::from_static("")),
                ));
            }
            let request = &spec.request;
            let mut response = self.send(request, &extra, request.timeout(self.config())).await?;
            let head = Head::from_response(&response);
            let range = head.header("content-range").map(ContentRange::parse);
            if head.status == 416 && offset > 0 && range.and_then(|r| r.total) == Some(offset) {
                // The earlier attempt had it all.
                finish(&part, &spec.path).await?;
                return Ok(head);
            }
            if !head.is_success() {
                guard.keep = true;
                return Ok(head);
            }
            let append = head.status == 206 && offset > 0 && range.and_then(|r| r.start) == Some(offset);
            let start = if append { offset } else { 0 };
            let total = match range {
                Some(ContentRange { total: Some(total), .. }) if append => Some(total),
                _ => response.content_length().map(|length| start + length),
            };
            let file = open(&part, append).await?;
            let mut file = tokio::io::BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
            let mut received = start;
            progress(received, total);
            let write_error = |e: std::io::Error| format!("cannot write '{}': {e}", part.display());
            let body = loop {
                match self.next_chunk(request, &mut response).await {
                    Ok(Some(chunk)) => {
                        file.write_all(&chunk).await.map_err(write_error)?;
                        received += chunk.len() as u64;
                        progress(received, total);
                    }
                    Ok(None) => break Ok(()),
                    Err(message) => break Err(message),
                }
            };
            // What arrived stays in the part file for a resume, even when the body failed.
            file.flush().await.map_err(write_error)?;
            drop(file);
            body?;
            if let Some(total) = total.filter(|&t| t != received) {
                return Err(format!("the body ended after {received} of {total} bytes"));
            }
            finish(&part, &spec.path).await?;
            guard.keep = true;
            Ok(head)
        };
        in_flight.end(result.await)
    }
}

/// Opens the `.part` file to append to, or new.
async fn open(part: &Path, append: bool) -> Result<tokio::fs::File, String> {
    let mut options = tokio::fs::OpenOptions::new();
    if append {
        options.append(true);
    } else {
        options.write(true).create(true).truncate(true);
    }
    options.open(part).await.map_err(|e| format!("cannot create '{}': {e}", part.display()))
}

/// Renames the complete `.part` file to `path`, replacing what was there.
async fn finish(part: &Path, path: &Path) -> Result<(), String> {
    tokio::fs::rename(part, path)
        .await
        .map_err(|e| format!("cannot rename '{}' to '{}': {e}", part.display(), path.display()))
}

/// A `Content-Range: bytes START-END/TOTAL` (or `bytes */TOTAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ContentRange {
    start: Option<u64>,
    total: Option<u64>,
}

impl ContentRange {
    fn parse(value: &str) -> Self {
        let spec = value.trim().strip_prefix("bytes ").unwrap_or("");
        let (range, total) = spec.split_once('/').unwrap_or((spec, "*"));
        let start = range.split_once('-').and_then(|(start, _)| start.trim().parse().ok());
        ContentRange { start, total: total.trim().parse().ok() }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{
        HttpConfig,
        test_server::{TestServer, file_bytes},
    };
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("async_net_download_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("file.bin")
    }

    fn client() -> HttpClient {
        HttpClient::with_env(HttpConfig::default(), |_| None).unwrap()
    }

    fn spec(server: &TestServer, path: &Path, url: &str, resume: bool) -> DownloadSpec {
        DownloadSpec { request: RequestSpec::new("GET", &server.url(url)), path: path.to_path_buf(), resume }
    }

    #[tokio::test]
    async fn a_download_is_renamed_when_complete_and_reports_progress() {
        let server = TestServer::start().await;
        let path = temp("whole");
        let mut seen = Vec::new();
        let head = client().download(spec(&server, &path, "/file", false), |r, t| seen.push((r, t))).await.unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(std::fs::read(&path).unwrap(), file_bytes());
        assert!(!part_path(&path).exists());
        assert_eq!(seen.first(), Some(&(0, Some(100_000))));
        assert_eq!(seen.last(), Some(&(100_000, Some(100_000))));
        let missing =
            client().download(spec(&server, &temp("missing"), "/status/404", false), |_, _| {}).await.unwrap();
        assert_eq!(missing.status, 404);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[tokio::test]
    async fn a_resume_asks_for_the_rest_and_appends_it() {
        let server = TestServer::start().await;
        let path = temp("resume");
        std::fs::write(part_path(&path), &file_bytes()[..30_000]).unwrap();
        let mut seen = Vec::new();
        let head = client().download(spec(&server, &path, "/file", true), |r, t| seen.push((r, t))).await.unwrap();
        assert_eq!(head.status, 206);
        assert_eq!(seen.first(), Some(&(30_000, Some(100_000))));
        assert_eq!(std::fs::read(&path).unwrap(), file_bytes());
        // Already complete: the server answers 416, and the part becomes the file.
        std::fs::write(part_path(&path), file_bytes()).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(client().download(spec(&server, &path, "/file", true), |_, _| {}).await.unwrap().status, 416);
        assert_eq!(std::fs::read(&path).unwrap(), file_bytes());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[tokio::test]
    async fn a_failed_or_cancelled_download_leaves_no_part_unless_resume() {
        let server = TestServer::start().await;
        let path = temp("failed");
        let error = client().download(spec(&server, &path, "/reset", false), |_, _| {}).await.unwrap_err();
        assert!(error.contains("the connection failed while the body arrived"), "{error}");
        assert!(!part_path(&path).exists() && !path.exists());
        client().download(spec(&server, &path, "/reset", true), |_, _| {}).await.unwrap_err();
        assert_eq!(std::fs::read(part_path(&path)).unwrap(), b"partial", "kept for a resume");
        std::fs::remove_file(part_path(&path)).unwrap();
        let slow = client();
        let cancelled = tokio::time::timeout(
            Duration::from_millis(100),
            slow.download(spec(&server, &path, "/file?slow", false), |_, _| {}),
        )
        .await;
        assert!(cancelled.is_err(), "still downloading when dropped");
        assert!(!part_path(&path).exists() && !path.exists(), "a dropped download removes its part");
        assert_eq!(slow.stats().snapshot().in_flight, 0);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn content_ranges_parse() {
        assert_eq!(ContentRange::parse("bytes 10-99/100"), ContentRange { start: Some(10), total: Some(100) });
        assert_eq!(ContentRange::parse("bytes */100"), ContentRange { start: None, total: Some(100) });
        assert_eq!(ContentRange::parse("bytes 0-9/*"), ContentRange { start: Some(0), total: None });
        assert_eq!(ContentRange::parse("junk"), ContentRange { start: None, total: None });
    }
}
