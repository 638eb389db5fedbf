//! Reasoning written into the text: models that think without an upstream
//! parser for it (an embedded Qwen3 or DeepSeek-R1 GGUF, or such a model
//! behind an Ollama that does not know its template) open their answer with
//! `<think>…</think>`. [`ThinkTags`] turns that opening into reasoning
//! events, so every client sees reasoning one way whatever produced it.
//!
//! Only an answer that *starts* with the tag (after white space) is read
//! this way: a `<think>` later in an answer is text like any other. Text is
//! held back only while it could still be part of a tag: an answer's first
//! token waits only when it is white space or the first characters of
//! `<think>`, and a thought only when it ends in the first characters of
//! `</think>`; everything else passes the moment it arrives.

use super::StreamEvent;

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// Where the answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing but white space so far: the answer may still open a tag.
    Opening,
    /// Inside `<think>`: text is reasoning until `</think>`.
    Thinking,
    /// Just after `</think>`: the white space before the answer is dropped.
    Closed,
    /// The answer proper: text passes as it comes.
    Answer,
}

/// Splits `<think>…</think>` at the start of an answer into reasoning.
#[derive(Debug)]
pub struct ThinkTags {
    phase: Phase,
    /// Text that may be the start of a tag, not given out yet.
    held: String,
}

impl Default for ThinkTags {
    fn default() -> Self {
        Self {
            phase: Phase::Opening,
            held: String::new(),
        }
    }
}

impl ThinkTags {
    /// Whether every event from now on passes unchanged.
    pub fn is_passing(&self) -> bool {
        self.phase == Phase::Answer && self.held.is_empty()
    }

    /// A backend reported reasoning itself: it has its own parser, so the
    /// text is never read for tags.
    pub fn reasoning_reported(&mut self) {
        if self.phase == Phase::Opening {
            self.phase = Phase::Answer;
        }
    }

    /// Reads one token's text; what can be given out goes to `out`.
    pub fn push(&mut self, token: String, out: &mut impl FnMut(StreamEvent)) {
        if self.is_passing() {
            return out(StreamEvent::Token(token));
        }
        // Most answers: a first token that cannot begin a tag goes on as it
        // is, with no copy (it is the one the time to first token waits for).
        let plain_start = |text: &str| {
            !text.is_empty() && !text.starts_with(|c: char| c.is_whitespace() || c == '<')
        };
        if self.phase == Phase::Opening && self.held.is_empty() && plain_start(&token) {
            self.phase = Phase::Answer;
            return out(StreamEvent::Token(token));
        }
        let mut text = std::mem::take(&mut self.held);
        text.push_str(&token);
        let mut rest = text.as_str();
        loop {
            match self.phase {
                Phase::Opening => {
                    let trimmed = rest.trim_start();
                    if let Some(thought) = trimmed.strip_prefix(OPEN) {
                        self.phase = Phase::Thinking;
                        rest = thought;
                    } else if trimmed.is_empty() || OPEN.starts_with(trimmed) {
                        // Still undecided: keep it all (white space included,
                        // in case it turns out to be the answer's).
                        self.held.push_str(rest);
                        return;
                    } else {
                        self.phase = Phase::Answer;
                    }
                }
                Phase::Thinking => match rest.find(CLOSE) {
                    Some(at) => {
                        if at > 0 {
                            out(StreamEvent::Thinking(rest[..at].to_string()));
                        }
                        self.phase = Phase::Closed;
                        rest = &rest[at + CLOSE.len()..];
                    }
                    None => {
                        let keep = partial_suffix(rest, CLOSE);
                        let (thought, held) = rest.split_at(rest.len() - keep);
                        if !thought.is_empty() {
                            out(StreamEvent::Thinking(thought.to_string()));
                        }
                        self.held.push_str(held);
                        return;
                    }
                },
                Phase::Closed => {
                    rest = rest.trim_start();
                    if rest.is_empty() {
                        return;
                    }
                    self.phase = Phase::Answer;
                }
                Phase::Answer => {
                    if !rest.is_empty() {
                        out(StreamEvent::Token(rest.to_string()));
                    }
                    return;
                }
            }
        }
    }

    /// The answer ended: text still held is given out as what it was.
    pub fn finish(&mut self, out: &mut impl FnMut(StreamEvent)) {
        let held = std::mem::take(&mut self.held);
        match self.phase {
            Phase::Thinking if !held.is_empty() => out(StreamEvent::Thinking(held)),
            Phase::Opening if !held.trim().is_empty() => out(StreamEvent::Token(held)),
            _ => {}
        }
        self.phase = Phase::Answer;
    }
}

/// The length of the longest end of `text` that `tag` starts with.
fn partial_suffix(text: &str, tag: &str) -> usize {
    (1..tag.len().min(text.len() + 1))
        .rev()
        .find(|&len| text.is_char_boundary(text.len() - len) && text.ends_with(&tag[..len]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds the tokens through and names each output.
    fn split(tokens: &[&str]) -> Vec<(char, String)> {
        let mut tags = ThinkTags::default();
        let mut events = Vec::new();
        let mut out = |event| {
            events.push(match event {
                StreamEvent::Thinking(text) => ('r', text),
                StreamEvent::Token(text) => ('a', text),
                StreamEvent::Done(_) => unreachable!(),
            })
        };
        for token in tokens {
            tags.push(token.to_string(), &mut out);
        }
        tags.finish(&mut out);
        events
    }

    fn joined(events: &[(char, String)], kind: char) -> String {
        events
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, text)| text.as_str())
            .collect()
    }

    #[test]
    fn an_answer_without_tags_passes_unchanged_and_at_once() {
        assert_eq!(
            split(&["Hello", " world"]),
            [('a', "Hello".into()), ('a', " world".into())]
        );
    }

    #[test]
    fn a_leading_think_block_becomes_reasoning() {
        let events = split(&[
            "<think>",
            "Paris is",
            " the capital.",
            "</think>",
            "\n\n",
            "Paris.",
        ]);
        assert_eq!(
            events,
            [
                ('r', "Paris is".into()),
                ('r', " the capital.".into()),
                ('a', "Paris.".into())
            ]
        );
    }

    #[test]
    fn tags_split_across_tokens_are_found() {
        for tokens in [
            &["<th", "ink>hm", "m</th", "ink> ok"][..],
            &["  <", "think", ">", "hmm<", "/", "think>", "ok"][..],
            &["<think>hmm</think>ok"][..],
        ] {
            let events = split(tokens);
            assert_eq!(joined(&events, 'r'), "hmm", "{tokens:?}");
            assert_eq!(joined(&events, 'a').trim(), "ok", "{tokens:?}");
        }
    }

    #[test]
    fn only_an_opening_tag_counts() {
        let events = split(&["Use", " <think>", " tags</think>"]);
        assert_eq!(joined(&events, 'a'), "Use <think> tags</think>");
        assert_eq!(joined(&events, 'r'), "");
        // Text that merely starts like a tag is the answer, and is not lost.
        assert_eq!(split(&["<th", "ese>"]), [('a', "<these>".into())]);
        assert_eq!(split(&["<"]), [('a', "<".into())]);
    }

    #[test]
    fn reasoning_cut_short_is_kept() {
        let events = split(&["<think>", "still thinking</th"]);
        assert_eq!(joined(&events, 'r'), "still thinking</th");
        assert_eq!(joined(&events, 'a'), "");
    }

    #[test]
    fn reasoning_keeps_multibyte_text_whole() {
        let events = split(&["<think>é", "…</think>ü"]);
        assert_eq!(joined(&events, 'r'), "é…");
        assert_eq!(joined(&events, 'a'), "ü");
    }
}
