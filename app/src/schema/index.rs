//! Index definitions. PocketBase stores indexes as SQL text; Ferrobase accepts the same text
//! but never executes it as given: it is parsed into [`IndexDef`] (a strict subset of SQLite's
//! `CREATE INDEX`), every identifier is checked against the collection's fields, and the
//! statement that runs is printed from the parsed form with quoted identifiers.

use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Word(String),
    Str(String),
    Num(String),
    Sym(String),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '`' || c == '"' || c == '[' {
            let close = if c == '[' { ']' } else { c };
            let start = i + 1;
            let end = chars[start..]
                .iter()
                .position(|&x| x == close)
                .ok_or("unterminated identifier")?;
            out.push(Tok::Ident(chars[start..start + end].iter().collect()));
            i = start + end + 1;
        } else if c == '\'' {
            let mut v = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string".into()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        v.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(x) => {
                        v.push(*x);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(v));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["!=", "<>", "<=", ">=", "=="].contains(&two.as_str()) {
                out.push(Tok::Sym(two));
                i += 2;
            } else if "(),=<>".contains(c) {
                out.push(Tok::Sym(c.to_string()));
                i += 1;
            } else {
                return Err(format!("unexpected character {c:?}"));
            }
        }
    }
    Ok(out)
}

/// One indexed column.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexColumn {
    pub name: String,
    pub collate: Option<String>,
    pub desc: Option<bool>,
}

/// A parsed `CREATE [UNIQUE] INDEX` statement.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexDef {
    pub name: String,
    pub unique: bool,
    pub table: String,
    pub columns: Vec<IndexColumn>,
    where_clause: Vec<Tok>,
}

const WHERE_KEYWORDS: &[&str] = &[
    "AND", "OR", "NOT", "IS", "NULL", "IN", "LIKE", "GLOB", "BETWEEN", "TRUE", "FALSE",
];
const COLLATIONS: &[&str] = &["BINARY", "NOCASE", "RTRIM"];

fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

impl IndexDef {
    /// Parses an index statement. Only the shapes PocketBase's dashboard produces (plus
    /// `COLLATE`, `ASC`/`DESC` and a simple `WHERE`) are accepted.
    pub fn parse(sql: &str) -> Result<IndexDef, String> {
        let toks = tokenize(sql)?;
        let mut it = toks.into_iter().peekable();
        let word = |t: Option<Tok>, w: &str| -> Result<(), String> {
            match t {
                Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w) => Ok(()),
                _ => Err(format!("expected {w}")),
            }
        };
        word(it.next(), "CREATE")?;
        let mut unique = false;
        if matches!(it.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("UNIQUE")) {
            unique = true;
            it.next();
        }
        word(it.next(), "INDEX")?;
        if matches!(it.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IF")) {
            it.next();
            word(it.next(), "NOT")?;
            word(it.next(), "EXISTS")?;
        }
        let ident = |t: Option<Tok>| -> Result<String, String> {
            match t {
                Some(Tok::Ident(s)) | Some(Tok::Word(s)) if !s.is_empty() => Ok(s),
                _ => Err("expected a name".into()),
            }
        };
        let name = ident(it.next())?;
        word(it.next(), "ON")?;
        let table = match it.next() {
            Some(Tok::Ident(s)) | Some(Tok::Word(s)) => s,
            _ => return Err("expected a table name".into()),
        };
        if it.next() != Some(Tok::Sym("(".into())) {
            return Err("expected (".into());
        }
        let mut columns = Vec::new();
        loop {
            let col_name = ident(it.next())?;
            let mut col = IndexColumn {
                name: col_name,
                collate: None,
                desc: None,
            };
            loop {
                match it.next() {
                    Some(Tok::Word(w)) if w.eq_ignore_ascii_case("COLLATE") => {
                        let c = ident(it.next())?.to_ascii_uppercase();
                        if !COLLATIONS.contains(&c.as_str()) {
                            return Err(format!("unknown collation {c}"));
                        }
                        col.collate = Some(c);
                    }
                    Some(Tok::Word(w)) if w.eq_ignore_ascii_case("ASC") => col.desc = Some(false),
                    Some(Tok::Word(w)) if w.eq_ignore_ascii_case("DESC") => col.desc = Some(true),
                    Some(Tok::Sym(s)) if s == "," => {
                        columns.push(col);
                        break;
                    }
                    Some(Tok::Sym(s)) if s == ")" => {
                        columns.push(col);
                        let rest: Vec<Tok> = it.collect();
                        let where_clause = match rest.split_first() {
                            None => vec![],
                            Some((Tok::Word(w), tail)) if w.eq_ignore_ascii_case("WHERE") => {
                                if tail.is_empty() {
                                    return Err("empty WHERE".into());
                                }
                                tail.to_vec()
                            }
                            Some(_) => return Err("unexpected text after the columns".into()),
                        };
                        return IndexDef {
                            name,
                            unique,
                            table,
                            columns,
                            where_clause,
                        }
                        .check_where();
                    }
                    _ => return Err("malformed column list".into()),
                }
            }
        }
    }

    fn check_where(self) -> Result<IndexDef, String> {
        let mut depth = 0i32;
        for t in &self.where_clause {
            match t {
                Tok::Word(w) if WHERE_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(w)) => {}
                Tok::Sym(s) if s == "(" => depth += 1,
                Tok::Sym(s) if s == ")" => {
                    depth -= 1;
                    if depth < 0 {
                        return Err("unbalanced parentheses".into());
                    }
                }
                Tok::Word(_) | Tok::Ident(_) | Tok::Str(_) | Tok::Num(_) | Tok::Sym(_) => {}
            }
        }
        if depth != 0 {
            return Err("unbalanced parentheses".into());
        }
        Ok(self)
    }

    /// Identifiers the index refers to (columns and names in the WHERE clause).
    pub fn referenced_columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        for t in &self.where_clause {
            match t {
                Tok::Ident(s) => out.push(s),
                Tok::Word(w) if !WHERE_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(w)) => {
                    out.push(w)
                }
                _ => {}
            }
        }
        out
    }

    /// Renames a referenced column (a renamed field keeps its index).
    pub fn rename_column(&mut self, from: &str, to: &str) {
        for c in &mut self.columns {
            if c.name == from {
                c.name = to.to_string();
            }
        }
        for t in &mut self.where_clause {
            match t {
                Tok::Ident(s) | Tok::Word(s) if s == from => *t = Tok::Ident(to.to_string()),
                _ => {}
            }
        }
    }

    /// The statement that creates this index on `table`, printed from the parsed form.
    pub fn create_sql(&self, table: &str) -> String {
        let mut s = String::from("CREATE ");
        if self.unique {
            s.push_str("UNIQUE ");
        }
        let _ = write!(
            s,
            "INDEX {} ON {} (",
            quote_ident(&self.name),
            quote_ident(table)
        );
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&quote_ident(&c.name));
            if let Some(coll) = &c.collate {
                let _ = write!(s, " COLLATE {coll}");
            }
            match c.desc {
                Some(true) => s.push_str(" DESC"),
                Some(false) => s.push_str(" ASC"),
                None => {}
            }
        }
        s.push(')');
        if !self.where_clause.is_empty() {
            s.push_str(" WHERE");
            for t in &self.where_clause {
                s.push(' ');
                match t {
                    Tok::Ident(x) => s.push_str(&quote_ident(x)),
                    Tok::Word(w) if WHERE_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(w)) => {
                        s.push_str(&w.to_ascii_uppercase())
                    }
                    Tok::Word(w) => s.push_str(&quote_ident(w)),
                    // DDL cannot take bound parameters; literals are re-quoted here.
                    Tok::Str(v) => {
                        let _ = write!(s, "'{}'", v.replace('\'', "''"));
                    }
                    Tok::Num(n) => s.push_str(n),
                    Tok::Sym(x) => s.push_str(x),
                }
            }
        }
        s
    }

    /// The text stored in the collection's `indexes`, in PocketBase's style.
    pub fn stored_sql(&self, table: &str) -> String {
        self.create_sql(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pocketbase_forms() {
        let d = IndexDef::parse(
            "CREATE UNIQUE INDEX `idx_email_x` ON `users` (`email`) WHERE `email` != ''",
        )
        .unwrap();
        assert!(d.unique);
        assert_eq!(d.name, "idx_email_x");
        assert_eq!(d.columns[0].name, "email");
        assert_eq!(
            d.create_sql("users"),
            "CREATE UNIQUE INDEX `idx_email_x` ON `users` (`email`) WHERE `email` != ''"
        );
        let d = IndexDef::parse("CREATE INDEX idx_x ON t2 (a, b COLLATE nocase DESC)").unwrap();
        assert_eq!(d.columns.len(), 2);
        assert_eq!(d.columns[1].collate.as_deref(), Some("NOCASE"));
        assert_eq!(d.columns[1].desc, Some(true));
        assert_eq!(d.referenced_columns(), vec!["a", "b"]);
    }

    #[test]
    fn rejects_injection_and_garbage() {
        for bad in [
            "CREATE INDEX i ON t (a); DROP TABLE t",
            "CREATE INDEX i ON t (a) WHERE a = 1; DROP TABLE t",
            "DROP TABLE t",
            "CREATE INDEX i ON t ()",
            "CREATE INDEX i ON t (a",
            "CREATE INDEX i ON t (a) WHERE",
            "CREATE INDEX i ON t (a) WHERE (a = 1",
            "CREATE INDEX i ON t (a COLLATE evil)",
            "CREATE INDEX i ON t (a) WHERE a = 'x",
        ] {
            assert!(IndexDef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quotes_are_escaped_when_printed() {
        let d = IndexDef::parse("CREATE INDEX i ON t (a) WHERE a != 'it''s'").unwrap();
        assert_eq!(
            d.create_sql("t"),
            "CREATE INDEX `i` ON `t` (`a`) WHERE `a` != 'it''s'"
        );
    }
}
