//! Splits a byte stream into the lines of newline-delimited JSON, however
//! the network happened to cut it.

use bytes::{Buf, Bytes, BytesMut};

/// Accumulates body chunks and hands out complete lines.
#[derive(Debug, Default)]
pub struct LineBuffer {
    pending: BytesMut,
    /// How far `pending` has been searched for a newline already, so a long
    /// line arriving in many small chunks is scanned once, not once per chunk.
    scanned: usize,
}

impl LineBuffer {
    pub fn push(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
    }

    /// The next complete line, without its `\n` (or `\r\n`). Blank lines are skipped.
    pub fn next_line(&mut self) -> Option<Bytes> {
        loop {
            let Some(offset) = self.pending[self.scanned..]
                .iter()
                .position(|&b| b == b'\n')
            else {
                self.scanned = self.pending.len();
                return None;
            };
            let end = self.scanned + offset;
            let mut line = self.pending.split_to(end + 1).freeze();
            self.scanned = 0;
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Some(line);
            }
        }
    }

    /// What is left once the stream has ended: a last line with no newline.
    pub fn finish(&mut self) -> Option<Bytes> {
        self.scanned = 0;
        let rest = std::mem::take(&mut self.pending).freeze();
        if rest.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(rest)
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.pending.has_remaining()
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

    #[test]
    fn lines_split_across_chunks_come_out_whole() {
        let mut buffer = LineBuffer::default();
        buffer.push(b"{\"a\":");
        assert!(lines(&mut buffer).is_empty());
        buffer.push(b"1}\n{\"b\":2}\r\n\n{\"c\"");
        assert_eq!(lines(&mut buffer), ["{\"a\":1}", "{\"b\":2}"]);
        buffer.push(b":3}");
        assert!(lines(&mut buffer).is_empty());
        assert_eq!(buffer.finish().as_deref(), Some(&b"{\"c\":3}"[..]));
        assert!(buffer.is_empty());
    }

    #[test]
    fn a_trailing_newline_leaves_nothing_to_finish() {
        let mut buffer = LineBuffer::default();
        buffer.push(b"{}\n");
        assert_eq!(lines(&mut buffer), ["{}"]);
        assert_eq!(buffer.finish(), None);
    }
}
