//! The filter language: a small predicate over a record's fields, parsed by hand.
//!
//! ```text
//! expr    := or
//! or      := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | "(" expr ")" | "exists" PATH | PATH OP LITERAL
//! OP      := "=" | "!=" | "<" | "<=" | ">" | ">="
//! LITERAL := number | "string" | true | false | null
//! PATH    := JSON Pointer, e.g. /status or /user/id
//! ```
//!
//! Semantics: a comparison with a missing field is false (so `not` of it is true). Numbers
//! compare numerically; a string field compared with a number is parsed as a number first (logfmt
//! and regex fields are strings); strings compare by bytes. Errors carry the byte position.

use super::field::{FieldValue, Pointer};
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        path: Pointer,
        op: Op,
        literal: Literal,
    },
    Exists(Pointer),
    Not(Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
}

/// A syntax error with its 0-based byte position in the filter text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct FilterError {
    pub position: usize,
    pub message: String,
}

impl Filter {
    /// Every field path the filter mentions (for validation against the record format).
    pub fn paths(&self) -> Vec<&Pointer> {
        let mut out = Vec::new();
        fn walk<'a>(f: &'a Filter, out: &mut Vec<&'a Pointer>) {
            match f {
                Filter::Compare { path, .. } | Filter::Exists(path) => out.push(path),
                Filter::Not(inner) => walk(inner, out),
                Filter::And(a, b) | Filter::Or(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
            }
        }
        walk(self, &mut out);
        out
    }

    /// Evaluates against a record; `get` resolves a path to the record's field.
    pub fn eval<'r>(&self, get: &dyn Fn(&Pointer) -> FieldValue<'r>) -> bool {
        match self {
            Filter::Exists(path) => !matches!(get(path), FieldValue::Missing),
            Filter::Not(inner) => !inner.eval(get),
            Filter::And(a, b) => a.eval(get) && b.eval(get),
            Filter::Or(a, b) => a.eval(get) || b.eval(get),
            Filter::Compare { path, op, literal } => compare(&get(path), *op, literal),
        }
    }
}

fn compare(field: &FieldValue<'_>, op: Op, literal: &Literal) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (field, literal) {
        (FieldValue::Missing, _) => return false,
        (FieldValue::Num(a), Literal::Num(b)) => a.partial_cmp(b),
        (FieldValue::Str(a), Literal::Num(b)) => {
            a.trim().parse::<f64>().ok().and_then(|a| a.partial_cmp(b))
        }
        (FieldValue::Str(a), Literal::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (FieldValue::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        (FieldValue::Str(a), Literal::Bool(b)) => match *a {
            "true" => Some(true.cmp(b)),
            "false" => Some(false.cmp(b)),
            _ => None,
        },
        (FieldValue::Null, Literal::Null) => Some(Ordering::Equal),
        _ => None,
    };
    match ordering {
        None => op == Op::Ne,
        Some(o) => match op {
            Op::Eq => o == Ordering::Equal,
            Op::Ne => o != Ordering::Equal,
            Op::Lt => o == Ordering::Less,
            Op::Le => o != Ordering::Greater,
            Op::Gt => o == Ordering::Greater,
            Op::Ge => o != Ordering::Less,
        },
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Path(String),
    Op(Op),
    Num(f64),
    Str(String),
    Word(String),
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, FilterError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |position: usize, message: String| FilterError { position, message };
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push((start, Token::Open));
                i += 1;
            }
            b')' => {
                out.push((start, Token::Close));
                i += 1;
            }
            b'=' => {
                i += if bytes.get(i + 1) == Some(&b'=') {
                    2
                } else {
                    1
                };
                out.push((start, Token::Op(Op::Eq)));
            }
            b'!' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    out.push((start, Token::Op(Op::Ne)));
                    i += 2;
                } else {
                    return Err(err(start, "expected '!='; write 'not' for negation".into()));
                }
            }
            b'<' | b'>' => {
                let eq = bytes.get(i + 1) == Some(&b'=');
                let op = match (c, eq) {
                    (b'<', false) => Op::Lt,
                    (b'<', true) => Op::Le,
                    (_, false) => Op::Gt,
                    (_, true) => Op::Ge,
                };
                out.push((start, Token::Op(op)));
                i += if eq { 2 } else { 1 };
            }
            b'"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    let Some(ch) = text[i..].chars().next() else {
                        return Err(err(start, "unterminated string".into()));
                    };
                    i += ch.len_utf8();
                    match ch {
                        '"' => break,
                        '\\' => {
                            let Some(esc) = text[i..].chars().next() else {
                                return Err(err(start, "unterminated string".into()));
                            };
                            i += esc.len_utf8();
                            match esc {
                                '"' | '\\' => s.push(esc),
                                'n' => s.push('\n'),
                                't' => s.push('\t'),
                                _ => {
                                    return Err(err(
                                        i - esc.len_utf8() - 1,
                                        format!("unknown escape '\\{esc}'"),
                                    ));
                                }
                            }
                        }
                        _ => s.push(ch),
                    }
                }
                out.push((start, Token::Str(s)));
            }
            b'/' => {
                while i < bytes.len()
                    && !matches!(
                        bytes[i],
                        b' ' | b'\t' | b'\n' | b'\r' | b'(' | b')' | b'=' | b'!' | b'<' | b'>'
                    )
                {
                    i += 1;
                }
                out.push((start, Token::Path(text[start..i].to_string())));
            }
            b'-' | b'+' | b'.' | b'0'..=b'9' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'-' | b'+'))
                {
                    i += 1;
                }
                let word = &text[start..i];
                let n: f64 = word
                    .parse()
                    .map_err(|_| err(start, format!("{word:?} is not a number")))?;
                out.push((start, Token::Num(n)));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push((start, Token::Word(text[start..i].to_ascii_lowercase())));
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(err(start, format!("unexpected character {ch:?}")));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }
    fn position(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(p, _)| *p)
    }
    fn error<T>(&self, message: impl Into<String>) -> Result<T, FilterError> {
        Err(FilterError {
            position: self.position(),
            message: message.into(),
        })
    }
    fn word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(x)) if x == w)
    }
    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.and()?;
        while self.word("or") {
            self.at += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.unary()?;
        while self.word("and") {
            self.at += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }
    fn path(&mut self) -> Result<Pointer, FilterError> {
        match self.peek().cloned() {
            Some(Token::Path(text)) => {
                let pointer = Pointer::parse(&text).or_else(|m| self.error(m))?;
                self.at += 1;
                Ok(pointer)
            }
            _ => self.error("expected a field path such as /status"),
        }
    }
    fn unary(&mut self) -> Result<Filter, FilterError> {
        match self.peek() {
            Some(Token::Word(w)) if w == "not" => {
                self.at += 1;
                Ok(Filter::Not(Box::new(self.unary()?)))
            }
            Some(Token::Word(w)) if w == "exists" => {
                self.at += 1;
                let paren = matches!(self.peek(), Some(Token::Open));
                if paren {
                    self.at += 1;
                }
                let path = self.path()?;
                if paren {
                    if !matches!(self.peek(), Some(Token::Close)) {
                        return self.error("expected ')'");
                    }
                    self.at += 1;
                }
                Ok(Filter::Exists(path))
            }
            Some(Token::Open) => {
                self.at += 1;
                let inner = self.or()?;
                if !matches!(self.peek(), Some(Token::Close)) {
                    return self.error("expected ')'");
                }
                self.at += 1;
                Ok(inner)
            }
            Some(Token::Path(_)) => {
                let path = self.path()?;
                let op = match self.peek() {
                    Some(Token::Op(op)) => *op,
                    _ => return self.error("expected a comparison (=, !=, <, <=, >, >=)"),
                };
                self.at += 1;
                let literal = match self.peek().cloned() {
                    Some(Token::Num(n)) => Literal::Num(n),
                    Some(Token::Str(s)) => Literal::Str(s),
                    Some(Token::Word(w)) if w == "true" => Literal::Bool(true),
                    Some(Token::Word(w)) if w == "false" => Literal::Bool(false),
                    Some(Token::Word(w)) if w == "null" => Literal::Null,
                    _ => return self.error("expected a number, a \"string\", true, false or null"),
                };
                self.at += 1;
                Ok(Filter::Compare { path, op, literal })
            }
            None => self.error("unexpected end of filter"),
            Some(_) => self.error("expected a field path, 'not', 'exists' or '('"),
        }
    }
}

/// Parses filter text.
pub fn parse(text: &str) -> Result<Filter, FilterError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        end: text.len(),
    };
    let filter = parser.or()?;
    if parser.at != parser.tokens.len() {
        return parser.error("expected 'and', 'or' or the end of the filter");
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn eval(filter: &str, record: &[(&str, FieldValue<'static>)]) -> bool {
        let map: HashMap<String, FieldValue<'static>> =
            record.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let f = parse(filter).unwrap();
        f.eval(&|p: &Pointer| map.get(&p.text).copied().unwrap_or(FieldValue::Missing))
    }

    #[test]
    fn precedence_and_operators() {
        let r = [
            ("/status", FieldValue::Num(503.0)),
            ("/region", FieldValue::Str("eu")),
            ("/n", FieldValue::Str("12")),
        ];
        assert!(eval("/status >= 500", &r));
        assert!(!eval("/status < 500", &r));
        assert!(eval(r#"/region = "eu" and /status != 200"#, &r));
        assert!(eval(r#"/region = "us" or /status = 503 and /n > 10"#, &r));
        assert!(!eval(
            r#"(/region = "us" or /status = 503) and /n > 12"#,
            &r
        ));
        assert!(eval("not exists /missing", &r));
        assert!(eval("exists(/region)", &r));
        assert!(!eval("/missing = 1", &r));
        assert!(eval("not /missing = 1", &r));
        assert!(eval("/n <= 12 AND /n >= 12", &r));
    }

    #[test]
    fn errors_carry_positions() {
        let e = parse("/a = ").unwrap_err();
        assert_eq!(e.position, 5);
        let e = parse("/a = 1 and").unwrap_err();
        assert_eq!(e.position, 10);
        let e = parse("/a = 1 xor /b = 2").unwrap_err();
        assert_eq!(e.position, 7);
        let e = parse("(/a = 1").unwrap_err();
        assert!(e.message.contains("')'"));
        let e = parse("/a ! 1").unwrap_err();
        assert_eq!(e.position, 3);
        let e = parse(r#"/a = "x"#).unwrap_err();
        assert_eq!(e.position, 5);
        assert!(parse("a = 1").is_err());
    }
}
