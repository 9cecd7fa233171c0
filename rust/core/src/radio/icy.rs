//! CONTRACT STUB (helper A replaces the bodies; keep the public signatures).
//! ICY metadata: de-interleaving every `icy-metaint` audio bytes, and `StreamTitle` parsing.

use bytes::Bytes;

/// A piece of the stream body after de-interleaving.
#[derive(Clone, Debug, PartialEq)]
pub enum IcyPart {
    /// Audio bytes (a zero-copy slice of the chunk pushed).
    Audio(Bytes),
    /// A complete, non-empty metadata block, decoded (UTF-8, else Latin-1), trailing NULs removed.
    Metadata(String),
}

/// Splits a body into audio and metadata blocks; chunks may cut anywhere.
#[derive(Debug)]
pub struct IcyDemuxer {
    _private: (),
}

impl IcyDemuxer {
    /// `metaint`: audio bytes between metadata blocks; `None` passes everything through as audio.
    pub fn new(metaint: Option<usize>) -> Self {
        let _ = metaint;
        todo!()
    }

    /// Feeds one body chunk, calling `emit` with its parts in order.
    pub fn push(&mut self, chunk: Bytes, emit: impl FnMut(IcyPart)) {
        let _ = (chunk, emit);
        todo!()
    }
}

/// The `StreamTitle` of a metadata block (`StreamTitle='Artist - Title';StreamUrl='';`),
/// tolerant of quotes and semicolons inside the title. `None` when absent.
pub fn stream_title(metadata: &str) -> Option<String> {
    let _ = metadata;
    todo!()
}
