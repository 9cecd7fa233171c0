//! SHOUTcast v1 servers answer `ICY 200 OK` instead of `HTTP/1.0 200 OK`: [`IcyShim`] sits
//! between the socket and hyper, rewrites that status line and lets everything else through
//! untouched.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, ready},
};

use tokio::io::{AsyncRead, ReadBuf};

/// SHOUTcast's status line and what hyper expects instead.
const ICY_STATUS: &[u8] = b"ICY ";
const HTTP_STATUS: &[u8] = b"HTTP/1.0 ";

/// Rewrites a leading `ICY ` status line into `HTTP/1.0 `, then passes everything through.
///
/// Until the first four bytes are in (or the bytes so far cannot start `ICY `), what the
/// server sent is held back; then it is handed over, rewritten or not, before any further read.
pub(super) struct IcyShim<S> {
    inner: S,
    state: ShimState,
    /// Set when the status line was rewritten.
    shoutcast: Arc<AtomicBool>,
}

enum ShimState {
    /// Collecting the first bytes.
    Sniffing(Vec<u8>),
    /// Handing over these bytes, from this position.
    Replaying(Vec<u8>, usize),
    /// Everything passes through.
    Passing,
}

impl<S> IcyShim<S> {
    pub(super) fn new(inner: S, shoutcast: Arc<AtomicBool>) -> Self {
        IcyShim { inner, state: ShimState::Sniffing(Vec::with_capacity(ICY_STATUS.len())), shoutcast }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IcyShim<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                ShimState::Passing => return Pin::new(&mut this.inner).poll_read(cx, buf),
                ShimState::Replaying(bytes, pos) => {
                    let n = (bytes.len() - *pos).min(buf.remaining());
                    buf.put_slice(&bytes[*pos..*pos + n]);
                    *pos += n;
                    if *pos == bytes.len() {
                        this.state = ShimState::Passing;
                    }
                    return Poll::Ready(Ok(()));
                }
                ShimState::Sniffing(held) => {
                    let mut space = [0u8; 4];
                    let mut first = ReadBuf::new(&mut space[..ICY_STATUS.len() - held.len()]);
                    ready!(Pin::new(&mut this.inner).poll_read(cx, &mut first))?;
                    let eof = first.filled().is_empty();
                    held.extend_from_slice(first.filled());
                    let decided = eof || held.len() == ICY_STATUS.len() || !ICY_STATUS.starts_with(held);
                    if !decided {
                        continue;
                    }
                    let mut bytes = std::mem::take(held);
                    if bytes == ICY_STATUS {
                        bytes = HTTP_STATUS.to_vec();
                        this.shoutcast.store(true, Ordering::Relaxed);
                    }
                    this.state = if bytes.is_empty() { ShimState::Passing } else { ShimState::Replaying(bytes, 0) };
                    if eof && matches!(this.state, ShimState::Passing) {
                        return Poll::Ready(Ok(()));
                    }
                }
            }
        }
    }
}

crate::forward::forward_async_write!(IcyShim);

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    /// A reader handing out its bytes one at a time.
    struct OneByte(Vec<u8>, usize);

    impl AsyncRead for OneByte {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            if let Some(&byte) = this.0.get(this.1) {
                buf.put_slice(&[byte]);
                this.1 += 1;
            }
            Poll::Ready(Ok(()))
        }
    }

    /// What the shim makes of `input` read one byte at a time, read `step` bytes at a time.
    async fn through_shim(input: &[u8], step: usize) -> (Vec<u8>, bool) {
        let flag = Arc::new(AtomicBool::new(false));
        let mut shim = IcyShim::new(OneByte(input.to_vec(), 0), flag.clone());
        let mut out = Vec::new();
        let mut buf = vec![0u8; step];
        loop {
            let n = shim.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        (out, flag.load(Ordering::Relaxed))
    }

    #[tokio::test]
    async fn the_shim_rewrites_only_a_leading_icy_status() {
        for step in [1, 2, 3, 64] {
            let rewritten = (b"HTTP/1.0 200 OK\r\n\r\nICY body".to_vec(), true);
            assert_eq!(through_shim(b"ICY 200 OK\r\n\r\nICY body", step).await, rewritten, "step {step}");
            let plain = b"HTTP/1.1 200 OK\r\n\r\nICY ".to_vec();
            assert_eq!(through_shim(&plain, step).await, (plain.clone(), false));
            for short in [&b""[..], b"I", b"IC", b"ICY", b"ICX 200", b"icy 200"] {
                assert_eq!(through_shim(short, step).await, (short.to_vec(), false), "{short:?}");
            }
        }
    }
}
