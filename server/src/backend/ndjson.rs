//! Splits a byte stream into the lines of newline-delimited JSON, however
//! the network happened to cut it.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Accumulates body chunks and hands out complete lines.
///
/// A line that lies within one chunk is handed out as a slice of that chunk,
/// with no copy (most lines, as Ollama writes one line per chunk); only the
/// start of a line cut by a chunk boundary is copied aside.
#[derive(Debug, Default)]
pub struct LineBuffer {
    /// What is left of the latest chunk.
    current: Bytes,
    /// The beginning of a line whose end has not arrived yet; it comes
    /// before `current` and holds no newline.
    partial: BytesMut,
}

impl LineBuffer {
    /// Adds the next chunk of the stream.
    pub fn push(&mut self, chunk: Bytes) {
        if self.current.is_empty() {
            self.current = chunk;
        } else {
            // Lines still unread: keep them ahead of the new chunk.
            let mut joined = BytesMut::with_capacity(self.current.len() + chunk.len());
            joined.put(std::mem::take(&mut self.current));
            joined.put(chunk);
            self.current = joined.freeze();
        }
    }

    /// The next complete line, without its `\n` (or `\r\n`). Blank lines are skipped.
    pub fn next_line(&mut self) -> Option<Bytes> {
        loop {
            let Some(end) = memchr::memchr(b'\n', &self.current) else {
                let rest = std::mem::take(&mut self.current);
                self.partial.put(rest);
                return None;
            };
            let mut line = if self.partial.is_empty() {
                self.current.split_to(end)
            } else {
                self.partial.put(self.current.split_to(end));
                self.partial.split().freeze()
            };
            self.current.advance(1);
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Some(line);
            }
        }
    }

    /// What is left once the stream has ended: a last line with no newline.
    pub fn finish(&mut self) -> Option<Bytes> {
        let current = std::mem::take(&mut self.current);
        self.partial.put(current);
        let rest = self.partial.split().freeze();
        if rest.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(rest)
        }
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.current.is_empty() && self.partial.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(buffer: &mut LineBuffer) -> Vec<String> {
        std::iter::from_fn(|| buffer.next_line())
            .map(|line| String::from_utf8(line.to_vec()).unwrap())
            .collect()
    }

    fn push(buffer: &mut LineBuffer, chunk: &'static [u8]) {
        buffer.push(Bytes::from_static(chunk));
    }

    #[test]
    fn lines_split_across_chunks_come_out_whole() {
        let mut buffer = LineBuffer::default();
        push(&mut buffer, b"{\"a\":");
        assert!(lines(&mut buffer).is_empty());
        push(&mut buffer, b"1}\n{\"b\":2}\r\n\n{\"c\"");
        assert_eq!(lines(&mut buffer), ["{\"a\":1}", "{\"b\":2}"]);
        push(&mut buffer, b":3}");
        assert!(lines(&mut buffer).is_empty());
        assert_eq!(buffer.finish().as_deref(), Some(&b"{\"c\":3}"[..]));
        assert!(buffer.is_empty());
    }

    #[test]
    fn a_line_cut_into_many_pieces_comes_out_once() {
        let mut buffer = LineBuffer::default();
        for piece in [&b"{\"res"[..], b"ponse\":", b"\"x\"", b"}"] {
            buffer.push(Bytes::copy_from_slice(piece));
            assert!(lines(&mut buffer).is_empty());
        }
        push(&mut buffer, b"\r\n{}\n");
        assert_eq!(lines(&mut buffer), ["{\"response\":\"x\"}", "{}"]);
        assert!(buffer.is_empty());
    }

    #[test]
    fn pushing_before_the_last_chunk_is_read_loses_nothing() {
        let mut buffer = LineBuffer::default();
        push(&mut buffer, b"{\"a\":1}\n{\"b\"");
        push(&mut buffer, b":2}\n");
        assert_eq!(lines(&mut buffer), ["{\"a\":1}", "{\"b\":2}"]);
    }

    #[test]
    fn a_trailing_newline_leaves_nothing_to_finish() {
        let mut buffer = LineBuffer::default();
        push(&mut buffer, b"{}\n");
        assert_eq!(lines(&mut buffer), ["{}"]);
        assert_eq!(buffer.finish(), None);
    }
}
