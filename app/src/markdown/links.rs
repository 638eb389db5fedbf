//! Which links an answer may carry, and GFM's autolinks of bare URLs and e-mail addresses.

use std::ops::Range;

use super::tree::Node;

/// The schemes a link in an answer may use; anything else (`javascript:`,
/// `data:`, `file:`, a relative path into this site) is shown unlinked.
const SAFE_SCHEMES: [&str; 3] = ["http", "https", "mailto"];

/// `url` if a reader may follow it. Browsers ignore tabs, newlines and
/// leading spaces inside a scheme (`java\tscript:`), so those are read the
/// same way here before the scheme is judged.
pub fn safe_href(url: &str) -> Option<String> {
    let cleaned: String = url
        .trim_matches(|c: char| c.is_ascii_whitespace() || c.is_ascii_control())
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let (scheme, _) = cleaned.split_once(':')?;
    let is_scheme = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (is_scheme
        && SAFE_SCHEMES
            .iter()
            .any(|safe| scheme.eq_ignore_ascii_case(safe)))
    .then_some(cleaned)
}

/// A link that opens in a new tab and tells the target nothing.
pub fn link_attrs(href: String, title: &str) -> Vec<(&'static str, String)> {
    let mut attrs = vec![
        ("href", href),
        ("target", "_blank".into()),
        ("rel", "noopener noreferrer".into()),
    ];
    if !title.is_empty() {
        attrs.push(("title", title.to_string()));
    }
    attrs
}

/// Turns bare `https://…`, `http://…` and `www.…` in text nodes into links,
/// as GFM does: the link starts after whitespace or an opening delimiter and
/// ends at whitespace or `<`, without trailing punctuation or an unbalanced
/// closing parenthesis. Bare e-mail addresses become `mailto:` links.
pub fn autolink(children: Vec<Node>) -> Vec<Node> {
    if !children
        .iter()
        .any(|child| matches!(child, Node::Text(text) if may_hold_url(text)))
    {
        return children;
    }
    let mut out = Vec::with_capacity(children.len());
    for child in children {
        match child {
            Node::Text(text) if may_hold_url(&text) => {
                let mut urls = Vec::new();
                split_urls(&text, &mut urls);
                for node in urls {
                    match node {
                        Node::Text(text) if text.contains('@') => split_emails(&text, &mut out),
                        other => out.push(other),
                    }
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn may_hold_url(text: &str) -> bool {
    text.contains("http://")
        || text.contains("https://")
        || text.contains("www.")
        || text.contains('@')
}

/// GFM's extended e-mail autolinks: letters, digits and `.-_+` before the
/// `@`; after it, letters, digits, `-` and `_` in at least two dot-separated
/// parts, not ending in `-` or `_` (a final `.` is the sentence's).
fn split_emails(text: &str, out: &mut Vec<Node>) {
    split_links(text, out, next_email);
}

fn split_urls(text: &str, out: &mut Vec<Node>) {
    split_links(text, out, next_url);
}

/// `text` as plain runs and the links `next` finds in it, in order:
/// `next(text, from)` is the first link at or after `from`, as its range and
/// its href.
fn split_links(
    text: &str,
    out: &mut Vec<Node>,
    next: impl Fn(&str, usize) -> Option<(Range<usize>, String)>,
) {
    let mut plain_from = 0;
    while let Some((link, href)) = next(text, plain_from) {
        if plain_from < link.start {
            out.push(Node::Text(text[plain_from..link.start].to_string()));
        }
        out.push(Node::Element {
            tag: "a",
            attrs: link_attrs(href, ""),
            children: vec![Node::Text(text[link.clone()].to_string())],
        });
        plain_from = link.end;
    }
    if plain_from < text.len() {
        out.push(Node::Text(text[plain_from..].to_string()));
    }
}

fn next_email(text: &str, from: usize) -> Option<(Range<usize>, String)> {
    let local = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+');
    let domain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    text[from..].match_indices('@').find_map(|(at, _)| {
        let at = from + at;
        let start = text[from..at]
            .rfind(|c: char| !local(c))
            .map_or(from, |i| from + i + 1);
        let after = &text[at + 1..];
        let host =
            after[..after.find(|c: char| !domain(c)).unwrap_or(after.len())].trim_end_matches('.');
        let valid = start < at
            && host.contains('.')
            && host.split('.').all(|part| !part.is_empty())
            && !host.ends_with(['-', '_']);
        let end = at + 1 + host.len();
        valid.then(|| (start..end, format!("mailto:{}", &text[start..end])))
    })
}

fn next_url(text: &str, mut from: usize) -> Option<(Range<usize>, String)> {
    while let Some((start, matched, href_prefix)) = next_url_start(text, from) {
        let end = start + url_end(&text[start..]);
        // A prefix with no host after it ("see https:// now") is text.
        let has_host = end > start + matched
            && text[start + matched..end].contains(|c: char| c.is_alphanumeric());
        if has_host {
            return Some((start..end, format!("{href_prefix}{}", &text[start..end])));
        }
        from = start + matched;
    }
    None
}

/// Where the next URL at or after `from` starts in `text`, the length of the
/// prefix that matched, and what its href needs in front (`www.` links get
/// `http://`).
fn next_url_start(text: &str, mut from: usize) -> Option<(usize, usize, &'static str)> {
    const PREFIXES: [(&str, &str); 3] = [("https://", ""), ("http://", ""), ("www.", "http://")];
    loop {
        let (start, matched, href_prefix) = PREFIXES
            .iter()
            .filter_map(|(prefix, href)| {
                text[from..]
                    .find(prefix)
                    .map(|at| (from + at, prefix.len(), *href))
            })
            .min_by_key(|(start, _, _)| *start)?;
        let boundary = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || matches!(c, '*' | '_' | '~' | '('));
        if boundary {
            return Some((start, matched, href_prefix));
        }
        from = start + 1;
    }
}

/// The length of the URL at the start of `text`.
fn url_end(text: &str) -> usize {
    let mut end = text
        .find(|c: char| c.is_whitespace() || c == '<')
        .unwrap_or(text.len());
    loop {
        let url = &text[..end];
        let Some(last) = url.chars().next_back() else {
            return end;
        };
        let trailing_punctuation = matches!(
            last,
            '?' | '!' | '.' | ',' | ':' | '*' | '_' | '~' | '\'' | '"'
        );
        let unbalanced_paren = last == ')' && url.matches(')').count() > url.matches('(').count();
        if trailing_punctuation || unbalanced_paren {
            end -= last.len_utf8();
        } else {
            return end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_and_mail_links_are_kept() {
        assert_eq!(
            safe_href("https://example.com/a").as_deref(),
            Some("https://example.com/a")
        );
        assert_eq!(
            safe_href("HTTP://example.com").as_deref(),
            Some("HTTP://example.com")
        );
        assert_eq!(
            safe_href("mailto:me@example.com").as_deref(),
            Some("mailto:me@example.com")
        );
        for unsafe_url in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "java\nscript:alert(1)",
            "\u{1}javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox",
            "file:///etc/passwd",
            "/api/v1/models",
            "relative/page",
            "#top",
            "",
        ] {
            assert_eq!(safe_href(unsafe_url), None, "{unsafe_url:?}");
        }
    }

    fn linked(text: &str) -> Vec<Node> {
        autolink(vec![Node::Text(text.into())])
    }

    fn link(href: &str, text: &str) -> Node {
        Node::Element {
            tag: "a",
            attrs: link_attrs(href.into(), ""),
            children: vec![Node::Text(text.into())],
        }
    }

    #[test]
    fn bare_urls_become_links_without_trailing_punctuation() {
        assert_eq!(
            linked("See https://example.com/a?b=1. Then"),
            vec![
                Node::Text("See ".into()),
                link("https://example.com/a?b=1", "https://example.com/a?b=1"),
                Node::Text(". Then".into()),
            ]
        );
        assert_eq!(
            linked("(www.example.com/x_(y))"),
            vec![
                Node::Text("(".into()),
                link("http://www.example.com/x_(y)", "www.example.com/x_(y)"),
                Node::Text(")".into()),
            ]
        );
    }

    #[test]
    fn bare_email_addresses_become_mail_links() {
        assert_eq!(
            linked("Write to me.too+x@mail.example.com. Thanks"),
            vec![
                Node::Text("Write to ".into()),
                link(
                    "mailto:me.too+x@mail.example.com",
                    "me.too+x@mail.example.com"
                ),
                Node::Text(". Thanks".into()),
            ]
        );
        assert_eq!(
            linked("a@b.co and c@d.org"),
            vec![
                link("mailto:a@b.co", "a@b.co"),
                Node::Text(" and ".into()),
                link("mailto:c@d.org", "c@d.org"),
            ]
        );
        // A URL's user part is the URL's, linked once.
        assert_eq!(
            linked("https://user@example.com/x"),
            vec![link(
                "https://user@example.com/x",
                "https://user@example.com/x"
            )]
        );
        for text in [
            "foo@bar",
            "@example.com",
            "me@example.com_",
            "me@example-.com-",
            "a@.com",
            "me@ex..com",
        ] {
            assert_eq!(linked(text), vec![Node::Text(text.into())], "{text}");
        }
    }

    #[test]
    fn urls_inside_words_and_bare_prefixes_stay_text() {
        assert_eq!(
            linked("xhttps://example.com"),
            vec![Node::Text("xhttps://example.com".into())]
        );
        assert_eq!(
            linked("see https:// now"),
            vec![Node::Text("see https:// now".into())]
        );
        assert_eq!(
            linked("www. is a prefix"),
            vec![Node::Text("www. is a prefix".into())]
        );
    }
}
