//! Rendering a growing answer: blocks that no later text can change are
//! rendered once and handed out; only the tail after them is parsed again.

use super::blocks;
use super::tree::Node;

/// A finished block: rendered once, never touched again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Unique within one answer, in order: a key for the page's list.
    pub id: u64,
    pub nodes: Vec<Node>,
}

/// What changed since the last update.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// The blocks shown so far are to be dropped first (the text was
    /// replaced, or it turned out to hold a reference that reaches back).
    pub reset: bool,
    /// Blocks finished by this update, to append after the earlier ones.
    pub finished: Vec<Block>,
    /// Everything after the finished blocks, as it reads now.
    pub tail: Vec<Node>,
}

/// The state of one answer's rendering.
#[derive(Debug, Default)]
pub struct Incremental {
    /// Bytes of the text rendered into finished blocks.
    finished_len: usize,
    /// The text seen last, to tell a grown answer from a replaced one.
    seen: String,
    next_id: u64,
    /// The answer holds references that reach back: re-parsed whole.
    whole: bool,
}

impl Incremental {
    pub fn new() -> Self {
        Self::default()
    }

    /// Renders `text`. When it extends the text of the last call, the
    /// blocks handed out then stay as they are.
    pub fn update(&mut self, text: &str, streaming: bool) -> Update {
        let mut reset = false;
        if !text.starts_with(self.seen.as_str()) {
            // Another text (a regenerated answer, another branch).
            reset = self.finished_len > 0;
            *self = Self {
                next_id: self.next_id,
                ..Self::default()
            };
        }
        self.seen.clear();
        self.seen.push_str(text);
        if !self.whole && blocks::reaches_back(&text[self.finished_len..]) {
            self.whole = true;
            reset |= self.finished_len > 0;
            self.finished_len = 0;
        }
        if self.whole {
            return Update {
                reset,
                finished: Vec::new(),
                tail: blocks::render_tail(text, streaming),
            };
        }

        let rest = &text[self.finished_len..];
        let parsed = blocks::parse(rest);
        let count = if streaming {
            blocks::final_count(rest, &parsed)
        } else {
            // A finished answer: every block is final.
            parsed.len()
        };
        // From the start of the line: a block's range begins after its
        // indentation, which is part of it (four spaces make code).
        let tail_start = parsed.get(count).map_or(rest.len(), |block| {
            rest[..block.range.start]
                .rfind('\n')
                .map_or(0, |newline| newline + 1)
        });
        let finished: Vec<Block> = parsed
            .into_iter()
            .take(count)
            .map(|block| {
                self.next_id += 1;
                Block {
                    id: self.next_id,
                    nodes: block.nodes,
                }
            })
            .collect();
        let tail = blocks::render_tail(&rest[tail_start..], streaming);
        self.finished_len += tail_start;
        Update {
            reset,
            finished,
            tail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tree::to_html;
    use super::*;

    /// Real answers in the shapes that trip streaming renderers: tables,
    /// nested lists, setext headings, numbered lines, fences.
    const CORPUS: [(&str, &str); 5] = [
        ("code", include_str!("corpus/code.md")),
        ("table", include_str!("corpus/table.md")),
        ("lists", include_str!("corpus/lists.md")),
        ("setext", include_str!("corpus/setext.md")),
        ("numbered", include_str!("corpus/numbered.md")),
    ];

    /// What the page shows after an update: the finished blocks, then the tail.
    fn shown(finished: &[Block], tail: &[Node]) -> String {
        let mut nodes: Vec<Node> = finished.iter().flat_map(|b| b.nodes.clone()).collect();
        nodes.extend_from_slice(tail);
        to_html(&nodes)
    }

    #[test]
    fn every_prefix_renders_as_a_fresh_full_render_would() {
        for (name, answer) in CORPUS {
            let mut renderer = Incremental::new();
            let mut finished: Vec<Block> = Vec::new();
            let mut most_finished = 0;
            for (end, _) in answer.char_indices().skip(1).chain([(answer.len(), ' ')]) {
                let prefix = &answer[..end];
                let update = renderer.update(prefix, true);
                assert!(!update.reset, "{name}: a growing answer never starts over");
                finished.extend(update.finished);
                most_finished = most_finished.max(finished.len());
                assert_eq!(
                    shown(&finished, &update.tail),
                    to_html(&super::super::render(prefix, true)),
                    "{name}, after {end} bytes: {prefix:?}"
                );
            }
            let last = renderer.update(answer, false);
            finished.extend(last.finished);
            assert_eq!(
                shown(&finished, &last.tail),
                to_html(&super::super::render(answer, false)),
                "{name}, finished"
            );
            assert!(
                last.tail.is_empty(),
                "{name}: a finished answer is all blocks"
            );
            // The point of it all: most of a long answer is not re-parsed.
            assert!(
                most_finished >= 3,
                "{name}: only {most_finished} blocks finished"
            );
        }
    }

    #[test]
    fn ids_are_unique_and_in_order() {
        let mut renderer = Incremental::new();
        let text = "a\n\nb\n\nc\n\nd\n\ne\n\nf";
        let mut ids = Vec::new();
        for end in 1..=text.len() {
            ids.extend(
                renderer
                    .update(&text[..end], true)
                    .finished
                    .into_iter()
                    .map(|b| b.id),
            );
        }
        ids.extend(
            renderer
                .update(text, false)
                .finished
                .into_iter()
                .map(|b| b.id),
        );
        assert_eq!(ids, (1..=6).collect::<Vec<_>>());
    }

    #[test]
    fn a_replaced_text_starts_over() {
        let mut renderer = Incremental::new();
        renderer.update("one\n\ntwo\n\nthree\n\nfour", true);
        let update = renderer.update("other", true);
        assert!(update.reset);
        assert_eq!(to_html(&update.tail), "<p>other</p>");
    }

    #[test]
    fn a_reference_definition_re_renders_the_whole_answer() {
        let mut renderer = Incremental::new();
        let start = "See [the docs][d].\n\nMore.\n\nAnd more.\n\n";
        let first = renderer.update(start, true);
        assert_eq!(first.finished.len(), 1);
        let text = format!("{start}[d]: https://example.com\n");
        let update = renderer.update(&text, true);
        assert!(update.reset);
        assert!(update.finished.is_empty());
        assert!(
            to_html(&update.tail).contains("<a href=\"https://example.com\""),
            "{}",
            to_html(&update.tail)
        );
    }

    #[test]
    fn a_reference_definition_in_a_list_or_quote_re_renders_the_whole_answer() {
        for definition in [
            "- [d]: https://example.com",
            "1. [d]: https://example.com",
            "> - [d]: https://example.com",
        ] {
            let mut renderer = Incremental::new();
            let start = "See [the docs][d].\n\nMore.\n\nAnd more.\n\n";
            assert_eq!(renderer.update(start, true).finished.len(), 1);
            let update = renderer.update(&format!("{start}{definition}\n"), true);
            assert!(update.reset, "{definition}");
            assert!(
                to_html(&update.tail).contains("<a href=\"https://example.com\""),
                "{definition}: {}",
                to_html(&update.tail)
            );
        }
    }
}
