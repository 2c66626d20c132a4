//! A span-keeping YAML tree: every node knows where it sits in the plan text.
//!
//! serde alone loses positions, and a validated plan needs them for every message (a dangling
//! reference, a decreasing ladder). This tree is built from saphyr-parser's spanned events and is
//! what [`super::de`] deserializes the raw spec from, so structural and semantic errors share one
//! source of positions.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Tag};

use super::diag::{Diagnostic, Pos, Span};

/// One segment of a field path: a mapping key or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A field path such as `targets.storm-lab.ladder[2]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<Seg>);

impl Path {
    pub fn root() -> Self {
        Path(Vec::new())
    }

    pub fn key(&self, key: &str) -> Path {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Path(segs)
    }

    pub fn index(&self, index: usize) -> Path {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Path(segs)
    }

    pub fn parent(&self) -> Option<Path> {
        let (_, rest) = self.0.split_last()?;
        Some(Path(rest.to_vec()))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The last mapping key of the path, if it ends with one.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) if is_bare(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Key(k) => write!(f, "[{k:?}]")?,
            }
        }
        Ok(())
    }
}

fn is_bare(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
}

/// How a scalar was written; quoted and block scalars are always strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    Block,
}

#[derive(Clone, Debug)]
pub struct Scalar {
    pub text: String,
    pub style: Style,
    /// A core-schema tag (`!!str`, `!!int` …) reduced to its suffix.
    pub tag: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub key: Node,
    pub value: Node,
}

impl Entry {
    pub fn key_text(&self) -> &str {
        match &self.key.kind {
            Kind::Scalar(s) => &s.text,
            _ => "",
        }
    }
}

#[derive(Clone, Debug)]
pub enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
    /// Stands for a value that already produced an error. Deserializes as an empty or default
    /// value so that the rest of the plan can still be checked; errors beneath it are not reported.
    Poison,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub span: Span,
    pub kind: Kind,
}

impl Node {
    pub fn poison(span: Span) -> Node {
        Node {
            span,
            kind: Kind::Poison,
        }
    }

    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(e) => Some(e),
            _ => None,
        }
    }

    /// A short description of the node for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Scalar(s) => match resolve(s) {
                Resolved::Null => "an empty value".into(),
                Resolved::Bool(b) => format!("boolean `{b}`"),
                Resolved::Int(i) => format!("integer `{i}`"),
                Resolved::UInt(u) => format!("integer `{u}`"),
                Resolved::Float(x) => format!("number `{x}`"),
                Resolved::Str(t) => format!("string {t:?}"),
            },
            Kind::Seq(_) => "a list".into(),
            Kind::Map(_) => "a mapping".into(),
            Kind::Poison => "an invalid value".into(),
        }
    }
}

/// A scalar resolved with the YAML 1.2 core schema.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'a str),
}

pub fn resolve(s: &Scalar) -> Resolved<'_> {
    let t = s.text.as_str();
    match s.tag.as_deref() {
        Some("str") => return Resolved::Str(t),
        Some("null") => return Resolved::Null,
        _ => {}
    }
    if s.style != Style::Plain {
        return Resolved::Str(t);
    }
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = t.strip_prefix("0x")
        && let Ok(u) = u64::from_str_radix(hex, 16)
    {
        return Resolved::UInt(u);
    }
    if let Some(oct) = t.strip_prefix("0o")
        && let Ok(u) = u64::from_str_radix(oct, 8)
    {
        return Resolved::UInt(u);
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(u) = t.strip_prefix('+').unwrap_or(t).parse::<u64>() {
            return Resolved::UInt(u);
        }
        if let Ok(i) = t.parse::<i64>() {
            return Resolved::Int(i);
        }
    }
    let float_like = digits
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if float_like && let Ok(x) = t.parse::<f64>() {
        return Resolved::Float(x);
    }
    Resolved::Str(t)
}

/// A parsed plan document and the problems found while building it.
pub struct Document {
    /// `None` when the text is not YAML at all or holds no document.
    pub root: Option<Node>,
    pub problems: Vec<Diagnostic>,
}

/// Parse YAML text into a span-keeping tree. Syntax errors, duplicate keys, non-text keys and
/// extra documents become located diagnostics; duplicate entries are dropped from the tree.
pub fn parse(text: &str) -> Document {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    let mut documents = 0;
    for item in &mut parser {
        match item {
            Ok((event, span)) => {
                let span = Span::from_saphyr(span);
                if let Event::DocumentStart(_) = event {
                    documents += 1;
                    if documents == 2 {
                        b.problems.push(Diagnostic::error(
                            None,
                            span,
                            "a plan file holds one YAML document; remove this second one",
                        ));
                    }
                }
                if documents < 2 {
                    b.event(event, span);
                }
            }
            Err(e) => {
                b.problems.push(syntax_error(&e));
                return Document {
                    root: None,
                    problems: b.problems,
                };
            }
        }
    }
    Document {
        root: b.root,
        problems: b.problems,
    }
}

fn syntax_error(e: &ScanError) -> Diagnostic {
    let m = e.marker();
    let pos = Pos {
        line: m.line(),
        col: m.col() + 1,
        index: m.index(),
    };
    Diagnostic::error(
        None,
        Span {
            start: pos,
            end: pos,
        },
        format!("invalid YAML: {}", e.info()),
    )
}

enum Frame {
    Seq(Span, Vec<Node>, usize),
    Map(Span, Vec<Entry>, Option<Node>, usize),
}

/// Most nodes a document may expand to through aliases (a "billion laughs" stops here).
const MAX_NODES: usize = 1_000_000;

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Anchored nodes and how many nodes each holds.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes in the document so far, counting alias expansions.
    nodes: usize,
    root: Option<Node>,
    problems: Vec<Diagnostic>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                    _ => Style::Block,
                };
                let node = Node {
                    span,
                    kind: Kind::Scalar(Scalar {
                        text: text.into_owned(),
                        style,
                        tag: tag.map(core_tag),
                    }),
                };
                self.complete(anchor, node);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq(span, Vec::new(), anchor))
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(span, Vec::new(), None, anchor))
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(start, items, anchor)) = self.stack.pop() {
                    let node = Node {
                        span: start.to(span),
                        kind: Kind::Seq(items),
                    };
                    self.complete(anchor, node);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(start, entries, _, anchor)) = self.stack.pop() {
                    let node = Node {
                        span: start.to(span),
                        kind: Kind::Map(entries),
                    };
                    self.complete(anchor, node);
                }
            }
            Event::Alias(id) => self.alias(id, span),
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::Nothing => {}
        }
    }

    /// A node is complete: remember it under its anchor, if any, and place it.
    fn complete(&mut self, anchor: usize, node: Node) {
        self.remember(anchor, &node);
        self.push(node);
    }

    /// A copy of the anchored node, or poison when there is none or the copy is too large.
    fn alias(&mut self, id: usize, span: Span) {
        match self.anchors.get(&id) {
            Some((_, size)) if self.nodes + size > MAX_NODES => {
                self.problems.push(Diagnostic::error(
                    None,
                    span,
                    format!("aliases expand this document past {MAX_NODES} values"),
                ));
                self.push(Node::poison(span));
            }
            Some((node, size)) => {
                self.nodes += size;
                let node = node.clone();
                self.push(node);
            }
            None => {
                self.problems
                    .push(Diagnostic::error(None, span, "alias to an unknown anchor"));
                self.push(Node::poison(span));
            }
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), node.count()));
        }
    }

    fn push(&mut self, node: Node) {
        self.nodes += 1;
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq(_, items, _)) => items.push(node),
            Some(Frame::Map(_, entries, pending, _)) => match pending.take() {
                None => {
                    if !matches!(node.kind, Kind::Scalar(_)) {
                        self.problems.push(Diagnostic::error(
                            None,
                            node.span,
                            "mapping keys must be plain text, not lists or mappings",
                        ));
                    }
                    *pending = Some(node);
                }
                Some(key) => {
                    let entry = Entry { key, value: node };
                    if !matches!(entry.key.kind, Kind::Scalar(_)) {
                        return;
                    }
                    if let Some(first) = entries.iter().find(|e| e.key_text() == entry.key_text()) {
                        let first_line = first.key.span.start.line;
                        self.problems.push(Diagnostic::error(
                            None,
                            entry.key.span,
                            format!(
                                "duplicate key `{}`: it is already defined on line {first_line}",
                                entry.key_text()
                            ),
                        ));
                        return;
                    }
                    entries.push(entry);
                }
            },
        }
    }
}

fn core_tag(tag: Cow<'_, Tag>) -> String {
    if tag.is_yaml_core_schema() {
        tag.suffix.clone()
    } else {
        tag.to_string()
    }
}

/// Finding nodes by path, and the edits error recovery makes.
impl Node {
    /// How many nodes this one holds, itself included.
    pub fn count(&self) -> usize {
        1 + match &self.kind {
            Kind::Seq(items) => items.iter().map(Node::count).sum(),
            Kind::Map(entries) => entries
                .iter()
                .map(|e| e.key.count() + e.value.count())
                .sum(),
            Kind::Scalar(_) | Kind::Poison => 0,
        }
    }

    pub fn find(&self, path: &Path) -> Option<&Node> {
        let mut node = self;
        for seg in &path.0 {
            node = node.child(seg)?;
        }
        Some(node)
    }

    /// The span of the key that leads to `path` (for unknown fields), else the node's own span.
    pub fn key_span(&self, path: &Path) -> Option<Span> {
        let parent = self.find(&path.parent()?)?;
        match (path.0.last()?, &parent.kind) {
            (Seg::Key(k), Kind::Map(entries)) => entries
                .iter()
                .find(|e| e.key_text() == k)
                .map(|e| e.key.span),
            _ => None,
        }
    }

    fn child(&self, seg: &Seg) -> Option<&Node> {
        match (seg, &self.kind) {
            (Seg::Key(k), Kind::Map(entries)) => {
                entries.iter().find(|e| e.key_text() == k).map(|e| &e.value)
            }
            (Seg::Index(i), Kind::Seq(items)) => items.get(*i),
            _ => None,
        }
    }

    fn child_mut(&mut self, seg: &Seg) -> Option<&mut Node> {
        match (seg, &mut self.kind) {
            (Seg::Key(k), Kind::Map(entries)) => entries
                .iter_mut()
                .find(|e| e.key_text() == k)
                .map(|e| &mut e.value),
            (Seg::Index(i), Kind::Seq(items)) => items.get_mut(*i),
            _ => None,
        }
    }

    pub fn find_mut(&mut self, path: &Path) -> Option<&mut Node> {
        let mut node = self;
        for seg in &path.0 {
            node = node.child_mut(seg)?;
        }
        Some(node)
    }

    /// True when `path` is a poisoned node or lies beneath one.
    pub fn under_poison(&self, path: &Path) -> bool {
        let mut node = self;
        for seg in &path.0 {
            if matches!(node.kind, Kind::Poison) {
                return true;
            }
            match node.child(seg) {
                Some(child) => node = child,
                None => return false,
            }
        }
        matches!(node.kind, Kind::Poison)
    }

    /// The deepest existing node along `path` (for positioning messages about absent fields).
    pub fn nearest(&self, path: &Path) -> (&Node, usize) {
        let mut node = self;
        let mut depth = 0;
        for seg in &path.0 {
            match node.child(seg) {
                Some(child) => {
                    node = child;
                    depth += 1;
                }
                None => break,
            }
        }
        (node, depth)
    }

    /// Remove the mapping entry at `path`. Returns false when there is none.
    pub fn remove(&mut self, path: &Path) -> bool {
        let (Some(parent), Some(Seg::Key(k))) = (path.parent(), path.0.last()) else {
            return false;
        };
        match self.find_mut(&parent).map(|p| &mut p.kind) {
            Some(Kind::Map(entries)) => {
                let before = entries.len();
                entries.retain(|e| e.key_text() != k);
                entries.len() != before
            }
            _ => false,
        }
    }

    /// Add a poisoned entry `key` to the mapping at `path` (a required field that is missing).
    pub fn insert_poison(&mut self, path: &Path, key: &str) -> bool {
        let Some(node) = self.find_mut(path) else {
            return false;
        };
        let span = node.span;
        match &mut node.kind {
            Kind::Map(entries) if !entries.iter().any(|e| e.key_text() == key) => {
                entries.push(Entry {
                    key: Node {
                        span,
                        kind: Kind::Scalar(Scalar {
                            text: key.to_owned(),
                            style: Style::Plain,
                            tag: None,
                        }),
                    },
                    value: Node::poison(span),
                });
                true
            }
            _ => false,
        }
    }

    /// Replace the node at `path` by poison. Returns false when it is absent or already poison.
    pub fn poison_at(&mut self, path: &Path) -> bool {
        match self.find_mut(path) {
            Some(node) if !matches!(node.kind, Kind::Poison) => {
                node.kind = Kind::Poison;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> Scalar {
        Scalar {
            text: text.into(),
            style: Style::Plain,
            tag: None,
        }
    }

    #[test]
    fn resolves_core_schema_scalars() {
        assert_eq!(resolve(&scalar("42")), Resolved::UInt(42));
        assert_eq!(resolve(&scalar("-3")), Resolved::Int(-3));
        assert_eq!(resolve(&scalar("0.5")), Resolved::Float(0.5));
        assert_eq!(resolve(&scalar("~")), Resolved::Null);
        assert_eq!(resolve(&scalar("true")), Resolved::Bool(true));
        assert_eq!(resolve(&scalar("20s")), Resolved::Str("20s"));
        assert_eq!(resolve(&scalar("1e3")), Resolved::Float(1000.0));
        assert_eq!(resolve(&scalar("e3")), Resolved::Str("e3"));
        let quoted = Scalar {
            style: Style::Quoted,
            ..scalar("42")
        };
        assert_eq!(resolve(&quoted), Resolved::Str("42"));
    }

    #[test]
    fn paths_display_like_field_paths() {
        let p = Path::root()
            .key("targets")
            .key("storm-lab")
            .key("ladder")
            .index(2);
        assert_eq!(p.to_string(), "targets.storm-lab.ladder[2]");
        assert_eq!(
            Path::root().key("tags").key("a.b").to_string(),
            "tags[\"a.b\"]"
        );
    }

    #[test]
    fn spans_point_at_values() {
        let doc = parse("a:\n  b: [1, 22]\n");
        let root = doc.root.unwrap();
        let n = root.find(&Path::root().key("a").key("b").index(1)).unwrap();
        assert_eq!((n.span.start.line, n.span.start.col), (2, 10));
        assert_eq!(n.span.end.col, 12);
    }

    #[test]
    fn alias_expansion_is_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let doc = parse(&text);
        assert!(
            doc.problems
                .iter()
                .any(|p| p.message.contains("aliases expand"))
        );
        assert!(doc.root.unwrap().count() <= MAX_NODES + 100);
    }

    #[test]
    fn duplicate_keys_are_reported_and_dropped() {
        let doc = parse("a: 1\nb: 2\na: 3\n");
        assert_eq!(doc.problems.len(), 1);
        assert!(doc.problems[0].message.contains("duplicate key `a`"));
        assert_eq!(doc.root.unwrap().entries().unwrap().len(), 2);
    }
}
