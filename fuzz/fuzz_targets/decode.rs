//! RadioStream's decoder (`radio::decode::decode`, symphonia with resync) fed random bytes, and
//! the MP3 / AAC / Ogg Vorbis test fixtures mutated by fuzzer edits (bytes overwritten, junk
//! inserted, ranges cut out) the way a flaky connection damages a live stream.
//!
//! Input: 1 mode byte. Modes 0–2: the rest is a stream of MP3, AAC or Vorbis. Modes 3–6: the
//! fixture `mode - 3` (stereo MP3, mono MP3, AAC, Vorbis) with the rest read as 4-byte edits
//! `[offset (2 bytes), op, value]`: overwrite one byte, insert `value` junk bytes, or cut `value`
//! bytes.
//! Invariants: no panic or hang (libFuzzer's -timeout), a format is announced before any frames,
//! rates and channel counts are sane, frames are whole and every sample is finite.
#![no_main]

use std::io::Cursor;

use async_net_core::radio::{
    Codec, PcmFormat,
    decode::{PcmSink, decode},
};
use libfuzzer_sys::fuzz_target;

const FIXTURES: [(&[u8], Codec); 4] = [
    (include_bytes!("../../rust/core/src/radio/testdata/stereo_44k.mp3"), Codec::Mp3),
    (include_bytes!("../../rust/core/src/radio/testdata/mono_22k.mp3"), Codec::Mp3),
    (include_bytes!("../../rust/core/src/radio/testdata/stereo_44k.aac"), Codec::Aac),
    (include_bytes!("../../rust/core/src/radio/testdata/stereo_44k.ogg"), Codec::Vorbis),
];

/// At most this many edits per input.
const MAX_EDITS: usize = 64;

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else { return };
    let (stream, codec) = match mode % 7 {
        0 => (rest.to_vec(), Codec::Mp3),
        1 => (rest.to_vec(), Codec::Aac),
        2 => (rest.to_vec(), Codec::Vorbis),
        n => {
            let (fixture, codec) = FIXTURES[usize::from(n - 3)];
            (mutate(fixture, rest), codec)
        }
    };
    let mut sink = Checker::default();
    let _ = decode(Cursor::new(stream), codec, &mut sink);
});

/// `fixture` with `edits` applied in order.
fn mutate(fixture: &[u8], edits: &[u8]) -> Vec<u8> {
    let mut bytes = fixture.to_vec();
    for edit in edits.chunks_exact(4).take(MAX_EDITS) {
        let at = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % (bytes.len() + 1);
        let value = edit[3];
        match edit[2] % 3 {
            0 if at < bytes.len() => bytes[at] = value,
            1 => {
                let junk = (0..value).map(|i| value.wrapping_mul(31).wrapping_add(i.wrapping_mul(17)));
                bytes.splice(at..at, junk);
            }
            2 => {
                let end = (at + usize::from(value)).min(bytes.len());
                bytes.drain(at..end);
            }
            _ => {}
        }
    }
    bytes
}

#[derive(Default)]
struct Checker {
    format: Option<PcmFormat>,
}

impl PcmSink for Checker {
    fn format(&mut self, format: PcmFormat) {
        assert!((1..=8).contains(&format.channels), "{format:?}");
        assert!((1000..=192_000).contains(&format.sample_rate), "{format:?}");
        self.format = Some(format);
    }

    fn frames(&mut self, samples: &[f32], channels: usize) -> bool {
        let format = self.format.as_ref().expect("frames before a format");
        assert_eq!(channels, usize::from(format.channels));
        assert_eq!(samples.len() % channels, 0, "a partial frame");
        assert!(samples.iter().all(|s| s.is_finite()), "a sample that is not finite");
        true
    }

    fn decode_error(&mut self, message: &str) {
        assert!(!message.is_empty());
    }
}
