//! Splitting text into its top-level blocks, telling which of them no later
//! text can change, and showing a still-growing last block as if its open
//! inline markers were closed.

use std::ops::Range;

use pulldown_cmark::{Event, Options, Parser};

use super::tree::{Node, TreeBuilder};

/// CommonMark plus GFM's tables, strikethrough, task lists and footnotes
/// (GFM's autolinks are done on text nodes: the parser has none).
fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
}

/// One top-level block: where it is in the text, and its nodes.
#[derive(Debug)]
pub struct ParsedBlock {
    pub range: Range<usize>,
    pub nodes: Vec<Node>,
}

/// The top-level blocks of `text`, in order.
pub fn parse(text: &str) -> Vec<ParsedBlock> {
    let mut blocks = Vec::new();
    let mut depth = 0usize;
    let mut current: Option<(usize, TreeBuilder)> = None;
    for (event, range) in Parser::new_ext(text, options()).into_offset_iter() {
        let builder = &mut current
            .get_or_insert_with(|| (range.start, TreeBuilder::default()))
            .1;
        match &event {
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
        builder.event(event);
        if depth == 0 {
            let (start, builder) = current.take().expect("a block is open");
            blocks.push(ParsedBlock {
                range: start..range.end,
                nodes: builder.finish(),
            });
        }
    }
    if let Some((start, builder)) = current {
        blocks.push(ParsedBlock {
            range: start..text.len(),
            nodes: builder.finish(),
        });
    }
    blocks
}

/// How many of `blocks` (from the first) no text appended later can change.
///
/// A block is final when two more blocks come after it and it is closed for
/// good: a blank line follows it (streamdown's rule), or it is a kind that
/// the next block's start closed (a heading, a rule, a fenced code block, a
/// paragraph another block interrupted). A line added at the end can still
/// turn the paragraph before it into a heading (a setext underline), extend
/// a list or a quote, or continue a paragraph, but it cannot reach back past
/// two blocks. Reference definitions and footnotes do reach back; callers
/// check [`reaches_back`] first.
pub fn final_count(text: &str, blocks: &[ParsedBlock]) -> usize {
    let mut count = 0;
    while count + 2 < blocks.len()
        && (closed_by_what_follows(&blocks[count])
            || blank_line_before(text, blocks[count + 1].range.start))
    {
        count += 1;
    }
    count
}

/// Blocks that end where the next one begins, whatever comes later.
fn closed_by_what_follows(block: &ParsedBlock) -> bool {
    match block.nodes.first() {
        Some(Node::Code { .. }) => true,
        Some(Node::Element { tag, .. }) => {
            matches!(*tag, "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "hr" | "p")
        }
        _ => false,
    }
}

/// Whether a blank line ends just before the line holding `at`.
fn blank_line_before(text: &str, at: usize) -> bool {
    let Some(line_start) = text[..at].rfind('\n') else {
        return false;
    };
    if !text[line_start + 1..at]
        .chars()
        .all(|c| c == ' ' || c == '\t')
    {
        return false;
    }
    let before = text[..line_start].trim_end_matches([' ', '\t']);
    before.ends_with('\n')
}

/// Whether the text may hold a link reference definition or a footnote,
/// whose meaning reaches back to blocks already shown: such an answer is
/// re-parsed whole instead.
pub fn reaches_back(text: &str) -> bool {
    text.contains("[^")
        || text.lines().any(|line| {
            let line = inside_containers(line);
            line.starts_with('[') && line.contains("]:")
        })
}

/// A line with its block quotes' `>` and its list items' markers taken off
/// the front: a definition inside either still defines for the whole answer.
fn inside_containers(mut line: &str) -> &str {
    loop {
        let rest = line.trim_start_matches([' ', '\t', '>']);
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let marker = match rest.as_bytes().first() {
            Some(b'-' | b'*' | b'+') => 1,
            Some(_) if (1..=9).contains(&digits) && rest[digits..].starts_with(['.', ')']) => {
                digits + 1
            }
            _ => return rest,
        };
        match rest[marker..].strip_prefix([' ', '\t']) {
            Some(item) => line = item,
            None => return rest,
        }
    }
}

/// The nodes of `text`; when `streaming`, its last block as if its open
/// `**`, `~~` and `` ` `` were closed (an unclosed code fence is already a
/// code block to the end).
pub fn render_tail(text: &str, streaming: bool) -> Vec<Node> {
    let blocks = parse(text);
    let closed = blocks
        .last()
        .filter(|_| streaming)
        .and_then(|last| closers(&text[last.range.start..]).map(|c| (last.range.start, c)));
    let Some((block_start, closers)) = closed else {
        return blocks.into_iter().flat_map(|block| block.nodes).collect();
    };
    let mut completed = text[..block_start + closers.keep].to_string();
    completed.push_str(&closers.append);
    parse(&completed)
        .into_iter()
        .flat_map(|block| block.nodes)
        .collect()
}

/// What a growing block needs to read as finished: how much of it to keep
/// (an opener with nothing after it yet is dropped) and the markers to append.
#[derive(Debug, PartialEq, Eq)]
struct Closers {
    keep: usize,
    append: String,
}

/// The closers the growing block `block` needs, if any.
fn closers(block: &str) -> Option<Closers> {
    // A code block (fenced, or indented) needs nothing: it shows its text.
    let first_line = block.lines().next().unwrap_or_default();
    let unindented = first_line.trim_start_matches(' ');
    if unindented.starts_with("```")
        || unindented.starts_with("~~~")
        || first_line.starts_with("    ")
    {
        return None;
    }
    // Open markers, innermost last, with where each starts.
    let mut open: Vec<(&'static str, usize)> = Vec::new();
    let bytes = block.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'`' => {
                let run = bytes[at..].iter().take_while(|&&b| b == b'`').count();
                // A code span ends at the next run of the same length; inside
                // it nothing is a marker.
                match find_run(&block[at + run..], run) {
                    Some(end) => at += run + end + run,
                    None => {
                        open.push((backticks(run), at));
                        break;
                    }
                }
            }
            b'*' | b'~' if bytes.get(at + 1) == Some(&bytes[at]) => {
                let marker = if bytes[at] == b'*' { "**" } else { "~~" };
                match open.iter().rposition(|(m, _)| *m == marker) {
                    Some(index) => open.truncate(index),
                    None => open.push((marker, at)),
                }
                at += 2;
            }
            _ => at += 1,
        }
    }
    // An opener with only whitespace after it is dropped rather than
    // closed: `**` + `**` would show four stars.
    let mut keep = block.len();
    while let Some(&(marker, position)) = open.last() {
        if block[position + marker.len()..keep].trim().is_empty() {
            keep = position;
            open.pop();
        } else {
            break;
        }
    }
    let append: String = open.iter().rev().map(|(marker, _)| *marker).collect();
    (!append.is_empty() || keep < block.len()).then_some(Closers { keep, append })
}

fn backticks(run: usize) -> &'static str {
    const TICKS: &str = "``````````";
    &TICKS[..run.min(TICKS.len())]
}

/// Where a backtick run exactly `length` long starts in `text`.
fn find_run(text: &str, length: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'`' {
            let run = bytes[at..].iter().take_while(|&&b| b == b'`').count();
            if run == length {
                return Some(at);
            }
            at += run;
        } else {
            at += 1;
        }
    }
    None
}
