//! symphonia decoding from a non-seekable source, resyncing over junk.
//!
//! [`decode`] reads the stream once, front to back, through symphonia's `MediaSourceStream` over a
//! `ReadOnlySource` (nothing is ever seeked), with the container reader picked by codec rather
//! than probed: `MpaReader` for MP3, `AdtsReader` for AAC, `OggReader` for Vorbis.
//!
//! Live radio is not a clean file: there are bytes before the first frame, bytes lost when a
//! connection hiccups, and garbage in the middle. What happens to each:
//!
//! - A packet the decoder rejects is reported to [`PcmSink::decode_error`] and skipped.
//! - The reader asks for a reset (`ResetRequired`: a chained Ogg stream starts a new song): the
//!   decoder is rebuilt from the new track; a different rate or channel count is reported to
//!   [`PcmSink::format`].
//! - The reader fails (it lost sync and cannot skip the damage itself): the failure is reported,
//!   the reader's `MediaSourceStream` is taken back with `FormatReader::into_inner` (it keeps
//!   its buffered bytes) and a new reader is made on it, which syncs to the next good frame.
//! - [`RESYNC_AFTER_ERRORS`] packets in a row fail to decode (the stream switched to another
//!   rate or channel count, which symphonia's MP3 decoder cannot follow, or the reader locked
//!   onto garbage): the same resync, so the new reader and decoder take the stream's new format.
//!   For Ogg, whose reader cannot start in the middle of a logical stream, the decoder is only
//!   reset.
//! - Making a reader fails (junk that looked like a frame header): symphonia's constructors take
//!   the stream by value and drop it on failure, so the stream we hand them borrows our source
//!   instead of owning it, and a fresh `MediaSourceStream` carries on from where the source is.
//!   What the dropped one had buffered is lost, so the source hands out at most [`MAX_READ`]
//!   bytes per read.
//!
//! The source's end (`UnexpectedEof`) ends decoding with `Ok`. `Err` is only for a stream with
//! no audio at all: none in its first [`SEARCH_LIMIT`] bytes (the source then fails every read,
//! which stops the readers' own sync loops), or none before it ended. Audio is "found" once two
//! packets in a row decode, so one header-like pattern in garbage does not count (the first
//! packet's samples are held back until the second one confirms them).
//!
//! Decoded buffers are converted to interleaved `f32` into one reused `Vec`; nothing is allocated
//! per packet here (symphonia's readers allocate each packet's bytes).

use std::{
    fmt,
    io::{self, Read},
    mem,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

use symphonia::{
    core::{
        audio::GenericAudioBufferRef,
        codecs::audio::{AudioDecoder, AudioDecoderOptions},
        errors::Error,
        formats::{FormatOptions, FormatReader, TrackType},
        io::{MediaSourceStream, MediaSourceStreamOptions, ReadBytes, ReadOnlySource},
    },
    default::formats::{AdtsReader, MpaReader, OggReader},
};

use super::{Codec, PcmFormat};

/// Bytes read without finding audio after which [`decode`] gives up.
pub const SEARCH_LIMIT: u64 = 256 * 1024;

/// Bytes handed to symphonia per read: what a failed reader constructor can lose.
pub const MAX_READ: usize = 4096;

/// Packets failing in a row that make the decoder resync (see the module docs).
pub const RESYNC_AFTER_ERRORS: u32 = 8;

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
    let progress = Progress { read: AtomicU64::new(0), searching: AtomicBool::new(true) };
    let mut source = Limited { inner: source, progress: &progress };
    let mut state = State {
        codec,
        sink,
        progress: &progress,
        samples: Vec::new(),
        reported: None,
        good_in_a_row: 0,
        held: Vec::new(),
        held_spec: (0, 0),
        problem: None,
    };
    // Each turn borrows the source for one MediaSourceStream; a new one only after a reader
    // constructor failed and took the previous one down with it.
    loop {
        let mut stream =
            MediaSourceStream::new(Box::new(ReadOnlySource::new(&mut source)), MediaSourceStreamOptions::default());
        // Where the last resync on this stream resumed: a reader that fails again without reading
        // anything (its constructor rewinds to the frame it found) must not be made there again.
        let mut resumed_at = None;
        loop {
            let reader = match open(codec, stream) {
                Ok(reader) => reader,
                Err(Error::IoError(_)) => return state.end(),
                Err(e) => {
                    // Junk that looked like a frame: carry on from the source.
                    state.problem = Some(e.to_string());
                    break;
                }
            };
            match state.run(reader) {
                Outcome::End => return state.end(),
                Outcome::Stopped => return Ok(()),
                Outcome::Resync(mut back) => {
                    let at = back.pos();
                    if resumed_at == Some(at) {
                        // An error here is the source's end: the next open fails and ends it.
                        let _ = back.read_byte();
                    }
                    resumed_at = Some(back.pos());
                    stream = back;
                }
            }
        }
    }
}

/// The container reader for `codec`, syncing to the first frame it can read.
fn open<'a>(
    codec: Codec,
    stream: MediaSourceStream<'a>,
) -> symphonia::core::errors::Result<Box<dyn FormatReader + 'a>> {
    let opts = FormatOptions::default();
    Ok(match codec {
        Codec::Mp3 => Box::new(MpaReader::try_new(stream, opts)?),
        Codec::Aac => Box::new(AdtsReader::try_new(stream, opts)?),
        Codec::Vorbis => Box::new(OggReader::try_new(stream, opts)?),
    })
}

/// How far [`decode`] got, shared by the source wrapper and the decoding loop.
struct Progress {
    /// Bytes read from the source.
    read: AtomicU64,
    /// No audio found yet: reads fail past [`SEARCH_LIMIT`].
    searching: AtomicBool,
}

impl Progress {
    fn limit_reached(&self) -> bool {
        self.searching.load(Ordering::Relaxed) && self.read.load(Ordering::Relaxed) >= SEARCH_LIMIT
    }
}

/// The source as symphonia sees it: at most [`MAX_READ`] bytes per read, counted, and failing
/// once [`SEARCH_LIMIT`] bytes were read without audio.
struct Limited<'p, R> {
    inner: R,
    progress: &'p Progress,
}

/// The error of a read past [`SEARCH_LIMIT`] without audio.
#[derive(Debug)]
struct SearchLimit;

impl fmt::Display for SearchLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no audio in the first {} KiB", SEARCH_LIMIT / 1024)
    }
}

impl std::error::Error for SearchLimit {}

impl<R: Read> Read for Limited<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.progress.read.load(Ordering::Relaxed);
        let mut max = buf.len().min(MAX_READ);
        if self.progress.searching.load(Ordering::Relaxed) {
            if read >= SEARCH_LIMIT {
                return Err(io::Error::other(SearchLimit));
            }
            max = max.min((SEARCH_LIMIT - read) as usize);
        }
        let n = loop {
            match self.inner.read(&mut buf[..max]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.progress.read.store(read + n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// How one reader's run ended.
enum Outcome<'a> {
    /// The source ended (or failed, or the search limit was reached).
    End,
    /// The sink asked to stop.
    Stopped,
    /// Make a new reader on this stream.
    Resync(MediaSourceStream<'a>),
}

/// The decoding loop's state across readers.
struct State<'s, 'p> {
    codec: Codec,
    sink: &'s mut dyn PcmSink,
    progress: &'p Progress,
    /// Interleaved samples of the last packet (reused).
    samples: Vec<f32>,
    /// Rate and channels last given to `sink.format`.
    reported: Option<(u32, usize)>,
    /// Packets decoded in a row (two find the audio).
    good_in_a_row: u32,
    /// While searching, the samples of the first good packet, and their rate and channels.
    held: Vec<f32>,
    held_spec: (u32, usize),
    /// The last thing that went wrong while searching, for the error message.
    problem: Option<String>,
}

impl State<'_, '_> {
    /// The result once the source ended.
    fn end(&self) -> Result<(), String> {
        if !self.progress.searching.load(Ordering::Relaxed) {
            return Ok(());
        }
        let problem = self.problem.as_ref().map(|p| format!(" (last problem: {p})")).unwrap_or_default();
        let read = self.progress.read.load(Ordering::Relaxed);
        if self.progress.limit_reached() {
            Err(format!("no {} audio found in the first {} KiB{problem}", self.codec.name(), SEARCH_LIMIT / 1024))
        } else if read == 0 {
            Ok(())
        } else {
            Err(format!("no {} audio found in the {read} bytes before the stream ended{problem}", self.codec.name()))
        }
    }

    /// Reads and decodes packets until the source ends, the sink stops, or a resync is needed.
    fn run<'a>(&mut self, mut reader: Box<dyn FormatReader + 'a>) -> Outcome<'a> {
        let Some((mut track, mut decoder)) = self.make_decoder(&*reader) else {
            return Outcome::Resync(reader.into_inner());
        };
        let mut errors_in_a_row = 0;
        loop {
            let packet = match reader.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) | Err(Error::IoError(_)) => return Outcome::End,
                Err(Error::ResetRequired) => {
                    // A new (chained) stream: new track, new decoder.
                    match self.make_decoder(&*reader) {
                        Some((t, d)) => (track, decoder) = (t, d),
                        None => return Outcome::Resync(reader.into_inner()),
                    }
                    continue;
                }
                Err(e) => {
                    self.report(&format!("lost sync ({e}); resynchronizing"));
                    return Outcome::Resync(reader.into_inner());
                }
            };
            if packet.track_id != track {
                continue;
            }
            match decoder.decode(&packet) {
                Ok(audio) => {
                    errors_in_a_row = 0;
                    if !self.deliver(audio) {
                        return Outcome::Stopped;
                    }
                }
                Err(Error::ResetRequired) => match self.make_decoder(&*reader) {
                    Some((t, d)) => (track, decoder) = (t, d),
                    None => return Outcome::Resync(reader.into_inner()),
                },
                Err(e) => {
                    self.report(&e.to_string());
                    errors_in_a_row += 1;
                    if errors_in_a_row >= RESYNC_AFTER_ERRORS {
                        errors_in_a_row = 0;
                        if self.codec == Codec::Vorbis {
                            decoder.reset();
                        } else {
                            return Outcome::Resync(reader.into_inner());
                        }
                    }
                }
            }
        }
    }

    /// The decoder for the reader's audio track, and the track's id; `None` (reported) if there is
    /// no audio track or its codec cannot be decoded.
    fn make_decoder(&mut self, reader: &dyn FormatReader) -> Option<(u32, Box<dyn AudioDecoder>)> {
        let made = match reader.default_track(TrackType::Audio) {
            None => Err("no audio track".to_string()),
            Some(track) => match track.codec_params.as_ref().and_then(|p| p.audio()) {
                None => Err("no codec parameters".to_string()),
                Some(params) => symphonia::default::get_codecs()
                    .make_audio_decoder(params, &AudioDecoderOptions::default())
                    .map(|d| (track.id, d))
                    .map_err(|e| e.to_string()),
            },
        };
        made.map_err(|e| self.report(&format!("cannot decode this {} stream: {e}", self.codec.name()))).ok()
    }

    /// Tells the sink about a new format.
    fn announce(&mut self, rate: u32, channels: usize) {
        if self.reported != Some((rate, channels)) {
            self.reported = Some((rate, channels));
            self.sink.format(PcmFormat { sample_rate: rate, channels: channels as u16, codec: self.codec });
        }
    }

    /// A problem: to the sink, and remembered for the "no audio" error.
    fn report(&mut self, message: &str) {
        self.good_in_a_row = 0;
        self.sink.decode_error(message);
        if self.progress.searching.load(Ordering::Relaxed) {
            self.problem = Some(message.to_string());
        }
    }

    /// Hands a decoded buffer to the sink (announcing a new format first); false to stop.
    fn deliver(&mut self, audio: GenericAudioBufferRef<'_>) -> bool {
        let frames = audio.frames();
        if frames == 0 {
            return true;
        }
        let (rate, channels) = (audio.spec().rate(), audio.spec().channels().count());
        if rate == 0 || channels == 0 || channels > usize::from(u16::MAX) {
            self.report(&format!("decoded audio with {channels} channel(s) at {rate} Hz"));
            return true;
        }
        audio.copy_to_vec_interleaved::<f32>(&mut self.samples);
        self.good_in_a_row += 1;
        if self.progress.searching.load(Ordering::Relaxed) {
            if self.good_in_a_row < 2 {
                // Held until the next packet decodes too: one lucky junk "frame" is not audio.
                mem::swap(&mut self.held, &mut self.samples);
                self.held_spec = (rate, channels);
                return true;
            }
            self.progress.searching.store(false, Ordering::Relaxed);
            if self.held_spec == (rate, channels) && !self.held.is_empty() {
                self.announce(rate, channels);
                if !self.sink.frames(&self.held, channels) {
                    return false;
                }
            }
            self.held = Vec::new();
        }
        self.announce(rate, channels);
        self.sink.frames(&self.samples, channels)
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
