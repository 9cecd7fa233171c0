//! A request head that does not arrive within `request_timeout_sec` is
//! answered 408 before the connection closes. hyper's own header timeout
//! only closes the connection, and it keeps the socket; so the socket is
//! lent to hyper in a wrapper ([`Lent`]) that hands it back when hyper drops
//! it, and notes whether a request had begun (bytes read since the last
//! write): an idle keep-alive connection is closed without an answer.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf},
    sync::oneshot,
};

/// What a client that was too slow with its request head gets.
const REQUEST_TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n\
content-length: 57\r\nconnection: close\r\n\r\nthe request did not arrive in time (request_timeout_sec)\n";

/// How long writing that answer may take.
const ANSWER_LIMIT: Duration = Duration::from_secs(1);

/// A socket lent to hyper; given back (with whether a request had begun) when dropped.
pub struct Lent<I> {
    io: Option<I>,
    /// Bytes were read since the last write: a request head has begun.
    begun: bool,
    back: Option<oneshot::Sender<(I, bool)>>,
}

/// Lends `io`; the receiver gets it back once hyper is done with it.
pub fn lend<I>(io: I) -> (Lent<I>, oneshot::Receiver<(I, bool)>) {
    let (back, receiver) = oneshot::channel();
    (Lent { io: Some(io), begun: false, back: Some(back) }, receiver)
}

/// Whether hyper ended a connection with `error` because the request head did not arrive in time.
pub fn is_head_timeout(error: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    error.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout)
}

/// After a head timeout: answers 408 on the socket hyper gave back, if a request had begun.
pub async fn answer_timeout<I: AsyncWrite + Unpin>(returned: oneshot::Receiver<(I, bool)>) {
    if let Ok((mut io, true)) = returned.await {
        let _ = tokio::time::timeout(ANSWER_LIMIT, async {
            io.write_all(REQUEST_TIMEOUT).await?;
            io.shutdown().await
        })
        .await;
    }
}

impl<I> Lent<I> {
    fn io(&mut self) -> &mut I {
        self.io.as_mut().expect("the socket is only taken on drop")
    }
}

impl<I> Drop for Lent<I> {
    fn drop(&mut self) {
        if let (Some(io), Some(back)) = (self.io.take(), self.back.take()) {
            let _ = back.send((io, self.begun));
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Lent<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(self.io()).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.begun = true;
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Lent<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.begun = false;
        Pin::new(self.io()).poll_write(cx, data)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.io()).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.io()).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.begun = false;
        Pin::new(self.io()).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(AsyncWrite::is_write_vectored)
    }
}
