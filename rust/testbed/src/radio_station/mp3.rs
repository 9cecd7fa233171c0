//! An MP3 file split into its MPEG audio frames, so the station can send them one by one in real
//! time: frame headers (MPEG 1, 2 and 2.5, layers I to III), an ID3v2 tag, a Xing/Info/VBRI frame
//! and junk between frames are recognised and left out.

use std::ops::Range;

use anyhow::{Result, bail};

/// An MP3 file split into MPEG audio frames.
pub struct Mp3 {
    data: Vec<u8>,
    frames: Vec<Range<usize>>,
    /// Sample rate of the first frame (frames at other rates are left out).
    pub sample_rate: u32,
    /// Samples per channel in one frame (1152 for MPEG-1 Layer III).
    pub samples_per_frame: u32,
    /// Bit rate of the first frame, in kbit/s.
    pub bitrate_kbps: u32,
    /// Channels of the first frame.
    pub channels: u8,
}

impl Mp3 {
    /// Splits `data` into frames: skips an ID3v2 tag, a Xing/Info/VBRI frame and anything between
    /// frames that is not a frame (e.g. an ID3v1 tag at the end).
    pub fn parse(data: Vec<u8>) -> Result<Self> {
        let mut frames: Vec<Range<usize>> = Vec::new();
        let mut first: Option<FrameHeader> = None;
        let mut pos = id3v2_len(&data);
        while pos + 4 <= data.len() {
            // A frame right after a frame is trusted; elsewhere the next header must check out too.
            let follows = frames.last().is_some_and(|f| f.end == pos);
            let fits = |h: &FrameHeader| if follows { pos + h.length <= data.len() } else { frame_fits(&data, pos, h) };
            let Some(header) = FrameHeader::parse(&data[pos..]).filter(fits) else {
                pos += 1;
                continue;
            };
            let end = pos + header.length;
            let info = frames.is_empty() && header.is_info_frame(&data[pos..end]);
            let compatible = first.is_none_or(|f| f.sample_rate == header.sample_rate && f.samples == header.samples);
            if compatible && !info {
                first.get_or_insert(header);
                frames.push(pos..end);
            }
            pos = end;
        }
        let Some(first) = first else {
            bail!("no MPEG audio frames found");
        };
        Ok(Mp3 {
            data,
            frames,
            sample_rate: first.sample_rate,
            samples_per_frame: first.samples,
            bitrate_kbps: first.bitrate_kbps,
            channels: first.channels,
        })
    }

    /// The number of frames.
    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// Frame `index` (header included).
    pub fn frame(&self, index: usize) -> &[u8] {
        &self.data[self.frames[index].clone()]
    }

    /// Duration of one frame, in seconds.
    pub fn frame_seconds(&self) -> f64 {
        f64::from(self.samples_per_frame) / f64::from(self.sample_rate)
    }
}

/// Whether the frame at `pos` ends at the end of `data`, before another frame header, or before a
/// trailing tag; so a stray sync word in junk is not taken for a frame.
fn frame_fits(data: &[u8], pos: usize, header: &FrameHeader) -> bool {
    let end = pos + header.length;
    if end > data.len() {
        return false;
    }
    let rest = &data[end..];
    rest.len() < 4 || FrameHeader::parse(rest).is_some() || rest.starts_with(b"TAG") || rest.starts_with(b"ID3")
}

/// The length of an ID3v2 tag at the start of `data` (0 without one).
fn id3v2_len(data: &[u8]) -> usize {
    if data.len() < 10 || &data[..3] != b"ID3" || data[6..10].iter().any(|b| b & 0x80 != 0) {
        return 0;
    }
    let size = data[6..10].iter().fold(0usize, |acc, b| (acc << 7) | usize::from(*b));
    let footer = if data[5] & 0x10 != 0 { 10 } else { 0 };
    (10 + size + footer).min(data.len())
}

/// MPEG audio versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MpegVersion {
    Mpeg1,
    Mpeg2,
    Mpeg25,
}

/// A parsed MPEG audio frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub version: MpegVersion,
    /// 1, 2 or 3.
    pub layer: u8,
    pub bitrate_kbps: u32,
    pub sample_rate: u32,
    pub channels: u8,
    /// A 16-bit CRC follows the header.
    pub crc: bool,
    /// Samples per channel.
    pub samples: u32,
    /// Bytes, header included.
    pub length: usize,
}

impl FrameHeader {
    /// Parses the 4-byte header at the start of `bytes` (free-format and reserved values are rejected).
    pub fn parse(bytes: &[u8]) -> Option<FrameHeader> {
        let [b0, b1, b2, b3, ..] = *bytes else {
            return None;
        };
        if b0 != 0xff || b1 & 0xe0 != 0xe0 || b3 & 0x03 == 0x02 {
            return None;
        }
        let version = match (b1 >> 3) & 0x03 {
            0 => MpegVersion::Mpeg25,
            2 => MpegVersion::Mpeg2,
            3 => MpegVersion::Mpeg1,
            _ => return None,
        };
        let layer = match (b1 >> 1) & 0x03 {
            1 => 3,
            2 => 2,
            3 => 1,
            _ => return None,
        };
        let bitrate_index = usize::from(b2 >> 4);
        let rate_index = usize::from((b2 >> 2) & 0x03);
        if bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
            return None;
        }
        let bitrate_kbps = u32::from(bitrate_table(version, layer)[bitrate_index - 1]);
        let sample_rate = match version {
            MpegVersion::Mpeg1 => [44_100, 48_000, 32_000][rate_index],
            MpegVersion::Mpeg2 => [22_050, 24_000, 16_000][rate_index],
            MpegVersion::Mpeg25 => [11_025, 12_000, 8_000][rate_index],
        };
        let padding = usize::from((b2 >> 1) & 0x01);
        let samples = match (layer, version) {
            (1, _) => 384,
            (3, MpegVersion::Mpeg2 | MpegVersion::Mpeg25) => 576,
            _ => 1152,
        };
        let bits = bitrate_kbps as usize * 1000;
        let rate = sample_rate as usize;
        let length =
            if layer == 1 { (12 * bits / rate + padding) * 4 } else { samples as usize / 8 * bits / rate + padding };
        let channels = if b3 >> 6 == 3 { 1 } else { 2 };
        Some(FrameHeader { version, layer, bitrate_kbps, sample_rate, channels, crc: b1 & 0x01 == 0, samples, length })
    }

    /// Whether `frame` (this header's frame) is a Xing, Info or VBRI frame rather than audio.
    fn is_info_frame(&self, frame: &[u8]) -> bool {
        if self.layer != 3 {
            return false;
        }
        let side_info = match (self.version, self.channels) {
            (MpegVersion::Mpeg1, 1) => 17,
            (MpegVersion::Mpeg1, _) => 32,
            (_, 1) => 9,
            _ => 17,
        };
        let at = 4 + if self.crc { 2 } else { 0 } + side_info;
        let tag = |offset: usize| frame.get(offset..offset + 4);
        matches!(tag(at), Some(b"Xing" | b"Info")) || tag(36) == Some(b"VBRI")
    }
}

/// Bit rates (kbit/s) of indexes 1 to 14.
fn bitrate_table(version: MpegVersion, layer: u8) -> &'static [u16; 14] {
    const V1_L1: [u16; 14] = [32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448];
    const V1_L2: [u16; 14] = [32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384];
    const V1_L3: [u16; 14] = [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
    const V2_L1: [u16; 14] = [32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256];
    const V2_L23: [u16; 14] = [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    match (version, layer) {
        (MpegVersion::Mpeg1, 1) => &V1_L1,
        (MpegVersion::Mpeg1, 2) => &V1_L2,
        (MpegVersion::Mpeg1, _) => &V1_L3,
        (_, 1) => &V2_L1,
        _ => &V2_L23,
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, joint stereo, no padding: 417 bytes.
    pub const HEADER: [u8; 4] = [0xff, 0xfb, 0x90, 0x64];

    /// A frame of `HEADER` whose payload is `fill` (never 0xff, so no sync word inside).
    pub fn frame(fill: u8) -> Vec<u8> {
        let mut frame = HEADER.to_vec();
        frame.resize(417, fill % 0xfe);
        frame
    }

    /// `count` frames, frame `i` filled with `i`.
    pub fn frames(count: usize) -> Vec<u8> {
        (0..count).flat_map(|i| frame(i as u8)).collect()
    }

    /// An [`Mp3`] of `count` frames of [`frames`].
    pub fn synthetic(count: usize) -> Mp3 {
        Mp3::parse(frames(count)).unwrap()
    }

    #[test]
    fn parses_frame_headers() {
        let h = FrameHeader::parse(&HEADER).unwrap();
        assert_eq!((h.version, h.layer, h.bitrate_kbps, h.sample_rate), (MpegVersion::Mpeg1, 3, 128, 44_100));
        assert_eq!((h.channels, h.samples, h.length, h.crc), (2, 1152, 417, false));
        // Padding, mono.
        let h = FrameHeader::parse(&[0xff, 0xfb, 0x92, 0xc4]).unwrap();
        assert_eq!((h.length, h.channels), (418, 1));
        // MPEG-2 Layer III 64 kbit/s 22.05 kHz: 72 × 64000 / 22050 = 208 bytes, 576 samples.
        let h = FrameHeader::parse(&[0xff, 0xf3, 0x80, 0x44]).unwrap();
        assert_eq!(
            (h.version, h.bitrate_kbps, h.sample_rate, h.samples, h.length),
            (MpegVersion::Mpeg2, 64, 22_050, 576, 208)
        );
        // MPEG-1 Layer II 192 kbit/s 48 kHz: 144 × 192000 / 48000 = 576 bytes.
        let h = FrameHeader::parse(&[0xff, 0xfd, 0xa4, 0x04]).unwrap();
        assert_eq!((h.layer, h.bitrate_kbps, h.sample_rate, h.length), (2, 192, 48_000, 576));
        for bad in
            [[0xff, 0xeb, 0x90, 0x44], [0xff, 0xfb, 0x00, 0x44], [0xff, 0xfb, 0xf0, 0x44], [0xff, 0xfb, 0x9c, 0x44]]
        {
            assert_eq!(FrameHeader::parse(&bad), None, "{bad:x?}");
        }
        assert_eq!(FrameHeader::parse(&[0xff, 0xf9, 0x90, 0x44]), None, "reserved layer");
        assert_eq!(FrameHeader::parse(&[0xfe, 0xfb, 0x90, 0x44]), None);
        assert_eq!(FrameHeader::parse(&[0xff, 0xfb]), None);
    }

    #[test]
    fn splits_the_generated_tone() {
        // The tone `cargo xtask` makes with ffmpeg (rust/xtask/src/media.rs), as the station plays it.
        let data = std::fs::read(crate::files::generated_media("tone.mp3").unwrap()).unwrap();
        let len = data.len();
        let mp3 = Mp3::parse(data).unwrap();
        assert_eq!((mp3.sample_rate, mp3.bitrate_kbps, mp3.channels, mp3.samples_per_frame), (44_100, 128, 2, 1152));
        // 20 s is 765.6 frames; the encoder adds a frame or two of delay and padding.
        assert!((765..=770).contains(&mp3.frame_count()), "{} frames", mp3.frame_count());
        // The frames tile the whole file: no tag, no info frame, nothing skipped.
        assert_eq!(mp3.frames[0].start, 0);
        assert!(mp3.frames.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(mp3.frames.last().unwrap().end, len);
        assert!(mp3.frames.iter().all(|f| f.len() == 417 || f.len() == 418));
    }

    #[test]
    fn skips_tags_info_frame_and_junk() {
        let mut data = b"ID3\x04\x00\x00\x00\x00\x00\x0a0123456789".to_vec();
        let mut xing = frame(0);
        xing[4 + 32..4 + 36].copy_from_slice(b"Info");
        data.extend_from_slice(&xing);
        data.extend_from_slice(&frames(3));
        data.extend_from_slice(b"junk \xff\xfb junk");
        data.extend_from_slice(&frames(2));
        let mut id3v1 = b"TAG".to_vec();
        id3v1.resize(128, b' ');
        data.extend_from_slice(&id3v1);
        let mp3 = Mp3::parse(data).unwrap();
        assert_eq!(mp3.frame_count(), 5);
        assert_eq!(mp3.frames[0].start, 20 + 417, "after the tag and the info frame");
        assert!((0..5).all(|i| mp3.frame(i).len() == 417));
        assert!(Mp3::parse(b"not an mp3 at all".to_vec()).is_err());
    }
}
