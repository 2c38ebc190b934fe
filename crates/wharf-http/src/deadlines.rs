//! Deadlines on a connection's reads and writes, for the phases hyper does
//! not bound by itself.
//!
//! hyper bounds one phase: the wait for a request head (its
//! `header_read_timeout`, which Wharf sets to `server.idle_timeout`, so it is the
//! keep-alive idle bound too). This wrapper adds two more:
//!
//! - **header**: once the first byte of a request arrives (or the connection
//!   opens), its whole head must arrive within `server.header_timeout`. A client
//!   that sends a header line every few seconds is cut, however long the idle
//!   bound is (load balancers need a long one: their own idle timeout must end
//!   first, or they reuse a connection the server is closing).
//! - **write**: a write that makes no progress for `server.write_timeout` (a
//!   client that stopped reading its answer or its event stream) ends the
//!   connection, instead of holding its buffers and its stream permit forever.
//!
//! The body has its own deadline, enforced where it is read (`intake`), since
//! only the reader knows how many bytes it expects.
//!
//! The wrapper learns where the connection is from [`Phase`], which the
//! service marks when a request's head has been parsed (the request is
//! handed over) and when its response has been sent.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Sleep,
};

const IDLE: u8 = 0;
const IN_REQUEST: u8 = 1;

/// Which deadline ended a connection, if one did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    Header,
    Write,
}

/// Where one connection is: between requests, or inside one. Shared by the
/// connection's IO and the service that runs its requests.
#[derive(Debug, Default)]
pub(crate) struct Phase {
    state: AtomicU8,
    expired: AtomicU8,
}

impl Phase {
    /// A request's head has been parsed: the header deadline is over.
    pub(crate) fn request_started(&self) {
        self.state.store(IN_REQUEST, Ordering::Release);
    }

    /// The response has been sent (or dropped): the next bytes start a new head.
    pub(crate) fn request_finished(&self) {
        self.state.store(IDLE, Ordering::Release);
    }

    fn in_request(&self) -> bool {
        self.state.load(Ordering::Acquire) == IN_REQUEST
    }

    fn expire(&self, which: Expired) {
        let code = match which {
            Expired::Header => 1,
            Expired::Write => 2,
        };
        self.expired.store(code, Ordering::Release);
    }

    /// The deadline that ended the connection, if one did.
    pub(crate) fn expired(&self) -> Option<Expired> {
        match self.expired.load(Ordering::Acquire) {
            1 => Some(Expired::Header),
            2 => Some(Expired::Write),
            _ => None,
        }
    }
}

/// The two deadlines this wrapper keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IoDeadlines {
    pub header: Duration,
    pub write: Duration,
}

/// A connection's IO with the header and write deadlines.
pub(crate) struct Deadlined<T> {
    inner: T,
    phase: Arc<Phase>,
    limits: IoDeadlines,
    /// Running while a head is being read.
    head: Option<Pin<Box<Sleep>>>,
    /// Running while a write is waiting for the client.
    write: Option<Pin<Box<Sleep>>>,
}

impl<T> Deadlined<T> {
    /// A new connection: its first head is due within the header deadline from now.
    pub(crate) fn new(inner: T, phase: Arc<Phase>, limits: IoDeadlines) -> Self {
        Self {
            inner,
            phase,
            limits,
            head: Some(Box::pin(tokio::time::sleep(limits.header))),
            write: None,
        }
    }
}

fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, what.to_owned())
}

impl<T: AsyncRead + Unpin> AsyncRead for Deadlined<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.phase.in_request() {
            this.head = None;
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                // The first bytes after an idle wait start a head's clock.
                if buf.filled().len() > before && this.head.is_none() && !this.phase.in_request() {
                    this.head = Some(Box::pin(tokio::time::sleep(this.limits.header)));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if let Some(head) = &mut this.head
                    && head.as_mut().poll(cx).is_ready()
                {
                    this.phase.expire(Expired::Header);
                    return Poll::Ready(Err(timed_out(
                        "the request head did not arrive within server.header_timeout",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<T> Deadlined<T> {
    /// Turn a stalled write into an error once the write deadline passes.
    fn guard_write<R>(
        &mut self,
        cx: &mut Context<'_>,
        outcome: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        if outcome.is_ready() {
            self.write = None;
            return outcome;
        }
        let limit = self.limits.write;
        let sleep = self
            .write
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        ready!(sleep.as_mut().poll(cx));
        self.phase.expire(Expired::Write);
        Poll::Ready(Err(timed_out(
            "the client read nothing for server.write_timeout",
        )))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Deadlined<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let outcome = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.guard_write(cx, outcome)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let outcome = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.guard_write(cx, outcome)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let outcome = Pin::new(&mut this.inner).poll_flush(cx);
        this.guard_write(cx, outcome)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let outcome = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.guard_write(cx, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMITS: IoDeadlines = IoDeadlines {
        header: Duration::from_secs(10),
        write: Duration::from_secs(30),
    };

    #[tokio::test(start_paused = true)]
    async fn a_head_that_trickles_in_is_cut_at_the_header_deadline() {
        let (client, server) = tokio::io::duplex(1024);
        let phase = Arc::new(Phase::default());
        let mut io = Deadlined::new(server, phase.clone(), LIMITS);
        let mut client = client;
        let trickle = tokio::spawn(async move {
            for _ in 0..100 {
                if client.write_all(b"X").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
        });
        let mut buf = [0u8; 64];
        let started = tokio::time::Instant::now();
        let err = loop {
            match io.read(&mut buf).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(phase.expired(), Some(Expired::Header));
        assert!(started.elapsed() <= Duration::from_secs(11));
        trickle.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn no_header_deadline_inside_a_request_or_while_idle() {
        let (mut client, server) = tokio::io::duplex(1024);
        let phase = Arc::new(Phase::default());
        let mut io = Deadlined::new(server, phase.clone(), LIMITS);
        phase.request_started();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            let n = io.read(&mut buf).await.unwrap();
            (n, io)
        });
        // A body (or nothing) for a minute: the header deadline does not apply.
        tokio::time::sleep(Duration::from_secs(60)).await;
        client.write_all(b"body").await.unwrap();
        let (n, mut io) = reader.await.unwrap();
        assert_eq!(n, 4);
        // Idle after the answer: the idle bound is hyper's, not this one.
        phase.request_finished();
        let waiting = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            io.read(&mut buf).await.map(|_| ())
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!waiting.is_finished());
        waiting.abort();
        assert_eq!(phase.expired(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_cut_at_the_write_deadline() {
        let (_client, server) = tokio::io::duplex(16);
        let phase = Arc::new(Phase::default());
        let mut io = Deadlined::new(server, phase.clone(), LIMITS);
        let err = io.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(phase.expired(), Some(Expired::Write));
    }
}
