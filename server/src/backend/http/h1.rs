//! A plain-HTTP/1.1 client for streamed answers, read by the task that
//! relays them.
//!
//! reqwest (hyper) reads each upstream connection in a task of its own and
//! hands its body over one HTTP chunk at a time, waiting for the reader to
//! take each before decoding the next. Ollama writes a chunk per token, so
//! every token cost two task wake-ups (the connection task, then the
//! relaying one), and however many tokens one read brought in, they were
//! handed over one by one. Here the relaying task reads the socket itself:
//! every chunk a read brought is decoded in place, as slices of the read
//! buffer, with no other task involved.
//!
//! It serves answer streams of `http://` upstreams reached without a proxy;
//! everything else (https, proxies, listings, management calls) stays on
//! reqwest. Connections are kept for reuse once an answer has been read to
//! its end; an answer dropped before its end (the client left) closes its
//! connection, which is how the upstream learns to stop.

mod body;
mod head;
mod pool;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use url::Url;

pub use self::body::H1Body;
use self::head::{Head, parse_head};
use self::pool::Pool;

/// The most a response head may take.
const MAX_HEAD: usize = 64 * 1024;
/// Room made for each read: a burst of tokens is taken in one read.
const READ_SIZE: usize = 16 * 1024;

/// What went wrong, before or while an answer was read.
#[derive(Debug, thiserror::Error)]
pub enum H1Error {
    /// No connection could be made (or not within the timeout).
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    /// Connected, but no response head within the timeout.
    #[error("no response within the timeout")]
    TimedOut,
    /// The connection failed after it was made.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The upstream does not speak HTTP/1.x as it should.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

/// How to reach one upstream, with the headers every request carries.
#[derive(Debug)]
pub struct H1Client {
    /// `host:port`, as connecting wants it (resolved on each connect).
    address: String,
    /// `host: …` and every extra header, rendered once.
    headers: Vec<u8>,
    keep_alive: Duration,
    pool: Arc<Pool>,
}

/// A response: its status, and its body as it arrives.
#[derive(Debug)]
pub struct H1Response {
    pub status: u16,
    pub body: H1Body,
}

impl H1Client {
    /// A client for `base`'s server, or `None` where reqwest must do the job:
    /// https, or a proxy named in the environment.
    pub fn new(
        base: &Url,
        extra_headers: &reqwest::header::HeaderMap,
        keep_alive: Duration,
        idle_timeout: Duration,
    ) -> Option<Self> {
        if base.scheme() != "http" || proxy_configured() {
            return None;
        }
        let host = match base.host()? {
            url::Host::Domain(domain) => domain.to_string(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => format!("[{ip}]"),
        };
        let port = base.port_or_known_default()?;
        let mut headers = Vec::new();
        headers.extend_from_slice(b"host: ");
        headers.extend_from_slice(host.as_bytes());
        if base.port().is_some() {
            headers.extend_from_slice(format!(":{port}").as_bytes());
        }
        headers.extend_from_slice(b"\r\n");
        for (name, value) in extra_headers {
            headers.extend_from_slice(name.as_str().as_bytes());
            headers.extend_from_slice(b": ");
            headers.extend_from_slice(value.as_bytes());
            headers.extend_from_slice(b"\r\n");
        }
        Some(Self {
            address: format!("{host}:{port}"),
            headers,
            keep_alive,
            pool: Pool::new(idle_timeout),
        })
    }

    /// POSTs `json` to `url` and waits, until `deadline`, for the response
    /// head. A kept connection that turns out closed (the server may close
    /// an idle one at any time) is replaced by a new one once: the request
    /// cannot have been read by a server that closed it.
    pub async fn post_json(
        &self,
        url: &Url,
        json: &[u8],
        deadline: Instant,
    ) -> Result<H1Response, H1Error> {
        let request = self.request(url, json);
        if let Some(stream) = self.pool.take() {
            match exchange(stream, &request, deadline).await {
                Err(Exchange::Stale) => {}
                Err(Exchange::Failed(error)) => return Err(error),
                Ok((stream, head, buffer)) => return Ok(self.response(stream, head, buffer)),
            }
        }
        let stream = tokio::time::timeout_at(deadline, self.connect())
            .await
            .map_err(|_| {
                H1Error::Connect(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
            })??;
        match exchange(stream, &request, deadline).await {
            Ok((stream, head, buffer)) => Ok(self.response(stream, head, buffer)),
            Err(Exchange::Stale) => Err(H1Error::Io(io::ErrorKind::UnexpectedEof.into())),
            Err(Exchange::Failed(error)) => Err(error),
        }
    }

    fn request(&self, url: &Url, json: &[u8]) -> Vec<u8> {
        let mut request = Vec::with_capacity(192 + self.headers.len() + json.len());
        request.extend_from_slice(b"POST ");
        request.extend_from_slice(url.path().as_bytes());
        if let Some(query) = url.query() {
            request.push(b'?');
            request.extend_from_slice(query.as_bytes());
        }
        request.extend_from_slice(b" HTTP/1.1\r\n");
        request.extend_from_slice(&self.headers);
        request.extend_from_slice(b"content-type: application/json\r\naccept: */*\r\n");
        request.extend_from_slice(b"content-length: ");
        request.extend_from_slice(itoa::Buffer::new().format(json.len()).as_bytes());
        request.extend_from_slice(b"\r\n\r\n");
        request.extend_from_slice(json);
        request
    }

    async fn connect(&self) -> Result<TcpStream, H1Error> {
        let stream = TcpStream::connect(self.address.as_str())
            .await
            .map_err(H1Error::Connect)?;
        // Tokens go out as they come (no Nagle delay on our request either).
        stream.set_nodelay(true).map_err(H1Error::Connect)?;
        let keep_alive = socket2::TcpKeepalive::new()
            .with_time(self.keep_alive)
            .with_interval(self.keep_alive);
        socket2::SockRef::from(&stream)
            .set_tcp_keepalive(&keep_alive)
            .map_err(H1Error::Connect)?;
        Ok(stream)
    }

    fn response(&self, stream: TcpStream, head: Head, buffer: BytesMut) -> H1Response {
        let mut body = H1Body {
            stream: Some(stream),
            buffer,
            framing: head.framing,
            reusable: head.reusable,
            pool: self.pool.clone(),
            ended: false,
        };
        // A body known to be empty is over at once (and its connection free).
        body.settle();
        H1Response {
            status: head.status,
            body,
        }
    }
}

/// Whether the environment names a proxy, which reqwest would use.
fn proxy_configured() -> bool {
    [
        "http_proxy",
        "HTTP_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

enum Exchange {
    /// A kept connection was closed before it answered: try a new one.
    Stale,
    Failed(H1Error),
}

/// Writes the request and reads the response head.
async fn exchange(
    mut stream: TcpStream,
    request: &[u8],
    deadline: Instant,
) -> Result<(TcpStream, Head, BytesMut), Exchange> {
    let work = async {
        if stream.write_all(request).await.is_err() {
            return Err(Exchange::Stale);
        }
        let mut buffer = BytesMut::with_capacity(READ_SIZE);
        loop {
            if let Some(head) = parse_head(&mut buffer).map_err(Exchange::Failed)? {
                return Ok((head, buffer));
            }
            if buffer.len() >= MAX_HEAD {
                return Err(Exchange::Failed(H1Error::Malformed(
                    "response head too large",
                )));
            }
            buffer.reserve(READ_SIZE);
            match stream.read_buf(&mut buffer).await {
                Ok(0) | Err(_) if buffer.is_empty() => return Err(Exchange::Stale),
                Ok(0) => {
                    return Err(Exchange::Failed(H1Error::Io(
                        io::ErrorKind::UnexpectedEof.into(),
                    )));
                }
                Ok(_) => {}
                Err(error) => return Err(Exchange::Failed(H1Error::Io(error))),
            }
        }
    };
    match tokio::time::timeout_at(deadline, work).await {
        Err(_) => Err(Exchange::Failed(H1Error::TimedOut)),
        Ok(Err(error)) => Err(error),
        Ok(Ok((head, buffer))) => Ok((stream, head, buffer)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::StreamExt;
    use tokio::net::TcpListener;

    use super::*;

    /// What the stand-in server does with each request on a connection.
    #[derive(Clone, Copy)]
    enum Script {
        /// Answers `hi`, chunked, and waits for the next request.
        Answer,
        /// Answers, then closes the connection (as a server closing an idle one).
        AnswerThenClose,
        /// Answers the first request on a connection; reads the second and
        /// closes the connection without an answer (it closed it idle, as
        /// the request was on its way).
        AnswerOnceThenDropTheNext,
        /// Sends one chunk, waits 50 ms, then the last chunk.
        AnswerSlowlyEnding,
        /// Sends one chunk and then nothing, until the client leaves; says
        /// through `left` when it did.
        AnswerForever,
        /// Reads the request and never answers.
        Silent,
    }

    struct Server {
        url: Url,
        accepted: Arc<AtomicUsize>,
        requests: Arc<AtomicUsize>,
        left: Arc<tokio::sync::Notify>,
    }

    async fn serve(script: Script) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let left = Arc::new(tokio::sync::Notify::new());
        let (counted, asked, told) = (accepted.clone(), requests.clone(), left.clone());
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                let (asked, told) = (asked.clone(), told.clone());
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut served = 0;
                    loop {
                        // A request: its head, then its content-length's worth.
                        let end = loop {
                            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                                break end + 4;
                            }
                            let mut more = [0u8; 4096];
                            match stream.read(&mut more).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&more[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
                        let length: usize = head
                            .split("content-length: ")
                            .nth(1)
                            .and_then(|rest| rest.split("\r\n").next())
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                        while buffer.len() < end + length {
                            let mut more = [0u8; 4096];
                            match stream.read(&mut more).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&more[..n]),
                            }
                        }
                        buffer.drain(..end + length);
                        asked.fetch_add(1, Ordering::SeqCst);
                        served += 1;
                        let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                        match script {
                            Script::Answer => {
                                stream.write_all(head).await.unwrap();
                                stream.write_all(b"2\r\nhi\r\n0\r\n\r\n").await.unwrap();
                            }
                            Script::AnswerThenClose => {
                                stream.write_all(head).await.unwrap();
                                stream.write_all(b"2\r\nhi\r\n0\r\n\r\n").await.unwrap();
                                return;
                            }
                            Script::AnswerOnceThenDropTheNext => {
                                if served > 1 {
                                    return;
                                }
                                stream.write_all(head).await.unwrap();
                                stream.write_all(b"2\r\nhi\r\n0\r\n\r\n").await.unwrap();
                            }
                            Script::AnswerSlowlyEnding => {
                                stream.write_all(head).await.unwrap();
                                stream.write_all(b"2\r\nhi\r\n").await.unwrap();
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                stream.write_all(b"0\r\n\r\n").await.unwrap();
                            }
                            Script::AnswerForever => {
                                stream.write_all(head).await.unwrap();
                                stream.write_all(b"2\r\nhi\r\n").await.unwrap();
                                let mut rest = [0u8; 1];
                                let _ = stream.read(&mut rest).await;
                                told.notify_one();
                                return;
                            }
                            Script::Silent => {
                                std::future::pending::<()>().await;
                            }
                        }
                    }
                });
            }
        });
        Server {
            url,
            accepted,
            requests,
            left,
        }
    }

    fn client(server: &Server) -> H1Client {
        H1Client::new(
            &server.url,
            &reqwest::header::HeaderMap::new(),
            Duration::from_secs(30),
            Duration::from_secs(90),
        )
        .expect("a plain-HTTP client")
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    /// Posts and reads the whole answer.
    async fn ask(client: &H1Client, server: &Server) -> Vec<u8> {
        let mut response = client
            .post_json(&server.url.join("api/chat").unwrap(), b"{}", soon())
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        let mut text = Vec::new();
        while let Some(piece) = response.body.next().await {
            text.extend_from_slice(&piece.unwrap());
        }
        text
    }

    #[tokio::test]
    async fn answers_read_to_their_end_share_one_connection() {
        let server = serve(Script::Answer).await;
        let client = client(&server);
        for _ in 0..3 {
            assert_eq!(ask(&client, &server).await, b"hi");
        }
        assert_eq!(server.requests.load(Ordering::SeqCst), 3);
        assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_replaced_without_the_caller_noticing() {
        let server = serve(Script::AnswerThenClose).await;
        let client = client(&server);
        assert_eq!(ask(&client, &server).await, b"hi");
        // Whether the close is seen before the request is written or after,
        // the answer comes from a new connection.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(ask(&client, &server).await, b"hi");
        assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_request_a_kept_connection_dropped_unanswered_is_sent_again_on_a_new_one() {
        let server = serve(Script::AnswerOnceThenDropTheNext).await;
        let client = client(&server);
        assert_eq!(ask(&client, &server).await, b"hi");
        assert_eq!(ask(&client, &server).await, b"hi");
        assert_eq!(server.requests.load(Ordering::SeqCst), 3);
        assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_released_answer_keeps_its_connection_once_its_last_chunk_arrives() {
        let server = serve(Script::AnswerSlowlyEnding).await;
        let client = client(&server);
        for _ in 0..2 {
            let mut response = client
                .post_json(&server.url.join("api/chat").unwrap(), b"{}", soon())
                .await
                .unwrap();
            assert_eq!(&response.body.next().await.unwrap().unwrap()[..], b"hi");
            // The answer's last message was read: the rest is not awaited.
            response.body.release();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(server.requests.load(Ordering::SeqCst), 2);
        assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_answer_dropped_before_its_end_closes_its_connection() {
        let server = serve(Script::AnswerForever).await;
        let client = client(&server);
        let mut response = client
            .post_json(&server.url.join("api/chat").unwrap(), b"{}", soon())
            .await
            .unwrap();
        assert_eq!(&response.body.next().await.unwrap().unwrap()[..], b"hi");
        let left = server.left.notified();
        drop(response);
        tokio::time::timeout(Duration::from_secs(1), left)
            .await
            .expect("the server sees the client leave");
        assert!(client.pool.take().is_none());
    }

    #[tokio::test]
    async fn no_head_before_the_deadline_is_a_timeout_and_no_server_a_refusal() {
        let server = serve(Script::Silent).await;
        let client = client(&server);
        let url = server.url.join("api/chat").unwrap();
        let deadline = Instant::now() + Duration::from_millis(100);
        let error = client.post_json(&url, b"{}", deadline).await.unwrap_err();
        assert!(matches!(error, H1Error::TimedOut), "{error:?}");

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}/", closed.local_addr().unwrap())).unwrap();
        drop(closed);
        let client = H1Client::new(
            &url,
            &reqwest::header::HeaderMap::new(),
            Duration::from_secs(30),
            Duration::from_secs(90),
        )
        .unwrap();
        let error = client.post_json(&url, b"{}", soon()).await.unwrap_err();
        assert!(
            matches!(&error, H1Error::Connect(io) if io.kind() == io::ErrorKind::ConnectionRefused),
            "{error:?}"
        );
    }

    #[test]
    fn the_request_carries_the_host_the_headers_and_the_body() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("authorization", "Bearer k".parse().unwrap());
        let base = Url::parse("http://gpu-1:8000/v1/").unwrap();
        let client = H1Client::new(
            &base,
            &headers,
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap();
        let request = client.request(&base.join("chat/completions?x=1").unwrap(), b"{\"a\":1}");
        assert_eq!(
            String::from_utf8(request).unwrap(),
            "POST /v1/chat/completions?x=1 HTTP/1.1\r\nhost: gpu-1:8000\r\nauthorization: Bearer k\r\n\
             content-type: application/json\r\naccept: */*\r\ncontent-length: 7\r\n\r\n{\"a\":1}"
        );
        assert!(
            H1Client::new(
                &Url::parse("https://api.example/v1/").unwrap(),
                &headers,
                Duration::from_secs(1),
                Duration::from_secs(1)
            )
            .is_none(),
            "https stays with reqwest"
        );
    }
}
