//! A response body, decoded in place as its bytes arrive.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;
use tokio::net::TcpStream;

use super::head::{Chunked, Framing};
use super::pool::Pool;
use super::{H1Error, READ_SIZE};

/// The longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4 * 1024;
/// How long a finished answer may take to send its last bytes (the final
/// empty chunk) so that its connection can be kept.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
/// The most a finished answer may still send and be drained for reuse.
const DRAIN_LIMIT: usize = 64 * 1024;

/// A response body as it arrives: each read's data handed out as slices of
/// the read buffer. Dropping it before its end closes the connection.
#[derive(Debug)]
pub struct H1Body {
    pub(super) stream: Option<TcpStream>,
    /// Read but not yet decoded.
    pub(super) buffer: BytesMut,
    pub(super) framing: Framing,
    pub(super) reusable: bool,
    pub(super) pool: Arc<Pool>,
    pub(super) ended: bool,
}

impl H1Body {
    /// The next piece of data already read, if any; ends the body when its
    /// framing says so.
    fn decode(&mut self) -> Result<Option<Bytes>, H1Error> {
        loop {
            match &mut self.framing {
                Framing::Length(left) => {
                    if *left == 0 {
                        self.end();
                        return Ok(None);
                    }
                    if self.buffer.is_empty() {
                        return Ok(None);
                    }
                    let take = self
                        .buffer
                        .len()
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    *left -= take as u64;
                    return Ok(Some(self.buffer.split_to(take).freeze()));
                }
                Framing::UntilClose => {
                    if self.buffer.is_empty() {
                        return Ok(None);
                    }
                    return Ok(Some(self.buffer.split().freeze()));
                }
                Framing::Chunked(state) => match *state {
                    Chunked::Size => {
                        let Some((length, used)) = line_at_front(&self.buffer)? else {
                            return Ok(None);
                        };
                        let size = chunk_size(&self.buffer[..length])?;
                        self.buffer.advance(used);
                        *state = if size == 0 {
                            Chunked::Trailers
                        } else {
                            Chunked::Data(size)
                        };
                    }
                    Chunked::Data(left) => {
                        if self.buffer.is_empty() {
                            return Ok(None);
                        }
                        let take = self
                            .buffer
                            .len()
                            .min(usize::try_from(left).unwrap_or(usize::MAX));
                        let left = left - take as u64;
                        *state = if left == 0 {
                            Chunked::DataEnd
                        } else {
                            Chunked::Data(left)
                        };
                        return Ok(Some(self.buffer.split_to(take).freeze()));
                    }
                    Chunked::DataEnd => {
                        let Some((length, used)) = line_at_front(&self.buffer)? else {
                            return Ok(None);
                        };
                        if length != 0 {
                            return Err(H1Error::Malformed("chunk longer than its size"));
                        }
                        self.buffer.advance(used);
                        *state = Chunked::Size;
                    }
                    Chunked::Trailers => {
                        let Some((length, used)) = line_at_front(&self.buffer)? else {
                            return Ok(None);
                        };
                        self.buffer.advance(used);
                        if length == 0 {
                            self.end();
                            return Ok(None);
                        }
                    }
                },
            }
        }
    }

    /// The body is over: its connection goes back to the pool if it can
    /// carry another request.
    fn end(&mut self) {
        self.ended = true;
        if let Some(stream) = self.stream.take()
            && self.reusable
            && self.buffer.is_empty()
        {
            self.pool.put(stream);
        }
    }

    /// Ends a body that is known to be over without reading further.
    pub(super) fn settle(&mut self) {
        if matches!(self.framing, Framing::Length(0)) {
            self.end();
        }
    }

    /// Called once the answer's last message has been read: what is left
    /// of the body (the final empty chunk, usually) is read in the
    /// background, briefly, so the connection can carry the next request.
    pub fn release(mut self) {
        loop {
            match self.decode() {
                Ok(Some(_)) => continue,
                Ok(None) if self.ended => return,
                Ok(None) => break,
                Err(_) => return,
            }
        }
        // A connection that cannot be kept is simply closed.
        if !self.reusable || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        tokio::spawn(async move {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, self.drain()).await;
        });
    }

    /// Reads the rest of the body (a little at most) and throws it away.
    async fn drain(&mut self) {
        let mut drained = 0;
        while let Some(Ok(data)) =
            std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
        {
            drained += data.len();
            if drained > DRAIN_LIMIT {
                return;
            }
        }
    }

    /// The whole body, up to `limit` bytes (an error answer's explanation).
    pub async fn collect(mut self, limit: usize) -> Result<Vec<u8>, H1Error> {
        let mut all = Vec::new();
        while let Some(data) = std::future::poll_fn(|cx| Pin::new(&mut self).poll_next(cx)).await {
            all.extend_from_slice(&data?);
            if all.len() >= limit {
                all.truncate(limit);
                break;
            }
        }
        Ok(all)
    }
}

impl Stream for H1Body {
    type Item = Result<Bytes, H1Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match this.decode() {
                Ok(Some(data)) => return Poll::Ready(Some(Ok(data))),
                Ok(None) => {}
                Err(error) => {
                    this.ended = true;
                    this.stream = None;
                    return Poll::Ready(Some(Err(error)));
                }
            }
            if this.ended {
                return Poll::Ready(None);
            }
            let Some(stream) = this.stream.as_mut() else {
                return Poll::Ready(None);
            };
            if this.buffer.capacity() - this.buffer.len() < READ_SIZE / 4 {
                this.buffer.reserve(READ_SIZE);
            }
            match ready!(tokio_util::io::poll_read_buf(
                Pin::new(stream),
                cx,
                &mut this.buffer
            )) {
                Ok(0) => {
                    this.ended = true;
                    this.stream = None;
                    if this.framing == Framing::UntilClose {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err(H1Error::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed before the end of the answer",
                    )))));
                }
                Ok(_) => {}
                Err(error) => {
                    this.ended = true;
                    this.stream = None;
                    return Poll::Ready(Some(Err(H1Error::Io(error))));
                }
            }
        }
    }
}

/// The line at the buffer's front: its length without its line ending
/// (LF, or CRLF), and with it. The lines of chunked framing are a few
/// bytes, so a plain scan beats a vectorised search.
fn line_at_front(buffer: &[u8]) -> Result<Option<(usize, usize)>, H1Error> {
    let Some(end) = buffer.iter().take(MAX_LINE).position(|&b| b == b'\n') else {
        if buffer.len() >= MAX_LINE {
            return Err(H1Error::Malformed("a chunk line too long"));
        }
        return Ok(None);
    };
    let length = if end > 0 && buffer[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    Ok(Some((length, end + 1)))
}

/// A chunk-size line's size: hex digits, then optional whitespace and
/// extensions after `;` (ignored).
fn chunk_size(line: &[u8]) -> Result<u64, H1Error> {
    const UNREADABLE: H1Error = H1Error::Malformed("an unreadable chunk size");
    let mut size: u64 = 0;
    let mut digits = 0;
    for &byte in line {
        let value = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            b'A'..=b'F' => byte - b'A' + 10,
            b';' | b' ' | b'\t' => break,
            _ => return Err(UNREADABLE),
        };
        // Sixteen hex digits fill a u64.
        if digits == 16 {
            return Err(UNREADABLE);
        }
        size = size << 4 | u64::from(value);
        digits += 1;
    }
    if digits == 0 {
        return Err(UNREADABLE);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(framing: Framing) -> H1Body {
        H1Body {
            stream: None,
            buffer: BytesMut::new(),
            framing,
            reusable: true,
            pool: Pool::new(Duration::from_secs(1)),
            ended: false,
        }
    }

    /// Feeds `wire` in pieces cut at `cuts`, decoding after each: the data
    /// handed out, and whether the body ended.
    fn decode_in_pieces(framing: Framing, wire: &[u8], cuts: &[usize]) -> (Vec<u8>, bool) {
        let mut body = body(framing);
        let mut data = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain([&wire.len()]) {
            body.buffer.extend_from_slice(&wire[from..cut]);
            from = cut;
            while let Some(piece) = body.decode().unwrap() {
                data.extend_from_slice(&piece);
            }
        }
        (data, body.ended)
    }

    const CHUNKED: &[u8] =
        b"5\r\nhello\r\n1;name=value\r\n \r\nB\r\n{\"a\":\"b\"}\n\n\r\n0\r\nx-trailer: 1\r\n\r\n";
    const DATA: &[u8] = b"hello {\"a\":\"b\"}\n\n";

    #[test]
    fn a_chunked_body_decodes_the_same_however_its_reads_are_cut() {
        let chunked = Framing::Chunked(Chunked::Size);
        assert_eq!(
            decode_in_pieces(chunked, CHUNKED, &[]),
            (DATA.to_vec(), true)
        );
        for one in 0..CHUNKED.len() {
            assert_eq!(
                decode_in_pieces(chunked, CHUNKED, &[one]),
                (DATA.to_vec(), true),
                "cut at {one}"
            );
            for two in one..CHUNKED.len() {
                assert_eq!(
                    decode_in_pieces(chunked, CHUNKED, &[one, two]),
                    (DATA.to_vec(), true),
                    "cut at {one} and {two}"
                );
            }
        }
        // Until the last chunk's end, the body goes on.
        let unfinished = &CHUNKED[..CHUNKED.len() - 2];
        assert!(!decode_in_pieces(chunked, unfinished, &[]).1);
    }

    #[test]
    fn a_sized_body_ends_at_its_length_and_a_close_delimited_one_never_does() {
        assert_eq!(
            decode_in_pieces(Framing::Length(5), b"hello", &[2]),
            (b"hello".to_vec(), true)
        );
        assert_eq!(
            decode_in_pieces(Framing::Length(5), b"hel", &[]),
            (b"hel".to_vec(), false)
        );
        assert_eq!(
            decode_in_pieces(Framing::UntilClose, b"hello", &[1]),
            (b"hello".to_vec(), false)
        );
    }

    #[test]
    fn a_broken_chunk_is_an_error() {
        for wire in [
            &b"zz\r\nhello\r\n"[..],
            b"2\r\nhello\r\n",
            &[b'1'; MAX_LINE + 1],
        ] {
            let mut body = body(Framing::Chunked(Chunked::Size));
            body.buffer.extend_from_slice(wire);
            let mut outcome = Ok(None);
            for _ in 0..4 {
                outcome = body.decode();
                if !matches!(outcome, Ok(Some(_))) {
                    break;
                }
            }
            assert!(
                matches!(outcome, Err(H1Error::Malformed(_))),
                "{:?}: {outcome:?}",
                String::from_utf8_lossy(&wire[..wire.len().min(20)])
            );
        }
    }
}
