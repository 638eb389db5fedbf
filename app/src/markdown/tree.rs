//! Parser events into a tree of nodes, with the safety rules applied: what
//! the tree holds is all the page will ever show of an answer.

use pulldown_cmark::{Alignment, CodeBlockKind, Event, HeadingLevel, LinkType, Tag, TagEnd};

use super::links;

/// One node of a rendered answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element {
        tag: &'static str,
        attrs: Vec<(&'static str, String)>,
        children: Vec<Node>,
    },
    Text(String),
    /// A fenced or indented code block: shown with its language and a Copy
    /// button, highlighted once it is finished.
    Code {
        language: String,
        code: String,
    },
}

impl Node {
    pub fn element(tag: &'static str, children: Vec<Node>) -> Self {
        Self::Element {
            tag,
            attrs: Vec::new(),
            children,
        }
    }
}

/// An element being built: its tag, attributes and children so far.
struct Open {
    tag: &'static str,
    attrs: Vec<(&'static str, String)>,
    children: Vec<Node>,
    /// The tags that close on one parser end event (a table head is
    /// `<thead><tr>`): how many more open elements to close with this one.
    closes_with_parent: bool,
}

/// Builds the nodes of one top-level block from its events.
#[derive(Default)]
pub struct TreeBuilder {
    stack: Vec<Open>,
    done: Vec<Node>,
    /// Set inside a code block: its language and text so far.
    code: Option<(String, String)>,
    /// Column alignments of the table being built, and the cell index.
    table: Vec<Alignment>,
    cell: usize,
    in_head: bool,
    /// Depth inside links (and image-links): no autolinks in there.
    in_link: usize,
}

impl TreeBuilder {
    /// The nodes built so far; every element still open is closed.
    pub fn finish(mut self) -> Vec<Node> {
        if let Some((language, code)) = self.code.take() {
            self.push(Node::Code { language, code });
        }
        while !self.stack.is_empty() {
            self.close();
        }
        self.done
    }

    pub fn event(&mut self, event: Event<'_>) {
        if let Some((_, code)) = &mut self.code {
            match event {
                Event::Text(text) => code.push_str(&text),
                Event::End(TagEnd::CodeBlock) => {
                    let (language, code) = self.code.take().unwrap_or_default();
                    self.push(Node::Code { language, code });
                }
                _ => {}
            }
            return;
        }
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(end) => self.end(end),
            Event::Text(text) => self.text(&text),
            Event::Code(code) => self.push(Node::element("code", vec![Node::Text(code.into())])),
            // Raw HTML is shown as what it is: text.
            Event::Html(html) | Event::InlineHtml(html) => self.text(&html),
            Event::InlineMath(math) | Event::DisplayMath(math) => self.text(&math),
            Event::FootnoteReference(label) => self.push(Node::Element {
                tag: "sup",
                attrs: vec![("class", "footnote-ref".into())],
                children: vec![Node::Text(label.into())],
            }),
            Event::SoftBreak => self.text("\n"),
            Event::HardBreak => self.push(Node::element("br", Vec::new())),
            Event::Rule => self.push(Node::element("hr", Vec::new())),
            Event::TaskListMarker(checked) => {
                let mut attrs = vec![("type", "checkbox".into()), ("disabled", String::new())];
                if checked {
                    attrs.push(("checked", String::new()));
                }
                self.push(Node::Element {
                    tag: "input",
                    attrs,
                    children: Vec::new(),
                });
            }
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph => self.open("p", Vec::new()),
            Tag::Heading { level, .. } => self.open(heading(level), Vec::new()),
            Tag::BlockQuote(_) => self.open("blockquote", Vec::new()),
            Tag::CodeBlock(kind) => {
                let language = match kind {
                    CodeBlockKind::Fenced(info) => info
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                self.code = Some((language, String::new()));
            }
            // Shown as text, in a block of its own.
            Tag::HtmlBlock => self.open("p", Vec::new()),
            Tag::List(Some(start)) => {
                let attrs = if start == 1 {
                    Vec::new()
                } else {
                    vec![("start", start.to_string())]
                };
                self.open("ol", attrs);
            }
            Tag::List(None) => self.open("ul", Vec::new()),
            Tag::Item => self.open("li", Vec::new()),
            Tag::FootnoteDefinition(label) => {
                self.open("div", vec![("class", "footnote".into())]);
                self.push(Node::Element {
                    tag: "sup",
                    attrs: vec![("class", "footnote-label".into())],
                    children: vec![Node::Text(label.into())],
                });
            }
            Tag::DefinitionList => self.open("dl", Vec::new()),
            Tag::DefinitionListTitle => self.open("dt", Vec::new()),
            Tag::DefinitionListDefinition => self.open("dd", Vec::new()),
            Tag::Table(alignments) => {
                self.table = alignments;
                self.open("table", Vec::new());
            }
            Tag::TableHead => {
                self.in_head = true;
                self.cell = 0;
                self.open("thead", Vec::new());
                self.open_with_parent("tr");
            }
            Tag::TableRow => {
                self.cell = 0;
                if self.stack.last().is_some_and(|open| open.tag == "table") {
                    self.open("tbody", Vec::new());
                }
                self.open("tr", Vec::new());
            }
            Tag::TableCell => {
                let attrs = match self.table.get(self.cell) {
                    Some(Alignment::Left) => vec![("style", "text-align: left".into())],
                    Some(Alignment::Center) => vec![("style", "text-align: center".into())],
                    Some(Alignment::Right) => vec![("style", "text-align: right".into())],
                    _ => Vec::new(),
                };
                self.cell += 1;
                self.open(if self.in_head { "th" } else { "td" }, attrs);
            }
            Tag::Emphasis => self.open("em", Vec::new()),
            Tag::Strong => self.open("strong", Vec::new()),
            Tag::Strikethrough => self.open("del", Vec::new()),
            Tag::Superscript => self.open("sup", Vec::new()),
            Tag::Subscript => self.open("sub", Vec::new()),
            Tag::Link {
                link_type,
                dest_url,
                title,
                ..
            } => {
                self.in_link += 1;
                // `<me@example.com>` comes as the bare address.
                let dest_url = if link_type == LinkType::Email {
                    format!("mailto:{dest_url}").into()
                } else {
                    dest_url
                };
                match links::safe_href(&dest_url) {
                    Some(href) => self.open("a", links::link_attrs(href, &title)),
                    // A link nobody should follow: its text, unlinked.
                    None => self.open("span", Vec::new()),
                }
            }
            // Never fetched: the alt text, as a link to the image.
            Tag::Image {
                dest_url, title, ..
            } => {
                self.in_link += 1;
                match links::safe_href(&dest_url) {
                    Some(href) => {
                        let mut attrs = links::link_attrs(href, &title);
                        attrs.push(("class", "image-link".into()));
                        self.open("a", attrs);
                    }
                    None => self.open("span", vec![("class", "image-link".into())]),
                }
            }
            Tag::MetadataBlock(_) => self.open("pre", Vec::new()),
        }
    }

    fn end(&mut self, end: TagEnd) {
        match end {
            TagEnd::TableHead => self.in_head = false,
            // The body, if any rows came, closes with the table.
            TagEnd::Table if self.stack.last().is_some_and(|open| open.tag == "tbody") => {
                self.close();
            }
            TagEnd::Image => self.mark_empty_image(),
            _ => {}
        }
        self.close();
        if matches!(end, TagEnd::Link | TagEnd::Image) {
            self.in_link = self.in_link.saturating_sub(1);
        }
    }

    /// An image without alt text still needs something to click.
    fn mark_empty_image(&mut self) {
        if let Some(open) = self.stack.last_mut()
            && open.children.is_empty()
        {
            open.children.push(Node::Text("image".into()));
        }
    }

    fn open(&mut self, tag: &'static str, attrs: Vec<(&'static str, String)>) {
        self.stack.push(Open {
            tag,
            attrs,
            children: Vec::new(),
            closes_with_parent: false,
        });
    }

    fn open_with_parent(&mut self, tag: &'static str) {
        self.stack.push(Open {
            tag,
            attrs: Vec::new(),
            children: Vec::new(),
            closes_with_parent: true,
        });
    }

    /// Closes the innermost element (and those opened with it).
    fn close(&mut self) {
        while let Some(open) = self.stack.pop() {
            let mut children = open.children;
            if self.in_link == 0 {
                children = links::autolink(children);
            }
            self.push(Node::Element {
                tag: open.tag,
                attrs: open.attrs,
                children,
            });
            if !open.closes_with_parent {
                break;
            }
        }
    }

    /// Adjacent text is one node: the parser splits text at delimiters it
    /// did not use, and a split must not depend on where parsing began.
    fn text(&mut self, text: &str) {
        let siblings = match self.stack.last_mut() {
            Some(open) => &mut open.children,
            None => &mut self.done,
        };
        if let Some(Node::Text(last)) = siblings.last_mut() {
            last.push_str(text);
        } else {
            siblings.push(Node::Text(text.to_string()));
        }
    }

    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some(open) => open.children.push(node),
            None => self.done.push(node),
        }
    }
}

fn heading(level: HeadingLevel) -> &'static str {
    match level {
        HeadingLevel::H1 => "h1",
        HeadingLevel::H2 => "h2",
        HeadingLevel::H3 => "h3",
        HeadingLevel::H4 => "h4",
        HeadingLevel::H5 => "h5",
        HeadingLevel::H6 => "h6",
    }
}

/// The nodes as HTML, escaped: how the tests read a render.
#[cfg(test)]
pub fn to_html(nodes: &[Node]) -> String {
    fn escape(text: &str, out: &mut String) {
        for c in text.chars() {
            match c {
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '&' => out.push_str("&amp;"),
                '"' => out.push_str("&quot;"),
                c => out.push(c),
            }
        }
    }
    fn write(node: &Node, out: &mut String) {
        match node {
            Node::Text(text) => escape(text, out),
            Node::Code { language, code } => {
                out.push_str(&format!("<pre lang=\"{language}\"><code>"));
                escape(code, out);
                out.push_str("</code></pre>");
            }
            Node::Element {
                tag,
                attrs,
                children,
            } => {
                out.push('<');
                out.push_str(tag);
                for (name, value) in attrs {
                    out.push_str(&format!(" {name}=\""));
                    escape(value, out);
                    out.push('"');
                }
                out.push('>');
                for child in children {
                    write(child, out);
                }
                if !matches!(*tag, "br" | "hr" | "input") {
                    out.push_str(&format!("</{tag}>"));
                }
            }
        }
    }
    let mut out = String::new();
    for node in nodes {
        write(node, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::render;
    use super::to_html;

    fn html(markdown: &str) -> String {
        to_html(&render(markdown, false))
    }

    #[test]
    fn every_block_kind_renders() {
        assert_eq!(
            html("# One\n## Two\n###### Six"),
            "<h1>One</h1><h2>Two</h2><h6>Six</h6>"
        );
        assert_eq!(html("Title\n===\n\nSub\n---"), "<h1>Title</h1><h2>Sub</h2>");
        assert_eq!(html("a\nb  \nc"), "<p>a\nb<br>c</p>");
        assert_eq!(
            html("> quoted\n> more"),
            "<blockquote><p>quoted\nmore</p></blockquote>"
        );
        assert_eq!(
            html("- a\n- b\n  - c"),
            "<ul><li>a</li><li>b<ul><li>c</li></ul></li></ul>"
        );
        assert_eq!(
            html("3. x\n4. y"),
            "<ol start=\"3\"><li>x</li><li>y</li></ol>"
        );
        assert_eq!(
            html("1. x\n\n2. y"),
            "<ol><li><p>x</p></li><li><p>y</p></li></ol>"
        );
        assert_eq!(
            html("- [x] done\n- [ ] to do"),
            "<ul><li><input type=\"checkbox\" disabled=\"\" checked=\"\">done</li>\
             <li><input type=\"checkbox\" disabled=\"\">to do</li></ul>"
        );
        assert_eq!(
            html("```rust\nfn main() {}\n```"),
            "<pre lang=\"rust\"><code>fn main() {}\n</code></pre>"
        );
        assert_eq!(
            html("    indented\n"),
            "<pre lang=\"\"><code>indented\n</code></pre>"
        );
        assert_eq!(html("***"), "<hr>");
        assert_eq!(
            html("| a | b |\n|:--|--:|\n| 1 | 2 |\n| 3 | 4 |"),
            "<table><thead><tr><th style=\"text-align: left\">a</th><th style=\"text-align: right\">b</th></tr></thead>\
             <tbody><tr><td style=\"text-align: left\">1</td><td style=\"text-align: right\">2</td></tr>\
             <tr><td style=\"text-align: left\">3</td><td style=\"text-align: right\">4</td></tr></tbody></table>"
        );
        assert_eq!(
            html("| a |\n|---|"),
            "<table><thead><tr><th>a</th></tr></thead></table>"
        );
        assert_eq!(
            html("Note[^1].\n\n[^1]: A footnote."),
            "<p>Note<sup class=\"footnote-ref\">1</sup>.</p><div class=\"footnote\"><sup class=\"footnote-label\">1</sup><p>A footnote.</p></div>"
        );
    }

    #[test]
    fn inline_markup_renders() {
        assert_eq!(
            html("*em* **strong** ~~gone~~ `code <b>`"),
            "<p><em>em</em> <strong>strong</strong> <del>gone</del> <code>code &lt;b&gt;</code></p>"
        );
    }

    #[test]
    fn links_open_in_a_new_tab_and_unsafe_ones_are_text() {
        assert_eq!(
            html("[docs](https://example.com \"The docs\")"),
            "<p><a href=\"https://example.com\" target=\"_blank\" rel=\"noopener noreferrer\" title=\"The docs\">docs</a></p>"
        );
        assert_eq!(
            html("[click](javascript:alert(1))"),
            "<p><span>click</span></p>"
        );
        assert_eq!(
            html("<javascript:alert(1)>"),
            "<p><span>javascript:alert(1)</span></p>"
        );
        assert_eq!(
            html("Write to <me@example.com>."),
            "<p>Write to <a href=\"mailto:me@example.com\" target=\"_blank\" rel=\"noopener noreferrer\">me@example.com</a>.</p>"
        );
        assert_eq!(
            html("[mail](mailto:me@example.com)"),
            "<p><a href=\"mailto:me@example.com\" target=\"_blank\" rel=\"noopener noreferrer\">mail</a></p>"
        );
        assert_eq!(
            html("<https://example.com>"),
            "<p><a href=\"https://example.com\" target=\"_blank\" rel=\"noopener noreferrer\">https://example.com</a></p>"
        );
        assert_eq!(
            html("Go to https://example.com/x."),
            "<p>Go to <a href=\"https://example.com/x\" target=\"_blank\" rel=\"noopener noreferrer\">https://example.com/x</a>.</p>"
        );
        // A URL inside a link's text is not linked again.
        assert_eq!(
            html("[**https://a.example**](https://b.example)"),
            "<p><a href=\"https://b.example\" target=\"_blank\" rel=\"noopener noreferrer\"><strong>https://a.example</strong></a></p>"
        );
    }

    #[test]
    fn images_are_links_never_fetched() {
        assert_eq!(
            html("![a cat](https://example.com/cat.png)"),
            "<p><a href=\"https://example.com/cat.png\" target=\"_blank\" rel=\"noopener noreferrer\" class=\"image-link\">a cat</a></p>"
        );
        assert_eq!(
            html("![](https://tracker.example/p.gif)"),
            "<p><a href=\"https://tracker.example/p.gif\" target=\"_blank\" rel=\"noopener noreferrer\" class=\"image-link\">image</a></p>"
        );
        assert_eq!(
            html("![x](data:image/png;base64,AAAA)"),
            "<p><span class=\"image-link\">x</span></p>"
        );
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        assert_eq!(
            html("<script>alert(1)</script>"),
            "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
        );
        assert_eq!(
            html("Hi <img src=x onerror=alert(1)> there"),
            "<p>Hi &lt;img src=x onerror=alert(1)&gt; there</p>"
        );
        let nodes = render("<div onclick=\"x()\">\n\n*a*\n\n</div>", false);
        let html = to_html(&nodes);
        assert!(!html.contains("<div"), "{html}");
    }

    #[test]
    fn a_growing_last_block_reads_as_closed() {
        let streaming = |text: &str| to_html(&render(text, true));
        assert_eq!(
            streaming("Some **bold"),
            "<p>Some <strong>bold</strong></p>"
        );
        assert_eq!(streaming("Some ~~gone"), "<p>Some <del>gone</del></p>");
        assert_eq!(streaming("Run `cargo"), "<p>Run <code>cargo</code></p>");
        assert_eq!(
            streaming("**a ~~b"),
            "<p><strong>a <del>b</del></strong></p>"
        );
        // An opener with nothing after it yet is not shown as stars.
        assert_eq!(streaming("Some **"), "<p>Some</p>");
        // Code spans hide markers; a finished span needs nothing.
        assert_eq!(streaming("`**` ok"), "<p><code>**</code> ok</p>");
        // An unclosed fence is a code block already.
        assert_eq!(
            streaming("```py\nprint(1)"),
            "<pre lang=\"py\"><code>print(1)</code></pre>"
        );
        // Only the last block: an earlier one is as written.
        assert_eq!(
            streaming("a **b\n\nc **d"),
            "<p>a **b</p><p>c <strong>d</strong></p>"
        );
        // A finished answer is as written.
        assert_eq!(to_html(&render("Some **bold", false)), "<p>Some **bold</p>");
    }
}
