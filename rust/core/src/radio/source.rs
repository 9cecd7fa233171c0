//! CONTRACT STUB (helper B replaces the bodies; keep the public signatures).
//! A blocking `Read` over the byte channel the network task fills.

use std::io::{self, Read};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Reads the chunks of a tokio channel in order, blocking the (non-runtime) thread while it is
/// empty; end of file once every sender is gone and the channel is drained.
pub struct ChannelReader {
    _rx: mpsc::Receiver<Bytes>,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        ChannelReader { _rx: rx }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let _ = buf;
        todo!()
    }
}
