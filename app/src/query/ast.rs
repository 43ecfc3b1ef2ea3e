//! The syntax tree of PocketBase's filter/rule grammar ("fexpr") and its canonical printer.
//!
//! A tree comes from [`super::parser::parse`]. Printing it with `Display` gives canonical
//! source text that parses back to an equal tree: single spaces around operators and joins,
//! parentheses only where the structure needs them (`&&` binds tighter than `||`, both are
//! left-associative), each string in whichever quote needs fewer escapes, numbers as written.
//!
//! Invariants the parser guarantees and the printer relies on (a hand-built tree that breaks
//! them prints text that does not parse back to it):
//! - path segments, collection names and aliases match `[A-Za-z0-9_]+`, and a
//!   [`PathRoot::Field`] path's first segment does not start with a digit;
//! - the segment counts and modifier placements described on [`PathRoot`] and [`Modifier`];
//! - function arguments are never functions, and their number and kinds follow [`Func`];
//! - a string does not end with a backslash (the grammar cannot write one, see
//!   [`super::lexer`]).

use std::fmt;

/// A filter or rule expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `left && right`
    And(Box<Expr>, Box<Expr>),
    /// `left || right`
    Or(Box<Expr>, Box<Expr>),
    /// One comparison, `left op right`.
    Cmp {
        left: Operand,
        op: Op,
        /// The `?` "any of" form (`?=`, `?!=`, …): at least one item of a multi-valued
        /// operand has to match, instead of all of them.
        any: bool,
        right: Operand,
    },
}

impl Expr {
    /// Builds `left && right`.
    pub fn and(left: Expr, right: Expr) -> Expr {
        Expr::And(Box::new(left), Box::new(right))
    }

    /// Builds `left || right`.
    pub fn or(left: Expr, right: Expr) -> Expr {
        Expr::Or(Box::new(left), Box::new(right))
    }

    /// Builds a comparison.
    pub fn cmp(left: Operand, op: Op, any: bool, right: Operand) -> Expr {
        Expr::Cmp {
            left,
            op,
            any,
            right,
        }
    }

    /// How many comparisons the expression holds (what the 200-expression limit counts).
    pub fn comparison_count(&self) -> usize {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => a.comparison_count() + b.comparison_count(),
            Expr::Cmp { .. } => 1,
        }
    }

    /// Every operand in source order, including function arguments (each right after its
    /// function).
    pub fn operands(&self) -> Vec<&Operand> {
        fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a Operand>) {
            match e {
                Expr::And(a, b) | Expr::Or(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Expr::Cmp { left, right, .. } => {
                    for o in [left, right] {
                        out.push(o);
                        if let Operand::Func { args, .. } = o {
                            out.extend(args.iter());
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }
}

impl std::str::FromStr for Expr {
    type Err = super::lexer::ParseError;

    fn from_str(s: &str) -> Result<Expr, Self::Err> {
        super::parser::parse(s)
    }
}

/// A comparison operator, without its `?` prefix (see [`Expr::Cmp::any`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `~` (contains / LIKE)
    Like,
    /// `!~` (does not contain / NOT LIKE)
    NotLike,
}

impl Op {
    pub const ALL: [Op; 8] = [
        Op::Eq,
        Op::Neq,
        Op::Gt,
        Op::Gte,
        Op::Lt,
        Op::Lte,
        Op::Like,
        Op::NotLike,
    ];

    /// The operator as written, without the `?`.
    pub fn symbol(self) -> &'static str {
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

    /// Reads `=`, `?=`, `!~`, `?!~`, …; the flag says whether it was the `?` form.
    pub fn from_symbol(s: &str) -> Option<(Op, bool)> {
        let (rest, any) = match s.strip_prefix('?') {
            Some(rest) => (rest, true),
            None => (s, false),
        };
        Op::ALL
            .into_iter()
            .find(|op| op.symbol() == rest)
            .map(|op| (op, any))
    }
}

/// One side of a comparison, or a function argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A quoted string, unescaped.
    Str(String),
    /// A number literal.
    Num(Number),
    /// A field or `@request`/`@collection` path. `true`, `false` and `null` are single-segment
    /// field paths here; the compiler turns them into 1, 0 and NULL when no field has that
    /// name (PocketBase compares those names case-insensitively).
    Ident(Path),
    /// `@now`, `@todayStart`, `@year`, …
    Macro(DateMacro),
    /// `geoDistance(…)` or `strftime(…)`.
    Func { name: Func, args: Vec<Operand> },
}

/// A number literal: `123`, `-14`, `10.5` (and `-.5`, which PocketBase also accepts). No
/// exponent, no leading `+`, no bare leading or trailing dot.
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    text: String,
    value: f64,
}

impl Number {
    /// Checks `text` against the number grammar and reads its value (very long digit runs
    /// may read as an infinity, as in PocketBase).
    pub fn parse(text: &str) -> Option<Number> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let (int, frac) = match digits.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (digits, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let ok = match frac {
            None => all_digits(int),
            Some(frac) => {
                all_digits(frac) && (all_digits(int) || (int.is_empty() && text.starts_with('-')))
            }
        };
        if !ok {
            return None;
        }
        let value = text.parse::<f64>().ok()?;
        Some(Number {
            text: text.to_string(),
            value,
        })
    }

    /// The number as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The number's value.
    pub fn value(&self) -> f64 {
        self.value
    }
}

impl From<i64> for Number {
    fn from(n: i64) -> Number {
        Number {
            text: n.to_string(),
            value: n as f64,
        }
    }
}

/// An identifier path: where it starts, the field names after that, and a modifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path {
    pub root: PathRoot,
    /// The names after the root (for [`PathRoot::Field`], the whole path: `author.name` is
    /// `["author", "name"]`). Relation hops, back-relations (`comments_via_post`) and JSON
    /// keys are all plain segments here; the compiler tells them apart.
    pub segments: Vec<String>,
    pub modifier: Option<Modifier>,
}

impl Path {
    /// A plain field path without a modifier (`"author.name"`).
    pub fn field(dotted: &str) -> Path {
        Path {
            root: PathRoot::Field,
            segments: dotted.split('.').map(str::to_string).collect(),
            modifier: None,
        }
    }
}

/// Where a [`Path`] starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathRoot {
    /// A field of the record: `title`, `author.name` (one or more segments).
    Field,
    /// `@request.auth.<field>…` (one or more segments).
    RequestAuth,
    /// `@request.body.<field>…` (one or more segments).
    RequestBody,
    /// `@request.query.<key>…` (one or more segments; PocketBase gives NULL past the first).
    RequestQuery,
    /// `@request.headers.<name>…` (one or more segments, snake_case lowercase names).
    RequestHeaders,
    /// `@request.method` (no segments, no modifier).
    RequestMethod,
    /// `@request.context` (no segments, no modifier).
    RequestContext,
    /// `@collection.<name>[:<alias>].<field>…` (one or more segments).
    Collection { name: String, alias: Option<String> },
}

impl PathRoot {
    /// Whether this is one of the `@request.*` roots.
    pub fn is_request(&self) -> bool {
        !matches!(self, PathRoot::Field | PathRoot::Collection { .. })
    }
}

/// A `:modifier` after a path's last segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modifier {
    /// `:isset`: whether the key was sent. Only on `@request.*` paths (not on
    /// `@request.method`/`@request.context`).
    Isset,
    /// `:changed`: sent and different from the stored value. Only on `@request.body.*`.
    Changed,
    /// `:length`: number of items of a multi-valued field.
    Length,
    /// `:each`: applies the comparison to every item of a multi-valued field.
    Each,
    /// `:lower`: compares lowercased (`LOWER()`).
    Lower,
}

impl Modifier {
    pub const ALL: [Modifier; 5] = [
        Modifier::Isset,
        Modifier::Changed,
        Modifier::Length,
        Modifier::Each,
        Modifier::Lower,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Modifier::Isset => "isset",
            Modifier::Changed => "changed",
            Modifier::Length => "length",
            Modifier::Each => "each",
            Modifier::Lower => "lower",
        }
    }

    pub fn from_name(s: &str) -> Option<Modifier> {
        Modifier::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// The `@` datetime macros, all evaluated in UTC when the query runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateMacro {
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

impl DateMacro {
    pub const ALL: [DateMacro; 16] = [
        DateMacro::Now,
        DateMacro::Yesterday,
        DateMacro::Tomorrow,
        DateMacro::TodayStart,
        DateMacro::TodayEnd,
        DateMacro::MonthStart,
        DateMacro::MonthEnd,
        DateMacro::YearStart,
        DateMacro::YearEnd,
        DateMacro::Second,
        DateMacro::Minute,
        DateMacro::Hour,
        DateMacro::Day,
        DateMacro::Month,
        DateMacro::Weekday,
        DateMacro::Year,
    ];

    /// The name without the `@`.
    pub fn name(self) -> &'static str {
        match self {
            DateMacro::Now => "now",
            DateMacro::Yesterday => "yesterday",
            DateMacro::Tomorrow => "tomorrow",
            DateMacro::TodayStart => "todayStart",
            DateMacro::TodayEnd => "todayEnd",
            DateMacro::MonthStart => "monthStart",
            DateMacro::MonthEnd => "monthEnd",
            DateMacro::YearStart => "yearStart",
            DateMacro::YearEnd => "yearEnd",
            DateMacro::Second => "second",
            DateMacro::Minute => "minute",
            DateMacro::Hour => "hour",
            DateMacro::Day => "day",
            DateMacro::Month => "month",
            DateMacro::Weekday => "weekday",
            DateMacro::Year => "year",
        }
    }

    /// Reads a macro name given without the `@` (case-sensitive, as in PocketBase).
    pub fn from_name(s: &str) -> Option<DateMacro> {
        DateMacro::ALL.into_iter().find(|m| m.name() == s)
    }

    /// `@now` … `@yearEnd` give a datetime string; `@second` … `@year` give a number.
    pub fn is_datetime(self) -> bool {
        matches!(
            self,
            DateMacro::Now
                | DateMacro::Yesterday
                | DateMacro::Tomorrow
                | DateMacro::TodayStart
                | DateMacro::TodayEnd
                | DateMacro::MonthStart
                | DateMacro::MonthEnd
                | DateMacro::YearStart
                | DateMacro::YearEnd
        )
    }
}

/// The functions the grammar knows, with the argument shapes the parser enforces (those of
/// PocketBase's resolvers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    /// `geoDistance(lonA, latA, lonB, latB)`: exactly 4 arguments, each a number, a path or
    /// a macro.
    GeoDistance,
    /// `strftime(format, timeValue?, modifiers…)`: 1 to 10 arguments; the format is a string,
    /// the time value a string, number, path or macro, each modifier a string.
    Strftime,
}

impl Func {
    pub const ALL: [Func; 2] = [Func::GeoDistance, Func::Strftime];

    pub fn name(self) -> &'static str {
        match self {
            Func::GeoDistance => "geoDistance",
            Func::Strftime => "strftime",
        }
    }

    pub fn from_name(s: &str) -> Option<Func> {
        Func::ALL.into_iter().find(|f| f.name() == s)
    }
}

// ---- printing ----------------------------------------------------------------------------

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn wrapped(f: &mut fmt::Formatter<'_>, e: &Expr, parens: bool) -> fmt::Result {
            if parens {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        }
        match self {
            // Left-associative, && tighter than ||: only a right-hand child of the same or a
            // looser join, or an || under an &&, needs parentheses.
            Expr::Or(a, b) => {
                wrapped(f, a, false)?;
                f.write_str(" || ")?;
                wrapped(f, b, matches!(**b, Expr::Or(..)))
            }
            Expr::And(a, b) => {
                wrapped(f, a, matches!(**a, Expr::Or(..)))?;
                f.write_str(" && ")?;
                wrapped(f, b, matches!(**b, Expr::Or(..) | Expr::And(..)))
            }
            Expr::Cmp {
                left,
                op,
                any,
                right,
            } => {
                let q = if *any { "?" } else { "" };
                write!(f, "{left} {q}{} {right}", op.symbol())
            }
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Str(s) => write_quoted(f, s),
            Operand::Num(n) => f.write_str(n.text()),
            Operand::Ident(p) => write!(f, "{p}"),
            Operand::Macro(m) => write!(f, "{m}"),
            Operand::Func { name, args } => {
                write!(f, "{}(", name.name())?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// Quotes with whichever quote character occurs less often in `s`, escaping that one as
/// `\'`/`\"`. Other backslashes stay as they are, because the lexer keeps them (see
/// [`super::lexer`]), so this round-trips every string not ending in a backslash.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    let singles = s.matches('\'').count();
    let doubles = s.matches('"').count();
    let q = if singles > doubles { '"' } else { '\'' };
    let mut buf = [0u8; 4];
    let qs: &str = q.encode_utf8(&mut buf);
    write!(f, "{q}{}{q}", s.replace(q, &format!("\\{qs}")))
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match &self.root {
            PathRoot::Field => "",
            PathRoot::RequestAuth => "@request.auth",
            PathRoot::RequestBody => "@request.body",
            PathRoot::RequestQuery => "@request.query",
            PathRoot::RequestHeaders => "@request.headers",
            PathRoot::RequestMethod => "@request.method",
            PathRoot::RequestContext => "@request.context",
            PathRoot::Collection { name, alias } => {
                write!(f, "@collection.{name}")?;
                if let Some(a) = alias {
                    write!(f, ":{a}")?;
                }
                ""
            }
        };
        f.write_str(prefix)?;
        let mut first = matches!(self.root, PathRoot::Field);
        for s in &self.segments {
            if !first {
                f.write_str(".")?;
            }
            first = false;
            f.write_str(s)?;
        }
        if let Some(m) = self.modifier {
            write!(f, ":{}", m.name())?;
        }
        Ok(())
    }
}

impl fmt::Display for Modifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for DateMacro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.name())
    }
}

impl fmt::Display for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(n: i64) -> Operand {
        Operand::Num(Number::from(n))
    }

    fn field(p: &str) -> Operand {
        Operand::Ident(Path::field(p))
    }

    fn cmp(name: &str, n: i64) -> Expr {
        Expr::cmp(field(name), Op::Eq, false, num(n))
    }

    #[test]
    fn number_grammar() {
        for ok in ["0", "123", "-14", "10.5", "-0.25", "007", "-.5"] {
            let n = Number::parse(ok).unwrap_or_else(|| panic!("{ok} should parse"));
            assert_eq!(n.text(), ok);
        }
        assert_eq!(Number::parse("-14").unwrap().value(), -14.0);
        assert_eq!(Number::parse("-.5").unwrap().value(), -0.5);
        for bad in [
            "", "-", ".", ".5", "5.", "-5.", "1.2.3", "+1", "1e5", "0x10", "1_000", " 1", "--1",
            "-.", "inf", "NaN",
        ] {
            assert!(Number::parse(bad).is_none(), "{bad} should not parse");
        }
        assert!(
            Number::parse(&"9".repeat(400))
                .unwrap()
                .value()
                .is_infinite()
        );
    }

    #[test]
    fn op_symbols_round_trip() {
        for op in Op::ALL {
            assert_eq!(Op::from_symbol(op.symbol()), Some((op, false)));
            assert_eq!(Op::from_symbol(&format!("?{op}")), Some((op, true)));
        }
        assert_eq!(Op::from_symbol("=="), None);
        assert_eq!(Op::from_symbol("??="), None);
        assert_eq!(Op::from_symbol("?"), None);
    }

    #[test]
    fn names_round_trip() {
        for m in DateMacro::ALL {
            assert_eq!(DateMacro::from_name(m.name()), Some(m));
        }
        for m in Modifier::ALL {
            assert_eq!(Modifier::from_name(m.name()), Some(m));
        }
        for f in Func::ALL {
            assert_eq!(Func::from_name(f.name()), Some(f));
        }
        assert_eq!(DateMacro::from_name("Now"), None);
        assert!(DateMacro::Now.is_datetime() && !DateMacro::Year.is_datetime());
    }

    #[test]
    fn prints_minimal_parentheses() {
        let (a, b, c) = (cmp("a", 1), cmp("b", 2), cmp("c", 3));
        let cases = [
            (
                Expr::or(a.clone(), Expr::and(b.clone(), c.clone())),
                "a = 1 || b = 2 && c = 3",
            ),
            (
                Expr::and(Expr::or(a.clone(), b.clone()), c.clone()),
                "(a = 1 || b = 2) && c = 3",
            ),
            (
                Expr::and(a.clone(), Expr::or(b.clone(), c.clone())),
                "a = 1 && (b = 2 || c = 3)",
            ),
            (
                Expr::and(Expr::and(a.clone(), b.clone()), c.clone()),
                "a = 1 && b = 2 && c = 3",
            ),
            (
                Expr::and(a.clone(), Expr::and(b.clone(), c.clone())),
                "a = 1 && (b = 2 && c = 3)",
            ),
            (
                Expr::or(Expr::or(a.clone(), b.clone()), c.clone()),
                "a = 1 || b = 2 || c = 3",
            ),
            (
                Expr::or(a.clone(), Expr::or(b.clone(), c.clone())),
                "a = 1 || (b = 2 || c = 3)",
            ),
            (Expr::or(Expr::and(a, b), c), "a = 1 && b = 2 || c = 3"),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
    }

    #[test]
    fn prints_operands() {
        let e = Expr::cmp(
            Operand::Ident(Path {
                root: PathRoot::Collection {
                    name: "users".into(),
                    alias: Some("u".into()),
                },
                segments: vec!["tags".into()],
                modifier: Some(Modifier::Each),
            }),
            Op::Like,
            true,
            Operand::Str("it's".into()),
        );
        assert_eq!(e.to_string(), r#"@collection.users:u.tags:each ?~ "it's""#);
        let both = Operand::Str(r#"it's "x" \n"#.into());
        assert_eq!(both.to_string(), r#"'it\'s "x" \n'"#);
        let f = Operand::Func {
            name: Func::Strftime,
            args: vec![
                Operand::Str("%Y".into()),
                Operand::Macro(DateMacro::Now),
                Operand::Ident(Path {
                    root: PathRoot::RequestMethod,
                    segments: vec![],
                    modifier: None,
                }),
            ],
        };
        assert_eq!(f.to_string(), "strftime('%Y', @now, @request.method)");
        assert_eq!(
            Operand::Num(Number::parse("-.5").unwrap()).to_string(),
            "-.5"
        );
    }

    #[test]
    fn counts_and_walks() {
        let e: Expr = "a = 1 && (b = geoDistance(x, y, 1, 2) || c ?= 'z')"
            .parse()
            .unwrap();
        assert_eq!(e.comparison_count(), 3);
        let ops = e.operands();
        assert_eq!(ops.len(), 10);
        assert_eq!(ops[4], &field("x"));
        assert_eq!(ops[9], &Operand::Str("z".into()));
    }
}
