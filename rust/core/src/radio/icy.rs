//! ICY metadata (the in-band titles of icecast and SHOUTcast streams).
//!
//! A client that sends `Icy-MetaData: 1` gets a body in which every
//! `icy-metaint` audio bytes are followed by one length byte `L` and then
//! `L × 16` bytes of metadata text (`StreamTitle='Artist - Title';StreamUrl='';`,
//! NUL padded). [`IcyDemuxer`] splits such a body back into audio and
//! metadata whatever the chunk boundaries, without copying the audio;
//! [`stream_title`] pulls the title out of a metadata block.

use bytes::Bytes;

/// A piece of the stream body after de-interleaving.
#[derive(Clone, Debug, PartialEq)]
pub enum IcyPart {
    /// Audio bytes (a zero-copy slice of the chunk pushed).
    Audio(Bytes),
    /// A complete, non-empty metadata block, decoded (UTF-8, else Latin-1), trailing NULs removed.
    Metadata(String),
}

/// Where the demuxer is in the interleaving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// This many audio bytes until the next length byte.
    Audio(usize),
    /// The next byte is a metadata length.
    Length,
    /// This many metadata bytes still to come.
    Metadata(usize),
}

/// Splits a body into audio and metadata blocks; chunks may cut anywhere.
#[derive(Debug)]
pub struct IcyDemuxer {
    /// `None`: no metadata, everything is audio.
    metaint: Option<usize>,
    state: State,
    /// The metadata block being collected (at most 255 × 16 = 4080 bytes, by construction).
    block: Vec<u8>,
}

impl IcyDemuxer {
    /// `metaint`: audio bytes between metadata blocks; `None` passes everything through as audio.
    pub fn new(metaint: Option<usize>) -> Self {
        // A metaint of 0 would never advance; the stream client refuses it, and here it means "no metadata".
        let metaint = metaint.filter(|&n| n > 0);
        IcyDemuxer { metaint, state: State::Audio(metaint.unwrap_or(0)), block: Vec::new() }
    }

    /// Feeds one body chunk, calling `emit` with its parts in order.
    pub fn push(&mut self, chunk: Bytes, mut emit: impl FnMut(IcyPart)) {
        let Some(metaint) = self.metaint else {
            if !chunk.is_empty() {
                emit(IcyPart::Audio(chunk));
            }
            return;
        };
        let mut pos = 0;
        while pos < chunk.len() {
            let left = chunk.len() - pos;
            match self.state {
                State::Audio(remaining) => {
                    let n = remaining.min(left);
                    emit(IcyPart::Audio(chunk.slice(pos..pos + n)));
                    pos += n;
                    self.state = if n == remaining { State::Length } else { State::Audio(remaining - n) };
                }
                State::Length => {
                    let length = usize::from(chunk[pos]) * 16;
                    pos += 1;
                    self.block.clear();
                    self.state = if length == 0 { State::Audio(metaint) } else { State::Metadata(length) };
                }
                State::Metadata(remaining) => {
                    let n = remaining.min(left);
                    self.block.extend_from_slice(&chunk[pos..pos + n]);
                    pos += n;
                    if n == remaining {
                        self.state = State::Audio(metaint);
                        let text = decode_text(trim_padding(&self.block));
                        self.block.clear();
                        if !text.is_empty() {
                            emit(IcyPart::Metadata(text));
                        }
                    } else {
                        self.state = State::Metadata(remaining - n);
                    }
                }
            }
        }
    }
}

/// `bytes` without its trailing NULs and whitespace.
fn trim_padding(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| b != 0 && !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
    &bytes[..end]
}

/// UTF-8 when valid, else Latin-1 (what SHOUTcast v1 servers and old encoders send).
pub fn decode_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// The `StreamTitle` of a metadata block (`StreamTitle='Artist - Title';StreamUrl='';`),
/// tolerant of quotes and semicolons inside the title. `None` when absent.
///
/// The title ends at the first `';` that is followed by the end of the block or by
/// another `Key='` field, so `StreamTitle='Rock 'n' Roll; Part 2';StreamUrl='';` is
/// `Rock 'n' Roll; Part 2`. Without such an end the rest of the block is taken, less a
/// trailing `;` and `'`. The key is matched case-sensitively first, then in any case.
pub fn stream_title(metadata: &str) -> Option<String> {
    const KEY: &str = "StreamTitle='";
    let start = match metadata.find(KEY) {
        Some(i) => i + KEY.len(),
        // ASCII lowercasing keeps byte offsets, so the index is valid in `metadata`.
        None => metadata.to_ascii_lowercase().find("streamtitle='")? + KEY.len(),
    };
    let rest = &metadata[start..];
    let mut search = 0;
    while let Some(i) = rest[search..].find("';") {
        let end = search + i;
        if ends_field(&rest[end + 2..]) {
            return Some(rest[..end].trim().to_string());
        }
        search = end + 1;
    }
    let value = rest.trim_end();
    let value = value.strip_suffix(';').unwrap_or(value);
    let value = value.strip_suffix('\'').unwrap_or(value);
    Some(value.trim().to_string())
}

/// True when `after` (what follows a `';`) is the end of the block or the start of another `Key='` field.
fn ends_field(after: &str) -> bool {
    let after = after.trim_start_matches(|c: char| c.is_whitespace() || c == '\0');
    if after.is_empty() {
        return true;
    }
    let key_len = after.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-').count();
    key_len > 0 && after[key_len..].starts_with("='")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `metaint` 4: audio, an empty block, a title block, audio, a NUL-padded block, audio.
    fn interleaved() -> (Vec<u8>, Vec<u8>, Vec<String>) {
        let mut body = Vec::new();
        let mut audio = Vec::new();
        let block = |text: &[u8], body: &mut Vec<u8>| {
            let blocks = text.len().div_ceil(16);
            body.push(blocks as u8);
            body.extend_from_slice(text);
            body.resize(body.len() + blocks * 16 - text.len(), 0);
        };
        let mut audio_bytes = |n: u8, body: &mut Vec<u8>| {
            for i in 0..4 {
                body.push(n * 10 + i);
                audio.push(n * 10 + i);
            }
        };
        audio_bytes(1, &mut body);
        block(b"", &mut body);
        audio_bytes(2, &mut body);
        block(b"StreamTitle='First';StreamUrl='';", &mut body);
        audio_bytes(3, &mut body);
        block(b"StreamTitle='Caf\xe9';", &mut body); // Latin-1
        audio_bytes(4, &mut body);
        block(b"StreamTitle='\xe2\x99\xab';  ", &mut body); // UTF-8, whitespace padded
        audio_bytes(5, &mut body);
        body.extend_from_slice(&[0, 60, 61]); // a last empty block, then part of the next audio
        audio.extend_from_slice(&[60, 61]);
        let metadata = vec![
            "StreamTitle='First';StreamUrl='';".to_string(),
            "StreamTitle='Café';".to_string(),
            "StreamTitle='♫';".to_string(),
        ];
        (body, audio, metadata)
    }

    /// Pushes `chunks` and returns the audio concatenated and the metadata blocks.
    fn demux(metaint: Option<usize>, chunks: &[&[u8]]) -> (Vec<u8>, Vec<String>) {
        let mut demuxer = IcyDemuxer::new(metaint);
        let (mut audio, mut metadata) = (Vec::new(), Vec::new());
        for chunk in chunks {
            demuxer.push(Bytes::copy_from_slice(chunk), |part| match part {
                IcyPart::Audio(bytes) => {
                    assert!(!bytes.is_empty(), "no empty audio parts");
                    audio.extend_from_slice(&bytes);
                }
                IcyPart::Metadata(text) => metadata.push(text),
            });
        }
        (audio, metadata)
    }

    #[test]
    fn every_split_point_gives_the_same_parts() {
        let (body, audio, metadata) = interleaved();
        assert_eq!(demux(Some(4), &[&body]), (audio.clone(), metadata.clone()));
        for cut in 0..=body.len() {
            let (a, b) = body.split_at(cut);
            assert_eq!(demux(Some(4), &[a, b]), (audio.clone(), metadata.clone()), "cut at {cut}");
        }
        for first in 0..body.len() {
            for second in first..body.len() {
                let chunks = [&body[..first], &body[first..second], &body[second..]];
                assert_eq!(demux(Some(4), &chunks), (audio.clone(), metadata.clone()), "cuts {first} {second}");
            }
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(demux(Some(4), &bytes), (audio, metadata));
    }

    #[test]
    fn audio_is_sliced_from_the_chunk_pushed() {
        let chunk = Bytes::from_static(b"abcd\x00efgh");
        let range = chunk.as_ptr_range();
        let mut demuxer = IcyDemuxer::new(Some(4));
        let mut parts = Vec::new();
        demuxer.push(chunk.clone(), |part| parts.push(part));
        assert_eq!(parts, [IcyPart::Audio(Bytes::from_static(b"abcd")), IcyPart::Audio(Bytes::from_static(b"efgh"))]);
        for part in parts {
            let IcyPart::Audio(bytes) = part else { unreachable!() };
            assert!(range.contains(&bytes.as_ptr()), "zero-copy slice");
        }
    }

    #[test]
    fn without_metaint_everything_is_audio() {
        let (body, _, _) = interleaved();
        assert_eq!(demux(None, &[&body[..7], &body[7..]]), (body.clone(), vec![]));
        assert_eq!(demux(Some(0), &[&body]), (body, vec![]));
        assert_eq!(demux(None, &[b""]), (vec![], vec![]));
    }

    #[test]
    fn an_all_padding_block_emits_nothing() {
        assert_eq!(demux(Some(2), &[b"ab\x01", &[0; 16], b"cd"]), (b"abcd".to_vec(), vec![]));
    }

    #[test]
    fn the_largest_block_is_collected_whole() {
        let text = "StreamTitle='".to_string() + &"x".repeat(4060) + "';";
        let mut body = b"ab\xff".to_vec();
        body.extend_from_slice(text.as_bytes());
        body.resize(3 + 255 * 16, 0);
        body.extend_from_slice(b"cd");
        let (audio, metadata) = demux(Some(2), &[&body[..100], &body[100..]]);
        assert_eq!(audio, b"abcd");
        assert_eq!(metadata, [text]);
    }

    #[test]
    fn stream_titles() {
        let title = |s: &str| stream_title(s);
        assert_eq!(title("StreamTitle='Artist - Title';StreamUrl='';").as_deref(), Some("Artist - Title"));
        assert_eq!(
            title("StreamTitle='Rock 'n' Roll; Part 2';StreamUrl='http://x';").as_deref(),
            Some("Rock 'n' Roll; Part 2")
        );
        assert_eq!(title("StreamTitle='It's here';").as_deref(), Some("It's here"));
        assert_eq!(title("StreamTitle='a';b';").as_deref(), Some("a';b"));
        assert_eq!(title("StreamTitle='';StreamUrl='x';").as_deref(), Some(""));
        assert_eq!(title("StreamTitle='';").as_deref(), Some(""));
        assert_eq!(title("StreamTitle='No end").as_deref(), Some("No end"));
        assert_eq!(title("StreamTitle='No semicolon'").as_deref(), Some("No semicolon"));
        assert_eq!(title("StreamTitle='Half;").as_deref(), Some("Half"));
        assert_eq!(title("StreamUrl='x';StreamTitle='Second';").as_deref(), Some("Second"));
        assert_eq!(title("StreamTitle='Padded';\0\0 ").as_deref(), Some("Padded"));
        assert_eq!(title("streamtitle='lower';").as_deref(), Some("lower"));
        assert_eq!(title("STREAMTITLE='Ünïcode';").as_deref(), Some("Ünïcode"));
        assert_eq!(title("StreamTitle='A'; B='C';").as_deref(), Some("A"));
        assert_eq!(title("StreamUrl='http://x';"), None);
        assert_eq!(title(""), None);
    }
}
