//! Located problems in a plan and their rustc-like rendering.

use std::fmt::Write as _;

use super::yaml::Path;

/// A position in the plan text: 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
    /// Character offset from the start of the text.
    pub index: usize,
}

/// A range of the plan text, end exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
}

impl Span {
    pub(crate) fn from_saphyr(span: saphyr_parser::Span) -> Span {
        let pos = |m: saphyr_parser::Marker| Pos {
            line: m.line(),
            col: m.col() + 1,
            index: m.index(),
        };
        Span {
            start: pos(span.start),
            end: pos(span.end),
        }
    }

    /// From the start of `self` to the end of `other`.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start,
            end: other.end,
        }
    }

    pub fn at(pos: Pos) -> Span {
        Span {
            start: pos,
            end: pos,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem: where it is (field path and text span), what is wrong, and how to fix it.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub severity: Severity,
    pub path: Option<Path>,
    pub span: Option<Span>,
    pub message: String,
    pub help: Option<String>,
    /// Texts that hold a secret (a password written in the plan): the excerpt shows
    /// [`HIDDEN`] in their place, never the text itself. [`super::load`] gives every
    /// diagnostic of a plan all of the plan's secrets, since any excerpt may show their line.
    pub secrets: Vec<Span>,
}

/// What an excerpt shows instead of a secret.
pub const HIDDEN: &str = "<redacted>";

impl Diagnostic {
    pub fn error(path: Option<Path>, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            path,
            span: Some(span),
            message: message.into(),
            help: None,
            secrets: Vec::new(),
        }
    }

    /// A problem with the file itself (missing, unreadable, empty): no position inside it.
    pub fn file(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            path: None,
            span: None,
            message: message.into(),
            help: None,
            secrets: Vec::new(),
        }
    }

    /// Hide the text of `span` in the excerpt (it holds a secret).
    pub fn with_secret(mut self, span: Span) -> Diagnostic {
        self.secrets.push(span);
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:column: field.path: message`, then a caret excerpt of the line and any help.
    pub fn render(&self, file: &str, text: &str) -> String {
        let mut out = String::new();
        let severity = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        let path = match &self.path {
            Some(p) if !p.is_root() => format!("{p}: "),
            _ => String::new(),
        };
        match self.span.map(|s| clamp(text, s)) {
            Some(span) => {
                let _ = write!(
                    out,
                    "{file}:{}:{}: {severity}{path}{}",
                    span.start.line, span.start.col, self.message
                );
                out.push('\n');
                if self.secrets.is_empty() {
                    excerpt(&mut out, text, span);
                } else {
                    excerpt(
                        &mut out,
                        &hide(text, &self.secrets),
                        shown(span, &self.secrets),
                    );
                }
            }
            None => {
                let _ = writeln!(out, "{file}: {severity}{path}{}", self.message);
            }
        }
        if let Some(help) = &self.help {
            let _ = writeln!(
                out,
                "{:width$} = help: {help}",
                "",
                width = gutter(self.span)
            );
        }
        out
    }
}

/// The lines of a text as YAML counts them: `\r\n`, `\n` and a lone `\r` each end a line (so
/// positions from the parser and the excerpt agree).
fn yaml_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// A syntax error at the end of the text points past the last line: point at the end of the
/// last line instead, so the position and the excerpt agree.
fn clamp(text: &str, span: Span) -> Span {
    let lines = yaml_lines(text);
    if span.start.line <= lines.len() || text.is_empty() {
        return span;
    }
    let Some((i, line)) = lines.into_iter().enumerate().next_back() else {
        return span;
    };
    let pos = Pos {
        line: i + 1,
        col: line.chars().count() + 1,
        index: span.start.index,
    };
    Span::at(pos)
}

/// The text with the characters of each secret replaced by [`HIDDEN`] (to the end of its first
/// line when it spans several).
fn hide(text: &str, secrets: &[Span]) -> String {
    let ranges: Vec<(usize, usize)> = secrets.iter().map(|s| hidden_range(text, *s)).collect();
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        if ranges.iter().any(|&(start, _)| start == i) {
            out.push_str(HIDDEN);
        }
        if !ranges.iter().any(|&(start, end)| (start..end).contains(&i)) {
            out.push(c);
        }
    }
    out
}

/// The characters of a secret: its span, or to the end of its line when it spans lines.
fn hidden_range(text: &str, secret: Span) -> (usize, usize) {
    let start = secret.start.index;
    if secret.end.line == secret.start.line && secret.end.index > start {
        return (start, secret.end.index);
    }
    let rest = text.chars().skip(start);
    (
        start,
        start + rest.take_while(|c| !matches!(c, '\n' | '\r')).count(),
    )
}

/// A span that is itself a secret is shown as long as [`HIDDEN`].
fn shown(span: Span, secrets: &[Span]) -> Span {
    if !secrets.iter().any(|s| s.start == span.start) {
        return span;
    }
    let mut span = span;
    span.end = span.start;
    span.end.col += HIDDEN.chars().count();
    span
}

/// Longest excerpt line shown, in characters.
const MAX_EXCERPT: usize = 200;

fn gutter(span: Option<Span>) -> usize {
    span.map_or(1, |s| s.start.line.max(1).to_string().len())
}

fn excerpt(out: &mut String, text: &str, span: Span) {
    let lines = yaml_lines(text);
    let Some(line) = lines.get(span.start.line.saturating_sub(1)).copied() else {
        return;
    };
    let width = gutter(Some(span));
    let mut chars: Vec<char> = line.chars().collect();
    let mut span = span;
    // Show a window of a very long line around the caret.
    if chars.len() > MAX_EXCERPT {
        let from = span
            .start
            .col
            .saturating_sub(1)
            .saturating_sub(40)
            .min(chars.len());
        let to = (from + MAX_EXCERPT).min(chars.len());
        let mut window: Vec<char> = Vec::with_capacity(MAX_EXCERPT + 2);
        if from > 0 {
            window.push('…');
        }
        window.extend_from_slice(&chars[from..to]);
        if to < chars.len() {
            window.push('…');
        }
        let shift = from.saturating_sub(usize::from(from > 0));
        span.start.col -= shift;
        if span.end.line == span.start.line {
            span.end.col = span.end.col.saturating_sub(shift);
        }
        chars = window;
    }
    let line: String = chars.iter().collect();
    let start = (span.start.col.max(1) - 1).min(chars.len());
    let caret_room = (chars.len() + 1).saturating_sub(start);
    let len = if span.end.line == span.start.line && span.end.col > span.start.col {
        span.end.col - span.start.col
    } else {
        1
    };
    let len = len.min(caret_room).max(1);
    // Keep tabs in the padding so the carets line up with the text above them.
    let pad: String = chars[..start]
        .iter()
        .map(|&c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let _ = writeln!(out, "{:width$} |", "");
    let _ = writeln!(out, "{} | {line}", span.start.line);
    let _ = writeln!(out, "{:width$} | {pad}{}", "", "^".repeat(len));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_path_and_carets() {
        let text = "name: x\nladder: [3, 2]\n";
        let span = Span {
            start: Pos {
                line: 2,
                col: 13,
                index: 20,
            },
            end: Pos {
                line: 2,
                col: 14,
                index: 21,
            },
        };
        let d = Diagnostic::error(Some(Path::root().key("ladder").index(1)), span, "too small")
            .with_help("make it bigger");
        assert_eq!(
            d.render("p.yaml", text),
            "p.yaml:2:13: ladder[1]: too small\n  |\n2 | ladder: [3, 2]\n  |             ^\n  = help: make it bigger\n"
        );
    }
}
