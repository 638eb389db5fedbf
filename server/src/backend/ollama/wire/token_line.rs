//! The line Ollama sends for each token, read in one pass without serde.
//!
//! At saturation, decoding these lines through serde's derived visitor was
//! the largest single cost of the relay (47% of the gateway's CPU in a
//! profile of `/generate/stream`: the struct visitor, UTF-8 checks of the
//! model name and timestamp it then dropped, moves of the whole struct).
//! This reader walks the object once, validates only the text it keeps, and
//! takes every other value as opaque. It answers only for a line it fully
//! understands that is not the last: anything else (the final line with its
//! counters, an error, an escaped key, a duplicate, a malformed line) is
//! left to the serde path, which says what is wrong. Values it skips (the
//! model's name, a field it does not know) are checked for their shape
//! (strings closed, brackets matched, scalars that are numbers or
//! literals), not read.

use std::borrow::Cow;

use super::Line;

/// A plain token (or reasoning) line; `None` to take the serde path.
pub(super) fn token_line(line: &[u8]) -> Option<Line> {
    let mut cursor = Cursor { bytes: line, at: 0 };
    let mut response = None;
    let mut thinking = None;
    let mut message = None;
    let mut done = None;
    cursor.object(|cursor, key| {
        match key {
            b"response" => set_once(&mut response, cursor.string()?),
            b"thinking" => set_once(&mut thinking, cursor.string()?),
            b"message" => set_once(&mut message, cursor.message()?),
            b"done" => set_once(&mut done, cursor.literal()?),
            // An error, or a key serde would read (or refuse): its path.
            b"error" | b"done_reason" | b"context" => None,
            _ => cursor.skip_value(),
        }
    })?;
    cursor.whitespace();
    if cursor.at != line.len() || done == Some(true) {
        return None;
    }
    let (text, thought) = match message {
        Some(Message { content, thinking }) => (content, thinking),
        None => (response, thinking),
    };
    let text = RawString::text_or_empty(text)?;
    let thought = RawString::text_or_empty(thought)?;
    Some(match (text.is_empty(), thought.is_empty()) {
        (true, true) => Line::Skip,
        (false, true) => Line::Token(text.into_owned()),
        (empty, false) => Line::Thinking {
            thinking: thought.into_owned(),
            then: (!empty).then(|| text.into_owned()),
        },
    })
}

/// Sets a field seen for the first time; a second one is serde's to refuse.
fn set_once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

/// `message`'s two texts.
struct Message<'a> {
    content: Option<RawString<'a>>,
    thinking: Option<RawString<'a>>,
}

/// A JSON string as it stands in the line, quotes included.
#[derive(Clone, Copy)]
struct RawString<'a> {
    quoted: &'a [u8],
    escaped: bool,
}

impl<'a> RawString<'a> {
    /// A field's text, empty when it is absent (as serde's default).
    fn text_or_empty(field: Option<Self>) -> Option<Cow<'a, str>> {
        match field {
            Some(raw) => raw.text(),
            None => Some(Cow::Borrowed("")),
        }
    }

    /// The string's text: borrowed unless it has escapes. Control
    /// characters, which JSON forbids in a string, send it to serde.
    fn text(self) -> Option<Cow<'a, str>> {
        if self.escaped {
            return serde_json::from_slice::<String>(self.quoted)
                .ok()
                .map(Cow::Owned);
        }
        let inner = &self.quoted[1..self.quoted.len() - 1];
        if inner.iter().any(|&byte| byte < 0x20) {
            return None;
        }
        std::str::from_utf8(inner).ok().map(Cow::Borrowed)
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.whitespace();
        if self.bytes.get(self.at) == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// An object, each member's value read by `member` (called with the
    /// cursor just past the member's colon).
    fn object(&mut self, mut member: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            self.whitespace();
            let key = self.string()?;
            // An escaped key may spell one of ours: serde's to read.
            if key.escaped || !self.eat(b':') {
                return None;
            }
            self.whitespace();
            member(self, &key.quoted[1..key.quoted.len() - 1])?;
            if self.eat(b',') {
                continue;
            }
            return self.eat(b'}').then_some(());
        }
    }

    /// `message`: its content and thinking; every other member skipped.
    fn message(&mut self) -> Option<Message<'a>> {
        let mut content = None;
        let mut thinking = None;
        self.object(|cursor, key| match key {
            b"content" => set_once(&mut content, cursor.string()?),
            b"thinking" => set_once(&mut thinking, cursor.string()?),
            _ => cursor.skip_value(),
        })?;
        Some(Message { content, thinking })
    }

    /// A string starting at the cursor.
    fn string(&mut self) -> Option<RawString<'a>> {
        let start = self.at;
        if self.bytes.get(start) != Some(&b'"') {
            return None;
        }
        let mut at = start + 1;
        let mut escaped = false;
        loop {
            // Most strings here are a few bytes (a token, a key): a plain
            // scan of the first few beats starting a vectorised search.
            let rest = &self.bytes[at..];
            let short = rest.iter().take(16).position(|&b| b == b'"' || b == b'\\');
            at += match short {
                Some(offset) => offset,
                None if rest.len() <= 16 => return None,
                None => 16 + memchr::memchr2(b'"', b'\\', &rest[16..])?,
            };
            if self.bytes[at] == b'"' {
                self.at = at + 1;
                return Some(RawString {
                    quoted: &self.bytes[start..self.at],
                    escaped,
                });
            }
            // A backslash and the character it escapes.
            escaped = true;
            at += 2;
            if at > self.bytes.len() {
                return None;
            }
        }
    }

    fn literal(&mut self) -> Option<bool> {
        let rest = &self.bytes[self.at..];
        if rest.starts_with(b"true") {
            self.at += 4;
            Some(true)
        } else if rest.starts_with(b"false") {
            self.at += 5;
            Some(false)
        } else {
            None
        }
    }

    /// Any value, unread: a string, an object or array (strings inside
    /// them skipped whole, so their brackets do not count), or a number or
    /// literal (up to the next delimiter).
    fn skip_value(&mut self) -> Option<()> {
        match self.bytes.get(self.at)? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => {
                // Open brackets as bits (1 for an object), innermost lowest.
                let mut open: u64 = 0;
                let mut depth = 0u32;
                loop {
                    match *self.bytes.get(self.at)? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        bracket @ (b'{' | b'[') => {
                            if depth == u64::BITS {
                                return None;
                            }
                            open = open << 1 | u64::from(bracket == b'{');
                            depth += 1;
                        }
                        bracket @ (b'}' | b']') => {
                            if (open & 1 == 1) != (bracket == b'}') {
                                return None;
                            }
                            open >>= 1;
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                let start = self.at;
                while let Some(byte) = self.bytes.get(self.at) {
                    if matches!(byte, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                        break;
                    }
                    self.at += 1;
                }
                let scalar = &self.bytes[start..self.at];
                (matches!(scalar, b"true" | b"false" | b"null") || is_number(scalar)).then_some(())
            }
        }
    }
}

/// Whether `text` is a JSON number: `-`, digits, a fraction, an exponent.
fn is_number(text: &[u8]) -> bool {
    let digits = |text: &[u8]| text.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut rest = text.strip_prefix(b"-").unwrap_or(text);
    let whole = digits(rest);
    if whole == 0 || (whole > 1 && rest[0] == b'0') {
        return false;
    }
    rest = &rest[whole..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let count = digits(fraction);
        if count == 0 {
            return false;
        }
        rest = &fraction[count..];
    }
    if let Some(exponent) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exponent = exponent
            .strip_prefix(b"+")
            .or_else(|| exponent.strip_prefix(b"-"))
            .unwrap_or(exponent);
        let count = digits(exponent);
        if count == 0 {
            return false;
        }
        rest = &exponent[count..];
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ollama::wire::parse_with_serde;

    /// Lines as Ollama writes them, and the odd ones a server might.
    const LINES: &[&str] = &[
        r#"{"model":"llama3.2","created_at":"2024-08-01T10:00:00.1Z","response":"Hi","done":false}"#,
        r#"{"model":"llama3.2","created_at":"2024-08-01T10:00:00.1Z","message":{"role":"assistant","content":" there"},"done":false}"#,
        r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"","thinking":"hmm"},"done":false}"#,
        r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"a","thinking":"b"},"done":false}"#,
        r#"{"model":"m","created_at":"t","response":"","thinking":"why","done":false}"#,
        r#"{"model":"m","created_at":"t","response":"","done":false}"#,
        r#"{"model":"m","response":"line\nbreak \"quoted\" \u00e9 \ud83d\ude00","done":false}"#,
        r#"{"model":"m","response":"\\","done":false}"#,
        r#"{"model":"m","response":"naïve 日本 😀","done":false}"#,
        r#" { "model" : "m" , "response" : "spaced" , "done" : false } "#,
        r#"{"response":"no done"}"#,
        r#"{}"#,
        r#"{"model":"m","message":{"role":"assistant","content":"x","images":null,"tool_calls":[{"function":{"name":"f","arguments":{"a":"}]"}}}]},"done":false}"#,
        r#"{"model":"m","response":"x","extra":[1,2.5e3,-3,true,null,{"k":"v\"}"}],"done":false}"#,
        r#"{"model":"m","created_at":"t","response":"","done":true,"done_reason":"stop","total_duration":5,"eval_count":2}"#,
        r#"{"model":"m","response":"tail","done":true}"#,
        r#"{"error":"model runner crashed"}"#,
        r#"{"model":"m","response":"a","response":"b","done":false}"#,
        r#"{"model":"m","\u0072esponse":"escaped key","done":false}"#,
        r#"{"model":"m","response":null,"done":false}"#,
        r#"{"model":"m","response":"x","done":null}"#,
        r#"{"model":"m","response":"x","done":false"#,
        r#"{"model":"m","response":"unterminated,"done":false}"#,
        r#"{"model":"m","response":"x","done":false}{"#,
        r#"{"model":"m","message":null,"response":"r","done":false}"#,
        r#"{"model":"m","response":"raw	tab","done":false}"#,
        r#"{"model":"m","response":"x" "done":false}"#,
        r#"["not an object"]"#,
        r#"{"model":"m","extra":[1},"response":"x","done":false}"#,
        r#"{"model":"m","extra":tru,"response":"x","done":false}"#,
        r#"{"model":"m","extra":01,"response":"x","done":false}"#,
    ];

    #[test]
    fn every_line_it_reads_reads_as_serde_reads_it() {
        let mut read = 0;
        for line in LINES {
            let serde = parse_with_serde(line.as_bytes());
            if let Some(fast) = token_line(line.as_bytes()) {
                read += 1;
                assert_eq!(Ok(&fast), serde.as_ref().map_err(|_| ()), "{line}");
            }
        }
        assert_eq!(read, 14, "the lines it should read itself");
    }

    #[test]
    fn numbers_are_told_from_other_words() {
        for number in ["0", "-1", "12.5", "1e9", "-0.5E-3", "3E+2"] {
            assert!(is_number(number.as_bytes()), "{number}");
        }
        for word in [
            "", "-", "01", "1.", ".5", "1e", "1e+", "tru", "0x1", "1.2.3",
        ] {
            assert!(!is_number(word.as_bytes()), "{word}");
        }
    }

    #[test]
    fn plain_token_lines_take_the_fast_path() {
        for line in &LINES[..6] {
            assert!(token_line(line.as_bytes()).is_some(), "{line}");
        }
        assert_eq!(
            token_line(LINES[6].as_bytes()),
            Some(Line::Token("line\nbreak \"quoted\" é 😀".into()))
        );
    }

    #[test]
    fn final_error_and_doubtful_lines_are_left_to_serde() {
        for line in &LINES[14..] {
            assert!(token_line(line.as_bytes()).is_none(), "{line}");
        }
    }

    #[test]
    fn every_prefix_of_a_line_is_refused_or_read_as_serde_reads_it() {
        for line in LINES {
            for end in 0..line.len() {
                let prefix = &line.as_bytes()[..end];
                if let Some(fast) = token_line(prefix) {
                    assert_eq!(
                        Ok(&fast),
                        parse_with_serde(prefix).as_ref().map_err(|_| ()),
                        "{}",
                        String::from_utf8_lossy(prefix)
                    );
                }
            }
        }
    }
}
