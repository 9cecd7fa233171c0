//! Tests of [`decode`]: the committed fixtures in `testdata/` (2 s of a 440 Hz sine on the left
//! and 660 Hz on the right, made with ffmpeg), fed through a [`ChannelReader`] from another
//! thread in odd-sized chunks, clean and damaged.

use std::{
    sync::mpsc as std_mpsc,
    thread,
    time::{Duration, Instant},
};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::*;
use crate::radio::{PcmEvent, PcmQueue, source::ChannelReader};

/// 44.1 kHz stereo, 64 kbit/s, no Xing header (as a stream): 78 MPEG frames of 1152.
const MP3_STEREO: &[u8] = include_bytes!("testdata/stereo_44k.mp3");
const MP3_STEREO_FRAMES: usize = 78 * 1152;
/// 22.05 kHz mono (MPEG-2), 32 kbit/s: 79 frames of 576; 440 Hz only.
const MP3_MONO: &[u8] = include_bytes!("testdata/mono_22k.mp3");
const MP3_MONO_FRAMES: usize = 79 * 576;
/// AAC-LC in ADTS, 44.1 kHz stereo, 64 kbit/s: 88 frames of 1024.
const AAC_STEREO: &[u8] = include_bytes!("testdata/stereo_44k.aac");
const AAC_STEREO_FRAMES: usize = 88 * 1024;
/// Ogg Vorbis, 44.1 kHz stereo, quality 0: 2 s exactly (the granule positions trim the end).
const OGG_STEREO: &[u8] = include_bytes!("testdata/stereo_44k.ogg");
const OGG_STEREO_FRAMES: usize = 88200;

/// What a decode produced.
#[derive(Default)]
struct Collect {
    formats: Vec<PcmFormat>,
    /// Interleaved samples per format, in order.
    samples: Vec<Vec<f32>>,
    channels: usize,
    errors: Vec<String>,
    /// Return false from `frames` once this many frames were delivered.
    stop_after: Option<usize>,
    frames: usize,
}

impl PcmSink for Collect {
    fn format(&mut self, format: PcmFormat) {
        self.channels = usize::from(format.channels);
        self.formats.push(format);
        self.samples.push(Vec::new());
    }

    fn frames(&mut self, samples: &[f32], channels: usize) -> bool {
        assert_eq!(channels, self.channels, "frames in the announced channel count");
        assert_eq!(samples.len() % channels, 0);
        self.samples.last_mut().expect("format before frames").extend_from_slice(samples);
        self.frames += samples.len() / channels;
        self.stop_after.is_none_or(|n| self.frames < n)
    }

    fn decode_error(&mut self, message: &str) {
        self.errors.push(message.to_string());
    }
}

impl Collect {
    fn frames_of(&self, i: usize) -> usize {
        self.samples[i].len() / usize::from(self.formats[i].channels)
    }
}

/// A reader over `bytes`, sent by another thread in odd-sized chunks through a small channel.
fn feed(bytes: Vec<u8>) -> ChannelReader {
    let (tx, rx) = mpsc::channel(4);
    thread::spawn(move || {
        let sizes = [1, 7, 333, 1000, 4099, 2, 517];
        let mut at = 0;
        for size in sizes.iter().cycle() {
            if at >= bytes.len() {
                break;
            }
            let end = (at + size).min(bytes.len());
            if tx.blocking_send(Bytes::copy_from_slice(&bytes[at..end])).is_err() {
                break;
            }
            at = end;
        }
    });
    ChannelReader::new(rx)
}

/// Decodes `bytes` as `codec` on another thread, failing the test after 30 s (a hang).
fn run(bytes: Vec<u8>, codec: Codec, mut sink: Collect) -> (Result<(), String>, Collect) {
    let (tx, rx) = std_mpsc::channel();
    thread::spawn(move || {
        let result = decode(feed(bytes), codec, &mut sink);
        let _ = tx.send((result, sink));
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("decode hung (or panicked)")
}

/// Deterministic junk (xorshift).
fn junk(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The frequency of channel `ch` of `samples` (interleaved, `channels`), from its upward zero
/// crossings with some hysteresis (coding noise near zero must not count), skipping the first
/// and last 4096 frames (encoder delay and padding, and the decoder's start after a resync).
fn frequency(samples: &[f32], channels: usize, ch: usize, rate: u32) -> f64 {
    const THRESHOLD: f32 = 0.03; // the tones' amplitude is 1/8
    let frames = samples.len() / channels;
    let mono: Vec<f32> =
        samples.chunks_exact(channels).map(|f| f[ch]).take(frames.saturating_sub(4096)).skip(4096).collect();
    let (mut low, mut cycles) = (false, 0usize);
    for &s in &mono {
        if s < -THRESHOLD {
            low = true;
        } else if s > THRESHOLD && low {
            low = false;
            cycles += 1;
        }
    }
    cycles as f64 / (mono.len() as f64 / f64::from(rate))
}

fn assert_near(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!((actual - expected).abs() <= tolerance, "{what}: {actual} is not within {tolerance} of {expected}");
}

/// Checks one clean decode: format, frame count, and each channel's tone.
fn check_clean(bytes: &[u8], codec: Codec, rate: u32, channels: u16, frames: usize, tones: &[f64]) {
    let (result, out) = run(bytes.to_vec(), codec, Collect::default());
    result.unwrap();
    assert_eq!(out.formats, [PcmFormat { sample_rate: rate, channels, codec }]);
    assert!(out.errors.is_empty(), "errors: {:?}", out.errors);
    let got = out.frames_of(0);
    assert!(got.abs_diff(frames) <= 2 * 1152, "{codec:?}: {got} frames, expected about {frames}");
    for (ch, &tone) in tones.iter().enumerate() {
        assert_near(frequency(&out.samples[0], usize::from(channels), ch, rate), tone, 5.0, "tone");
    }
}

#[test]
fn decodes_mp3_stereo() {
    check_clean(MP3_STEREO, Codec::Mp3, 44100, 2, MP3_STEREO_FRAMES, &[440.0, 660.0]);
}

#[test]
fn decodes_mp3_mono() {
    check_clean(MP3_MONO, Codec::Mp3, 22050, 1, MP3_MONO_FRAMES, &[440.0]);
}

#[test]
fn decodes_aac_adts() {
    check_clean(AAC_STEREO, Codec::Aac, 44100, 2, AAC_STEREO_FRAMES, &[440.0, 660.0]);
}

#[test]
fn decodes_ogg_vorbis() {
    check_clean(OGG_STEREO, Codec::Vorbis, 44100, 2, OGG_STEREO_FRAMES, &[440.0, 660.0]);
}

/// Decodes damaged MP3 bytes and checks that most of the audio came through, at 440/660 Hz.
fn check_damaged(bytes: Vec<u8>, min_frames: usize) -> Collect {
    let (result, out) = run(bytes, Codec::Mp3, Collect::default());
    result.unwrap();
    assert_eq!(out.formats[0], PcmFormat { sample_rate: 44100, channels: 2, codec: Codec::Mp3 });
    assert_eq!(out.formats.len(), 1, "formats: {:?}", out.formats);
    assert!(out.frames >= min_frames, "{} frames, expected at least {min_frames}", out.frames);
    assert!(out.frames <= MP3_STEREO_FRAMES + 4 * 1152, "{} frames", out.frames);
    // The tones after the damage (the last 0.45 s, less the decoder's tail).
    let tail = &out.samples[0][out.samples[0].len().saturating_sub(2 * (20_000 + 2 * 4096))..];
    assert_near(frequency(tail, 2, 0, 44100), 440.0, 5.0, "left tone");
    assert_near(frequency(tail, 2, 1, 44100), 660.0, 5.0, "right tone");
    out
}

#[test]
fn skips_junk_before_the_first_frame() {
    for seed in 1..=4 {
        let mut bytes = junk(5000, seed);
        bytes.extend_from_slice(MP3_STEREO);
        check_damaged(bytes, MP3_STEREO_FRAMES - 2 * 1152);
    }
}

#[test]
fn skips_junk_in_the_middle() {
    for seed in 1..=4 {
        let mut bytes = MP3_STEREO[..8000].to_vec();
        bytes.extend(junk(3000, seed));
        bytes.extend_from_slice(&MP3_STEREO[8000..]);
        check_damaged(bytes, MP3_STEREO_FRAMES * 8 / 10);
    }
}

#[test]
fn survives_dropped_bytes() {
    // Whether a damaged frame fails to decode or plays as a glitch depends on where the cut is;
    // the first of these cuts leaves a frame the decoder rejects.
    for (from, len, rejected) in [(8000, 500, true), (5001, 77, false), (9000, 1, false), (3000, 4000, false)] {
        let mut bytes = MP3_STEREO[..from].to_vec();
        bytes.extend_from_slice(&MP3_STEREO[from + len..]);
        let out = check_damaged(bytes, MP3_STEREO_FRAMES * 6 / 10);
        if rejected {
            assert!(!out.errors.is_empty(), "the damaged frame is reported");
        }
        // The audio after the damage is there: the last second is decoded.
        assert!(out.frames >= MP3_STEREO_FRAMES - (len + 1500) / 200 * 1152, "{} frames", out.frames);
    }
}

#[test]
fn truncated_mid_frame_ends_ok() {
    let (result, out) = run(MP3_STEREO[..10_001].to_vec(), Codec::Mp3, Collect::default());
    result.unwrap();
    let expected = MP3_STEREO_FRAMES * 10_001 / MP3_STEREO.len();
    assert!(out.frames.abs_diff(expected) <= 3 * 1152, "{} frames, expected about {expected}", out.frames);
}

#[test]
fn damaged_aac_and_vorbis_go_on() {
    for (clean, codec, frames) in
        [(AAC_STEREO, Codec::Aac, AAC_STEREO_FRAMES), (OGG_STEREO, Codec::Vorbis, OGG_STEREO_FRAMES)]
    {
        let mid = clean.len() / 2;
        let mut bytes = junk(3000, 9);
        bytes.extend_from_slice(&clean[..mid]);
        bytes.extend(junk(2000, 10));
        bytes.extend_from_slice(&clean[mid + 300..]);
        let (result, out) = run(bytes, codec, Collect::default());
        result.unwrap();
        assert_eq!(out.formats[0], PcmFormat { sample_rate: 44100, channels: 2, codec });
        assert!(out.frames >= frames * 6 / 10, "{codec:?}: {} frames of {frames}", out.frames);
        assert!(!out.errors.is_empty() || codec == Codec::Vorbis, "{codec:?}: damage is reported");
        assert_near(frequency(&out.samples[0], 2, 0, 44100), 440.0, 20.0, "left tone");
    }
}

#[test]
fn follows_a_format_change() {
    let mut bytes = MP3_MONO.to_vec();
    bytes.extend_from_slice(MP3_STEREO);
    let (result, out) = run(bytes, Codec::Mp3, Collect::default());
    result.unwrap();
    assert_eq!(
        out.formats,
        [
            PcmFormat { sample_rate: 22050, channels: 1, codec: Codec::Mp3 },
            PcmFormat { sample_rate: 44100, channels: 2, codec: Codec::Mp3 },
        ]
    );
    assert!(out.frames_of(0) >= MP3_MONO_FRAMES - 2 * 576, "{} mono frames", out.frames_of(0));
    assert!(out.frames_of(1) >= MP3_STEREO_FRAMES - 12 * 1152, "{} stereo frames", out.frames_of(1));
    assert_near(frequency(&out.samples[1], 2, 1, 44100), 660.0, 10.0, "right tone after the change");
}

#[test]
fn follows_a_chained_ogg_stream() {
    let mut bytes = OGG_STEREO.to_vec();
    bytes.extend_from_slice(OGG_STEREO);
    let (result, out) = run(bytes, Codec::Vorbis, Collect::default());
    result.unwrap();
    assert_eq!(out.formats.len(), 1, "same format, no new Format: {:?}", out.formats);
    assert!(out.frames.abs_diff(2 * OGG_STEREO_FRAMES) <= 2048, "{} frames", out.frames);
}

#[test]
fn pure_garbage_is_an_error() {
    for codec in [Codec::Mp3, Codec::Aac, Codec::Vorbis] {
        let started = Instant::now();
        let (result, out) = run(junk(400 * 1024, 42), codec, Collect::default());
        let err = result.unwrap_err();
        assert!(err.starts_with(&format!("no {} audio found in the first 256 KiB", codec.name())), "{codec:?}: {err}");
        assert_eq!(out.frames, 0, "{codec:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}

#[test]
fn short_garbage_then_end_is_an_error_and_empty_input_is_ok() {
    let (result, _) = run(junk(1000, 3), Codec::Mp3, Collect::default());
    assert!(result.unwrap_err().starts_with("no mp3 audio found in the 1000 bytes"));
    let (result, out) = run(Vec::new(), Codec::Mp3, Collect::default());
    result.unwrap();
    assert!(out.formats.is_empty());
}

#[test]
fn html_error_page_is_an_error() {
    let page = b"<html><head><title>404 Not Found</title></head><body>Not found</body></html>\n".repeat(50);
    for codec in [Codec::Mp3, Codec::Aac, Codec::Vorbis] {
        let (result, _) = run(page.clone(), codec, Collect::default());
        assert!(result.is_err(), "{codec:?}");
    }
}

#[test]
fn stops_when_the_sink_says_so() {
    let mut bytes = Vec::new();
    for _ in 0..20 {
        bytes.extend_from_slice(MP3_STEREO);
    }
    let sink = Collect { stop_after: Some(10_000), ..Collect::default() };
    let (result, out) = run(bytes, Codec::Mp3, sink);
    result.unwrap();
    assert!(out.frames >= 10_000 && out.frames < 10_000 + 1152, "{} frames", out.frames);
}

#[test]
fn queue_sink_end_to_end() {
    let queue = PcmQueue::new(4096);
    let producer = {
        let queue = queue.clone();
        thread::spawn(move || {
            let mut sink = queue.sink();
            decode(feed(MP3_MONO.to_vec()), Codec::Mp3, &mut sink)
        })
    };
    let mut frames = Vec::<[f32; 2]>::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(producer.is_finished() && queue.is_empty()) {
        assert!(Instant::now() < deadline, "hung");
        if queue.pop_with(735, |s| frames.extend_from_slice(s)) == 0 {
            thread::sleep(Duration::from_millis(1));
        }
    }
    producer.join().unwrap().unwrap();
    let mut events = Vec::new();
    queue.take_events(&mut events);
    assert_eq!(events, [PcmEvent::Format(PcmFormat { sample_rate: 22050, channels: 1, codec: Codec::Mp3 })]);
    assert_eq!(frames.len(), MP3_MONO_FRAMES);
    // Mono is duplicated into both channels.
    assert!(frames.iter().all(|f| f[0] == f[1]));
    assert!(frames.iter().any(|f| f[0].abs() > 0.05));
}
