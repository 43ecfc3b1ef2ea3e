//! Tokens of the filter/rule grammar, and the one error type of lexing and parsing.
//!
//! The token rules follow PocketBase's scanner (`github.com/ganigeorgiev/fexpr`):
//! - whitespace (space, tab, newline; carriage return is accepted too) and `// comments` up
//!   to the end of the line separate tokens and are dropped;
//! - a string is `'…'` or `"…"`. It ends at the first matching quote *not preceded by a
//!   backslash*, and the only escape removed is a backslash before that same quote: `\'` in
//!   `'…'`, `\"` in `"…"`. Every other backslash is kept as written, so `'100\%'` is the
//!   text `100\%` and stays an escaped `%` for LIKE (PocketBase matches with `ESCAPE '\'`).
//!   A consequence: no string can end with a backslash;
//! - a number is `-?digits(.digits)?` (or `-.digits`); `1.2.3`, `5.`, `.5` and `-` are
//!   errors or split into separate tokens;
//! - an identifier starts with a letter, `_` or `@` and goes on with letters, digits, `_`,
//!   `.` and `:`. Its structure (`@request.body.x:isset`) is checked by the parser;
//! - an identifier immediately followed by `(` (no space) is a function call;
//! - an operator is the longest run of `= ! < > ~ ?`, which must be one of the sixteen
//!   operators; a join is the longest run of `&` and `|`, which must be `&&` or `||`.
//!
//! Anything else outside strings and comments (including any non-ASCII character) is an
//! error.

use super::ast::{Number, Op};

/// Why an input is not a valid expression, and where (a byte offset into the input, always
/// at a character boundary).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} (at byte {pos})")]
pub struct ParseError {
    pub kind: ErrorKind,
    pub pos: usize,
}

impl ParseError {
    pub fn new(kind: ErrorKind, pos: usize) -> ParseError {
        ParseError { kind, pos }
    }

    /// The message without the position.
    pub fn message(&self) -> String {
        self.kind.to_string()
    }
}

/// What is wrong; its `Display` is the human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("empty expression")]
    Empty,
    #[error("the expression is longer than {0} bytes")]
    TooLong(usize),
    #[error("the expression has more than {0} comparisons")]
    TooManyExpressions(usize),
    #[error("parentheses are nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("unexpected character {0:?}")]
    UnexpectedChar(char),
    #[error("unterminated string")]
    UnterminatedString,
    #[error("invalid number {0:?}")]
    InvalidNumber(String),
    #[error("invalid operator {0:?}")]
    InvalidOperator(String),
    #[error("invalid join operator {0:?} (expected && or ||)")]
    InvalidJoin(String),
    #[error("invalid identifier {ident:?}: {reason}")]
    InvalidIdentifier { ident: String, reason: &'static str },
    #[error("unknown macro {0:?}")]
    UnknownMacro(String),
    #[error("unknown modifier {0:?} (expected isset, changed, length, each or lower)")]
    UnknownModifier(String),
    #[error("unknown function {0:?} (expected geoDistance or strftime)")]
    UnknownFunction(String),
    #[error("{func} expects {expected} arguments, got {got}")]
    FunctionArity {
        func: &'static str,
        expected: &'static str,
        got: usize,
    },
    #[error("argument {index} of {func} must be {expected}")]
    FunctionArgument {
        func: &'static str,
        /// 1-based.
        index: usize,
        expected: &'static str,
    },
    #[error("expected a value or identifier, found {0}")]
    ExpectedOperand(String),
    #[error("expected a comparison operator, found {0}")]
    ExpectedOperator(String),
    #[error("expected && or ||, found {0}")]
    ExpectedJoin(String),
    #[error("expected , or ) in the function arguments, found {0}")]
    ExpectedArgSeparator(String),
    #[error("missing closing parenthesis")]
    UnclosedParen,
    #[error("unmatched closing parenthesis")]
    UnmatchedParen,
    #[error("empty parentheses")]
    EmptyGroup,
}

/// A token and the byte range it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// A quoted string, unescaped.
    Str(String),
    Num(Number),
    /// An identifier as written (`@request.body.tags:each`, `@now`, `true`).
    Ident(String),
    /// A function name and the `(` right after it.
    Call(String),
    LParen,
    RParen,
    Comma,
    And,
    Or,
    Op {
        op: Op,
        any: bool,
    },
}

impl TokenKind {
    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Str(s) => format!("string {s:?}"),
            TokenKind::Num(n) => format!("number {}", n.text()),
            TokenKind::Ident(s) => format!("identifier {s:?}"),
            TokenKind::Call(s) => format!("function {s}("),
            TokenKind::LParen => "'('".into(),
            TokenKind::RParen => "')'".into(),
            TokenKind::Comma => "','".into(),
            TokenKind::And => "'&&'".into(),
            TokenKind::Or => "'||'".into(),
            TokenKind::Op { op, any } => format!("'{}{op}'", if *any { "?" } else { "" }),
        }
    }
}

fn is_op_byte(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'<' | b'>' | b'~' | b'?')
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'@'
}

fn is_ident_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':')
}

/// Splits `input` into tokens, dropping whitespace and comments.
pub fn tokenize(input: &str) -> Result<Vec<Token>, ParseError> {
    let bytes = input.as_bytes();
    // Every slice below starts and ends next to an ASCII byte, so at a char boundary; `get`
    // keeps that an error instead of a panic should it ever not hold.
    let slice = |a: usize, b: usize| -> Result<&str, ParseError> {
        input.get(a..b).ok_or_else(|| unexpected_char(input, a))
    };
    let run = |from: usize, pred: fn(u8) -> bool| -> usize {
        let mut i = from;
        while bytes.get(i).copied().is_some_and(pred) {
            i += 1;
        }
        i
    };
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let start = i;
        let kind = match b {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while bytes.get(i).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
                continue;
            }
            b'(' => {
                i += 1;
                TokenKind::LParen
            }
            b')' => {
                i += 1;
                TokenKind::RParen
            }
            b',' => {
                i += 1;
                TokenKind::Comma
            }
            b'\'' | b'"' => {
                let mut j = i + 1;
                let mut prev = 0u8;
                loop {
                    match bytes.get(j) {
                        None => return Err(ParseError::new(ErrorKind::UnterminatedString, i)),
                        Some(&c) if c == b && prev != b'\\' => break,
                        Some(&c) => {
                            prev = c;
                            j += 1;
                        }
                    }
                }
                let raw = slice(i + 1, j)?;
                i = j + 1;
                let quote = if b == b'"' { "\"" } else { "'" };
                TokenKind::Str(raw.replace(&format!("\\{quote}"), quote))
            }
            b'-' | b'0'..=b'9' => {
                let mut j = i + 1;
                let mut had_dot = false;
                while let Some(&c) = bytes.get(j) {
                    if c.is_ascii_digit() || (c == b'.' && !had_dot) {
                        had_dot |= c == b'.';
                        j += 1;
                    } else {
                        break;
                    }
                }
                let text = slice(i, j)?;
                i = j;
                match Number::parse(text) {
                    Some(n) => TokenKind::Num(n),
                    None => {
                        return Err(ParseError::new(
                            ErrorKind::InvalidNumber(text.to_string()),
                            start,
                        ));
                    }
                }
            }
            b if is_ident_start(b) => {
                let j = run(i + 1, is_ident_continue);
                let text = slice(i, j)?.to_string();
                if bytes.get(j) == Some(&b'(') {
                    i = j + 1;
                    TokenKind::Call(text)
                } else {
                    i = j;
                    TokenKind::Ident(text)
                }
            }
            b if is_op_byte(b) => {
                let j = run(i, is_op_byte);
                let text = slice(i, j)?;
                i = j;
                match Op::from_symbol(text) {
                    Some((op, any)) => TokenKind::Op { op, any },
                    None => {
                        return Err(ParseError::new(
                            ErrorKind::InvalidOperator(text.to_string()),
                            start,
                        ));
                    }
                }
            }
            b'&' | b'|' => {
                let j = run(i, |c| c == b'&' || c == b'|');
                let text = slice(i, j)?;
                i = j;
                match text {
                    "&&" => TokenKind::And,
                    "||" => TokenKind::Or,
                    _ => {
                        return Err(ParseError::new(
                            ErrorKind::InvalidJoin(text.to_string()),
                            start,
                        ));
                    }
                }
            }
            _ => return Err(unexpected_char(input, i)),
        };
        tokens.push(Token {
            kind,
            start,
            end: i,
        });
    }
    Ok(tokens)
}

fn unexpected_char(input: &str, pos: usize) -> ParseError {
    // `pos` is where a token would start, so a char boundary; fall back to U+FFFD otherwise.
    let c = input
        .get(pos..)
        .and_then(|s| s.chars().next())
        .unwrap_or(char::REPLACEMENT_CHARACTER);
    ParseError::new(ErrorKind::UnexpectedChar(c), pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kinds(input: &str) -> Vec<TokenKind> {
        tokenize(input)
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    fn err(input: &str) -> ParseError {
        tokenize(input).unwrap_err()
    }

    fn s(v: &str) -> TokenKind {
        TokenKind::Str(v.into())
    }

    fn id(v: &str) -> TokenKind {
        TokenKind::Ident(v.into())
    }

    fn n(v: &str) -> TokenKind {
        TokenKind::Num(Number::parse(v).unwrap())
    }

    #[test]
    fn every_operator() {
        for op in Op::ALL {
            for any in [false, true] {
                let sym = format!("{}{op}", if any { "?" } else { "" });
                assert_eq!(
                    kinds(&format!("a{sym}1")),
                    vec![id("a"), TokenKind::Op { op, any }, n("1")],
                    "{sym}"
                );
            }
        }
        // The longest run of operator characters is one operator.
        for bad in ["==", "=!", "<>", "?", "??=", "!", "=~", ">==", "!?="] {
            assert_eq!(
                err(&format!("a {bad} 1")).kind,
                ErrorKind::InvalidOperator(bad.into())
            );
        }
        // A minus after an operator starts a number.
        assert_eq!(
            kinds("a>=-1"),
            vec![
                id("a"),
                TokenKind::Op {
                    op: Op::Gte,
                    any: false
                },
                n("-1")
            ]
        );
    }

    #[test]
    fn joins_and_punctuation() {
        assert_eq!(
            kinds("(a&&b)||c,"),
            vec![
                TokenKind::LParen,
                id("a"),
                TokenKind::And,
                id("b"),
                TokenKind::RParen,
                TokenKind::Or,
                id("c"),
                TokenKind::Comma
            ]
        );
        for bad in ["&", "|", "&&&", "&|", "|||"] {
            assert_eq!(
                err(&format!("a {bad} b")).kind,
                ErrorKind::InvalidJoin(bad.into())
            );
        }
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(kinds(r#"'it\'s'"#), vec![s("it's")]);
        assert_eq!(kinds(r#""say \"hi\"""#), vec![s(r#"say "hi""#)]);
        // Only the backslash before the string's own quote is an escape.
        assert_eq!(kinds(r#"'a\"b'"#), vec![s(r#"a\"b"#)]);
        assert_eq!(kinds(r#""a\'b""#), vec![s(r"a\'b")]);
        assert_eq!(kinds(r"'100\%'"), vec![s(r"100\%")]);
        assert_eq!(kinds(r"'C:\path\n'"), vec![s(r"C:\path\n")]);
        assert_eq!(kinds(r"'a\\b'"), vec![s(r"a\\b")]);
        // `\\'` is still an escaped quote (PocketBase looks at one character back only).
        assert_eq!(kinds(r"'a\\'b'"), vec![s(r"a\'b")]);
        assert_eq!(err(r"'a\\'").kind, ErrorKind::UnterminatedString);
        assert_eq!(kinds(r#"'' """#), vec![s(""), s("")]);
        assert_eq!(kinds("'héllo wörld ✓\n//x'"), vec![s("héllo wörld ✓\n//x")]);
        assert_eq!(kinds(r#"'"' "'""#), vec![s("\""), s("'")]);
        let e = err("a = 'open");
        assert_eq!((e.kind, e.pos), (ErrorKind::UnterminatedString, 4));
        assert_eq!(err("'\\").kind, ErrorKind::UnterminatedString);
        assert_eq!(err("\"abc'").kind, ErrorKind::UnterminatedString);
    }

    #[test]
    fn numbers() {
        assert_eq!(
            kinds("123 -14 10.5 -.5 007 0"),
            vec![n("123"), n("-14"), n("10.5"), n("-.5"), n("007"), n("0")]
        );
        // A second dot ends the number; the dot then cannot start a token.
        assert_eq!(err("1.2.3").kind, ErrorKind::UnexpectedChar('.'));
        assert_eq!(err(".5").kind, ErrorKind::UnexpectedChar('.'));
        for bad in ["5.", "-", "-.", "-5."] {
            assert_eq!(err(bad).kind, ErrorKind::InvalidNumber(bad.into()), "{bad}");
        }
        assert_eq!(err("a = - 1").kind, ErrorKind::InvalidNumber("-".into()));
        // A number then letters are two tokens (the parser rejects the sequence).
        assert_eq!(kinds("12abc"), vec![n("12"), id("abc")]);
        assert_eq!(kinds("1-2"), vec![n("1"), n("-2")]);
    }

    #[test]
    fn identifiers_and_calls() {
        assert_eq!(
            kinds("@request.body.tags:each _x a.0.b @now true"),
            vec![
                id("@request.body.tags:each"),
                id("_x"),
                id("a.0.b"),
                id("@now"),
                id("true")
            ]
        );
        assert_eq!(
            kinds("geoDistance(a,b) f (x)"),
            vec![
                TokenKind::Call("geoDistance".into()),
                id("a"),
                TokenKind::Comma,
                id("b"),
                TokenKind::RParen,
                id("f"),
                TokenKind::LParen,
                id("x"),
                TokenKind::RParen
            ]
        );
        // `@` only starts an identifier; `#` is not part of the grammar.
        assert_eq!(kinds("a@b"), vec![id("a"), id("@b")]);
        assert_eq!(err("#a").kind, ErrorKind::UnexpectedChar('#'));
    }

    #[test]
    fn comments_and_whitespace() {
        assert_eq!(kinds("  \t\r\n "), vec![]);
        assert_eq!(kinds("// only a comment"), vec![]);
        assert_eq!(
            kinds("a // one ' \" ( \n = // two\n1//three"),
            vec![
                id("a"),
                TokenKind::Op {
                    op: Op::Eq,
                    any: false
                },
                n("1")
            ]
        );
        assert_eq!(err("a / b").kind, ErrorKind::UnexpectedChar('/'));
        assert_eq!(err("a = 1 /").kind, ErrorKind::UnexpectedChar('/'));
    }

    #[test]
    fn positions_are_byte_offsets() {
        let t = tokenize("é = 'x'").unwrap_err();
        assert_eq!((t.kind, t.pos), (ErrorKind::UnexpectedChar('é'), 0));
        let t = tokenize("a = 'é' && ü").unwrap_err();
        assert_eq!((t.kind, t.pos), (ErrorKind::UnexpectedChar('ü'), 12));
        let toks = tokenize("ab  >= 'é'").unwrap();
        let spans: Vec<(usize, usize)> = toks.iter().map(|t| (t.start, t.end)).collect();
        assert_eq!(spans, vec![(0, 2), (4, 6), (7, 11)]);
        assert_eq!(
            tokenize("a\u{00a0}= 1").unwrap_err().kind,
            ErrorKind::UnexpectedChar('\u{00a0}')
        );
    }

    #[test]
    fn error_messages() {
        assert_eq!(err("a = 'x").to_string(), "unterminated string (at byte 4)");
        assert_eq!(err("a == 1").message(), "invalid operator \"==\"");
    }

    proptest! {
        #[test]
        fn never_panics_and_spans_are_char_boundaries(input in "\\PC{0,120}") {
            match tokenize(&input) {
                Ok(tokens) => {
                    for t in tokens {
                        prop_assert!(input.is_char_boundary(t.start));
                        prop_assert!(input.is_char_boundary(t.end));
                        prop_assert!(t.start < t.end);
                    }
                }
                Err(e) => prop_assert!(input.is_char_boundary(e.pos)),
            }
        }
    }
}
