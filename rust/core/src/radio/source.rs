//! A blocking [`Read`] over the byte channel the network task fills.
//!
//! The session's network task sends the audio bytes of the stream (ICY metadata already removed)
//! as [`Bytes`] chunks through a bounded tokio channel; the decoder, on a blocking-pool thread,
//! reads them through a [`ChannelReader`]. A full channel holds the network task back, which in
//! turn lets TCP flow control hold the server back: memory stays bounded.
//!
//! [`ChannelReader::read`] blocks with [`mpsc::Receiver::blocking_recv`], so it must never run on
//! a runtime thread (tokio panics if it does).

use std::io::{self, Read};

use bytes::{Buf, Bytes};
use tokio::sync::mpsc;

/// Reads the chunks of a tokio channel in order, blocking the (non-runtime) thread while it is
/// empty; end of file once every sender is gone and the channel is drained.
pub struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    /// The rest of the chunk being read.
    chunk: Bytes,
    /// Every sender is gone and the channel is drained.
    ended: bool,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        ChannelReader { rx, chunk: Bytes::new(), ended: false }
    }

    /// Copies from the current chunk into `buf`; returns how many bytes.
    fn take(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        n
    }
}

impl Read for ChannelReader {
    /// Returns what is at hand without blocking when something is (the current chunk, then any
    /// chunks already queued); blocks only when nothing is. `Ok(0)` is the end of the stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.chunk.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(chunk) => self.chunk = chunk,
                None => self.ended = true,
            }
        }
        let mut n = self.take(buf);
        // Top up from chunks that are already there, without waiting for more.
        while n < buf.len() {
            match self.rx.try_recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    n += self.take(&mut buf[n..]);
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.ended = true;
                    break;
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_chunks_in_order_across_boundaries() {
        let (tx, rx) = mpsc::channel(4);
        let writer = std::thread::spawn(move || {
            for i in 0..50u8 {
                let chunk: Vec<u8> =
                    (0..(i as usize % 7 + 1)).map(|j| i.wrapping_mul(7).wrapping_add(j as u8)).collect();
                tx.blocking_send(Bytes::from(chunk)).unwrap();
            }
            // An empty chunk is not the end.
            tx.blocking_send(Bytes::new()).unwrap();
            tx.blocking_send(Bytes::from_static(b"end")).unwrap();
        });
        let mut expected = Vec::new();
        for i in 0..50u8 {
            expected.extend((0..(i as usize % 7 + 1)).map(|j| i.wrapping_mul(7).wrapping_add(j as u8)));
        }
        expected.extend_from_slice(b"end");

        let mut reader = ChannelReader::new(rx);
        let mut got = Vec::new();
        let mut buf = [0u8; 5];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        writer.join().unwrap();
        assert_eq!(got, expected);
        // Stays at end of file.
        assert_eq!(reader.read(&mut buf).unwrap(), 0);
        assert_eq!(reader.read(&mut []).unwrap(), 0);
    }

    #[test]
    fn read_to_end_and_closed_channel() {
        let (tx, rx) = mpsc::channel(2);
        tx.try_send(Bytes::from_static(b"hello ")).unwrap();
        tx.try_send(Bytes::from_static(b"world")).unwrap();
        drop(tx);
        let mut s = String::new();
        ChannelReader::new(rx).read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello world");
    }

    #[test]
    fn blocks_until_data_arrives() {
        let (tx, rx) = mpsc::channel(1);
        let t = std::thread::spawn(move || {
            let mut reader = ChannelReader::new(rx);
            let mut buf = [0u8; 16];
            let n = reader.read(&mut buf).unwrap();
            buf[..n].to_vec()
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!t.is_finished());
        tx.blocking_send(Bytes::from_static(b"late")).unwrap();
        assert_eq!(t.join().unwrap(), b"late");
    }
}
