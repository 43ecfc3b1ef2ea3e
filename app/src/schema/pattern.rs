//! Generation of random strings from the simple regular expressions PocketBase uses in
//! `autogeneratePattern` (e.g. `[a-z0-9]{15}`): literals, character classes with ranges, and
//! `{n}` / `{n,m}` quantifiers. Anything else is rejected when the collection is saved.

use rand::Rng;

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Chars {
        set: Vec<char>,
        min: usize,
        max: usize,
    },
}

/// A parsed generator pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Generator {
    pieces: Vec<Piece>,
}

/// The pattern uses syntax the generator does not support.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unsupported generator pattern: {0}")]
pub struct PatternError(String);

const MAX_REPEAT: usize = 1000;

impl Generator {
    pub fn parse(pattern: &str) -> Result<Generator, PatternError> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut i = 0;
        let mut pieces = Vec::new();
        while i < chars.len() {
            let set = match chars[i] {
                '[' => {
                    let mut set = Vec::new();
                    i += 1;
                    while i < chars.len() && chars[i] != ']' {
                        let c = if chars[i] == '\\' && i + 1 < chars.len() {
                            i += 1;
                            chars[i]
                        } else {
                            chars[i]
                        };
                        if i + 2 < chars.len() && chars[i + 1] == '-' && chars[i + 2] != ']' {
                            let end = chars[i + 2];
                            if end < c {
                                return Err(PatternError(format!("bad range {c}-{end}")));
                            }
                            set.extend(c..=end);
                            i += 3;
                        } else {
                            set.push(c);
                            i += 1;
                        }
                    }
                    if i >= chars.len() {
                        return Err(PatternError("unclosed [".into()));
                    }
                    i += 1;
                    if set.is_empty() {
                        return Err(PatternError("empty class".into()));
                    }
                    set
                }
                '\\' if i + 1 < chars.len() => {
                    i += 2;
                    vec![chars[i - 1]]
                }
                c if "()|*+?.^$]{}\\".contains(c) => {
                    return Err(PatternError(format!("unsupported syntax {c:?}")));
                }
                c => {
                    i += 1;
                    vec![c]
                }
            };
            let (mut min, mut max) = (1, 1);
            if i < chars.len() && chars[i] == '{' {
                let close = chars[i..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or_else(|| PatternError("unclosed {".into()))?;
                let body: String = chars[i + 1..i + close].iter().collect();
                let parse = |s: &str| {
                    s.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n <= MAX_REPEAT)
                        .ok_or_else(|| PatternError(format!("bad quantifier {{{body}}}")))
                };
                match body.split_once(',') {
                    Some((a, b)) => {
                        min = parse(a)?;
                        max = parse(b)?;
                    }
                    None => {
                        min = parse(&body)?;
                        max = min;
                    }
                }
                if max < min {
                    return Err(PatternError(format!("bad quantifier {{{body}}}")));
                }
                i += close + 1;
            }
            pieces.push(Piece::Chars { set, min, max });
        }
        Ok(Generator { pieces })
    }

    pub fn generate(&self) -> String {
        let mut rng = rand::rng();
        let mut out = String::new();
        for Piece::Chars { set, min, max } in &self.pieces {
            let n = rng.random_range(*min..=*max);
            for _ in 0..n {
                out.push(set[rng.random_range(0..set.len())]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_matching_strings() {
        for (pat, re) in [
            ("[a-z0-9]{15}", "^[a-z0-9]{15}$"),
            ("[a-zA-Z0-9]{50}", "^[a-zA-Z0-9]{50}$"),
            ("inv_[0-9]{3,5}", "^inv_[0-9]{3,5}$"),
        ] {
            let g = Generator::parse(pat).unwrap();
            let re = regex::Regex::new(re).unwrap();
            for _ in 0..50 {
                let s = g.generate();
                assert!(re.is_match(&s), "{pat}: {s}");
            }
        }
    }

    #[test]
    fn rejects_unsupported() {
        for p in ["(a|b)", "a*", "[a-", "[z-a]", "a{5", "a{9999}", "[]"] {
            assert!(Generator::parse(p).is_err(), "{p}");
        }
    }
}
