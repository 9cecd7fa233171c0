//! ICY metadata: `radio::icy::IcyDemuxer` splitting a body into audio and metadata blocks
//! whatever the chunk boundaries, and `stream_title` reading each block.
//!
//! Input: 2 bytes of `icy-metaint` (0: no metadata), 1 byte giving how many chunk-size bytes
//! follow, the chunk sizes, then the body.
//! Invariants: the audio equals the body minus its metadata blocks (length byte and
//! `length × 16` bytes each), the metadata blocks equal a plain reference model, no audio part is
//! empty, and every title is no longer than its block.
#![no_main]

use async_net_core::{
    fuzzing::Bytes,
    radio::icy::{IcyDemuxer, IcyPart, decode_text, stream_title},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [a, b, sizes_len, rest @ ..] = data else { return };
    let metaint = usize::from(u16::from_le_bytes([*a, *b]));
    let (sizes, body) = rest.split_at(usize::from(*sizes_len).min(rest.len()));

    let mut demuxer = IcyDemuxer::new(Some(metaint));
    let (mut audio, mut blocks) = (Vec::new(), Vec::new());
    let mut pos = 0;
    for size in sizes.iter().map(|&s| usize::from(s)).chain([usize::MAX]) {
        let end = pos + size.min(body.len() - pos);
        demuxer.push(Bytes::copy_from_slice(&body[pos..end]), |part| match part {
            IcyPart::Audio(bytes) => {
                assert!(!bytes.is_empty(), "an empty audio part");
                audio.extend_from_slice(&bytes);
            }
            IcyPart::Metadata(text) => blocks.push(text),
        });
        pos = end;
    }
    let (want_audio, want_blocks) = reference(body, metaint);
    assert_eq!(audio, want_audio);
    assert_eq!(blocks, want_blocks);
    for block in blocks.iter().map(String::as_str).chain([String::from_utf8_lossy(body).as_ref()]) {
        if let Some(title) = stream_title(block) {
            assert!(title.len() <= block.len());
        }
    }
});

/// The body's audio and its non-empty metadata blocks, read one field after the other.
fn reference(mut body: &[u8], metaint: usize) -> (Vec<u8>, Vec<String>) {
    if metaint == 0 {
        return (body.to_vec(), Vec::new());
    }
    let (mut audio, mut blocks) = (Vec::new(), Vec::new());
    loop {
        let n = metaint.min(body.len());
        audio.extend_from_slice(&body[..n]);
        body = &body[n..];
        let Some((&length, rest)) = body.split_first() else { break };
        let length = usize::from(length) * 16;
        if rest.len() < length {
            break; // an unfinished block is never reported
        }
        let block = &rest[..length];
        let end = block.iter().rposition(|&b| b != 0 && !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
        if end > 0 {
            blocks.push(decode_text(&block[..end]));
        }
        body = &rest[length..];
    }
    (audio, blocks)
}
