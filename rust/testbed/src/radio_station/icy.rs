//! ICY metadata, as icecast and SHOUTcast interleave it into a stream for clients that send
//! `Icy-MetaData: 1`: the titles the station cycles through, and the blocks that carry them.

use std::time::Duration;

/// The titles the station cycles through; some are hard to parse on purpose.
pub const TITLES: &[&str] =
    &["Gentle Chords", "Rock 'n' Roll; Part 2", "Zoë – Ünïcödé", "It's \"quoted\"", "Arpeggio in C (live)"];

/// How long each title lasts, in audio time.
pub const TITLE_PERIOD: Duration = Duration::from_secs(5);

/// The title playing at `audio_time` into a connection.
pub fn title_at(audio_time: Duration) -> &'static str {
    let period = usize::try_from(audio_time.as_millis() / TITLE_PERIOD.as_millis()).unwrap_or(0);
    TITLES[period % TITLES.len()]
}

/// Interleaves ICY metadata blocks into a stream: after every `metaint` bytes of audio, one
/// length byte (the block's size / 16) and the block, `StreamTitle='...';` padded with NULs. The
/// title is sent in the first block and whenever it changes; other blocks are empty (length 0).
pub struct IcyWriter {
    metaint: usize,
    /// Audio bytes until the next block.
    left: usize,
    title: String,
    sent: Option<String>,
}

impl IcyWriter {
    /// A writer with a block every `metaint` bytes of audio.
    pub fn new(metaint: usize) -> Self {
        IcyWriter { metaint, left: metaint, title: String::new(), sent: None }
    }

    /// The title for the blocks to come.
    pub fn set_title(&mut self, title: &str) {
        if self.title != title {
            title.clone_into(&mut self.title);
        }
    }

    /// Appends `audio` to `out`, with metadata blocks where they are due.
    pub fn write(&mut self, mut audio: &[u8], out: &mut Vec<u8>) {
        while !audio.is_empty() {
            let n = self.left.min(audio.len());
            out.extend_from_slice(&audio[..n]);
            audio = &audio[n..];
            self.left -= n;
            if self.left == 0 {
                self.left = self.metaint;
                if self.sent.as_deref() == Some(self.title.as_str()) {
                    out.push(0);
                } else {
                    out.extend_from_slice(&metadata_block(&self.title));
                    self.sent = Some(self.title.clone());
                }
            }
        }
    }
}

/// An ICY metadata block with its length byte: `StreamTitle='TITLE';` padded with NULs to a
/// multiple of 16 (titles too long for 255 × 16 bytes are cut at a character boundary).
pub fn metadata_block(title: &str) -> Vec<u8> {
    const MAX: usize = 255 * 16;
    let mut cut = title.len().min(MAX - "StreamTitle='';".len());
    while !title.is_char_boundary(cut) {
        cut -= 1;
    }
    let text = format!("StreamTitle='{}';", &title[..cut]);
    let blocks = text.len().div_ceil(16);
    let mut out = Vec::with_capacity(1 + blocks * 16);
    out.push(u8::try_from(blocks).unwrap_or(u8::MAX));
    out.extend_from_slice(text.as_bytes());
    out.resize(1 + blocks * 16, 0);
    out
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Reads an ICY stream back: (audio, the title of every non-empty block).
    pub fn read_icy(mut stream: &[u8], metaint: usize) -> (Vec<u8>, Vec<String>) {
        let (mut audio, mut titles) = (Vec::new(), Vec::new());
        loop {
            let n = metaint.min(stream.len());
            audio.extend_from_slice(&stream[..n]);
            stream = &stream[n..];
            let Some((&len, rest)) = stream.split_first() else {
                return (audio, titles);
            };
            let (block, rest) = rest.split_at(usize::from(len) * 16);
            stream = rest;
            if len > 0 {
                let text = std::str::from_utf8(block).unwrap().trim_end_matches('\0');
                let title = text.strip_prefix("StreamTitle='").and_then(|t| t.strip_suffix("';")).unwrap();
                titles.push(title.to_string());
            }
        }
    }

    #[test]
    fn icy_blocks_read_back() {
        let audio: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut writer = IcyWriter::new(1000);
        let mut out = Vec::new();
        // Odd write sizes, so blocks fall inside writes and on their edges.
        for (i, piece) in audio.chunks(777).enumerate() {
            writer.set_title(TITLES[i / 4 % TITLES.len()]);
            writer.write(piece, &mut out);
        }
        let (read, titles) = read_icy(&out, 1000);
        assert_eq!(read, audio);
        assert_eq!(titles[0], TITLES[0]);
        assert!(titles.iter().any(|t| t == "Rock 'n' Roll; Part 2"), "{titles:?}");
        assert!(titles.windows(2).all(|w| w[0] != w[1]), "a title is sent only when it changes: {titles:?}");
        // 10 blocks: one byte each, plus the non-empty ones.
        let block_bytes: usize = titles.iter().map(|t| metadata_block(t).len() - 1).sum();
        assert_eq!(out.len(), audio.len() + 10 + block_bytes);
    }

    #[test]
    fn metadata_blocks_are_padded() {
        let block = metadata_block("Zoë – Ünïcödé");
        let text = "StreamTitle='Zoë – Ünïcödé';";
        assert_eq!(usize::from(block[0]), text.len().div_ceil(16));
        assert_eq!(&block[1..1 + text.len()], text.as_bytes());
        assert!(block[1 + text.len()..].iter().all(|&b| b == 0));
        assert_eq!((block.len() - 1) % 16, 0);
        let long = metadata_block(&"é".repeat(3000));
        assert_eq!(long[0], 255);
        assert!(std::str::from_utf8(&long[1..]).is_ok());
    }

    #[test]
    fn titles_change_every_period() {
        assert_eq!(title_at(Duration::ZERO), TITLES[0]);
        assert_eq!(title_at(TITLE_PERIOD - Duration::from_millis(1)), TITLES[0]);
        assert_eq!(title_at(TITLE_PERIOD), TITLES[1]);
        assert_eq!(title_at(TITLE_PERIOD * TITLES.len() as u32), TITLES[0]);
    }
}
