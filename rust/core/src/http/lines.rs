//! Splitting a body that arrives in pieces into lines, bounded: a line
//! longer than the limit is an error, not a buffer that grows without end.
//! Used for newline-delimited bodies (NDJSON) and under the event-stream
//! parser, which also ends lines at a lone CR.

use memchr::{memchr, memchr2};

/// A line passed the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    /// The limit, in bytes.
    pub max: usize,
}

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a line longer than {} bytes (max_line_bytes)", self.max)
    }
}

/// Cuts bytes into lines. LF ends a line and a CR before it is dropped;
/// with `cr_ends_line` a lone CR ends one too (text/event-stream's rule).
#[derive(Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
    max: usize,
    cr_ends_line: bool,
    /// The last byte seen was a CR that ended a line: a LF right after it belongs to it.
    after_cr: bool,
}

impl LineSplitter {
    /// A splitter refusing lines longer than `max` bytes.
    pub fn new(max: usize, cr_ends_line: bool) -> Self {
        LineSplitter { partial: Vec::new(), max: max.max(1), cr_ends_line, after_cr: false }
    }

    /// Takes the next piece of the body; `line` gets each line it completes,
    /// without its end. Lines keep their order across pieces.
    pub fn push(&mut self, mut data: &[u8], mut line: impl FnMut(&[u8])) -> Result<(), TooLong> {
        if self.after_cr && data.first() == Some(&b'\n') {
            data = &data[1..];
        }
        self.after_cr = false;
        while !data.is_empty() {
            let end = if self.cr_ends_line { memchr2(b'\n', b'\r', data) } else { memchr(b'\n', data) };
            let Some(at) = end else {
                if self.partial.len() + data.len() > self.max {
                    return Err(TooLong { max: self.max });
                }
                self.partial.extend_from_slice(data);
                return Ok(());
            };
            let mut piece = &data[..at];
            let mut next = at + 1;
            if data[at] == b'\r' {
                match data.get(next) {
                    Some(b'\n') => next += 1,
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            if self.partial.len() + piece.len() > self.max + 1 {
                return Err(TooLong { max: self.max });
            }
            if self.partial.is_empty() {
                if data[at] == b'\n' && !self.cr_ends_line {
                    piece = piece.strip_suffix(b"\r").unwrap_or(piece);
                }
                if piece.len() > self.max {
                    return Err(TooLong { max: self.max });
                }
                line(piece);
            } else {
                self.partial.extend_from_slice(piece);
                if data[at] == b'\n' && !self.cr_ends_line && self.partial.last() == Some(&b'\r') {
                    self.partial.pop();
                }
                if self.partial.len() > self.max {
                    return Err(TooLong { max: self.max });
                }
                line(&self.partial);
                self.partial.clear();
            }
            data = &data[next..];
        }
        Ok(())
    }

    /// The body ended: the last line, if it had no end of line.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        self.after_cr = false;
        let mut last = std::mem::take(&mut self.partial);
        if !self.cr_ends_line && last.last() == Some(&b'\r') {
            last.pop();
        }
        (!last.is_empty()).then_some(last)
    }

    /// Forgets a partial line (the connection it came from is gone).
    pub fn clear(&mut self) {
        self.partial.clear();
        self.after_cr = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(splitter: &mut LineSplitter, pieces: &[&[u8]]) -> Result<Vec<String>, TooLong> {
        let mut lines = Vec::new();
        for piece in pieces {
            splitter.push(piece, |l| lines.push(String::from_utf8_lossy(l).into_owned()))?;
        }
        if let Some(last) = splitter.finish() {
            lines.push(String::from_utf8_lossy(&last).into_owned());
        }
        Ok(lines)
    }

    #[test]
    fn lines_survive_any_cut_and_crlf_is_one_end() {
        let body = b"{\"a\":1}\r\n{\"b\":2}\n\n{\"c\":3}";
        let expected = ["{\"a\":1}", "{\"b\":2}", "", "{\"c\":3}"];
        for cut in 0..body.len() {
            let mut splitter = LineSplitter::new(100, false);
            let (a, b) = body.split_at(cut);
            assert_eq!(split(&mut splitter, &[a, b]).unwrap(), expected, "cut at {cut}");
        }
        let mut bytewise = LineSplitter::new(100, false);
        let pieces: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(split(&mut bytewise, &pieces).unwrap(), expected);
    }

    #[test]
    fn a_lone_cr_ends_a_line_only_when_asked() {
        let body = b"a\rb\r\nc\n\rd\r";
        for cut in 0..body.len() {
            let (a, b) = body.split_at(cut);
            let mut sse = LineSplitter::new(100, true);
            assert_eq!(split(&mut sse, &[a, b]).unwrap(), ["a", "b", "c", "", "d"], "cut at {cut}");
        }
        let mut plain = LineSplitter::new(100, false);
        assert_eq!(split(&mut plain, &[b"a\rb\r\n"]).unwrap(), ["a\rb"]);
    }

    #[test]
    fn a_line_over_the_limit_is_refused_however_it_arrives() {
        let mut whole = LineSplitter::new(4, false);
        assert_eq!(split(&mut whole, &[b"1234\n12345\n"]), Err(TooLong { max: 4 }));
        let mut pieces = LineSplitter::new(4, false);
        assert_eq!(split(&mut pieces, &[b"12", b"34", b"5"]), Err(TooLong { max: 4 }));
        let mut crlf = LineSplitter::new(4, false);
        assert_eq!(split(&mut crlf, &[b"12", b"34\r\n"]).unwrap(), ["1234"], "the CR is not part of the line");
        let mut endless = LineSplitter::new(1024, false);
        let mut refused = false;
        for _ in 0..100 {
            if endless.push(&[b'x'; 100], |_| {}).is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused && endless.partial.len() <= 1024);
    }
}
