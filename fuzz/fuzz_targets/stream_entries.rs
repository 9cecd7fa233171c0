//! RedisStreamConsumer's decoding of XREADGROUP and XAUTOCLAIM replies (`streams::entry`) on
//! any RESP value the redis crate's parser reads from fuzzer bytes.
//!
//! Invariants: no panic; every entry decoded has its fields as given (pairs of byte strings).
#![no_main]

use async_net_core::fuzzing::decode_stream_replies;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for read in decode_stream_replies(data) {
        let _ = format!("{read:?}");
    }
});
