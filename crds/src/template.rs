//! The JSON-template language of `value.json.template`: JSON text with `{{…}}` placeholders.
//!
//! One parser for both sides: validation ([`crate::validate`]) rejects what the agent could not
//! render, and the agent's renderer builds its parts from the same [`Segment`]s, so the two can
//! never disagree on what a template means.
//!
//! A placeholder inside a JSON string inserts its text; outside a string it is one whole JSON
//! value, so it must stand where a value can: after `:`, `,` or `[` (or alone), and before `,`,
//! `]` or `}` (or the end). `{{` always opens a placeholder and `}}` closes it.

use std::fmt;

use crate::validate::limits::MAX_RECORD_SIZE;

/// The placeholders a template may use, for messages and documentation.
pub const PLACEHOLDERS: &[&str] = &[
    "{{seq}}",
    "{{seq START}}",
    "{{uuid}}",
    "{{timestampMillis}}",
    "{{int MIN MAX}}",
    "{{uniformInt MIN MAX}}",
    "{{string LEN}}",
    "{{string MIN MAX}}",
    "{{oneOf A B ...}}",
    "{{bool}}",
];

/// What one placeholder asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder<'a> {
    /// The record's fleet-wide index, from `start`.
    Seq { start: i64 },
    /// A version-4 UUID, fresh per record.
    Uuid,
    /// The record's intended send time, in ms since the epoch.
    TimestampMillis,
    /// A uniform integer in `[min, max]`.
    Int { min: i64, max: i64 },
    /// Alphanumeric text of a uniform length in `[min, max]` characters.
    Str { min: u32, max: u32 },
    /// One of the words, uniformly.
    OneOf(Vec<&'a str>),
    /// `true` or `false`.
    Bool,
}

/// Why the words between `{{` and `}}` are not a placeholder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceholderError {
    #[error("{what} must be an integer (got {got:?})")]
    NotAnInteger { what: &'static str, got: String },
    #[error("{what} must be a length, 0 or more (got {got:?})")]
    NotALength { what: &'static str, got: String },
    #[error("{what} must be at most {MAX_RECORD_SIZE} (got {got})")]
    TooLong { what: &'static str, got: u64 },
    #[error("min must be at most max (got min {min}, max {max})")]
    MinAboveMax { min: i64, max: i64 },
    #[error("must list at least one word")]
    NoWords,
    #[error("is empty")]
    Empty,
    #[error("is not a placeholder; expected one of {}", PLACEHOLDERS.join(", "))]
    Unknown,
}

/// Parses the words between `{{` and `}}`.
pub fn parse_placeholder(inner: &str) -> Result<Placeholder<'_>, PlaceholderError> {
    let words: Vec<&str> = inner.split_whitespace().collect();
    Ok(match words.as_slice() {
        ["seq"] => Placeholder::Seq { start: 0 },
        ["seq", s] => Placeholder::Seq {
            start: integer(s, "START")?,
        },
        ["uuid"] => Placeholder::Uuid,
        ["timestampMillis"] => Placeholder::TimestampMillis,
        ["bool"] => Placeholder::Bool,
        ["int" | "uniformInt", a, b] => {
            let (min, max) = ordered(integer(a, "MIN")?, integer(b, "MAX")?)?;
            Placeholder::Int { min, max }
        }
        ["string", n] => {
            let n = length(n, "LEN")?;
            Placeholder::Str { min: n, max: n }
        }
        ["string", a, b] => {
            let (min, max) = (length(a, "MIN")?, length(b, "MAX")?);
            ordered(i64::from(min), i64::from(max))?;
            Placeholder::Str { min, max }
        }
        ["oneOf"] => return Err(PlaceholderError::NoWords),
        ["oneOf", words @ ..] => Placeholder::OneOf(words.to_vec()),
        [] => return Err(PlaceholderError::Empty),
        _ => return Err(PlaceholderError::Unknown),
    })
}

fn integer(word: &str, what: &'static str) -> Result<i64, PlaceholderError> {
    word.parse().map_err(|_| PlaceholderError::NotAnInteger {
        what,
        got: word.to_string(),
    })
}

fn length(word: &str, what: &'static str) -> Result<u32, PlaceholderError> {
    let n: u64 = word.parse().map_err(|_| PlaceholderError::NotALength {
        what,
        got: word.to_string(),
    })?;
    match u32::try_from(n) {
        Ok(n) if n <= MAX_RECORD_SIZE => Ok(n),
        _ => Err(PlaceholderError::TooLong { what, got: n }),
    }
}

fn ordered(min: i64, max: i64) -> Result<(i64, i64), PlaceholderError> {
    if min > max {
        return Err(PlaceholderError::MinAboveMax { min, max });
    }
    Ok((min, max))
}

/// One piece of a parsed template, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Template text, copied as written.
    Text(&'a str),
    /// A placeholder; `in_string`: it stands inside a JSON string (so it inserts text), else
    /// it is one whole JSON value.
    Placeholder {
        placeholder: Placeholder<'a>,
        in_string: bool,
    },
}

/// What is wrong with a template, and where (1-based line and column, in characters, of the
/// placeholder's `{{`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub line: usize,
    pub column: usize,
    pub kind: TemplateErrorKind,
}

/// What is wrong with a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateErrorKind {
    #[error("an unclosed {{{{ (placeholders end with }}}})")]
    Unclosed,
    #[error("placeholder {{{{{inner}}}}}: {error}")]
    Placeholder {
        inner: String,
        error: PlaceholderError,
    },
    #[error("placeholder {{{{{inner}}}}} must be followed by , ] or }} (or go inside quotes)")]
    NotFollowedByEnd { inner: String },
    #[error(
        "placeholder {{{{{inner}}}}} stands where a JSON value cannot; put it after :, , or [ or inside quotes"
    )]
    NotAtValue { inner: String },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (at line {}, column {})",
            self.kind, self.line, self.column
        )
    }
}

impl std::error::Error for TemplateError {}

/// Splits a template into text and placeholders, checking every placeholder's words and where
/// it stands. Whether the text around them is JSON is the caller's check (fill, then parse).
pub fn parse(template: &str) -> Result<Vec<Segment<'_>>, TemplateError> {
    let mut scan = Scan::new(template);
    let bytes = template.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"{{") {
            i = scan.placeholder(i)?;
        } else {
            scan.byte(bytes[i])?;
            i += 1;
        }
    }
    Ok(scan.finish())
}

/// The parser's state while it walks the template once, byte by byte.
struct Scan<'a> {
    template: &'a str,
    segments: Vec<Segment<'a>>,
    /// Where the text not yet pushed as a segment starts.
    text_start: usize,
    in_string: bool,
    escaped: bool,
    /// The last significant byte outside strings.
    last: Option<u8>,
    /// A placeholder outside a string, waiting to see what follows it: (its `{{`, its words).
    pending: Option<(usize, &'a str)>,
}

impl<'a> Scan<'a> {
    fn new(template: &'a str) -> Self {
        Scan {
            template,
            segments: Vec::new(),
            text_start: 0,
            in_string: false,
            escaped: false,
            last: None,
            pending: None,
        }
    }

    /// The placeholder whose `{{` is at `at`; returns where the text after its `}}` starts.
    fn placeholder(&mut self, at: usize) -> Result<usize, TemplateError> {
        let open = at + 2;
        let Some(len) = self.template.get(open..).and_then(|rest| rest.find("}}")) else {
            return Err(self.error(at, TemplateErrorKind::Unclosed));
        };
        let inner = self.template.get(open..open + len).unwrap_or_default();
        let placeholder = parse_placeholder(inner).map_err(|error| {
            let inner = inner.to_string();
            self.error(at, TemplateErrorKind::Placeholder { inner, error })
        })?;
        if !self.in_string {
            self.check_value_position(at, inner)?;
        }
        self.push_text(at);
        self.segments.push(Segment::Placeholder {
            placeholder,
            in_string: self.in_string,
        });
        self.text_start = open + len + 2;
        Ok(self.text_start)
    }

    /// A placeholder outside a string stands where a JSON value can.
    fn check_value_position(&mut self, at: usize, inner: &'a str) -> Result<(), TemplateError> {
        if let Some((p, prev)) = self.pending.take() {
            let inner = prev.to_string();
            return Err(self.error(p, TemplateErrorKind::NotFollowedByEnd { inner }));
        }
        if !matches!(self.last, None | Some(b'[' | b':' | b',')) {
            let inner = inner.to_string();
            return Err(self.error(at, TemplateErrorKind::NotAtValue { inner }));
        }
        self.pending = Some((at, inner));
        self.last = Some(b'0');
        Ok(())
    }

    /// One byte of template text.
    fn byte(&mut self, c: u8) -> Result<(), TemplateError> {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if c == b'\\' {
                self.escaped = true;
            } else if c == b'"' {
                self.in_string = false;
            }
            return Ok(());
        }
        if c.is_ascii_whitespace() {
            return Ok(());
        }
        if let Some((p, prev)) = self.pending.take()
            && !matches!(c, b',' | b']' | b'}')
        {
            let inner = prev.to_string();
            return Err(self.error(p, TemplateErrorKind::NotFollowedByEnd { inner }));
        }
        self.in_string = c == b'"';
        self.last = Some(c);
        Ok(())
    }

    fn push_text(&mut self, end: usize) {
        if let Some(text) = self.template.get(self.text_start..end)
            && !text.is_empty()
        {
            self.segments.push(Segment::Text(text));
        }
    }

    fn finish(mut self) -> Vec<Segment<'a>> {
        self.push_text(self.template.len());
        self.segments
    }

    /// An error at byte `at`, with its line and column.
    fn error(&self, at: usize, kind: TemplateErrorKind) -> TemplateError {
        let before = self.template.get(..at).unwrap_or(self.template);
        TemplateError {
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().unwrap_or("").chars().count() + 1,
            kind,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn text_and_placeholders_alternate_as_written() {
        let segments = parse(r#"{"id": "x{{seq 5}}", "n": {{int 1 9}}}"#).unwrap();
        assert_eq!(
            segments,
            vec![
                Segment::Text(r#"{"id": "x"#),
                Segment::Placeholder {
                    placeholder: Placeholder::Seq { start: 5 },
                    in_string: true
                },
                Segment::Text(r#"", "n": "#),
                Segment::Placeholder {
                    placeholder: Placeholder::Int { min: 1, max: 9 },
                    in_string: false
                },
                Segment::Text("}"),
            ]
        );
    }

    #[test]
    fn errors_name_the_line_and_column_of_the_placeholder() {
        let e = parse("{\n  \"a\": {{nope}}\n}").unwrap_err();
        assert_eq!((e.line, e.column), (2, 8));
        assert_eq!(
            e.kind,
            TemplateErrorKind::Placeholder {
                inner: "nope".into(),
                error: PlaceholderError::Unknown
            }
        );
        assert!(e.to_string().ends_with("(at line 2, column 8)"), "{e}");
    }

    #[test]
    fn bare_placeholders_stand_only_where_a_value_can() {
        let kind = |t: &str| parse(t).unwrap_err().kind;
        assert!(matches!(
            kind(r#"{"a": {{seq}} {{seq}}}"#),
            TemplateErrorKind::NotFollowedByEnd { .. }
        ));
        assert!(matches!(
            kind(r#"{"a": {{seq}}0}"#),
            TemplateErrorKind::NotFollowedByEnd { .. }
        ));
        assert!(matches!(
            kind(r#"{ {{seq}}: 1}"#),
            TemplateErrorKind::NotAtValue { .. }
        ));
        assert!(parse("{{seq}}").is_ok());
        assert!(parse(r#"[{{seq}}, {{bool}}]"#).is_ok());
        assert!(parse(r#"{"a": "\"{{seq}}"}"#).is_ok());
    }

    #[test]
    fn placeholder_words_are_checked() {
        assert_eq!(parse_placeholder(""), Err(PlaceholderError::Empty));
        assert_eq!(parse_placeholder("oneOf"), Err(PlaceholderError::NoWords));
        assert_eq!(
            parse_placeholder("oneOf a 1"),
            Ok(Placeholder::OneOf(vec!["a", "1"]))
        );
        assert_eq!(
            parse_placeholder("int 9 1"),
            Err(PlaceholderError::MinAboveMax { min: 9, max: 1 })
        );
        assert_eq!(
            parse_placeholder("string 99999999")
                .unwrap_err()
                .to_string(),
            "LEN must be at most 10485760 (got 99999999)"
        );
        assert!(matches!(
            parse_placeholder("string -1"),
            Err(PlaceholderError::NotALength { .. })
        ));
        assert!(matches!(
            parse_placeholder("int 1"),
            Err(PlaceholderError::Unknown)
        ));
        assert!(matches!(
            parse(r#"{"a": {{seq}"#).unwrap_err().kind,
            TemplateErrorKind::Unclosed
        ));
    }
}
