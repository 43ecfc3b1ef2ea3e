//! PocketBase's filter and rule grammar ("fexpr"): tokens, the syntax tree, and its parser.
//!
//! ```text
//! expr    := and ("||" and)*
//! and     := primary ("&&" primary)*
//! primary := "(" expr ")" | operand op operand
//! op      := = != > >= < <= ~ !~   and their any-of forms ?= ?!= ?> ?>= ?< ?<= ?~ ?!~
//! operand := 'text' | "text" | number | identifier[:modifier] | @macro | func(args)
//! ```
//! `&&` binds tighter than `||`, as PocketBase's generated SQL does. `// comments` run to the
//! end of the line. The parser never panics: every input gives a tree or a [`ParseError`].

use std::fmt;

/// Longest accepted input, in bytes (PocketBase's limit for filters).
pub const MAX_LEN: usize = 3500;
/// Most comparisons in one expression.
pub const MAX_EXPRESSIONS: usize = 200;
/// Deepest parenthesis nesting.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (at {pos})")]
pub struct ParseError {
    pub message: String,
    pub pos: usize,
}

fn err<T>(message: impl Into<String>, pos: usize) -> Result<T, ParseError> {
    Err(ParseError {
        message: message.into(),
        pos,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    NotLike,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Neq => "!=",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::Like => "~",
            Op::NotLike => "!~",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    Isset,
    Changed,
    Length,
    Each,
    Lower,
}

impl Modifier {
    fn parse(s: &str) -> Option<Modifier> {
        Some(match s {
            "isset" => Modifier::Isset,
            "changed" => Modifier::Changed,
            "length" => Modifier::Length,
            "each" => Modifier::Each,
            "lower" => Modifier::Lower,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Modifier::Isset => "isset",
            Modifier::Changed => "changed",
            Modifier::Length => "length",
            Modifier::Each => "each",
            Modifier::Lower => "lower",
        }
    }
}

/// Where an identifier starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// A field of the record (`title`, `author.name`).
    Field,
    /// `@request.auth.*`
    Auth,
    /// `@request.body.*`
    Body,
    /// `@request.query.*`
    Query,
    /// `@request.headers.*`
    Headers,
    /// `@request.method`
    Method,
    /// `@request.context`
    Context,
    /// `@collection.name[:alias].*`
    Collection { name: String, alias: Option<String> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub root: Root,
    /// The path after the root (for `Field`, the whole path).
    pub path: Vec<String>,
    pub modifier: Option<Modifier>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Macro {
    Now,
    Yesterday,
    Tomorrow,
    TodayStart,
    TodayEnd,
    MonthStart,
    MonthEnd,
    YearStart,
    YearEnd,
    Second,
    Minute,
    Hour,
    Day,
    Month,
    Weekday,
    Year,
}

const MACROS: &[(&str, Macro)] = &[
    ("now", Macro::Now),
    ("yesterday", Macro::Yesterday),
    ("tomorrow", Macro::Tomorrow),
    ("todayStart", Macro::TodayStart),
    ("todayEnd", Macro::TodayEnd),
    ("monthStart", Macro::MonthStart),
    ("monthEnd", Macro::MonthEnd),
    ("yearStart", Macro::YearStart),
    ("yearEnd", Macro::YearEnd),
    ("second", Macro::Second),
    ("minute", Macro::Minute),
    ("hour", Macro::Hour),
    ("day", Macro::Day),
    ("month", Macro::Month),
    ("weekday", Macro::Weekday),
    ("year", Macro::Year),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    GeoDistance,
    Strftime,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Str(String),
    /// A number, kept as written (validated to parse as f64).
    Num(String),
    Ident(Ident),
    Macro(Macro),
    Func(Func, Vec<Operand>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp {
        left: Operand,
        op: Op,
        /// The `?` any-of form.
        any: bool,
        right: Operand,
    },
}

impl Expr {
    /// Visits every comparison operand.
    pub fn operands(&self) -> Vec<&Operand> {
        let mut out = Vec::new();
        fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a Operand>) {
            match e {
                Expr::And(a, b) | Expr::Or(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Expr::Cmp { left, right, .. } => {
                    for o in [left, right] {
                        out.push(o);
                        if let Operand::Func(_, args) = o {
                            out.extend(args.iter());
                        }
                    }
                }
            }
        }
        walk(self, &mut out);
        out
    }
}

// ---- lexer -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Num(String),
    Word(String),
    Op(Op, bool),
    And,
    Or,
    LParen,
    RParen,
    Comma,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == ':' || c == '@'
}

fn lex(input: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let at = |i: usize| chars.get(i).map(|c| c.1);
    while i < chars.len() {
        let (pos, c) = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '/' if at(i + 1) == Some('/') => {
                while i < chars.len() && chars[i].1 != '\n' {
                    i += 1;
                }
            }
            '\'' | '"' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match at(i) {
                        None => return err("unterminated string", pos),
                        // As in PocketBase: only a backslash before the closing quote character
                        // escapes; every other backslash stays (it matters for LIKE patterns).
                        Some('\\') if at(i + 1) == Some(quote) => {
                            s.push(quote);
                            i += 2;
                        }
                        Some(ch) if ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((Tok::Str(s), pos));
            }
            '(' => {
                out.push((Tok::LParen, pos));
                i += 1;
            }
            ')' => {
                out.push((Tok::RParen, pos));
                i += 1;
            }
            ',' => {
                out.push((Tok::Comma, pos));
                i += 1;
            }
            '&' if at(i + 1) == Some('&') => {
                out.push((Tok::And, pos));
                i += 2;
            }
            '|' if at(i + 1) == Some('|') => {
                out.push((Tok::Or, pos));
                i += 2;
            }
            '?' | '=' | '!' | '>' | '<' | '~' => {
                let any = c == '?';
                let j = if any { i + 1 } else { i };
                let (op, len) = match (at(j), at(j + 1)) {
                    (Some('!'), Some('=')) => (Op::Neq, 2),
                    (Some('!'), Some('~')) => (Op::NotLike, 2),
                    (Some('>'), Some('=')) => (Op::Gte, 2),
                    (Some('<'), Some('=')) => (Op::Lte, 2),
                    (Some('='), _) => (Op::Eq, 1),
                    (Some('>'), _) => (Op::Gt, 1),
                    (Some('<'), _) => (Op::Lt, 1),
                    (Some('~'), _) => (Op::Like, 1),
                    _ => return err(format!("unexpected character {c:?}"), pos),
                };
                out.push((Tok::Op(op, any), pos));
                i = j + len;
            }
            c if c.is_ascii_digit()
                || (c == '-' && at(i + 1).is_some_and(|n| n.is_ascii_digit() || n == '.'))
                || (c == '.' && at(i + 1).is_some_and(|n| n.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while at(i).is_some_and(|n| n.is_ascii_digit() || n == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().map(|c| c.1).collect();
                if text.parse::<f64>().is_err() {
                    return err(format!("invalid number {text:?}"), pos);
                }
                out.push((Tok::Num(text), pos));
            }
            c if is_word_char(c) => {
                let start = i;
                while at(i).is_some_and(is_word_char) {
                    i += 1;
                }
                out.push((
                    Tok::Word(chars[start..i].iter().map(|c| c.1).collect()),
                    pos,
                ));
            }
            _ => return err(format!("unexpected character {c:?}"), pos),
        }
    }
    Ok(out)
}

// ---- parser ------------------------------------------------------------------------------

fn valid_segment(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_ident(word: &str, pos: usize) -> Result<Operand, ParseError> {
    if let Some(name) = word.strip_prefix('@')
        && let Some((_, m)) = MACROS.iter().find(|(n, _)| *n == name)
    {
        return Ok(Operand::Macro(*m));
    }
    // The modifier is the part after the last ':' unless that ':' is a @collection alias.
    let (body, modifier) = match word.rsplit_once(':') {
        Some((b, m)) if Modifier::parse(m).is_some() => (b, Modifier::parse(m)),
        _ => (word, None),
    };
    let segments: Vec<&str> = body.split('.').collect();
    let (root, rest): (Root, &[&str]) = match segments.as_slice() {
        ["@request", "auth", rest @ ..] if !rest.is_empty() => (Root::Auth, rest),
        ["@request", "body", rest @ ..] if !rest.is_empty() => (Root::Body, rest),
        ["@request", "query", rest @ ..] if rest.len() == 1 => (Root::Query, rest),
        ["@request", "headers", rest @ ..] if rest.len() == 1 => (Root::Headers, rest),
        ["@request", "method"] => (Root::Method, &[]),
        ["@request", "context"] => (Root::Context, &[]),
        ["@collection", coll, rest @ ..] if !rest.is_empty() => {
            let (name, alias) = match coll.split_once(':') {
                Some((n, a)) => (n, Some(a)),
                None => (*coll, None),
            };
            if !valid_segment(name) || alias.is_some_and(|a| !valid_segment(a)) {
                return err(format!("invalid @collection reference {coll:?}"), pos);
            }
            (
                Root::Collection {
                    name: name.to_string(),
                    alias: alias.map(str::to_string),
                },
                rest,
            )
        }
        [first, ..] if first.starts_with('@') => {
            return err(format!("unknown identifier {word:?}"), pos);
        }
        _ => (Root::Field, segments.as_slice()),
    };
    if rest.iter().any(|s| !valid_segment(s)) {
        return err(format!("invalid identifier {word:?}"), pos);
    }
    if rest.len() > 7 {
        return err("too many path segments", pos);
    }
    match (modifier, &root) {
        (Some(Modifier::Isset), r)
            if !matches!(r, Root::Body | Root::Query | Root::Headers | Root::Auth) =>
        {
            return err(":isset is only allowed on @request.* identifiers", pos);
        }
        (Some(Modifier::Changed), r) if *r != Root::Body => {
            return err(
                ":changed is only allowed on @request.body.* identifiers",
                pos,
            );
        }
        _ => {}
    }
    Ok(Operand::Ident(Ident {
        root,
        path: rest.iter().map(|s| s.to_string()).collect(),
        modifier,
    }))
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    i: usize,
    end: usize,
    comparisons: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.0)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.i).map(|t| t.1).unwrap_or(self.end)
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut left = self.and(depth)?;
        while self.peek() == Some(&Tok::Or) {
            self.i += 1;
            let right = self.and(depth)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut left = self.primary(depth)?;
        while self.peek() == Some(&Tok::And) {
            self.i += 1;
            let right = self.primary(depth)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, ParseError> {
        if self.peek() == Some(&Tok::LParen) {
            if depth >= MAX_DEPTH {
                return err("too deeply nested", self.pos());
            }
            self.i += 1;
            let e = self.expr(depth + 1)?;
            if self.peek() != Some(&Tok::RParen) {
                return err("missing closing parenthesis", self.pos());
            }
            self.i += 1;
            return Ok(e);
        }
        let left = self.operand(depth)?;
        let (op, any) = match self.peek() {
            Some(Tok::Op(op, any)) => (*op, *any),
            _ => return err("expected an operator", self.pos()),
        };
        self.i += 1;
        let right = self.operand(depth)?;
        self.comparisons += 1;
        if self.comparisons > MAX_EXPRESSIONS {
            return err("too many expressions", self.pos());
        }
        Ok(Expr::Cmp {
            left,
            op,
            any,
            right,
        })
    }

    fn operand(&mut self, depth: usize) -> Result<Operand, ParseError> {
        let pos = self.pos();
        let tok = self.toks.get(self.i).map(|t| t.0.clone());
        self.i += 1;
        match tok {
            Some(Tok::Str(s)) => Ok(Operand::Str(s)),
            Some(Tok::Num(n)) => Ok(Operand::Num(n)),
            Some(Tok::Word(w)) if self.peek() == Some(&Tok::LParen) => {
                let func = match w.as_str() {
                    "geoDistance" => Func::GeoDistance,
                    "strftime" => Func::Strftime,
                    _ => return err(format!("unknown function {w:?}"), pos),
                };
                if depth >= MAX_DEPTH {
                    return err("too deeply nested", pos);
                }
                self.i += 1;
                let mut args = Vec::new();
                if self.peek() != Some(&Tok::RParen) {
                    loop {
                        args.push(self.operand(depth + 1)?);
                        match self.peek() {
                            Some(Tok::Comma) => self.i += 1,
                            Some(Tok::RParen) => break,
                            _ => return err("expected , or ) in function arguments", self.pos()),
                        }
                    }
                }
                self.i += 1;
                let ok = match func {
                    Func::GeoDistance => args.len() == 4,
                    Func::Strftime => (1..=10).contains(&args.len()),
                };
                if !ok {
                    return err(format!("wrong number of arguments for {w}"), pos);
                }
                if args.iter().any(|a| matches!(a, Operand::Func(..))) {
                    return err("functions cannot be nested", pos);
                }
                Ok(Operand::Func(func, args))
            }
            Some(Tok::Word(w)) => parse_ident(&w, pos),
            Some(_) => err("expected a value or identifier", pos),
            None => err("unexpected end of expression", pos),
        }
    }
}

/// Parses a filter or rule expression.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    if input.len() > MAX_LEN {
        return err(
            format!("the expression is longer than {MAX_LEN} characters"),
            0,
        );
    }
    let toks = lex(input)?;
    if toks.is_empty() {
        return err("empty expression", 0);
    }
    let mut p = Parser {
        toks,
        i: 0,
        end: input.len(),
        comparisons: 0,
    };
    let e = p.expr(0)?;
    if p.i < p.toks.len() {
        return err("unexpected token", p.pos());
    }
    Ok(e)
}

/// Parses with a cache keyed by the text: rules are parsed once, not on every request.
pub fn parse_cached(input: &str) -> Result<std::sync::Arc<Expr>, ParseError> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Expr>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(e) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(input) {
        return Ok(e.clone());
    }
    let e = Arc::new(parse(input)?);
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= 1024 {
        map.clear();
    }
    map.insert(input.to_string(), e.clone());
    Ok(e)
}

// ---- printing ----------------------------------------------------------------------------

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match &self.root {
            Root::Field => String::new(),
            Root::Auth => "@request.auth.".into(),
            Root::Body => "@request.body.".into(),
            Root::Query => "@request.query.".into(),
            Root::Headers => "@request.headers.".into(),
            Root::Method => "@request.method".into(),
            Root::Context => "@request.context".into(),
            Root::Collection { name, alias } => match alias {
                Some(a) => format!("@collection.{name}:{a}."),
                None => format!("@collection.{name}."),
            },
        };
        write!(f, "{prefix}{}", self.path.join("."))?;
        if let Some(m) = self.modifier {
            write!(f, ":{}", m.name())?;
        }
        Ok(())
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Str(s) => {
                // Backslashes are literal except before the quote character: pick the quote
                // the text does not contain where possible.
                if !s.contains('\'') {
                    write!(f, "'{s}'")
                } else if !s.contains('"') {
                    write!(f, "\"{s}\"")
                } else {
                    write!(f, "'{}'", s.replace('\'', "\\'"))
                }
            }
            Operand::Num(n) => write!(f, "{n}"),
            Operand::Ident(i) => write!(f, "{i}"),
            Operand::Macro(m) => {
                let name = MACROS
                    .iter()
                    .find(|(_, x)| x == m)
                    .map(|(n, _)| *n)
                    .unwrap_or("now");
                write!(f, "@{name}")
            }
            Operand::Func(func, args) => {
                let name = match func {
                    Func::GeoDistance => "geoDistance",
                    Func::Strftime => "strftime",
                };
                let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                write!(f, "{name}({})", args.join(", "))
            }
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::And(a, b) => write!(f, "({a} && {b})"),
            Expr::Or(a, b) => write!(f, "({a} || {b})"),
            Expr::Cmp {
                left,
                op,
                any,
                right,
            } => {
                write!(
                    f,
                    "{left} {}{} {right}",
                    if *any { "?" } else { "" },
                    op.symbol()
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn field(path: &str) -> Operand {
        Operand::Ident(Ident {
            root: Root::Field,
            path: path.split('.').map(String::from).collect(),
            modifier: None,
        })
    }

    #[test]
    fn operators_and_any_forms() {
        for (src, op, any) in [
            ("a = 1", Op::Eq, false),
            ("a != 1", Op::Neq, false),
            ("a > 1", Op::Gt, false),
            ("a >= 1", Op::Gte, false),
            ("a < 1", Op::Lt, false),
            ("a <= 1", Op::Lte, false),
            ("a ~ 1", Op::Like, false),
            ("a !~ 1", Op::NotLike, false),
            ("a ?= 1", Op::Eq, true),
            ("a ?!= 1", Op::Neq, true),
            ("a ?> 1", Op::Gt, true),
            ("a ?>= 1", Op::Gte, true),
            ("a ?< 1", Op::Lt, true),
            ("a ?<= 1", Op::Lte, true),
            ("a ?~ 1", Op::Like, true),
            ("a ?!~ 1", Op::NotLike, true),
        ] {
            assert_eq!(
                parse(src).unwrap(),
                Expr::Cmp {
                    left: field("a"),
                    op,
                    any,
                    right: Operand::Num("1".into())
                },
                "{src}"
            );
        }
    }

    #[test]
    fn precedence_groups_and_comments() {
        let e = parse("a = 1 || b = 2 && c = 3 // trailing\n").unwrap();
        assert!(matches!(e, Expr::Or(_, ref r) if matches!(**r, Expr::And(..))));
        let e = parse("(a = 1 || b = 2) && c = 3").unwrap();
        assert!(matches!(e, Expr::And(ref l, _) if matches!(**l, Expr::Or(..))));
        assert!(parse("a = 1 &&").is_err());
        assert!(parse("(a = 1").is_err());
        assert!(parse("a = 1)").is_err());
        assert!(parse("").is_err());
        assert!(parse("// only a comment").is_err());
    }

    #[test]
    fn literals_and_escapes() {
        let e = parse(r#"a = 'it\'s' && b = "say \"hi\"" && c = -14 && d = 10.5"#).unwrap();
        let ops = e.operands();
        assert_eq!(ops[1], &Operand::Str("it's".into()));
        assert_eq!(ops[3], &Operand::Str("say \"hi\"".into()));
        assert_eq!(ops[5], &Operand::Num("-14".into()));
        assert_eq!(ops[7], &Operand::Num("10.5".into()));
        assert!(parse("a = 'open").is_err());
        // Other backslashes are kept, as PocketBase keeps them (LIKE escapes).
        assert_eq!(
            parse(r"a ~ '100\%'").unwrap().operands()[1],
            &Operand::Str(r"100\%".into())
        );
    }

    #[test]
    fn request_collection_macros_modifiers_functions() {
        let e = parse("@request.auth.id != '' && @request.body.title:isset = true && @request.body.n:changed = false && @collection.users:u.email ?= @request.auth.email && created > @now && tags:length > 2 && tags:each ?= 'x' && name:lower ~ 'A' && @request.method = 'GET' && @request.context = 'oauth2' && @request.headers.x_token = 'a' && @request.query.page = '1'").unwrap();
        let ops = e.operands();
        assert!(matches!(
            ops[0],
            Operand::Ident(Ident {
                root: Root::Auth,
                ..
            })
        ));
        assert!(matches!(
            ops[2],
            Operand::Ident(Ident {
                root: Root::Body,
                modifier: Some(Modifier::Isset),
                ..
            })
        ));
        assert!(matches!(
            ops[6],
            Operand::Ident(Ident {
                root: Root::Collection { alias: Some(_), .. },
                ..
            })
        ));
        assert!(matches!(ops[9], Operand::Macro(Macro::Now)));
        assert!(parse("geoDistance(loc.lon, loc.lat, 23.3, 42.6) < 10").is_ok());
        assert!(parse("strftime('%Y', created) = '2024'").is_ok());
        assert!(parse("geoDistance(1, 2, 3) < 10").is_err());
        assert!(parse("nope(1) = 1").is_err());
        assert!(parse("title:isset = true").is_err());
        assert!(parse("@request.query.x:changed = true").is_err());
        assert!(parse("@unknown = 1").is_err());
        assert!(parse("@request.nope = 1").is_err());
    }

    #[test]
    fn limits() {
        let long = format!("a = '{}'", "x".repeat(MAX_LEN));
        assert!(parse(&long).is_err());
        let many = vec!["a = 1"; MAX_EXPRESSIONS + 1].join(" && ");
        assert!(parse(&many).is_err());
        let deep = format!("{}a = 1{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).is_err());
    }

    fn arb_operand() -> impl Strategy<Value = Operand> {
        prop_oneof![
            "[a-z ']{0,8}".prop_map(Operand::Str),
            (-1000i64..1000).prop_map(|n| Operand::Num(n.to_string())),
            "[a-z][a-z0-9_]{0,5}(\\.[a-z][a-z0-9_]{0,5}){0,2}".prop_map(|p| field(&p)),
            Just(Operand::Macro(Macro::Now)),
        ]
    }

    fn arb_expr() -> impl Strategy<Value = Expr> {
        let leaf =
            (arb_operand(), 0usize..8, any::<bool>(), arb_operand()).prop_map(|(l, o, any, r)| {
                let op = [
                    Op::Eq,
                    Op::Neq,
                    Op::Gt,
                    Op::Gte,
                    Op::Lt,
                    Op::Lte,
                    Op::Like,
                    Op::NotLike,
                ][o];
                Expr::Cmp {
                    left: l,
                    op,
                    any,
                    right: r,
                }
            });
        leaf.prop_recursive(4, 16, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
            ]
        })
    }

    proptest! {
        #![proptest_config(crate::query::proptest_config(256))]
        #[test]
        fn printed_trees_reparse_to_the_same_tree(e in arb_expr()) {
            let printed = e.to_string();
            prop_assert_eq!(parse(&printed).unwrap(), e);
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s);
        }

        #[test]
        fn token_soup_never_panics(parts in proptest::collection::vec(prop_oneof![
            Just("("), Just(")"), Just("&&"), Just("||"), Just("="), Just("?!~"), Just("'x"),
            Just("@request.auth.id"), Just("a.b:each"), Just("12.5"), Just(","), Just("geoDistance"),
            Just("@collection.x:y.z"), Just("//"), Just("\n"), Just("@"), Just(":"), Just("-")
        ], 0..40)) {
            let _ = parse(&parts.join(" "));
        }
    }
}
