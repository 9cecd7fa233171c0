//! RadioStream's engine-free half: an icecast / SHOUTcast client that
//! streams over HTTP(S), strips ICY metadata, and decodes MP3, AAC (ADTS) or
//! Ogg Vorbis with symphonia into stereo PCM frames for the glue to push into
//! an `AudioStreamGenerator`.
//!
//! Data flow of one [`session::run`]:
//!
//! ```text
//!  hub runtime (main thread)                      decoder (blocking pool thread)
//!  http::open ─► StreamBody chunks ─► IcyDemuxer ─┬─ audio Bytes ─► ChannelReader ─► decode() ─► PcmQueue
//!                                                 └─ titles ─► RadioHandler::title_changed       (stereo f32 frames,
//!                                                                                                 WAV recorder)
//!  glue, each frame: PcmQueue::pop ─► AudioStreamGeneratorPlayback::push_buffer
//! ```
//!
//! Only PCM crosses to the main thread. The byte channel and the PCM queue
//! are bounded, so a stream faster than playback is held back by TCP flow
//! control, never by memory.
//!
//! Layout: [`codec`] (content type → codec), [`http`] (connect, redirects,
//! playlists, the ICY status-line shim), [`icy`] (metadata de-interleaving
//! and `StreamTitle` parsing), [`playlist`] (`.pls`, `.m3u`), [`source`]
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
pub use config::RadioConfig;
pub use handler::{RadioHandler, StationInfo};
pub use pcm::{PcmEvent, PcmFormat, PcmQueue};
pub use session::run;
pub use stats::{RadioStats, RadioStatsSnapshot};
