//! CONTRACT STUB (helper B replaces the bodies; keep the public signatures).
//! symphonia decoding from a non-seekable source, resyncing over junk.

use std::io::Read;

use super::{Codec, PcmFormat};

/// Where decoded audio goes.
pub trait PcmSink {
    /// Decoding (re)starts with `format`; called before the first frames and when the format changes.
    fn format(&mut self, format: PcmFormat);
    /// Decoded samples, interleaved with `channels` channels. Returns false to stop decoding.
    fn frames(&mut self, samples: &[f32], channels: usize) -> bool;
    /// A packet could not be decoded (counted, skipped; decoding goes on).
    fn decode_error(&mut self, message: &str);
}

/// Decodes `source` (read sequentially, never seeked) as `codec` into `sink` until the source
/// ends (`Ok`) or the sink stops. Junk and lost bytes are skipped (each reported to
/// `sink.decode_error`); `Err` only when no audio can be found at all.
pub fn decode(source: impl Read + Send + Sync + 'static, codec: Codec, sink: &mut dyn PcmSink) -> Result<(), String> {
    let _ = (source, codec, sink);
    todo!()
}
