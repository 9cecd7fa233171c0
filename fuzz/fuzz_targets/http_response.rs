//! RadioStream's HTTP client answer path: hyper's HTTP/1 response parser under the ICY shim, our
//! reading of the head (status, redirects, content type, icy-* headers), then a playlist body or
//! an ICY-interleaved stream body. The server is fuzzer bytes, delivered in fuzzer-sized reads.
//!
//! Input: 1 byte of flags (bit 0: ask for metadata), 1 byte giving how many schedule bytes
//! follow, the schedule, then the server's bytes.
//! Invariants: no panic or hang; the request URL's password never shows in an error; station
//! name and genre stay within 256 characters; `icy-metaint` within 1..=1 000 000; the audio is
//! never more than the server sent; metadata blocks stay within 255 × 16 bytes; redirects and
//! playlist entries are http(s).
#![no_main]

use async_net_core::radio::http::fuzz::{Outcome, response};
use libfuzzer_sys::fuzz_target;

/// The password of the URL the fuzzed server answers (`http://user:Zq7xK2pw@fuzz.invalid:8000/stream`).
const PASSWORD: &str = "Zq7xK2pw";

fuzz_target!(|data: &[u8]| {
    let [flags, schedule_len, rest @ ..] = data else { return };
    let (schedule, input) = rest.split_at(usize::from(*schedule_len).min(rest.len()));
    match response(input, schedule, flags & 1 == 1) {
        Err(message) => {
            // The fuzzer never sees the password, so it cannot be echoed from the input.
            assert!(!message.contains(PASSWORD), "password in an error: {message}");
        }
        Ok(Outcome::Redirect(url)) | Ok(Outcome::Playlist(url)) => {
            assert!(url.starts_with("http://") || url.starts_with("https://"), "{url}");
        }
        Ok(Outcome::Stream { head, audio_bytes, metadata, .. }) => {
            assert!(head.name.chars().count() <= 256 && head.genre.chars().count() <= 256);
            assert!(head.metaint.is_none_or(|n| (1..=1_000_000).contains(&n)), "{:?}", head.metaint);
            assert!(audio_bytes <= input.len());
            assert!(metadata.iter().all(|block| block.chars().count() <= 255 * 16));
        }
    }
});
