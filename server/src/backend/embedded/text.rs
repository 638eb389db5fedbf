//! From token bytes to text a client can show: whole UTF-8 characters only
//! (a character split across tokens is sent once complete), stop sequences
//! cut out before they reach the client.

/// Assembles token pieces into complete UTF-8 text.
#[derive(Debug, Default)]
pub struct Utf8Assembler {
    pending: Vec<u8>,
}

impl Utf8Assembler {
    /// Adds a token's bytes; returns the text now complete. Bytes that can
    /// never be valid UTF-8 become U+FFFD rather than stalling the stream.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(valid) => {
                    text.push_str(valid);
                    self.pending.clear();
                    return text;
                }
                Err(error) => {
                    let valid_up_to = error.valid_up_to();
                    text.push_str(
                        std::str::from_utf8(&self.pending[..valid_up_to]).expect("checked valid"),
                    );
                    match error.error_len() {
                        // An incomplete character at the end: wait for more.
                        None => {
                            self.pending.drain(..valid_up_to);
                            return text;
                        }
                        Some(invalid) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid_up_to + invalid);
                        }
                    }
                }
            }
        }
    }

    /// What is left at the end: an incomplete character becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

/// Holds back text that might be the start of a stop sequence, and cuts the
/// answer where one appears.
#[derive(Debug, Default)]
pub struct StopFilter {
    stops: Vec<String>,
    held: String,
}

/// What may be sent after a push.
#[derive(Debug, PartialEq, Eq)]
pub struct Filtered {
    pub text: String,
    /// A stop sequence appeared: the answer ends after `text`.
    pub stopped: bool,
}

impl StopFilter {
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|stop| !stop.is_empty()).collect(),
            held: String::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> Filtered {
        self.held.push_str(text);
        let first_stop = self
            .stops
            .iter()
            .filter_map(|stop| self.held.find(stop.as_str()))
            .min();
        if let Some(at) = first_stop {
            let text = self.held[..at].to_string();
            self.held.clear();
            return Filtered {
                text,
                stopped: true,
            };
        }
        // Keep the longest tail that could still grow into a stop sequence.
        let keep = self
            .stops
            .iter()
            .map(|stop| longest_suffix_prefix(&self.held, stop))
            .max()
            .unwrap_or(0);
        let cut = self.held.len() - keep;
        let text = self.held[..cut].to_string();
        self.held.drain(..cut);
        Filtered {
            text,
            stopped: false,
        }
    }

    /// The held-back text, once the answer ended for another reason.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `stop`,
/// on character boundaries.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    let longest = text.len().min(stop.len().saturating_sub(1));
    (1..=longest)
        .rev()
        .find(|&len| {
            let start = text.len() - len;
            text.is_char_boundary(start)
                && stop.is_char_boundary(len)
                && text[start..] == stop[..len]
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_across_tokens_is_sent_whole() {
        let mut text = Utf8Assembler::default();
        let bytes = "é🦀".as_bytes();
        assert_eq!(text.push(&bytes[..1]), "");
        assert_eq!(text.push(&bytes[1..3]), "é");
        assert_eq!(text.push(&bytes[3..5]), "");
        assert_eq!(text.push(&bytes[5..]), "🦀");
        assert_eq!(text.finish(), "");
    }

    #[test]
    fn bytes_that_cannot_be_utf8_do_not_stall_the_stream() {
        let mut text = Utf8Assembler::default();
        assert_eq!(text.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(text.push(b"\xe2\x82"), "");
        assert_eq!(text.finish(), "\u{fffd}");
    }

    #[test]
    fn a_stop_sequence_is_cut_out_even_when_split_across_tokens() {
        let mut filter = StopFilter::new(vec!["\nUser:".into()]);
        let mut sent = String::new();
        let mut stopped = false;
        for piece in ["Paris", " is", " lovely.", "\n", "Us", "er:", " more"] {
            let out = filter.push(piece);
            sent.push_str(&out.text);
            if out.stopped {
                stopped = true;
                break;
            }
        }
        assert!(stopped);
        assert_eq!(sent, "Paris is lovely.");
    }

    #[test]
    fn text_that_only_looks_like_a_stop_start_is_released() {
        let mut filter = StopFilter::new(vec!["\nUser:".into()]);
        assert_eq!(filter.push("a\nU").text, "a");
        assert_eq!(filter.push("nder").text, "\nUnder");
        assert_eq!(filter.push("\n").text, "");
        assert_eq!(filter.finish(), "\n");
    }

    #[test]
    fn without_stops_everything_passes_at_once() {
        let mut filter = StopFilter::new(Vec::new());
        assert_eq!(
            filter.push("anything"),
            Filtered {
                text: "anything".into(),
                stopped: false
            }
        );
    }
}
