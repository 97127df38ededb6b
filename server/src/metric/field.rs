//! Naming a field of a record and holding its value: [`Pointer`] (a parsed JSON Pointer, also
//! the one-segment key of logfmt and regex records) and [`FieldValue`] (one field of one
//! decoded record, borrowed from it). Definitions and filters name fields with pointers; the
//! engine's extraction resolves them to values.

/// A parsed JSON Pointer: its unescaped reference tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    pub text: String,
    pub tokens: Vec<String>,
}

impl Pointer {
    /// Parses an RFC 6901 pointer; the root pointer `""` is refused (a field is needed).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty path; write a JSON Pointer such as /latency_ms".into());
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!(
                "{text:?} is not a JSON Pointer: it must start with '/'"
            ));
        };
        let mut tokens = Vec::new();
        for raw in rest.split('/') {
            let mut token = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => token.push('~'),
                        Some('1') => token.push('/'),
                        _ => {
                            return Err(format!(
                                "{text:?}: '~' must be followed by 0 or 1 (RFC 6901)"
                            ));
                        }
                    }
                } else {
                    token.push(c);
                }
            }
            tokens.push(token);
        }
        Ok(Self {
            text: text.to_string(),
            tokens,
        })
    }

    /// For flat formats (logfmt, regex): the single key this pointer names.
    pub fn flat_key(&self) -> Option<&str> {
        match self.tokens.as_slice() {
            [key] => Some(key),
            _ => None,
        }
    }
}

/// One field of one record, borrowed from the decoded record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    Missing,
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
    /// An object or array: exists, but is not a scalar.
    Composite,
}

impl<'a> FieldValue<'a> {
    /// The value as a number: JSON numbers, and strings that parse as one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            FieldValue::Num(n) => Some(*n),
            FieldValue::Str(s) => s.trim().parse().ok().filter(|n: &f64| n.is_finite()),
            _ => None,
        }
    }

    /// Appends the value as a dimension label.
    pub fn write_label(&self, out: &mut String) {
        use std::fmt::Write;
        match self {
            FieldValue::Missing => out.push_str("__missing__"),
            FieldValue::Null => out.push_str("null"),
            FieldValue::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            FieldValue::Num(n) => {
                let _ = write!(out, "{n}");
            }
            FieldValue::Str(s) => out.push_str(s),
            FieldValue::Composite => out.push_str("__composite__"),
        }
    }
}
