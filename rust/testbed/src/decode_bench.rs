//! `testbed decode-bench --file LONG --short-file SHORT [--runs N]`: RadioStream's decoding
//! pipeline against ffmpeg and mpg123, decoding the same MP3 files in the same run. `cargo xtask
//! bench` runs it from a release build of the testbed (the `microbench` feature) on its 5-minute
//! bench MP3 (`target/media/bench.mp3`) and the 1-minute station MP3 it repeats
//! (`target/media/station.mp3`, the same frames), and reads its `BENCH` rows.
//!
//! What is timed, best of N interleaved runs each (so that noise from other processes hits all
//! alike), wall clock from start to the last frame:
//!
//! - ours: the whole path RadioStream's audio takes, the file standing in for the network: a
//!   thread reads it in 16 KiB chunks into a bounded tokio channel (as the network task does), the
//!   decoder thread reads that through a `ChannelReader` (non-seekable) and `decode`s into a
//!   `PcmQueue` of 2 s (RadioStream's default `buffer_sec`), and this thread pops the stereo frames
//!   and copies them out, as the glue does into the generator's buffer;
//! - `ffmpeg -hide_banner -loglevel error -threads 1 -i FILE -f null -` (decodes to PCM, discards);
//! - `mpg123 -q -t FILE` (decodes, no output);
//! - for reference in the detail: `decode` alone, over the long file, into a sink that discards,
//!   which is symphonia's cost plus our conversion to interleaved `f32`.
//!
//! Each is timed on both files, and the figure is the audio of the long file less the short one's
//! over the time of the long less the short one's: what starting a process (loading ffmpeg's
//! libraries takes tens of milliseconds) or our threads costs is the same for both files and
//! drops out, leaving the decoding speed. The rows are realtime factors (audio seconds per second
//! of decoding, higher is better), so the ratio `cargo xtask bench` prints is how many times
//! faster than the tool we decode.

use std::ffi::OsString;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use async_net_core::radio::decode::{PcmSink, decode};
use async_net_core::radio::source::ChannelReader;
use async_net_core::radio::{Codec, PcmEvent, PcmFormat, PcmQueue};
use lexopt::prelude::*;
use serde_json::json;

/// Chunks the reader thread sends, as a network read would.
const CHUNK: usize = 16 * 1024;

/// Chunks the byte channel holds (RadioStream's session uses a bounded channel too).
const CHANNEL_CHUNKS: usize = 16;

/// Frames the queue holds: 2 s at 44.1 kHz, RadioStream's default `buffer_sec`.
const QUEUE_FRAMES: usize = 88_200;

/// Frames the consumer pops at most at a time: what the glue takes per frame at 60 fps and 44.1 kHz.
const POP_FRAMES: usize = 735;

/// The best (shortest) times of one decoder on the long and the short file, in seconds.
#[derive(Debug, Clone, Copy)]
struct Best {
    long: f64,
    short: f64,
}

impl Best {
    const NONE: Best = Best { long: f64::MAX, short: f64::MAX };

    fn keep(&mut self, long: f64, short: f64) {
        self.long = self.long.min(long);
        self.short = self.short.min(short);
    }

    /// Audio seconds decoded per second, start-up taken out: `audio` is the long file's audio
    /// less the short one's.
    fn speed(&self, audio: f64) -> f64 {
        let seconds = self.long - self.short;
        if seconds > 0.0 { audio / seconds } else { f64::INFINITY }
    }

    fn describe(&self, audio: f64) -> String {
        format!("{:.3} s long, {:.3} s short: {:.0}x", self.long, self.short, self.speed(audio))
    }
}

/// `testbed decode-bench --file LONG --short-file SHORT [--runs N]` (see the module docs).
pub fn main(args: Vec<OsString>) -> Result<ExitCode> {
    let (mut long, mut short, mut runs) = (None, None, 5usize);
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("file") => long = Some(PathBuf::from(parser.value()?)),
            Long("short-file") => short = Some(PathBuf::from(parser.value()?)),
            Long("runs") => runs = parser.value()?.parse::<usize>()?.max(1),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let long = long.context("--file is required")?;
    let short = short.context("--short-file is required")?;
    for path in [&long, &short] {
        if !path.is_file() {
            bail!("{} is not a file", path.display());
        }
    }
    if cfg!(debug_assertions) {
        eprintln!(
            "decode-bench: warning: this is a debug build; run `cargo run --release -p testbed --features microbench -- decode-bench`"
        );
    }
    let name =
        |path: &Path| path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let ffmpeg_cmd = |path: &Path| {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-loglevel", "error", "-threads", "1", "-i"]).arg(path).args(["-f", "null", "-"]);
        cmd
    };
    let mpg123_cmd = |path: &Path| {
        let mut cmd = Command::new("mpg123");
        cmd.args(["-q", "-t"]).arg(path);
        cmd
    };

    // Warm-up: the page cache, the allocator, the CPU's clock; and the audio's length.
    let (warm_long, warm_short) = (pipeline(&long)?, pipeline(&short)?);
    time(&mut ffmpeg_cmd(&long))?;
    time(&mut mpg123_cmd(&long))?;
    let seconds_of = |run: &Run| run.frames as f64 / f64::from(run.format.sample_rate);
    let (long_s, short_s) = (seconds_of(&warm_long), seconds_of(&warm_short));
    let audio = long_s - short_s;
    eprintln!(
        "decode-bench: {}: {long_s:.1} s of {} Hz, {} channel(s) audio; {}: {short_s:.1} s",
        name(&long),
        warm_long.format.sample_rate,
        warm_long.format.channels,
        name(&short)
    );
    if warm_short.frames == 0 || audio <= 0.0 {
        bail!("{} must hold more audio than {}", long.display(), short.display());
    }

    let (mut ours, mut ff, mut mpg) = (Best::NONE, Best::NONE, Best::NONE);
    let mut bare = f64::MAX;
    let mut pop_us = [0.0, 0.0];
    for _ in 0..runs {
        let (run, run_short) = (pipeline(&long)?, pipeline(&short)?);
        if run.frames != warm_long.frames || run_short.frames != warm_short.frames {
            bail!("the same files decoded to a different number of frames");
        }
        if run.seconds < ours.long {
            pop_us = run.pop_us;
        }
        ours.keep(run.seconds, run_short.seconds);
        bare = bare.min(decode_alone(&long)?);
        ff.keep(time(&mut ffmpeg_cmd(&long))?, time(&mut ffmpeg_cmd(&short))?);
        mpg.keep(time(&mut mpg123_cmd(&long))?, time(&mut mpg123_cmd(&short))?);
    }

    let detail = |tool: &str, best: &Best| {
        format!(
            "best of {runs} interleaved runs each, wall clock, on {} ({long_s:.1} s of audio) and {} ({short_s:.1} s, \
             the same frames); speed = the {audio:.1} s of audio between them / the time between them, so that \
             process start-up drops out. Ours {}; {tool} {}. Ours = file read in 16 KiB chunks into a bounded \
             channel -> ChannelReader (non-seekable) -> decode (symphonia) -> 2 s PcmQueue -> consumer copying out \
             stereo frames ({POP_FRAMES} per pop_with, median {:.2} us each), threads as in RadioStream; decode alone \
             (long file, discarding sink, no threads) {bare:.3} s ({:.0}x); release build",
            name(&long),
            name(&short),
            ours.describe(audio),
            best.describe(audio),
            pop_us[0],
            long_s / bare,
        )
    };
    let row = |tool: &str, baseline_name: &str, best: &Best| {
        let row = json!({
            "metric": format!("MP3 decode to PCM, process start-up excluded ({} less {})", name(&long), name(&short)),
            "unit": "x realtime",
            "ours": round(ours.speed(audio)),
            "baseline": round(best.speed(audio)),
            "baseline_name": baseline_name,
            "lower_is_better": false,
            "detail": detail(tool, best),
        });
        println!("BENCH {row}");
    };
    row("ffmpeg", "ffmpeg -threads 1 -f null (decode only)", &ff);
    row("mpg123", "mpg123 -q -t (decode only)", &mpg);
    eprintln!(
        "decode-bench: ours {} ({:.2}x ffmpeg's speed, {:.2}x mpg123's); decode alone {bare:.3} s; ffmpeg {}; \
         mpg123 {}; consumer: pop_with of up to {POP_FRAMES} frames, copy included: median {:.2} us, p99 {:.2} us",
        ours.describe(audio),
        ours.speed(audio) / ff.speed(audio),
        ours.speed(audio) / mpg.speed(audio),
        ff.describe(audio),
        mpg.describe(audio),
        pop_us[0],
        pop_us[1]
    );
    Ok(ExitCode::SUCCESS)
}

/// `x` to 2 decimals (readable rows).
fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Runs `cmd` (output discarded) and returns its wall-clock seconds; fails unless it succeeds,
/// naming the Debian package of a baseline that is not installed.
fn time(cmd: &mut Command) -> Result<f64> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let start = Instant::now();
    let status = match cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit()).status() {
        Err(err) if err.kind() == ErrorKind::NotFound => {
            bail!(
                "`{program}` is not installed; it is a baseline of this benchmark (Debian: `apt-get install {program}`)"
            )
        }
        status => status.with_context(|| format!("could not start {cmd:?}"))?,
    };
    let seconds = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(seconds)
}

/// One run of our pipeline.
struct Run {
    seconds: f64,
    frames: u64,
    format: PcmFormat,
    /// Median and 99th percentile of one `pop_with` of up to [`POP_FRAMES`], copy included, in µs.
    pop_us: [f64; 2],
}

/// Our pipeline on `path` (see the module docs), timed from start to the last frame popped.
fn pipeline(path: &Path) -> Result<Run> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let start = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
    let reader = thread::spawn(move || -> std::io::Result<()> {
        loop {
            let mut chunk = vec![0u8; CHUNK];
            let n = file.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            chunk.truncate(n);
            if tx.blocking_send(chunk.into()).is_err() {
                return Ok(());
            }
        }
    });
    let queue = PcmQueue::new(QUEUE_FRAMES);
    let done = Arc::new(AtomicBool::new(false));
    let decoder = {
        let (queue, done) = (queue.clone(), done.clone());
        thread::spawn(move || {
            let mut sink = queue.sink();
            let result = decode(ChannelReader::new(rx), Codec::Mp3, &mut sink);
            done.store(true, Ordering::Release);
            result
        })
    };

    // The consumer, as the glue: pop, copy out.
    let mut out: Vec<[f32; 2]> = Vec::with_capacity(POP_FRAMES);
    let (mut frames, mut sum) = (0u64, 0f64);
    let mut pops = Vec::with_capacity(1 << 16);
    loop {
        out.clear();
        let popped = Instant::now();
        let n = queue.pop_with(POP_FRAMES, |s| out.extend_from_slice(s));
        if n > 0 {
            pops.push(popped.elapsed().as_secs_f64() * 1e6);
        }
        if n == 0 {
            if done.load(Ordering::Acquire) && queue.is_empty() {
                break;
            }
            thread::sleep(Duration::from_micros(200));
            continue;
        }
        frames += n as u64;
        sum += f64::from(out[n / 2][0]);
    }
    let seconds = start.elapsed().as_secs_f64();
    decoder.join().map_err(|_| anyhow!("the decoder thread panicked"))?.map_err(|e| anyhow!("decoding: {e}"))?;
    reader.join().map_err(|_| anyhow!("the reader thread panicked"))?.context("reading the file")?;
    std::hint::black_box(sum);

    let mut events = Vec::new();
    queue.take_events(&mut events);
    let errors: Vec<&String> =
        events.iter().filter_map(|e| if let PcmEvent::DecodeError(m) = e { Some(m) } else { None }).collect();
    if !errors.is_empty() {
        eprintln!("decode-bench: warning: {} decode error(s), first: {}", errors.len(), errors[0]);
    }
    let format = events
        .into_iter()
        .find_map(|e| if let PcmEvent::Format(f) = e { Some(f) } else { None })
        .context("the decoder announced no format")?;
    pops.sort_by(f64::total_cmp);
    let pop_us = [pops[pops.len() / 2], pops[pops.len() * 99 / 100]];
    Ok(Run { seconds, frames, format, pop_us })
}

/// `decode` alone over the file, into a sink that discards: seconds.
fn decode_alone(path: &Path) -> Result<f64> {
    struct Discard(u64);
    impl PcmSink for Discard {
        fn format(&mut self, _: PcmFormat) {}
        fn frames(&mut self, samples: &[f32], channels: usize) -> bool {
            self.0 += (samples.len() / channels) as u64;
            true
        }
        fn decode_error(&mut self, _: &str) {}
    }
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let start = Instant::now();
    let mut sink = Discard(0);
    decode(file, Codec::Mp3, &mut sink).map_err(|e| anyhow!("decoding: {e}"))?;
    let seconds = start.elapsed().as_secs_f64();
    std::hint::black_box(sink.0);
    Ok(seconds)
}
