//! Parser of PocketBase's filter/rule grammar: tokens from [`super::lexer`] to an
//! [`Expr`] tree.
//!
//! ```text
//! expr       := and_expr ("||" and_expr)*
//! and_expr   := primary ("&&" primary)*
//! primary    := "(" expr ")" | operand OP operand
//! OP         := = != > >= < <= ~ !~   and the any-of forms ?= ?!= ?> ?>= ?< ?<= ?~ ?!~
//! operand    := STRING | NUMBER | IDENT | NAME "(" [arg ("," arg)* [","]] ")"
//! arg        := STRING | NUMBER | IDENT                  (no nested calls)
//! ```
//!
//! Precedence: `&&` binds tighter than `||` and both associate to the left, so
//! `a || b && c` is `a || (b && c)`. PocketBase's fexpr itself builds a flat list of
//! comparisons, each tagged with the join before it, and its SQL builder writes that list as
//! `a OR b AND c` (parentheses only for explicit groups); SQL gives AND the higher
//! precedence, so this is what PocketBase evaluates.
//!
//! Identifiers are checked here: `@request.auth|body|query|headers.<field>…`,
//! `@request.method`, `@request.context`, `@collection.<name>[:<alias>].<field>…`, date
//! macros (`@now`, …), or a plain dotted field path; one optional `:modifier` after the last
//! segment, with `:isset` only on `@request.*` and `:changed` only on `@request.body.*`.
//! Function names, argument counts and argument kinds are checked as PocketBase's resolvers
//! do (see [`Func`]); everything that needs the schema is left to the compiler.
//!
//! Limits (see [`Limits`]): input length, number of comparisons, parenthesis depth. The
//! depth limit bounds the recursion, so no input can overflow the stack, and no input
//! panics.

use std::iter::Peekable;
use std::vec::IntoIter;

use super::ast::{DateMacro, Expr, Func, Modifier, Operand, Path, PathRoot};
pub use super::lexer::{ErrorKind, ParseError};
use super::lexer::{Token, TokenKind, tokenize};

/// Longest accepted input in bytes (PocketBase's limit for a client `filter`).
pub const MAX_LEN: usize = 3500;
/// Most comparisons in one expression (PocketBase's `DefaultFilterExprLimit`).
pub const MAX_EXPRESSIONS: usize = 200;
/// Deepest parenthesis nesting.
pub const MAX_DEPTH: usize = 64;
/// [`Limits::max_depth`] is capped at this, whatever the caller asks for, to keep the
/// parser's recursion far from any thread's stack size.
pub const HARD_MAX_DEPTH: usize = 256;
/// [`Limits::max_expressions`] is capped at this, whatever the caller asks for. A tree with
/// `n` comparisons is less than `n` levels deep (`a && b && c …` is a left-leaning chain),
/// and dropping, printing, comparing or compiling it recurses that deep.
pub const HARD_MAX_EXPRESSIONS: usize = 1000;

/// Bounds on what [`parse_with_limits`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest input, in bytes.
    pub max_len: usize,
    /// Most comparisons (capped at [`HARD_MAX_EXPRESSIONS`]).
    pub max_expressions: usize,
    /// Deepest parenthesis nesting (capped at [`HARD_MAX_DEPTH`]).
    pub max_depth: usize,
}

impl Default for Limits {
    /// [`MAX_LEN`], [`MAX_EXPRESSIONS`], [`MAX_DEPTH`].
    fn default() -> Limits {
        Limits {
            max_len: MAX_LEN,
            max_expressions: MAX_EXPRESSIONS,
            max_depth: MAX_DEPTH,
        }
    }
}

/// Parses a filter or rule expression with the default [`Limits`].
///
/// An empty input (or only whitespace and comments) is an error: callers treat an empty
/// rule string as "public" before parsing.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    parse_with_limits(input, Limits::default())
}

/// Parses with other limits. PocketBase limits the length of client filters only, so rules
/// read from an existing database may want a larger `max_len`.
pub fn parse_with_limits(input: &str, limits: Limits) -> Result<Expr, ParseError> {
    if input.len() > limits.max_len {
        return Err(ParseError::new(ErrorKind::TooLong(limits.max_len), 0));
    }
    let tokens = tokenize(input)?;
    if tokens.is_empty() {
        return Err(ParseError::new(ErrorKind::Empty, 0));
    }
    let mut p = Parser {
        tokens: tokens.into_iter().peekable(),
        end: input.len(),
        comparisons: 0,
        limits: Limits {
            max_len: limits.max_len,
            max_expressions: limits.max_expressions.min(HARD_MAX_EXPRESSIONS),
            max_depth: limits.max_depth.min(HARD_MAX_DEPTH),
        },
    };
    let expr = p.or_expr(0)?;
    match p.tokens.next() {
        None => Ok(expr),
        Some(t) => Err(ParseError::new(
            match t.kind {
                TokenKind::RParen => ErrorKind::UnmatchedParen,
                k => ErrorKind::ExpectedJoin(k.describe()),
            },
            t.start,
        )),
    }
}

const END: &str = "end of input";

struct Parser {
    tokens: Peekable<IntoIter<Token>>,
    end: usize,
    comparisons: usize,
    limits: Limits,
}

impl Parser {
    fn next_is(&mut self, kind: &TokenKind) -> bool {
        self.tokens.peek().is_some_and(|t| &t.kind == kind)
    }

    fn or_expr(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut left = self.and_expr(depth)?;
        while self.next_is(&TokenKind::Or) {
            self.tokens.next();
            let right = self.and_expr(depth)?;
            left = Expr::or(left, right);
        }
        Ok(left)
    }

    fn and_expr(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut left = self.primary(depth)?;
        while self.next_is(&TokenKind::And) {
            self.tokens.next();
            let right = self.primary(depth)?;
            left = Expr::and(left, right);
        }
        Ok(left)
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let Some(open) = self.tokens.next_if(|t| t.kind == TokenKind::LParen) else {
            return self.comparison();
        };
        if depth >= self.limits.max_depth {
            return Err(ParseError::new(
                ErrorKind::TooDeep(self.limits.max_depth),
                open.start,
            ));
        }
        if self.next_is(&TokenKind::RParen) {
            return Err(ParseError::new(ErrorKind::EmptyGroup, open.start));
        }
        let inner = self.or_expr(depth + 1)?;
        match self.tokens.next() {
            Some(t) if t.kind == TokenKind::RParen => Ok(inner),
            Some(t) => Err(ParseError::new(
                ErrorKind::ExpectedJoin(t.kind.describe()),
                t.start,
            )),
            None => Err(ParseError::new(ErrorKind::UnclosedParen, open.start)),
        }
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let start = self.tokens.peek().map_or(self.end, |t| t.start);
        let left = self.operand()?;
        let (op, any) = match self.tokens.next() {
            Some(Token {
                kind: TokenKind::Op { op, any },
                ..
            }) => (op, any),
            Some(t) => {
                return Err(ParseError::new(
                    ErrorKind::ExpectedOperator(t.kind.describe()),
                    t.start,
                ));
            }
            None => {
                return Err(ParseError::new(
                    ErrorKind::ExpectedOperator(END.into()),
                    self.end,
                ));
            }
        };
        let right = self.operand()?;
        self.comparisons += 1;
        if self.comparisons > self.limits.max_expressions {
            return Err(ParseError::new(
                ErrorKind::TooManyExpressions(self.limits.max_expressions),
                start,
            ));
        }
        Ok(Expr::Cmp {
            left,
            op,
            any,
            right,
        })
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        let Some(t) = self.tokens.next() else {
            return Err(ParseError::new(
                ErrorKind::ExpectedOperand(END.into()),
                self.end,
            ));
        };
        match t.kind {
            TokenKind::Call(name) => self.call(&name, t.start),
            kind => simple_operand(kind, t.start),
        }
    }

    /// The arguments and `)` of a call whose `name(` was just read.
    fn call(&mut self, name: &str, pos: usize) -> Result<Operand, ParseError> {
        let func = Func::from_name(name)
            .ok_or_else(|| ParseError::new(ErrorKind::UnknownFunction(name.into()), pos))?;
        let mut args: Vec<(Operand, usize)> = Vec::new();
        loop {
            // At an argument or the closing parenthesis (also right after a comma: PocketBase
            // accepts one trailing comma).
            let Some(t) = self.tokens.next() else {
                return Err(ParseError::new(ErrorKind::UnclosedParen, pos));
            };
            match t.kind {
                TokenKind::RParen => break,
                TokenKind::Call(_) => {
                    return Err(ParseError::new(
                        ErrorKind::FunctionArgument {
                            func: func.name(),
                            index: args.len() + 1,
                            expected: expected_arg(func, args.len() + 1),
                        },
                        t.start,
                    ));
                }
                kind => args.push((simple_operand(kind, t.start)?, t.start)),
            }
            match self.tokens.next() {
                Some(t) if t.kind == TokenKind::Comma => {}
                Some(t) if t.kind == TokenKind::RParen => break,
                Some(t) => {
                    return Err(ParseError::new(
                        ErrorKind::ExpectedArgSeparator(t.kind.describe()),
                        t.start,
                    ));
                }
                None => return Err(ParseError::new(ErrorKind::UnclosedParen, pos)),
            }
        }
        let (arity_ok, expected) = match func {
            Func::GeoDistance => (args.len() == 4, "4"),
            Func::Strftime => ((1..=10).contains(&args.len()), "1 to 10"),
        };
        if !arity_ok {
            return Err(ParseError::new(
                ErrorKind::FunctionArity {
                    func: func.name(),
                    expected,
                    got: args.len(),
                },
                pos,
            ));
        }
        for (i, (arg, at)) in args.iter().enumerate() {
            if !arg_fits(func, i + 1, arg) {
                return Err(ParseError::new(
                    ErrorKind::FunctionArgument {
                        func: func.name(),
                        index: i + 1,
                        expected: expected_arg(func, i + 1),
                    },
                    *at,
                ));
            }
        }
        Ok(Operand::Func {
            name: func,
            args: args.into_iter().map(|(a, _)| a).collect(),
        })
    }
}

/// Whether `arg` may be argument `index` (1-based) of `func`, as PocketBase's resolvers
/// accept them (a macro is an identifier there).
fn arg_fits(func: Func, index: usize, arg: &Operand) -> bool {
    let value_like = matches!(arg, Operand::Num(_) | Operand::Ident(_) | Operand::Macro(_));
    match (func, index) {
        (Func::GeoDistance, _) => value_like,
        (Func::Strftime, 2) => value_like || matches!(arg, Operand::Str(_)),
        (Func::Strftime, _) => matches!(arg, Operand::Str(_)),
    }
}

fn expected_arg(func: Func, index: usize) -> &'static str {
    match (func, index) {
        (Func::GeoDistance, _) => "a number, identifier or macro",
        (Func::Strftime, 1) => "a format string",
        (Func::Strftime, 2) => "a string, number, identifier or macro (the time value)",
        (Func::Strftime, _) => "a string (a strftime modifier)",
    }
}

/// A string, number or identifier token as an operand.
fn simple_operand(kind: TokenKind, pos: usize) -> Result<Operand, ParseError> {
    match kind {
        TokenKind::Str(s) => Ok(Operand::Str(s)),
        TokenKind::Num(n) => Ok(Operand::Num(n)),
        TokenKind::Ident(raw) => identifier(&raw, pos),
        kind => Err(ParseError::new(
            ErrorKind::ExpectedOperand(kind.describe()),
            pos,
        )),
    }
}

fn is_segment(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Reads an identifier token (`[A-Za-z_@][A-Za-z0-9_.:]*`) as a macro or a path.
fn identifier(raw: &str, pos: usize) -> Result<Operand, ParseError> {
    let invalid = |reason: &'static str| {
        ParseError::new(
            ErrorKind::InvalidIdentifier {
                ident: raw.to_string(),
                reason,
            },
            pos,
        )
    };
    let mut parts: Vec<&str> = raw.split('.').collect();
    if parts.first() == Some(&"@collection") && parts.len() < 3 {
        return Err(invalid(
            "expected @collection.<name>.<field> or @collection.<name>:<alias>.<field>",
        ));
    }
    let mut modifier = None;
    if let Some(last) = parts.last_mut()
        && let Some((name, m)) = last.split_once(':')
    {
        if m.contains(':') {
            return Err(invalid("only one modifier is allowed"));
        }
        modifier = Some(
            Modifier::from_name(m)
                .ok_or_else(|| ParseError::new(ErrorKind::UnknownModifier(m.into()), pos))?,
        );
        *last = name;
    }
    let first = parts.first().copied().unwrap_or_default();
    let (root, rest): (PathRoot, &[&str]) = match first {
        "@request" => {
            let root = match parts.get(1).copied() {
                Some("auth") => PathRoot::RequestAuth,
                Some("body") => PathRoot::RequestBody,
                Some("query") => PathRoot::RequestQuery,
                Some("headers") => PathRoot::RequestHeaders,
                Some("method") => PathRoot::RequestMethod,
                Some("context") => PathRoot::RequestContext,
                _ => {
                    return Err(invalid(
                        "expected @request.auth.*, @request.body.*, @request.query.*, \
                         @request.headers.*, @request.method or @request.context",
                    ));
                }
            };
            (root, parts.get(2..).unwrap_or_default())
        }
        "@collection" => {
            let coll = parts.get(1).copied().unwrap_or_default();
            let (name, alias) = match coll.split_once(':') {
                Some((name, alias)) => (name, Some(alias)),
                None => (coll, None),
            };
            if !is_segment(name) || alias.is_some_and(|a| !is_segment(a)) {
                return Err(invalid(
                    "a collection name and alias may only contain letters, digits and _",
                ));
            }
            let root = PathRoot::Collection {
                name: name.to_string(),
                alias: alias.map(str::to_string),
            };
            (root, parts.get(2..).unwrap_or_default())
        }
        macro_name if macro_name.starts_with('@') => {
            if parts.len() > 1 {
                return Err(invalid(
                    "expected @request.*, @collection.* or a date macro such as @now",
                ));
            }
            if modifier.is_some() {
                return Err(invalid("a date macro takes no modifier"));
            }
            let name = macro_name.trim_start_matches('@');
            return DateMacro::from_name(name)
                .map(Operand::Macro)
                .ok_or_else(|| ParseError::new(ErrorKind::UnknownMacro(raw.into()), pos));
        }
        _ => (PathRoot::Field, &parts[..]),
    };
    match root {
        PathRoot::RequestMethod | PathRoot::RequestContext => {
            if !rest.is_empty() {
                return Err(invalid(
                    "@request.method and @request.context have no sub-fields",
                ));
            }
            if modifier.is_some() {
                return Err(invalid(
                    "@request.method and @request.context take no modifier",
                ));
            }
        }
        _ if rest.is_empty() => return Err(invalid("missing the field name")),
        _ => {}
    }
    for s in rest {
        if !is_segment(s) {
            return Err(invalid(if s.is_empty() {
                "empty path segment"
            } else if s.contains(':') {
                "a modifier may only follow the last path segment"
            } else {
                "path segments may only contain letters, digits and _"
            }));
        }
    }
    match modifier {
        Some(Modifier::Isset) if !root.is_request() => {
            return Err(invalid(":isset is only allowed on @request.* fields"));
        }
        Some(Modifier::Changed) if root != PathRoot::RequestBody => {
            return Err(invalid(
                ":changed is only allowed on @request.body.* fields",
            ));
        }
        _ => {}
    }
    Ok(Operand::Ident(Path {
        root,
        segments: rest.iter().map(|s| s.to_string()).collect(),
        modifier,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ast::{Number, Op};
    use proptest::prelude::*;

    fn field(p: &str) -> Operand {
        Operand::Ident(Path::field(p))
    }

    fn num(n: i64) -> Operand {
        Operand::Num(Number::from(n))
    }

    fn path(root: PathRoot, segments: &[&str], modifier: Option<Modifier>) -> Operand {
        Operand::Ident(Path {
            root,
            segments: segments.iter().map(|s| s.to_string()).collect(),
            modifier,
        })
    }

    fn cmp(name: &str, n: i64) -> Expr {
        Expr::cmp(field(name), Op::Eq, false, num(n))
    }

    fn err(input: &str) -> ParseError {
        match parse(input) {
            Ok(e) => panic!("{input:?} parsed as {e:?}"),
            Err(e) => e,
        }
    }

    fn kind(input: &str) -> ErrorKind {
        err(input).kind
    }

    /// The left operand of a single comparison.
    fn left(input: &str) -> Operand {
        match parse(input) {
            Ok(Expr::Cmp { left, .. }) => left,
            other => panic!("{input:?}: {other:?}"),
        }
    }

    fn right(input: &str) -> Operand {
        match parse(input) {
            Ok(Expr::Cmp { right, .. }) => right,
            other => panic!("{input:?}: {other:?}"),
        }
    }

    fn invalid_ident(input: &str) -> &'static str {
        match kind(input) {
            ErrorKind::InvalidIdentifier { reason, .. } => reason,
            other => panic!("{input:?}: {other:?}"),
        }
    }

    #[test]
    fn every_operator_and_any_form() {
        for op in Op::ALL {
            for any in [false, true] {
                let src = format!("a {}{} 1", if any { "?" } else { "" }, op.symbol());
                assert_eq!(
                    parse(&src).unwrap(),
                    Expr::cmp(field("a"), op, any, num(1)),
                    "{src}"
                );
                let tight = src.replace(' ', "");
                assert_eq!(parse(&tight).unwrap(), parse(&src).unwrap(), "{tight}");
            }
        }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let (a, b, c, d) = (cmp("a", 1), cmp("b", 2), cmp("c", 3), cmp("d", 4));
        assert_eq!(
            parse("a = 1 || b = 2 && c = 3").unwrap(),
            Expr::or(a.clone(), Expr::and(b.clone(), c.clone()))
        );
        assert_eq!(
            parse("a = 1 && b = 2 || c = 3").unwrap(),
            Expr::or(Expr::and(a.clone(), b.clone()), c.clone())
        );
        assert_eq!(
            parse("a = 1 && b = 2 || c = 3 && d = 4").unwrap(),
            Expr::or(
                Expr::and(a.clone(), b.clone()),
                Expr::and(c.clone(), d.clone())
            )
        );
        // Left-associative.
        assert_eq!(
            parse("a = 1 || b = 2 || c = 3").unwrap(),
            Expr::or(Expr::or(a.clone(), b.clone()), c.clone())
        );
        assert_eq!(
            parse("a = 1 && b = 2 && c = 3").unwrap(),
            Expr::and(Expr::and(a.clone(), b.clone()), c.clone())
        );
        // Parentheses override.
        assert_eq!(
            parse("(a = 1 || b = 2) && c = 3").unwrap(),
            Expr::and(Expr::or(a.clone(), b.clone()), c.clone())
        );
        assert_eq!(
            parse("a = 1 && (b = 2 || c = 3)").unwrap(),
            Expr::and(a.clone(), Expr::or(b.clone(), c.clone()))
        );
        // Redundant parentheses leave no trace.
        assert_eq!(parse("((a = 1))").unwrap(), a);
        assert_eq!(parse("(a = 1) && ((b = 2))").unwrap(), Expr::and(a, b));
    }

    #[test]
    fn comments_and_whitespace() {
        let e = parse("// leading\n a = 1 // one\n\t&& // two\r\n b = 2 // trailing").unwrap();
        assert_eq!(e, Expr::and(cmp("a", 1), cmp("b", 2)));
        assert_eq!(
            parse("strftime( // fmt\n '%Y' , // time\n created , ) = '2024'").unwrap(),
            parse("strftime('%Y', created) = '2024'").unwrap()
        );
        assert_eq!(kind("// only a comment"), ErrorKind::Empty);
        assert_eq!(kind(""), ErrorKind::Empty);
        assert_eq!(kind(" \n\t "), ErrorKind::Empty);
    }

    #[test]
    fn literals_and_escapes() {
        assert_eq!(right(r"a = 'it\'s'"), Operand::Str("it's".into()));
        assert_eq!(
            right(r#"a = "say \"hi\"""#),
            Operand::Str("say \"hi\"".into())
        );
        assert_eq!(right(r"a ~ '100\%'"), Operand::Str(r"100\%".into()));
        assert_eq!(right(r#"a = "it's""#), Operand::Str("it's".into()));
        assert_eq!(right("a = ''"), Operand::Str(String::new()));
        assert_eq!(right("a = 'ünï ✓'"), Operand::Str("ünï ✓".into()));
        assert_eq!(right("a = -14"), num(-14));
        assert_eq!(right("a=-14"), num(-14));
        assert_eq!(right("a = 10.5").to_string(), "10.5");
        assert_eq!(left("10.5 < a").to_string(), "10.5");
        // Literals on both sides are fine for the parser.
        assert_eq!(
            parse("1 = 1").unwrap(),
            Expr::cmp(num(1), Op::Eq, false, num(1))
        );
        // true/false/null are single-segment field paths.
        for w in ["true", "false", "null", "TRUE"] {
            assert_eq!(right(&format!("a = {w}")), field(w));
        }
    }

    #[test]
    fn macros() {
        for m in DateMacro::ALL {
            assert_eq!(
                right(&format!("created > @{}", m.name())),
                Operand::Macro(m)
            );
        }
        assert_eq!(
            kind("created > @Now"),
            ErrorKind::UnknownMacro("@Now".into())
        );
        assert_eq!(kind("a = @"), ErrorKind::UnknownMacro("@".into()));
        assert_eq!(kind("a = @nope"), ErrorKind::UnknownMacro("@nope".into()));
        assert_eq!(
            invalid_ident("a = @now:lower"),
            "a date macro takes no modifier"
        );
        assert_eq!(
            invalid_ident("a = @now.x"),
            "expected @request.*, @collection.* or a date macro such as @now"
        );
    }

    #[test]
    fn request_paths() {
        use PathRoot::*;
        let cases: &[(&str, PathRoot, &[&str], Option<Modifier>)] = &[
            ("@request.auth.id", RequestAuth, &["id"], None),
            (
                "@request.auth.team.name",
                RequestAuth,
                &["team", "name"],
                None,
            ),
            (
                "@request.auth.tags:length",
                RequestAuth,
                &["tags"],
                Some(Modifier::Length),
            ),
            ("@request.body.title", RequestBody, &["title"], None),
            ("@request.body.rel.sub", RequestBody, &["rel", "sub"], None),
            (
                "@request.body.title:isset",
                RequestBody,
                &["title"],
                Some(Modifier::Isset),
            ),
            (
                "@request.body.n:changed",
                RequestBody,
                &["n"],
                Some(Modifier::Changed),
            ),
            (
                "@request.body.tags:each",
                RequestBody,
                &["tags"],
                Some(Modifier::Each),
            ),
            (
                "@request.body.name:lower",
                RequestBody,
                &["name"],
                Some(Modifier::Lower),
            ),
            ("@request.query.page", RequestQuery, &["page"], None),
            (
                "@request.query.page:isset",
                RequestQuery,
                &["page"],
                Some(Modifier::Isset),
            ),
            (
                "@request.headers.x_token",
                RequestHeaders,
                &["x_token"],
                None,
            ),
            (
                "@request.headers.x_token:isset",
                RequestHeaders,
                &["x_token"],
                Some(Modifier::Isset),
            ),
            ("@request.method", RequestMethod, &[], None),
            ("@request.context", RequestContext, &[], None),
        ];
        for (src, root, segments, modifier) in cases {
            assert_eq!(
                left(&format!("{src} = 'x'")),
                path(root.clone(), segments, *modifier),
                "{src}"
            );
        }
        for bad in [
            "@request",
            "@request.auth",
            "@request.body",
            "@request.query",
            "@request.headers",
            "@request.data.x",
            "@request.nope",
            "@request.method.x",
            "@request.context.x",
            "@request.method:lower",
            "@request.context:isset",
            "@request.auth.:isset",
            "@request..id",
        ] {
            assert!(
                matches!(
                    kind(&format!("{bad} = 1")),
                    ErrorKind::InvalidIdentifier { .. }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn collection_paths() {
        let coll = |name: &str, alias: Option<&str>| PathRoot::Collection {
            name: name.into(),
            alias: alias.map(String::from),
        };
        assert_eq!(
            left("@collection.users.email = 'a'"),
            path(coll("users", None), &["email"], None)
        );
        assert_eq!(
            left("@collection.users:u.team.name = 'a'"),
            path(coll("users", Some("u")), &["team", "name"], None)
        );
        assert_eq!(
            left("@collection.posts:p.tags:each ?= 'a'"),
            path(coll("posts", Some("p")), &["tags"], Some(Modifier::Each))
        );
        assert_eq!(
            left("@collection.posts.title:lower = 'a'"),
            path(coll("posts", None), &["title"], Some(Modifier::Lower))
        );
        for bad in [
            "@collection",
            "@collection.users",
            "@collection.users:u",
            "@collection.users:.email",
            "@collection.:u.email",
            "@collection.users:u:v.email",
            "@collection.users.email:isset",
            "@collection.users.email:changed",
        ] {
            assert!(
                matches!(
                    kind(&format!("{bad} = 1")),
                    ErrorKind::InvalidIdentifier { .. }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn field_paths_and_modifiers() {
        assert_eq!(left("title = 1"), field("title"));
        assert_eq!(left("author.name = 1"), field("author.name"));
        assert_eq!(
            left("comments_via_post.msg = 1"),
            field("comments_via_post.msg")
        );
        assert_eq!(left("meta.a.0.b = 1"), field("meta.a.0.b"));
        assert_eq!(left("_x = 1"), field("_x"));
        for m in [Modifier::Length, Modifier::Each, Modifier::Lower] {
            assert_eq!(
                left(&format!("rel.tags:{} = 1", m.name())),
                path(PathRoot::Field, &["rel", "tags"], Some(m))
            );
        }
        assert_eq!(
            invalid_ident("title:isset = true"),
            ":isset is only allowed on @request.* fields"
        );
        assert_eq!(
            invalid_ident("title:changed = true"),
            ":changed is only allowed on @request.body.* fields"
        );
        assert_eq!(
            invalid_ident("@request.query.x:changed = true"),
            ":changed is only allowed on @request.body.* fields"
        );
        assert_eq!(
            invalid_ident("@request.auth.x:changed = true"),
            ":changed is only allowed on @request.body.* fields"
        );
        assert_eq!(
            invalid_ident("rel:each.name = 1"),
            "a modifier may only follow the last path segment"
        );
        assert_eq!(
            invalid_ident("a:each:lower = 1"),
            "only one modifier is allowed"
        );
        assert_eq!(invalid_ident("a..b = 1"), "empty path segment");
        assert_eq!(invalid_ident("a. = 1"), "empty path segment");
        assert_eq!(kind("a: = 1"), ErrorKind::UnknownModifier(String::new()));
    }

    #[test]
    fn functions() {
        assert_eq!(
            left("geoDistance(loc.lon, loc.lat, -23.3, 42.6) < 10"),
            Operand::Func {
                name: Func::GeoDistance,
                args: vec![
                    field("loc.lon"),
                    field("loc.lat"),
                    Operand::Num(Number::parse("-23.3").unwrap()),
                    Operand::Num(Number::parse("42.6").unwrap()),
                ],
            }
        );
        assert!(parse("geoDistance(@request.body.lon, @request.body.lat, 1, 2) < 5").is_ok());
        assert!(parse("geoDistance(1, 2, 3, 4,) < 5").is_ok());
        assert_eq!(
            right("strftime('%Y', created) = strftime('%Y', @now, 'start of year', 'utc')"),
            Operand::Func {
                name: Func::Strftime,
                args: vec![
                    Operand::Str("%Y".into()),
                    Operand::Macro(DateMacro::Now),
                    Operand::Str("start of year".into()),
                    Operand::Str("utc".into()),
                ],
            }
        );
        assert!(parse("strftime('%Y') = '2024'").is_ok());
        assert!(parse("strftime('%s', 1700000000, 'unixepoch') > 0").is_ok());
        let ten = format!("strftime('%Y', created{}) = 1", ", 'utc'".repeat(8));
        assert!(parse(&ten).is_ok());
        let eleven = format!("strftime('%Y', created{}) = 1", ", 'utc'".repeat(9));
        assert_eq!(
            kind(&eleven),
            ErrorKind::FunctionArity {
                func: "strftime",
                expected: "1 to 10",
                got: 11
            }
        );
        assert_eq!(
            kind("strftime() = 1"),
            ErrorKind::FunctionArity {
                func: "strftime",
                expected: "1 to 10",
                got: 0
            }
        );
        for (src, got) in [
            ("geoDistance(1, 2, 3) < 1", 3),
            ("geoDistance(1,2,3,4,5) < 1", 5),
        ] {
            assert_eq!(
                kind(src),
                ErrorKind::FunctionArity {
                    func: "geoDistance",
                    expected: "4",
                    got
                }
            );
        }
        let arg_err = |src: &str| match kind(src) {
            ErrorKind::FunctionArgument { func, index, .. } => (func, index),
            other => panic!("{src}: {other:?}"),
        };
        assert_eq!(arg_err("geoDistance(1, 'x', 3, 4) < 1"), ("geoDistance", 2));
        assert_eq!(arg_err("strftime(created) = 1"), ("strftime", 1));
        assert_eq!(arg_err("strftime('%Y', created, 5) = 1"), ("strftime", 3));
        assert_eq!(
            arg_err("strftime('%Y', strftime('%Y', created)) = 1"),
            ("strftime", 2)
        );
        let e = err("geoDistance(1, 2, geoDistance(1,2,3,4), 4) < 1");
        assert_eq!(e.pos, 18);
        assert_eq!(
            kind("nope(1) = 1"),
            ErrorKind::UnknownFunction("nope".into())
        );
        assert_eq!(
            kind("strftime(,'%Y') = 1"),
            ErrorKind::ExpectedOperand("','".into())
        );
        assert_eq!(
            kind("strftime('%Y',,) = 1"),
            ErrorKind::ExpectedOperand("','".into())
        );
        assert_eq!(
            kind("strftime('%Y' created) = 1"),
            ErrorKind::ExpectedArgSeparator("identifier \"created\"".into())
        );
        assert_eq!(kind("strftime('%Y'"), ErrorKind::UnclosedParen);
        assert_eq!(kind("strftime('%Y',"), ErrorKind::UnclosedParen);
        assert_eq!(kind("strftime("), ErrorKind::UnclosedParen);
        // A space between the name and `(` makes it an identifier followed by a group.
        assert_eq!(
            kind("strftime ('%Y') = 1"),
            ErrorKind::ExpectedOperator("'('".into())
        );
    }

    #[test]
    fn structural_errors_with_positions() {
        let cases: &[(&str, ErrorKind, usize)] = &[
            ("a = 1 &&", ErrorKind::ExpectedOperand(END.into()), 8),
            ("&& a = 1", ErrorKind::ExpectedOperand("'&&'".into()), 0),
            (
                "a = 1 && || b = 2",
                ErrorKind::ExpectedOperand("'||'".into()),
                9,
            ),
            ("a = 1 ||", ErrorKind::ExpectedOperand(END.into()), 8),
            ("a", ErrorKind::ExpectedOperator(END.into()), 1),
            ("a =", ErrorKind::ExpectedOperand(END.into()), 3),
            (
                "a b",
                ErrorKind::ExpectedOperator("identifier \"b\"".into()),
                2,
            ),
            ("a = = 1", ErrorKind::ExpectedOperand("'='".into()), 4),
            ("= 1", ErrorKind::ExpectedOperand("'='".into()), 0),
            (
                "a = 1 b = 2",
                ErrorKind::ExpectedJoin("identifier \"b\"".into()),
                6,
            ),
            ("a = 1 = 2", ErrorKind::ExpectedJoin("'='".into()), 6),
            ("(a = 1", ErrorKind::UnclosedParen, 0),
            ("((a = 1)", ErrorKind::UnclosedParen, 0),
            ("a = 1)", ErrorKind::UnmatchedParen, 5),
            ("(a = 1))", ErrorKind::UnmatchedParen, 7),
            ("()", ErrorKind::EmptyGroup, 0),
            ("a = 1 && ()", ErrorKind::EmptyGroup, 9),
            (
                "(a = 1 b = 2)",
                ErrorKind::ExpectedJoin("identifier \"b\"".into()),
                7,
            ),
            (")", ErrorKind::ExpectedOperand("')'".into()), 0),
            ("(", ErrorKind::ExpectedOperand(END.into()), 1),
            ("a = (1)", ErrorKind::ExpectedOperand("'('".into()), 4),
            ("a = 1, b = 2", ErrorKind::ExpectedJoin("','".into()), 5),
            ("a = 'x", ErrorKind::UnterminatedString, 4),
            ("a = 1 & b = 2", ErrorKind::InvalidJoin("&".into()), 6),
            ("a == 1", ErrorKind::InvalidOperator("==".into()), 2),
            ("a = 1.2.3", ErrorKind::UnexpectedChar('.'), 7),
            ("a = 5.", ErrorKind::InvalidNumber("5.".into()), 4),
            ("a = .5", ErrorKind::UnexpectedChar('.'), 4),
            ("a = 1 % 2", ErrorKind::UnexpectedChar('%'), 6),
            ("ä = 1", ErrorKind::UnexpectedChar('ä'), 0),
            ("a = 'é' && ü = 1", ErrorKind::UnexpectedChar('ü'), 12),
            (
                "a = 12abc",
                ErrorKind::ExpectedJoin("identifier \"abc\"".into()),
                6,
            ),
            (
                "1a = 1",
                ErrorKind::ExpectedOperator("identifier \"a\"".into()),
                1,
            ),
            ("@ = 1", ErrorKind::UnknownMacro("@".into()), 0),
            ("a:nope = 1", ErrorKind::UnknownModifier("nope".into()), 0),
        ];
        for (src, k, pos) in cases {
            let e = err(src);
            assert_eq!((&e.kind, e.pos), (k, *pos), "{src}");
        }
        assert_eq!(
            err("a = 1)").to_string(),
            "unmatched closing parenthesis (at byte 5)"
        );
    }

    #[test]
    fn limits() {
        // Length, in bytes.
        let fits = format!("a = '{}'", "x".repeat(MAX_LEN - 6));
        assert_eq!(fits.len(), MAX_LEN);
        assert!(parse(&fits).is_ok());
        let long = format!("a = '{}'", "x".repeat(MAX_LEN - 5));
        assert_eq!(kind(&long), ErrorKind::TooLong(MAX_LEN));
        assert_eq!(kind(&"é".repeat(MAX_LEN)), ErrorKind::TooLong(MAX_LEN));
        // Comparisons.
        let n = |count: usize| vec!["a=1"; count].join("&&");
        assert_eq!(parse(&n(MAX_EXPRESSIONS)).unwrap().comparison_count(), 200);
        let e = err(&n(MAX_EXPRESSIONS + 1));
        assert_eq!(
            (e.kind, e.pos),
            (ErrorKind::TooManyExpressions(MAX_EXPRESSIONS), 200 * 5)
        );
        // Depth.
        let nested = |d: usize| format!("{}a = 1{}", "(".repeat(d), ")".repeat(d));
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        let e = err(&nested(MAX_DEPTH + 1));
        assert_eq!((e.kind, e.pos), (ErrorKind::TooDeep(MAX_DEPTH), MAX_DEPTH));
        // Deeper than any stack would allow without the limit: still a clean error.
        assert_eq!(kind(&"(".repeat(3000)), ErrorKind::TooDeep(MAX_DEPTH));
        assert_eq!(kind(&"(a=1||".repeat(580)), ErrorKind::TooDeep(MAX_DEPTH));
        // Custom limits.
        let roomy = Limits {
            max_len: 100_000,
            max_expressions: 1000,
            max_depth: 100,
        };
        assert!(parse_with_limits(&n(500), roomy).is_ok());
        assert!(parse_with_limits(&nested(100), roomy).is_ok());
        assert!(parse_with_limits(&nested(101), roomy).is_err());
        let huge = Limits {
            max_len: usize::MAX,
            max_expressions: usize::MAX,
            max_depth: usize::MAX,
        };
        assert_eq!(
            parse_with_limits(&nested(HARD_MAX_DEPTH + 1), huge)
                .unwrap_err()
                .kind,
            ErrorKind::TooDeep(HARD_MAX_DEPTH)
        );
        assert_eq!(
            parse_with_limits(&n(HARD_MAX_EXPRESSIONS + 1), huge)
                .unwrap_err()
                .kind,
            ErrorKind::TooManyExpressions(HARD_MAX_EXPRESSIONS)
        );
        // The deepest trees the caps allow print, compare and drop without trouble.
        for deepest in [
            n(HARD_MAX_EXPRESSIONS),
            format!("{}a=1", "a=1&&(".repeat(HARD_MAX_DEPTH)) + &")".repeat(HARD_MAX_DEPTH),
        ] {
            let e = parse_with_limits(&deepest, huge).unwrap();
            assert_eq!(parse_with_limits(&e.to_string(), huge).unwrap(), e);
        }
        let tight = Limits {
            max_len: 5,
            max_expressions: 1,
            max_depth: 0,
        };
        assert!(parse_with_limits("a = 1", tight).is_ok());
        assert!(parse_with_limits("a = 12", tight).is_err());
        assert!(parse_with_limits("(a=1)", tight).is_err());
    }

    #[test]
    fn display_is_canonical() {
        let cases = [
            ("a=1||b=2&&c=3", "a = 1 || b = 2 && c = 3"),
            ("(a=1||b=2)&&c=3", "(a = 1 || b = 2) && c = 3"),
            ("a=1&&(b=2&&c=3)", "a = 1 && (b = 2 && c = 3)"),
            ("((a=1))", "a = 1"),
            (r#"x?!~"it's"//c"#, r#"x ?!~ "it's""#),
            (r#"x = "plain""#, "x = 'plain'"),
            ("x = -.5", "x = -.5"),
            (
                "@collection.u:a.f:each ?= @request.auth.id",
                "@collection.u:a.f:each ?= @request.auth.id",
            ),
            (
                "geoDistance(a,b,1,2)<@year",
                "geoDistance(a, b, 1, 2) < @year",
            ),
            ("strftime('%Y',x,)='1'", "strftime('%Y', x) = '1'"),
        ];
        for (src, canonical) in cases {
            let e = parse(src).unwrap();
            assert_eq!(e.to_string(), canonical, "{src}");
            assert_eq!(parse(canonical).unwrap(), e, "{src}");
        }
    }

    // ---- property tests ------------------------------------------------------------------

    fn arb_segment() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_]{1,6}"
    }

    fn arb_first_segment() -> impl Strategy<Value = String> {
        "[A-Za-z_][A-Za-z0-9_]{0,6}"
    }

    fn arb_path() -> impl Strategy<Value = Path> {
        use PathRoot::*;
        let root = prop_oneof![
            Just(Field),
            Just(RequestAuth),
            Just(RequestBody),
            Just(RequestQuery),
            Just(RequestHeaders),
            Just(RequestMethod),
            Just(RequestContext),
            (arb_segment(), proptest::option::of(arb_segment()))
                .prop_map(|(name, alias)| Collection { name, alias }),
        ];
        (
            root,
            arb_first_segment(),
            proptest::collection::vec(arb_segment(), 0..4),
            proptest::option::of(proptest::sample::select(Modifier::ALL.to_vec())),
        )
            .prop_map(|(root, first, more, modifier)| {
                let (segments, modifier) = match root {
                    RequestMethod | RequestContext => (vec![], None),
                    _ => {
                        let mut segments = vec![first];
                        segments.extend(more);
                        let modifier = match (modifier, &root) {
                            (Some(Modifier::Isset), r) if !r.is_request() => None,
                            (Some(Modifier::Changed), r) if *r != RequestBody => None,
                            (m, _) => m,
                        };
                        (segments, modifier)
                    }
                };
                Path {
                    root,
                    segments,
                    modifier,
                }
            })
    }

    fn arb_string() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z '\"\\\\%_]{0,10}", "\\PC{0,8}", any::<String>(),]
            .prop_filter("a string cannot end with a backslash", |s| {
                !s.ends_with('\\')
            })
    }

    fn arb_number() -> impl Strategy<Value = Number> {
        prop_oneof![
            any::<i64>().prop_map(Number::from),
            (any::<bool>(), 0u32..100_000, 0u32..1000).prop_map(|(neg, i, f)| {
                let sign = if neg { "-" } else { "" };
                Number::parse(&format!("{sign}{i}.{f}")).unwrap()
            }),
            Just(Number::parse("-.5").unwrap()),
            Just(Number::parse("007").unwrap()),
        ]
    }

    fn arb_simple_operand() -> impl Strategy<Value = Operand> {
        prop_oneof![
            arb_string().prop_map(Operand::Str),
            arb_number().prop_map(Operand::Num),
            arb_path().prop_map(Operand::Ident),
            proptest::sample::select(DateMacro::ALL.to_vec()).prop_map(Operand::Macro),
        ]
    }

    fn arb_value_like() -> impl Strategy<Value = Operand> {
        prop_oneof![
            arb_number().prop_map(Operand::Num),
            arb_path().prop_map(Operand::Ident),
            proptest::sample::select(DateMacro::ALL.to_vec()).prop_map(Operand::Macro),
        ]
    }

    fn arb_func() -> impl Strategy<Value = Operand> {
        let geo = proptest::collection::vec(arb_value_like(), 4).prop_map(|args| Operand::Func {
            name: Func::GeoDistance,
            args,
        });
        let strftime = (
            arb_string(),
            proptest::option::of(prop_oneof![
                arb_value_like(),
                arb_string().prop_map(Operand::Str)
            ]),
            proptest::collection::vec(arb_string().prop_map(Operand::Str), 0..8),
        )
            .prop_map(|(fmt, time, mods)| {
                let mut args = vec![Operand::Str(fmt)];
                if let Some(t) = time {
                    args.push(t);
                    args.extend(mods);
                }
                Operand::Func {
                    name: Func::Strftime,
                    args,
                }
            });
        prop_oneof![geo, strftime]
    }

    fn arb_operand() -> impl Strategy<Value = Operand> {
        prop_oneof![4 => arb_simple_operand(), 1 => arb_func()]
    }

    fn arb_expr() -> impl Strategy<Value = Expr> {
        let leaf = (
            arb_operand(),
            proptest::sample::select(Op::ALL.to_vec()),
            any::<bool>(),
            arb_operand(),
        )
            .prop_map(|(l, op, any, r)| Expr::cmp(l, op, any, r));
        // Depth 7 keeps it within 128 comparisons and 7 parentheses.
        leaf.prop_recursive(7, 64, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::and(a, b)),
                (inner.clone(), inner).prop_map(|(a, b)| Expr::or(a, b)),
            ]
        })
    }

    /// Grammar-ish fragments, valid and not.
    const PIECES: &[&str] = &[
        "(",
        ")",
        "&&",
        "||",
        "&",
        "|",
        "=",
        "!=",
        "?=",
        "?!~",
        "~",
        ">=",
        "<",
        "?",
        "!",
        "'x'",
        "'",
        "\"",
        "\\",
        "\"a\\\"b\"",
        "'it\\'s'",
        "@request.auth.id",
        "@request.body.x:changed",
        "@request.query.q:isset",
        "@request.method",
        "@request.",
        "@collection.x:y.z",
        "@collection.x",
        "a.b:each",
        "a:lower",
        "a..b",
        "a.",
        "true",
        "null",
        "12.5",
        "-3",
        "-",
        ".",
        "1.2.3",
        ",",
        "geoDistance(",
        "strftime(",
        "nope(",
        "//",
        "// c\n",
        "\n",
        "\r",
        "\t",
        "@",
        "@now",
        "@todayStart",
        ":",
        "é",
        "✓",
        "\u{0}",
        "%",
        "#",
    ];

    fn arb_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(PIECES).prop_map(String::from),
            "[a-z@.:_]{1,6}",
        ]
    }

    fn arb_soup() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(arb_piece(), 0..40),
            proptest::sample::select(vec!["", " "]),
        )
            .prop_map(|(parts, sep)| parts.join(sep))
    }

    /// The source text of each token of `src`.
    fn token_texts(src: &str) -> Vec<String> {
        tokenize(src)
            .unwrap()
            .iter()
            .map(|t| src[t.start..t.end].to_string())
            .collect()
    }

    /// Whitespace and comments that may stand between any two tokens. No space at all is
    /// also fine: the grammar never puts two tokens side by side that would merge.
    const SEPARATORS: &[&str] = &["", " ", "  ", "\n", "\t", "\r\n", " // ) ' \" && \n"];

    /// A tree and its canonical text re-spaced at random.
    fn arb_reformatted() -> impl Strategy<Value = (Expr, String)> {
        arb_expr()
            .prop_flat_map(|e| {
                let tokens = token_texts(&e.to_string());
                let seps = proptest::collection::vec(
                    proptest::sample::select(SEPARATORS),
                    tokens.len() + 1,
                );
                (Just(e), Just(tokens), seps)
            })
            .prop_map(|(e, tokens, seps)| {
                let mut text = String::new();
                for (sep, token) in seps.iter().zip(tokens.iter()) {
                    text.push_str(sep);
                    text.push_str(token);
                }
                text.push_str(seps.last().copied().unwrap_or_default());
                (e, text)
            })
    }

    /// Valid text with one token deleted, duplicated, swapped or a fragment inserted.
    fn arb_mutated() -> impl Strategy<Value = String> {
        arb_expr()
            .prop_flat_map(|e| {
                let tokens = token_texts(&e.to_string());
                let n = tokens.len();
                (Just(tokens), 0..n, 0..n, 0usize..4, arb_piece())
            })
            .prop_map(|(mut tokens, i, j, how, piece)| {
                match how {
                    0 => {
                        tokens.remove(i);
                    }
                    1 => {
                        let t = tokens[i].clone();
                        tokens.insert(j, t);
                    }
                    2 => tokens.swap(i, j),
                    _ => tokens.insert(i, piece),
                }
                tokens.join(" ")
            })
    }

    fn unlimited_len() -> Limits {
        Limits {
            max_len: usize::MAX,
            ..Limits::default()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn printed_trees_parse_back_equal(e in arb_expr()) {
            let printed = e.to_string();
            let again = parse_with_limits(&printed, unlimited_len());
            prop_assert_eq!(again.as_ref(), Ok(&e), "printed: {}", printed);
        }

        #[test]
        fn whitespace_and_comments_do_not_matter((e, text) in arb_reformatted()) {
            prop_assert_eq!(parse_with_limits(&text, unlimited_len()), Ok(e), "text: {:?}", text);
        }

        #[test]
        fn mutated_text_never_panics_and_normalises(text in arb_mutated()) {
            match parse_with_limits(&text, unlimited_len()) {
                Ok(e) => {
                    let printed = e.to_string();
                    prop_assert_eq!(parse_with_limits(&printed, unlimited_len()), Ok(e));
                }
                Err(e) => prop_assert!(text.is_char_boundary(e.pos) && e.pos <= text.len()),
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in any::<String>()) {
            if let Err(e) = parse(&s) {
                prop_assert!(s.is_char_boundary(e.pos));
            }
        }

        #[test]
        fn printable_text_never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s);
        }

        #[test]
        fn token_soup_never_panics_and_normalises(s in arb_soup()) {
            match parse(&s) {
                Ok(e) => {
                    let printed = e.to_string();
                    prop_assert_eq!(parse_with_limits(&printed, unlimited_len()), Ok(e));
                }
                Err(e) => prop_assert!(s.is_char_boundary(e.pos) && e.pos <= s.len()),
            }
        }
    }
}
