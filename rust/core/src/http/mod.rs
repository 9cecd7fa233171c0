//! HttpSession's engine-free half: an HTTP client on reqwest (keep-alive
//! pool, HTTP/2 through ALPN, gzip / deflate / brotli / zstd, cookies) over
//! the project's rustls with ring, and what the node adds around it.
//!
//! - [`config`]: the session's settings and the client they build (TLS always
//!   verified, `ca_file` for a private CA, timeouts, default headers).
//! - [`proxy`]: the proxy from the property or `HTTP_PROXY` / `HTTPS_PROXY` /
//!   `NO_PROXY`; [`redirect`]: bounded redirects, loops named.
//! - [`request`]: one request from `request()`'s options (URL against
//!   `base_url`, query, body from text, bytes, JSON, a form or a file).
//! - [`client`]: sending within the timeouts, a body held in memory within
//!   `max_response_bytes`, counters; [`error`]: failures as messages.
//! - `stream`: bodies as they arrive, cut into lines ([`lines`]) or
//!   server-sent events ([`sse`], which reconnect as browsers do).
//! - `download`: to a `.part` file renamed when complete, with resume.
//!
//! Everything here runs on the I/O worker in the game; the glue moves the
//! results to the main thread.
//!
//! ```no_run
//! use async_net_core::http::{HttpClient, HttpConfig, RequestSpec};
//!
//! # async fn demo() -> Result<(), String> {
//! let client = HttpClient::new(HttpConfig::default())?;
//! let response = client.fetch(RequestSpec::new("GET", "https://example.com/")).await?;
//! println!("{} {} bytes", response.head.status, response.body.len());
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod config;
mod download;
pub mod error;
pub mod lines;
pub mod proxy;
pub mod redirect;
pub mod request;
pub mod sse;
mod stream;

#[cfg(test)]
mod test_server;

pub use client::{Head, HttpClient, HttpStats, HttpStatsSnapshot, Response};
pub use config::HttpConfig;
pub use download::{DownloadSpec, part_path};
pub use request::{RequestBody, RequestSpec};
pub use sse::SseEvent;
pub use stream::{StreamHandler, StreamMode, StreamOptions};
