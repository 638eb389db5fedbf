//! Server-Sent Events read from a `fetch` body: the browser's `EventSource`
//! only issues GETs, and a pull is a POST, so its frames are parsed here
//! from the bytes as they arrive.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The `event:` name; none for a plain `data:` frame (a message).
    pub event: Option<String>,
    /// Its `data:` lines, joined by newlines.
    pub data: String,
}

/// Splits a byte stream into frames; a frame or a UTF-8 character cut
/// between two chunks waits for the rest.
#[derive(Debug, Default)]
pub struct FrameReader {
    pending: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl FrameReader {
    /// The frames `chunk` completes, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Frame> {
        self.pending.extend_from_slice(chunk);
        let mut frames = Vec::new();
        let mut start = 0;
        while let Some(end) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = &self.pending[start..start + end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = String::from_utf8_lossy(line).into_owned();
            start += end + 1;
            if let Some(frame) = self.line(&line) {
                frames.push(frame);
            }
        }
        self.pending.drain(..start);
        frames
    }

    fn line(&mut self, line: &str) -> Option<Frame> {
        if line.is_empty() {
            let data = self.data.take();
            let event = self.event.take();
            // A blank line with no data dispatches nothing (as EventSource).
            return data.map(|data| Frame { event, data });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(event: Option<&str>, data: &str) -> Frame {
        Frame {
            event: event.map(str::to_string),
            data: data.to_string(),
        }
    }

    #[test]
    fn frames_are_dispatched_at_blank_lines_whatever_the_chunking() {
        let stream = "data: {\"status\":\"pulling manifest\"}\n\n: keep-alive\n\n\
                      event: done\ndata: {\"status\":\"success\"}\n\n";
        let whole = FrameReader::default().push(stream.as_bytes());
        assert_eq!(
            whole,
            [
                frame(None, "{\"status\":\"pulling manifest\"}"),
                frame(Some("done"), "{\"status\":\"success\"}"),
            ]
        );
        // Byte by byte gives the same frames.
        let mut reader = FrameReader::default();
        let split: Vec<Frame> = stream
            .as_bytes()
            .iter()
            .flat_map(|byte| reader.push(std::slice::from_ref(byte)))
            .collect();
        assert_eq!(split, whole);
    }

    #[test]
    fn crlf_lines_multiline_data_and_a_character_cut_in_two_are_read() {
        let mut reader = FrameReader::default();
        let text = "event: error\r\ndata: a\r\ndata: caf\u{e9}\r\n\r\n".as_bytes();
        let cut = text.len() - 5; // inside the two bytes of é
        assert!(reader.push(&text[..cut]).is_empty());
        assert_eq!(reader.push(&text[cut..]), [frame(Some("error"), "a\ncafé")]);
    }

    #[test]
    fn an_event_without_data_dispatches_nothing() {
        let mut reader = FrameReader::default();
        assert!(reader.push(b"event: done\n\n").is_empty());
        assert_eq!(reader.push(b"data: x\n\n"), [frame(None, "x")]);
    }
}
