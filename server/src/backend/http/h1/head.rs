//! A response head: its status, and how the body after it is framed.

use bytes::{Buf, BytesMut};

use super::H1Error;

/// What a response head says about the body that follows it.
#[derive(Debug)]
pub(super) struct Head {
    pub status: u16,
    pub framing: Framing,
    /// The connection may carry another request after this body.
    pub reusable: bool,
}

/// How a body's end is known (RFC 9112, section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Chunked(Chunked),
    Length(u64),
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunked {
    /// Reading a chunk-size line.
    Size,
    /// Inside a chunk's data, with this much left.
    Data(u64),
    /// After a chunk's data, before its CRLF.
    DataEnd,
    /// After the last (empty) chunk: trailer lines until an empty one.
    Trailers,
}

/// Parses a complete head off the front of `buffer`; `None` until it is
/// all there. Interim (1xx) responses are skipped.
pub(super) fn parse_head(buffer: &mut BytesMut) -> Result<Option<Head>, H1Error> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        let length = match response.parse(buffer) {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(H1Error::Malformed("not an HTTP/1.x response")),
        };
        let status = response.code.unwrap_or(0);
        if (100..200).contains(&status) && status != 101 {
            buffer.advance(length);
            continue;
        }
        let mut reusable = response.version == Some(1);
        let mut chunked = false;
        let mut transfer_encoded = false;
        let mut content_length = None;
        for header in response.headers.iter() {
            let value = std::str::from_utf8(header.value)
                .map_err(|_| H1Error::Malformed("a header that is not text"))?;
            if header.name.eq_ignore_ascii_case("transfer-encoding") {
                transfer_encoded = true;
                // Only the last coding frames the body.
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            } else if header.name.eq_ignore_ascii_case("content-length") {
                let length: u64 = value
                    .trim()
                    .parse()
                    .map_err(|_| H1Error::Malformed("an unreadable content-length"))?;
                if content_length.is_some_and(|seen| seen != length) {
                    return Err(H1Error::Malformed("two different content-lengths"));
                }
                content_length = Some(length);
            } else if header.name.eq_ignore_ascii_case("connection")
                && value
                    .split(',')
                    .any(|option| option.trim().eq_ignore_ascii_case("close"))
            {
                reusable = false;
            }
        }
        let framing = if matches!(status, 204 | 304) {
            Framing::Length(0)
        } else if chunked {
            Framing::Chunked(Chunked::Size)
        } else if transfer_encoded {
            Framing::UntilClose
        } else if let Some(length) = content_length {
            Framing::Length(length)
        } else {
            Framing::UntilClose
        };
        if framing == Framing::UntilClose {
            reusable = false;
        }
        buffer.advance(length);
        return Ok(Some(Head {
            status,
            framing,
            reusable,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(wire: &str) -> Option<Head> {
        let mut buffer = BytesMut::from(wire.as_bytes());
        parse_head(&mut buffer).unwrap()
    }

    #[test]
    fn a_head_is_read_once_it_is_all_there_and_interim_answers_are_skipped() {
        assert!(head("HTTP/1.1 200 OK\r\ncontent-le").is_none());
        let mut buffer = BytesMut::from(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"[..],
        );
        let parsed = parse_head(&mut buffer).unwrap().unwrap();
        assert_eq!(parsed.status, 200);
        assert_eq!(parsed.framing, Framing::Length(2));
        assert!(parsed.reusable);
        assert_eq!(&buffer[..], b"hi", "the body stays in the buffer");
    }

    #[test]
    fn the_framing_follows_the_rules_of_http_1_1() {
        let framing = |wire: &str| head(wire).unwrap().framing;
        let chunked = Framing::Chunked(Chunked::Size);
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            chunked
        );
        // Transfer-Encoding wins over a Content-Length (a request smuggler's trick).
        assert_eq!(
            framing(
                "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: gzip, chunked\r\n\r\n"
            ),
            chunked
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n"),
            Framing::UntilClose
        );
        assert_eq!(framing("HTTP/1.1 200 OK\r\n\r\n"), Framing::UntilClose);
        assert_eq!(
            framing("HTTP/1.1 204 No Content\r\n\r\n"),
            Framing::Length(0)
        );
    }

    #[test]
    fn a_connection_is_kept_only_where_http_allows_it() {
        let reusable = |wire: &str| head(wire).unwrap().reusable;
        assert!(reusable("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
        assert!(!reusable(
            "HTTP/1.1 200 OK\r\nconnection: keep-alive, Close\r\ncontent-length: 0\r\n\r\n"
        ));
        assert!(!reusable("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n"));
        assert!(!reusable("HTTP/1.1 200 OK\r\n\r\n"), "ends when it closes");
    }

    #[test]
    fn what_is_not_http_is_refused() {
        for wire in [
            "SSH-2.0-OpenSSH_9.6\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
        ] {
            let mut buffer = BytesMut::from(wire.as_bytes());
            assert!(
                matches!(parse_head(&mut buffer), Err(H1Error::Malformed(_))),
                "{wire:?}"
            );
        }
    }
}
