//! The pub/sub fast lane's frame scanner (`pubsub::tap::scan`), which sorts what a Redis server
//! sends into message pushes (taken past the crate) and other frames (handed to the crate), fed
//! fuzzer bytes arriving in fuzzer-sized pieces, the way the tap sees its read buffer grow.
//!
//! Input: 1 byte giving how many piece sizes follow, the sizes, then what the server sends.
//! Invariants: no panic; a frame is never empty nor longer than the buffer, and a message's
//! parts lie inside it; resuming a scan gives what a fresh scan of the same bytes gives; and a
//! frame taken as a message is one the redis crate reads as the same push with the same parts.
#![no_main]

use async_net_core::{
    fuzzing::resp_push,
    pubsub::tap::{Resume, Scan, scan},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [sizes_len, rest @ ..] = data else { return };
    let (sizes, input) = rest.split_at(usize::from(*sizes_len).min(rest.len()));
    let mut buf: Vec<u8> = Vec::new();
    let mut resume = Resume::default();
    let mut pos = 0;
    for size in sizes.iter().map(|&s| usize::from(s) + 1).chain([usize::MAX]) {
        let end = pos + size.min(input.len() - pos);
        buf.extend_from_slice(&input[pos..end]);
        pos = end;
        // Like the tap, never scan an empty buffer (that would start a generic frame's resume
        // state, and the next frame would then skip the message fast path).
        while !buf.is_empty() {
            let fresh = scan(&buf, &mut Resume::default());
            let found = scan(&buf, &mut resume);
            assert_eq!(found, fresh, "a resumed scan differs from a fresh one");
            let len = match found {
                Scan::Incomplete => break,
                Scan::Unsupported => return, // pass-through for the rest of the connection
                Scan::Other(len) => len,
                Scan::Message { len, channel, payload, pattern } => {
                    let frame = &buf[..len];
                    for part in [&channel, &payload].into_iter().chain(pattern.as_ref()) {
                        assert!(part.end <= len, "a part outside its frame");
                    }
                    let (kind, parts) = resp_push(frame).expect("the crate reads a message push");
                    let mut want = Vec::new();
                    if let Some(pattern) = &pattern {
                        want.push(frame[pattern.clone()].to_vec());
                    }
                    want.extend([frame[channel].to_vec(), frame[payload].to_vec()]);
                    assert_eq!(parts, want, "the crate reads other parts");
                    assert_eq!(kind == "PMessage", pattern.is_some(), "kind {kind}");
                    len
                }
            };
            assert!(len > 0 && len <= buf.len(), "a frame of {len} bytes in {}", buf.len());
            buf.drain(..len);
            resume = Resume::default();
        }
        if pos == input.len() {
            break;
        }
    }
});
