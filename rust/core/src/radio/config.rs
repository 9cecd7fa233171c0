//! RadioStream's settings: the session's ([`RadioConfig`]) and the playback's ([`PlaybackConfig`]).

use std::{path::PathBuf, time::Duration};

use super::http::OpenOptions;

/// Settings of one [`super::run`].
#[derive(Clone, Debug)]
pub struct RadioConfig {
    /// http(s) stream or `.pls` / `.m3u` / `.xspf` playlist.
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
    /// arrived (estimated from the station's bitrate), so the I/O worker reads a few times a
    /// second instead of every packet. Keep it well below the playback buffer; zero disables.
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

/// How the glue plays a session's audio: the buffers on the main thread's side of the
/// [`PcmQueue`](super::PcmQueue).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlaybackConfig {
    /// Audio the `AudioStreamGenerator` holds: how long the game may stall, or the network
    /// pause, before playback skips.
    pub buffer: Duration,
    /// Audio decoded before playback starts.
    pub prebuffer: Duration,
    /// Audio decoded again before playback resumes after it ran dry: a stream that came back
    /// after an outage otherwise plays on with only what trickled in, and skips again at the
    /// next hiccup (players wait for more after a rebuffer than at the start, as ExoPlayer's
    /// `bufferForPlaybackAfterRebufferMs`).
    pub rebuffer: Duration,
}

/// Audio the PCM queue holds beyond the prebuffer: decoded audio waiting for room in the
/// generator.
const QUEUE_MARGIN: Duration = Duration::from_millis(500);
/// The least audio the PCM queue holds.
const QUEUE_MIN: Duration = Duration::from_secs(1);
/// The highest sample rate the PCM queue is sized for.
const QUEUE_RATE: f64 = 48_000.0;

impl Default for PlaybackConfig {
    fn default() -> Self {
        PlaybackConfig {
            buffer: Duration::from_secs(2),
            prebuffer: Duration::from_millis(500),
            rebuffer: Duration::from_secs(1),
        }
    }
}

impl PlaybackConfig {
    /// Frames the [`PcmQueue`](super::PcmQueue) between the decoder and the generator holds:
    /// the prebuffer or the rebuffer, whichever is longer, plus a margin (at least a second),
    /// at the highest sample rate.
    pub fn queue_frames(&self) -> usize {
        ((self.prebuffer.max(self.rebuffer) + QUEUE_MARGIN).max(QUEUE_MIN).as_secs_f64() * QUEUE_RATE) as usize
    }

    /// [`RadioConfig::read_batch`] for this buffer: the default, or a quarter of the buffer when
    /// that is less, so that batching reads never starves playback.
    pub fn read_batch(&self) -> Duration {
        (self.buffer / 4).min(RadioConfig::default().read_batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_and_the_read_batch_follow_the_buffers() {
        let defaults = PlaybackConfig::default();
        assert_eq!(defaults.queue_frames(), 72_000, "the rebuffer (1 s) and the margin");
        assert_eq!(defaults.read_batch(), Duration::from_millis(200));
        let long = PlaybackConfig { buffer: Duration::from_secs(10), prebuffer: Duration::from_secs(2), ..defaults };
        assert_eq!(long.queue_frames(), 120_000);
        assert_eq!(long.read_batch(), Duration::from_millis(200));
        let short =
            PlaybackConfig { buffer: Duration::from_millis(100), prebuffer: Duration::ZERO, rebuffer: Duration::ZERO };
        assert_eq!(short.queue_frames(), 48_000);
        assert_eq!(short.read_batch(), Duration::from_millis(25));
    }
}
