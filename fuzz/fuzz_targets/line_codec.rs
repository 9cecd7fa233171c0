//! The TCP spawner's line codec (`spawner::LineReader`), fed fuzzer bytes in fuzzer-sized pieces.
//!
//! Input: 2 bytes of limit, 1 byte of flags (bit 0: a `Pending` before every read), 1 byte giving
//! how many schedule bytes follow, the schedule (piece sizes), then what the peer sends.
//! Invariants: never a line longer than the limit, empty, or holding a `\n`; the events equal a
//! plain reference model (every complete line stripped of one `\r`: too long, skipped when
//! empty, invalid UTF-8 or the line; a partial last line only reported when already too long);
//! every byte read; never more buffered than one line plus one read chunk.
#![no_main]

use async_net_core::{
    fuzzing::{MemoryIo, read_lines},
    spawner::{LineEvent, READ_CHUNK},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [a, b, flags, schedule_len, rest @ ..] = data else { return };
    // Small limits hit every edge often; some reach past one read chunk.
    let max = usize::from(u16::from_le_bytes([*a, *b])) % 9000 + 1;
    let (schedule, input) = rest.split_at(usize::from(*schedule_len).min(rest.len()));
    let run = read_lines(MemoryIo::new(input, schedule, flags & 1 == 1), max);

    for event in &run.events {
        if let LineEvent::Line(line) = event {
            assert!(!line.is_empty() && line.len() <= max, "line of {} bytes, limit {max}", line.len());
            assert!(!line.contains('\n'));
        }
    }
    assert_eq!(run.events, reference(input, max));
    assert_eq!(run.bytes_read, input.len() as u64);
    assert!(run.peak_buffered <= max + 1 + READ_CHUNK, "held {} bytes, limit {max}", run.peak_buffered);
});

/// What the protocol says a peer sending `input` then closing gets.
fn reference(input: &[u8], max: usize) -> Vec<LineEvent> {
    let mut events = Vec::new();
    let mut lines = input.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        if lines.peek().is_none() {
            // No `\n` after it: dropped at the end, unless it was already too long to ever fit.
            if line.len() > max + 1 {
                events.push(LineEvent::TooLong);
            }
            break;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > max {
            events.push(LineEvent::TooLong);
        } else if !line.is_empty() {
            events.push(match std::str::from_utf8(line) {
                Ok(text) => LineEvent::Line(text.to_owned()),
                Err(_) => LineEvent::InvalidUtf8,
            });
        }
    }
    events
}
