//! RadioStream's settings.

use std::{path::PathBuf, time::Duration};

use super::http::OpenOptions;

/// Settings of one [`super::run`].
#[derive(Clone, Debug)]
pub struct RadioConfig {
    /// http(s) stream or `.pls` / `.m3u` playlist.
    pub url: String,
    /// Ask for ICY metadata (titles).
    pub metadata: bool,
    /// Reconnect when the stream drops.
    pub reconnect: bool,
    /// Ceiling of the first wait before reconnecting; each wait is drawn from the upper half of
    /// a ceiling that doubles from here ([`Backoff`](crate::backoff::Backoff)).
    pub reconnect_min: Duration,
    /// Largest ceiling, so the longest wait before reconnecting.
    pub reconnect_max: Duration,
    /// Connect, TLS and response head, per hop.
    pub connect_timeout: Duration,
    /// No body bytes for this long counts as a lost stream.
    pub read_timeout: Duration,
    /// PEM file of a private CA for https.
    pub ca_file: Option<PathBuf>,
    /// Once a stream is flowing, the socket wakes its reader only when this much audio has
    /// arrived (estimated from the station's bitrate), so the main thread reads a few times a
    /// second instead of every frame. Keep it well below the playback buffer; zero disables.
    pub read_batch: Duration,
}

impl Default for RadioConfig {
    fn default() -> Self {
        RadioConfig {
            url: String::new(),
            metadata: true,
            reconnect: true,
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(10),
            ca_file: None,
            read_batch: Duration::from_millis(200),
        }
    }
}

impl RadioConfig {
    /// The options for [`super::http::open`].
    pub fn open_options(&self) -> OpenOptions {
        OpenOptions {
            metadata: self.metadata,
            timeout: self.connect_timeout,
            ca_file: self.ca_file.clone(),
            ..OpenOptions::default()
        }
    }
}
