//! A streaming 16-bit PCM WAV writer, for `RadioStream.record_to`.
//!
//! The file is a plain RIFF/WAVE with a 16-byte `fmt ` chunk (PCM, format tag 1) and one `data`
//! chunk. The header is written up front with zero sizes; the RIFF and data sizes are patched by
//! [`WavWriter::finish`] (or, best effort, when the writer is dropped). Writes go through a
//! [`BufWriter`], so the decoder thread makes one system call per 64 KiB or so.
//!
//! WAV sizes are 32-bit: a recording stops with an error just before the data chunk would pass
//! 4 GiB (about 6.7 hours of 44.1 kHz stereo) instead of writing a corrupt header.

use std::{
    fs::File,
    io::{self, BufWriter, Seek, SeekFrom, Write},
    path::Path,
};

/// Bytes of header before the samples: RIFF (12) + fmt chunk (8 + 16) + data chunk head (8).
const HEADER_LEN: u32 = 44;

/// The largest data chunk whose RIFF size still fits in 32 bits.
const MAX_DATA_LEN: u64 = (u32::MAX - (HEADER_LEN - 8)) as u64;

/// Samples converted per `write_all` (the stack buffer is twice this in bytes).
const BLOCK: usize = 2048;

/// Writes interleaved samples to a WAV file; the header's sizes are fixed by [`WavWriter::finish`]
/// (or, best effort, on drop).
pub struct WavWriter {
    out: BufWriter<File>,
    channels: u16,
    /// Bytes of sample data written so far.
    data_len: u64,
    /// Whether the sizes were patched (by `finish`, or by a failed attempt we must not repeat).
    finished: bool,
}

impl WavWriter {
    pub fn create(path: &Path, sample_rate: u32, channels: u16) -> io::Result<Self> {
        Self::from_file(File::create(path)?, sample_rate, channels)
    }

    /// Starts a WAV in `file` (already created and empty, positioned at its start).
    pub(crate) fn from_file(file: File, sample_rate: u32, channels: u16) -> io::Result<Self> {
        if channels == 0 || sample_rate == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot write a WAV of {channels} channel(s) at {sample_rate} Hz"),
            ));
        }
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        out.write_all(&header(sample_rate, channels, 0))?;
        Ok(WavWriter { out, channels, data_len: 0, finished: false })
    }

    /// Appends interleaved samples (clamped to [-1, 1], rounded to 16 bits).
    pub fn write(&mut self, samples: &[f32]) -> io::Result<()> {
        let bytes = samples.len() as u64 * 2;
        if self.data_len + bytes > MAX_DATA_LEN {
            return Err(io::Error::new(io::ErrorKind::FileTooLarge, "the WAV file reached its 4 GiB size limit"));
        }
        let mut block = [0u8; BLOCK * 2];
        for chunk in samples.chunks(BLOCK) {
            for (dst, &s) in block.chunks_exact_mut(2).zip(chunk) {
                dst.copy_from_slice(&to_i16(s).to_le_bytes());
            }
            self.out.write_all(&block[..chunk.len() * 2])?;
        }
        self.data_len += bytes;
        Ok(())
    }

    /// Rewrites the header for another format; only while nothing was written.
    pub(crate) fn restart(&mut self, sample_rate: u32, channels: u16) -> io::Result<()> {
        if self.data_len != 0 || channels == 0 || sample_rate == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot change the format of a WAV with data"));
        }
        self.out.flush()?;
        let file = self.out.get_mut();
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header(sample_rate, channels, 0))?;
        self.channels = channels;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.data_len / (2 * u64::from(self.channels))
    }

    pub fn finish(mut self) -> io::Result<()> {
        self.finalize()
    }

    /// Flushes, patches the RIFF and data sizes, and flushes again.
    fn finalize(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        // A partial last frame (a caller bug) is left out of the declared size.
        let data_len = (self.data_len - self.data_len % (2 * u64::from(self.channels))) as u32;
        self.out.flush()?;
        let file = self.out.get_mut();
        file.seek(SeekFrom::Start(4))?;
        file.write_all(&(HEADER_LEN - 8 + data_len).to_le_bytes())?;
        file.seek(SeekFrom::Start(u64::from(HEADER_LEN) - 4))?;
        file.write_all(&data_len.to_le_bytes())?;
        file.seek(SeekFrom::End(0))?;
        file.flush()
    }
}

impl Drop for WavWriter {
    fn drop(&mut self) {
        let _ = self.finalize();
    }
}

/// A sample as 16-bit PCM: clamped to [-1, 1], scaled by 32767 and rounded (NaN is silence).
#[inline]
fn to_i16(s: f32) -> i16 {
    (s.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// The 44-byte header of a 16-bit PCM WAV with `data_len` bytes of samples.
fn header(sample_rate: u32, channels: u16, data_len: u32) -> [u8; HEADER_LEN as usize] {
    let block_align = channels * 2;
    let byte_rate = sample_rate.saturating_mul(u32::from(block_align));
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(HEADER_LEN - 8 + data_len).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes()); // bits per sample
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

/// A parsed 16-bit PCM WAV, for tests.
#[cfg(test)]
pub(crate) struct ParsedWav {
    pub sample_rate: u32,
    pub channels: u16,
    pub samples: Vec<i16>,
}

/// Parses a WAV written by [`WavWriter`], checking every header field and size.
#[cfg(test)]
pub(crate) fn parse_wav(bytes: &[u8]) -> ParsedWav {
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    let u16_at = |i: usize| u16::from_le_bytes(bytes[i..i + 2].try_into().unwrap());
    assert!(bytes.len() >= 44, "a WAV has a 44-byte header, got {} bytes", bytes.len());
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(u32_at(4) as usize, bytes.len() - 8, "RIFF size");
    assert_eq!(&bytes[8..16], b"WAVEfmt ");
    assert_eq!(u32_at(16), 16, "fmt chunk size");
    assert_eq!(u16_at(20), 1, "PCM");
    let channels = u16_at(22);
    let sample_rate = u32_at(24);
    assert_eq!(u32_at(28), sample_rate * u32::from(channels) * 2, "byte rate");
    assert_eq!(u16_at(32), channels * 2, "block align");
    assert_eq!(u16_at(34), 16, "bits per sample");
    assert_eq!(&bytes[36..40], b"data");
    assert_eq!(u32_at(40) as usize, bytes.len() - 44, "data size");
    let samples = bytes[44..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    ParsedWav { sample_rate, channels, samples }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("async-net-wav-{}-{name}.wav", std::process::id()))
    }

    #[test]
    fn round_trip() {
        let path = temp_path("round-trip");
        let mut w = WavWriter::create(&path, 22050, 2).unwrap();
        w.write(&[0.0, 1.0, -1.0, 0.5]).unwrap();
        w.write(&[2.0, -3.0, f32::NAN, 0.25]).unwrap();
        // More than one conversion block.
        let long: Vec<f32> = (0..5000).map(|i| (i as f32 / 5000.0) * 2.0 - 1.0).collect();
        w.write(&long).unwrap();
        assert_eq!(w.frames(), 4 + 2500);
        w.finish().unwrap();

        let wav = parse_wav(&std::fs::read(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        assert_eq!((wav.sample_rate, wav.channels), (22050, 2));
        assert_eq!(wav.samples.len(), 8 + 5000);
        assert_eq!(&wav.samples[..8], &[0, 32767, -32767, 16384, 32767, -32767, 0, 8192]);
        for (i, &s) in wav.samples[8..].iter().enumerate() {
            assert_eq!(s, to_i16(long[i]));
        }
    }

    #[test]
    fn drop_patches_the_sizes() {
        let path = temp_path("drop");
        {
            let mut w = WavWriter::create(&path, 8000, 1).unwrap();
            w.write(&[0.1; 100]).unwrap();
        }
        let wav = parse_wav(&std::fs::read(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        assert_eq!((wav.sample_rate, wav.channels, wav.samples.len()), (8000, 1, 100));
        assert!(wav.samples.iter().all(|&s| s == 3277));
    }

    #[test]
    fn empty_recording_is_a_valid_wav() {
        let path = temp_path("empty");
        WavWriter::create(&path, 48000, 2).unwrap().finish().unwrap();
        let wav = parse_wav(&std::fs::read(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        assert_eq!((wav.sample_rate, wav.channels, wav.samples.len()), (48000, 2, 0));
    }

    #[test]
    fn missing_directory_is_an_error() {
        let path = std::env::temp_dir().join("async-net-no-such-dir-4242/x.wav");
        assert!(WavWriter::create(&path, 44100, 2).is_err());
    }
}
