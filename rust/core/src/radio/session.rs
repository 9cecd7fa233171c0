//! The session loop: open the stream, split off ICY metadata, hand the audio
//! to a decoder on a blocking-pool thread, and reconnect with backoff when the
//! stream drops. In the game it runs on the runtime's I/O worker; nothing in
//! it touches the engine.
//!
//! Failure policy: before any audio has arrived, a permanent error (a bad
//! URL, HTTP 4xx, a redirect loop, a page that is not audio) fails at once,
//! so a typo does not retry forever. Once the station has played, every
//! failure is retried: icecast answers 404 while a source is restarting.

use std::{future::poll_fn, sync::Arc, sync::mpsc as std_mpsc, time::Duration};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{
    Codec, PcmQueue, RadioConfig, RadioHandler, RadioStats, StationInfo,
    decode::decode,
    http::{self, StreamBody},
    icy::{IcyDemuxer, IcyPart, stream_title},
    source::ChannelReader,
};
use crate::{backoff::Backoff, state::NetState};

/// Largest piece of audio sent to the decoder at once; with [`CHANNEL_PIECES`] this bounds
/// the bytes in flight between the network and the decoder (512 KiB).
const MAX_PIECE_BYTES: usize = 16 * 1024;
/// Pieces the byte channel holds before the network task waits for the decoder.
const CHANNEL_PIECES: usize = 32;
/// Bytes a connection delivers packet by packet (the burst a station sends on connect, so
/// playback starts at once) before reads are batched ([`RadioConfig::read_batch`]).
const UNBATCHED_BYTES: u64 = 32 * 1024;
/// The bitrate assumed for batching when the station does not say (`icy-br`).
const DEFAULT_KBPS: u32 = 128;

/// Streams `config.url` into `pcm` until the future is dropped, [`PcmQueue::close`] is called,
/// or the stream fails for good (state FAILED). Closes `pcm` when it ends.
///
/// The future is `Send` when `handler` is, so it can run on another thread than the one that
/// drains `pcm` and reads `stats`.
pub async fn run(config: RadioConfig, pcm: Arc<PcmQueue>, mut handler: impl RadioHandler, stats: Arc<RadioStats>) {
    let _close = CloseOnDrop(pcm.clone());
    let options = config.open_options();
    let mut backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
    let mut previous: Option<DecoderDone> = None;
    let mut title: Option<String> = None;
    let mut played = false;
    let mut state = NetState::Connecting;
    loop {
        handler.state_changed(state);
        if pcm.is_closed() {
            return;
        }
        let error = match http::open(&config.url, &options).await {
            Ok((head, codec, body)) => {
                stats.connects.add(1);
                handler.state_changed(NetState::Connected);
                handler.connected(&StationInfo { head: head.clone(), codec, connection: stats.connects.get() });
                if pcm.is_closed() {
                    return;
                }
                let mut stream = Stream { config: &config, pcm: &pcm, stats: &stats, title: &mut title };
                let batch = batch_bytes(config.read_batch, head.bitrate_kbps);
                let end = stream.play(&mut handler, head.metaint, codec, body, batch, &mut previous).await;
                if end.not_audio && !played {
                    return fail(&mut handler, &end.message);
                }
                if end.got_audio {
                    played = true;
                    backoff.reset();
                }
                end.message
            }
            Err(err) => {
                if err.is_permanent() && !played {
                    return fail(&mut handler, &err.to_string());
                }
                err.to_string()
            }
        };
        if pcm.is_closed() {
            return;
        }
        if !config.reconnect {
            return fail(&mut handler, &error);
        }
        handler.error(&error);
        if pcm.is_closed() {
            return;
        }
        state = NetState::Reconnecting;
        handler.state_changed(state);
        stats.reconnects.add(1);
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

fn fail(handler: &mut impl RadioHandler, message: &str) {
    handler.error(message);
    handler.state_changed(NetState::Failed);
}

/// Closes the PCM queue when the session ends, however it ends (a cancelled task is dropped):
/// its decoder stops and the glue sees no more audio.
struct CloseOnDrop(Arc<PcmQueue>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Resolves when a decoder thread has returned; the next connection's decoder waits for it so
/// the previous stream's last audio is queued before the new stream's first.
struct DecoderDone(std_mpsc::Receiver<()>);

impl DecoderDone {
    fn wait(self) {
        // Err means the sender (held by the thread for its whole run) is gone: the thread ended.
        let _ = self.0.recv();
    }
}

/// One connection's streaming.
struct Stream<'a> {
    config: &'a RadioConfig,
    pcm: &'a Arc<PcmQueue>,
    stats: &'a RadioStats,
    title: &'a mut Option<String>,
}

impl Stream<'_> {
    /// Streams `body` until it ends or fails; says why it ended.
    async fn play(
        &mut self,
        handler: &mut impl RadioHandler,
        metaint: Option<usize>,
        codec: Codec,
        mut body: StreamBody,
        batch: usize,
        previous: &mut Option<DecoderDone>,
    ) -> StreamEnd {
        let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_PIECES);
        let decoder = spawn_decoder(rx, codec, self.pcm.clone(), previous);
        let mut demuxer = IcyDemuxer::new(metaint);
        let mut parts = Vec::new();
        let mut got_audio = false;
        let mut received = 0u64;
        let read_timeout = self.config.read_timeout;
        let error = loop {
            let chunk = match tokio::time::timeout(read_timeout, body.chunk()).await {
                Err(_) => break format!("no data from the stream for {:.1} s", read_timeout.as_secs_f64()),
                Ok(Err(err)) => break format!("stream lost: {err}"),
                Ok(Ok(None)) => break "the stream ended".to_string(),
                Ok(Ok(Some(chunk))) => chunk,
            };
            self.stats.bytes_received.add(chunk.len() as u64);
            if received < UNBATCHED_BYTES && received + chunk.len() as u64 >= UNBATCHED_BYTES && batch > 0 {
                body.set_read_batch(batch);
            }
            received += chunk.len() as u64;
            demuxer.push(chunk, |part| parts.push(part));
            let mut decoder_gone = false;
            for part in parts.drain(..) {
                match part {
                    IcyPart::Audio(mut audio) => {
                        got_audio = true;
                        while !audio.is_empty() && !decoder_gone {
                            let piece = audio.split_to(audio.len().min(MAX_PIECE_BYTES));
                            decoder_gone = tx.send(piece).await.is_err();
                        }
                    }
                    IcyPart::Metadata(block) => {
                        if let Some(new) = stream_title(&block).filter(|t| self.title.as_deref() != Some(t.as_str())) {
                            poll_fn(|cx| handler.poll_ready(cx)).await;
                            handler.title_changed(&new);
                            *self.title = Some(new);
                        }
                    }
                }
            }
            if self.pcm.is_closed() {
                break "stopped".to_string();
            }
            if decoder_gone {
                // The decoder returned while the stream was still coming: it found no audio.
                let message = match decoder.await {
                    Ok(Err(message)) => message,
                    Ok(Ok(())) => "the decoder stopped".to_string(),
                    Err(err) => format!("the decoder failed: {err}"),
                };
                return StreamEnd { message, got_audio, not_audio: true };
            }
        };
        StreamEnd { message: error, got_audio, not_audio: false }
    }
}

/// Why a connection's streaming ended.
struct StreamEnd {
    message: String,
    /// Audio bytes arrived (the station works; the backoff starts over).
    got_audio: bool,
    /// The decoder gave up: the bytes are not audio of the announced codec.
    not_audio: bool,
}

/// Starts the decoder of one connection on the runtime's blocking pool (joined at shutdown);
/// it waits for the previous connection's decoder first, and leaves its own `previous`.
fn spawn_decoder(
    rx: mpsc::Receiver<Bytes>,
    codec: Codec,
    pcm: Arc<PcmQueue>,
    previous: &mut Option<DecoderDone>,
) -> tokio::task::JoinHandle<Result<(), String>> {
    let before = previous.take();
    let (done_tx, done_rx) = std_mpsc::channel::<()>();
    *previous = Some(DecoderDone(done_rx));
    tokio::task::spawn_blocking(move || {
        let _done = done_tx;
        if let Some(before) = before {
            before.wait();
        }
        let mut sink = pcm.sink();
        decode(ChannelReader::new(rx), codec, &mut sink)
    })
}

/// The bytes of `duration` of audio at the station's bitrate, for [`StreamBody::set_read_batch`]
/// (0: do not batch).
fn batch_bytes(duration: Duration, bitrate_kbps: Option<u32>) -> usize {
    let kbps = bitrate_kbps.filter(|k| (8..=1_000).contains(k)).unwrap_or(DEFAULT_KBPS);
    let bytes = duration.as_secs_f64() * f64::from(kbps) * 1000.0 / 8.0;
    if bytes < 1.0 { 0 } else { (bytes as usize).clamp(256, 8 * 1024) }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
