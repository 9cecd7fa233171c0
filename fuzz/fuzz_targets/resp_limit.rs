//! The Redis reply bound (`pubsub::limit::RespScanner`), which follows RESP framing under the
//! redis crate's parser, fed fuzzer bytes in fuzzer-sized pieces and checked against the crate.
//!
//! Input: 2 bytes of limit, 1 byte giving how many piece sizes follow, the sizes, then what the
//! server sends.
//! Invariants: no panic; the verdict does not depend on how the bytes are split; and a reply the
//! crate parses as exactly one value is never refused by a limit of its own length (no false
//! refusals).
#![no_main]

use async_net_core::{fuzzing::resp_parses, pubsub::limit::RespScanner};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [a, b, sizes_len, rest @ ..] = data else { return };
    let max = usize::from(u16::from_le_bytes([*a, *b]));
    let (sizes, input) = rest.split_at(usize::from(*sizes_len).min(rest.len()));

    let whole = RespScanner::new(max).scan(input);
    let mut scanner = RespScanner::new(max);
    let mut pos = 0;
    let mut split = Ok(());
    for size in sizes.iter().map(|&s| usize::from(s)).chain([usize::MAX]) {
        let end = pos + size.min(input.len() - pos);
        split = scanner.scan(&input[pos..end]);
        pos = end;
        if split.is_err() {
            break;
        }
    }
    assert_eq!(whole.is_ok(), split.is_ok(), "whole {whole:?}, split {split:?}");

    // Exactly one value: it parses, and not without its last byte.
    if !input.is_empty() && resp_parses(input) && !resp_parses(&input[..input.len() - 1]) {
        let verdict = RespScanner::new(input.len()).scan(input);
        assert!(verdict.is_ok(), "a {}-byte reply refused by a limit of its size: {verdict:?}", input.len());
    }
});
