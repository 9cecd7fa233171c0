//! The SHOUTcast status-line shim under hyper (`ICY 200 OK` → `HTTP/1.0 200 OK`), fed fuzzer
//! bytes in fuzzer-sized reads and read into fuzzer-sized buffers.
//!
//! Input: 1 byte of buffer size, 1 byte giving how many schedule bytes follow, the schedule,
//! then the server's bytes. Invariant: the output is the input with a leading `ICY ` replaced by
//! `HTTP/1.0 ` (and the rewrite reported) and otherwise byte for byte the input.
#![no_main]

use async_net_core::radio::http::fuzz::icy_shim;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [buf_size, schedule_len, rest @ ..] = data else { return };
    let (schedule, input) = rest.split_at(usize::from(*schedule_len).min(rest.len()));
    let (out, rewritten) = icy_shim(input, schedule, usize::from(*buf_size) + 1);
    match input.strip_prefix(b"ICY ") {
        Some(rest) => {
            assert!(rewritten);
            assert_eq!(out, [&b"HTTP/1.0 "[..], rest].concat());
        }
        None => {
            assert!(!rewritten);
            assert_eq!(out, input);
        }
    }
});
