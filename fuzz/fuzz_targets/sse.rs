//! HttpStream's text/event-stream parser (`http::sse::SseParser`) on fuzzer bodies cut into
//! fuzzer-sized pieces, with a fuzzer-chosen limit, and a reconnect in the middle.
//!
//! Invariants: no panic; a refused line or event stops the stream (as the node does) and no
//! event dispatched before it is larger than the limit.
#![no_main]

use async_net_core::http::sse::SseParser;
use libfuzzer_sys::{
    arbitrary::{self, Arbitrary},
    fuzz_target,
};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    max: u16,
    schedule: &'a [u8],
    body: &'a [u8],
    reconnect_at: u16,
}

fuzz_target!(|input: Input<'_>| {
    let max = usize::from(input.max % 4096) + 1;
    let mut parser = SseParser::new(max);
    let mut rest = input.body;
    let mut turn = 0;
    let reconnect_at = usize::from(input.reconnect_at);
    while !rest.is_empty() {
        let size = input.schedule.get(turn % input.schedule.len().max(1)).map_or(rest.len(), |&s| usize::from(s) + 1);
        let (piece, after) = rest.split_at(size.min(rest.len()));
        let pushed = parser.push(piece, |event| {
            assert!(event.data.len() <= max, "an event of {} bytes passed a limit of {max}", event.data.len());
        });
        if pushed.is_err() {
            return;
        }
        if turn == reconnect_at {
            parser.connection_ended();
        }
        rest = after;
        turn += 1;
    }
    parser.connection_ended();
    let _ = (parser.last_event_id(), parser.retry());
});
