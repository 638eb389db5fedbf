//! Connections kept between answers, newest last: taken back for the next
//! request, closed once idle past the timeout. As with reqwest's pool, there
//! is no cap: the pool never holds more connections than were open at once
//! a moment before, and a burst of new streams reusing them does not have to
//! open as many new connections at once (10,000 at once overflowed the
//! upstream's accept queue, and its SYN retransmits cost seconds).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

#[derive(Debug)]
pub(super) struct Pool {
    idle: Mutex<VecDeque<Idle>>,
    idle_timeout: Duration,
    /// Whether the task closing expired connections has been started.
    reaping: AtomicBool,
}

#[derive(Debug)]
struct Idle {
    stream: TcpStream,
    since: Instant,
}

impl Pool {
    pub(super) fn new(idle_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            idle: Mutex::new(VecDeque::new()),
            idle_timeout,
            reaping: AtomicBool::new(false),
        })
    }

    /// The most recently used connection still open, if any.
    pub(super) fn take(&self) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(Idle { stream, since }) = idle.pop_back() {
            if since.elapsed() >= self.idle_timeout {
                // Everything older is older still.
                idle.clear();
                return None;
            }
            // An idle connection has nothing to say: if it is readable, the
            // server closed it (or broke protocol).
            let mut probe = [0u8; 1];
            match stream.try_read(&mut probe) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Some(stream),
                _ => continue,
            }
        }
        None
    }

    /// Keeps a connection whose answer was read to its end. The first one
    /// kept starts the task that closes expired ones, so a pool nobody
    /// uses any more does not hold its connections open.
    pub(super) fn put(self: &Arc<Self>, stream: TcpStream) {
        {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.push_back(Idle {
                stream,
                since: Instant::now(),
            });
        }
        if !self.reaping.swap(true, Ordering::Relaxed) {
            let every = (self.idle_timeout / 2).max(Duration::from_millis(10));
            tokio::spawn(reap(Arc::downgrade(self), every));
        }
    }

    /// Closes the connections idle past the timeout.
    fn expire(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while idle
            .front()
            .is_some_and(|oldest| oldest.since.elapsed() >= self.idle_timeout)
        {
            idle.pop_front();
        }
    }

    #[cfg(test)]
    pub(super) fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Closes expired connections every `every`, until the pool is gone.
async fn reap(pool: Weak<Pool>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        pool.expire();
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;

    /// A connected pair: ours, and the server's end.
    async fn connection() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (theirs, _) = listener.accept().await.unwrap();
        (ours, theirs)
    }

    #[tokio::test]
    async fn connections_idle_past_the_timeout_are_closed_unasked() {
        let pool = Pool::new(Duration::from_millis(100));
        let (ours, mut theirs) = connection().await;
        pool.put(ours);
        assert_eq!(pool.idle_count(), 1);
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), theirs.read(&mut byte))
            .await
            .expect("the server sees the connection closed");
        assert_eq!(read.unwrap(), 0);
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn the_newest_open_connection_is_taken_and_a_closed_one_skipped() {
        let pool = Pool::new(Duration::from_secs(60));
        let (older, _older_server) = connection().await;
        let (newer, newer_server) = connection().await;
        let older_port = older.local_addr().unwrap().port();
        pool.put(older);
        pool.put(newer);
        // The server closed the newer one while it waited.
        drop(newer_server);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let taken = pool.take().expect("the older one is still open");
        assert_eq!(taken.local_addr().unwrap().port(), older_port);
        assert!(pool.take().is_none());
    }
}
