//! A response body on its way out: audio with ICY metadata blocks interleaved (when asked for),
//! then chunked transfer coding (on `/chunked.mp3`), with odd chunk sizes that never line up with
//! frames.

use super::icy::IcyWriter;

/// Sizes of the chunks of `/chunked.mp3`, used in turn (odd, so they never match frames).
const CHUNK_SIZES: &[usize] = &[1, 7, 333, 1021, 4093, 17, 2999, 5];

/// The bytes of a response body waiting to be written: audio with ICY metadata blocks
/// interleaved (when asked for), then chunked transfer coding (on `/chunked.mp3`).
pub struct Body {
    icy: Option<IcyWriter>,
    chunker: Option<Chunker>,
    pending: Vec<u8>,
}

impl Body {
    /// A body with a metadata block every `metaint` bytes of audio (none: no metadata), chunked
    /// or not.
    pub fn new(metaint: Option<usize>, chunked: bool) -> Self {
        Body { icy: metaint.map(IcyWriter::new), chunker: chunked.then(Chunker::default), pending: Vec::new() }
    }

    /// The title of the metadata blocks to come.
    pub fn set_title(&mut self, title: &str) {
        if let Some(icy) = &mut self.icy {
            icy.set_title(title);
        }
    }

    /// Adds stream bytes (they count towards the metadata interval).
    pub fn push(&mut self, bytes: &[u8]) {
        match &mut self.icy {
            Some(icy) => icy.write(bytes, &mut self.pending),
            None => self.pending.extend_from_slice(bytes),
        }
    }

    /// Bytes waiting (before chunk framing).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Takes what is waiting, chunk-framed when chunked.
    pub fn take(&mut self) -> Vec<u8> {
        let bytes = std::mem::take(&mut self.pending);
        match &mut self.chunker {
            Some(chunker) => chunker.frame(&bytes),
            None => bytes,
        }
    }
}

/// Chunked transfer coding with chunk sizes from [`CHUNK_SIZES`] in turn.
#[derive(Default)]
pub struct Chunker {
    next: usize,
}

impl Chunker {
    /// `bytes` as a series of chunks (nothing for no bytes: an empty chunk would end the body).
    pub fn frame(&mut self, mut bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 64 + 16);
        while !bytes.is_empty() {
            let size = CHUNK_SIZES[self.next % CHUNK_SIZES.len()].min(bytes.len());
            self.next += 1;
            out.extend_from_slice(format!("{size:x}\r\n").as_bytes());
            out.extend_from_slice(&bytes[..size]);
            out.extend_from_slice(b"\r\n");
            bytes = &bytes[size..];
        }
        out
    }
}

#[cfg(test)]
pub mod tests {
    use super::super::connection::find;
    use super::*;

    /// Decodes a chunked body (as far as it goes).
    pub fn unchunk(mut body: &[u8]) -> (Vec<u8>, Vec<usize>) {
        let (mut out, mut sizes) = (Vec::new(), Vec::new());
        while let Some(end) = find(body, b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&body[..end]).unwrap(), 16).unwrap();
            if body.len() < end + 2 + size + 2 {
                break;
            }
            out.extend_from_slice(&body[end + 2..end + 2 + size]);
            assert_eq!(&body[end + 2 + size..end + 4 + size], b"\r\n");
            sizes.push(size);
            body = &body[end + 4 + size..];
        }
        (out, sizes)
    }

    #[test]
    fn chunks_read_back() {
        let data: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
        let mut chunker = Chunker::default();
        let mut framed = chunker.frame(&data[..5000]);
        framed.extend(chunker.frame(&data[5000..]));
        assert!(chunker.frame(&[]).is_empty());
        let (read, sizes) = unchunk(&framed);
        assert_eq!(read, data);
        assert!(sizes.iter().filter(|&&s| s % 2 == 1).count() > sizes.len() / 2, "{sizes:?}");
    }
}
