//! RadioStream's engine-free half: an icecast / SHOUTcast client that
//! streams over HTTP(S), strips ICY metadata, and decodes MP3, AAC (ADTS) or
//! Ogg Vorbis with symphonia into stereo PCM frames for the glue to push into
//! an `AudioStreamGenerator`.
//!
//! Data flow of one [`session::run`]:
//!
//! ```text
//!  I/O worker (the hub runtime's thread)            decoder (blocking pool thread)
//!  http::open ─► StreamBody chunks ─► IcyDemuxer ─┬─ audio Bytes ─► ChannelReader ─► decode() ─► PcmQueue
//!                                                 └─ titles ─► RadioHandler::title_changed       (stereo f32 frames,
//!                                                                                                 WAV recorder)
//!  main thread, each frame: the handler's events (relayed by the glue) ─► signals
//!                           PcmQueue::pop_with ─► AudioStreamGeneratorPlayback::push_buffer
//! ```
//!
//! The session never touches the engine: its [`RadioHandler`] hands events to
//! the glue, and [`RadioStats`] are atomics. PCM reaches the main thread
//! through the [`PcmQueue`] alone. The byte channel and the PCM queue are
//! bounded, and the session waits for [`RadioHandler::poll_ready`] before it
//! reports a title, so a stream faster than playback (or than the game takes
//! titles) is held back by TCP flow control, never by memory.
//!
//! Layout: [`codec`] (content type → codec), [`http`] (connect, redirects,
//! playlists, the ICY status-line shim), [`icy`] (metadata de-interleaving
//! and `StreamTitle` parsing), [`playlist`] (`.pls`, `.m3u`, `.xspf`), [`source`]
//! (a blocking `Read` over the byte channel), [`decode`] (symphonia, resync),
//! [`pcm`] (the queue the glue drains), [`wav`] (`record_to`), [`config`],
//! [`handler`], [`stats`] and [`session`] (the reconnect loop).

pub mod codec;
pub mod config;
pub mod decode;
pub mod handler;
pub mod http;
pub mod icy;
pub mod pcm;
pub mod playlist;
pub mod session;
pub mod source;
pub mod stats;
pub mod wav;

pub use codec::Codec;
pub use config::{PlaybackConfig, RadioConfig};
pub use handler::{RadioHandler, StationInfo};
pub use pcm::{PcmEvent, PcmFormat, PcmQueue};
pub use session::run;
pub use stats::{RadioStats, RadioStatsSnapshot};
