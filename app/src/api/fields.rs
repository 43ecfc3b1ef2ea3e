//! The `fields` query parameter: `fields=id,title,expand.author.name,*,body:excerpt(200,true)`.
//! Paths pick keys at each level (`*` keeps every key of its level), `expand.x.y` reaches into
//! expanded records, and `:excerpt(max, ellipsis?)` turns a text value into a plain-text
//! excerpt. Arrays are picked element by element.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

#[derive(Debug, Default, Clone, PartialEq)]
struct Node {
    all: bool,
    children: BTreeMap<String, Node>,
    excerpt: Option<(usize, bool)>,
}

fn parse_excerpt(s: &str) -> Option<(usize, bool)> {
    let inner = s.strip_prefix("excerpt(")?.strip_suffix(')')?;
    let mut args = inner.split(',').map(str::trim);
    let max = args.next()?.parse::<usize>().ok()?;
    let ellipsis = match args.next() {
        None => false,
        Some(b) => matches!(b, "true" | "1" | "t" | "T" | "TRUE" | "True"),
    };
    Some((max, ellipsis))
}

/// Splits on commas that are not inside parentheses.
fn split_top(spec: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, ch) in spec.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth <= 0 => {
                out.push(&spec[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&spec[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

fn build(spec: &str) -> Node {
    let mut root = Node::default();
    for item in split_top(spec) {
        let (path, modifier) = match item.split_once(':') {
            Some((p, m)) => (p, parse_excerpt(m)),
            None => (item, None),
        };
        let mut node = &mut root;
        let segments: Vec<&str> = path.split('.').collect();
        for (i, seg) in segments.iter().enumerate() {
            if *seg == "*" {
                node.all = true;
                break;
            }
            node = node.children.entry((*seg).to_string()).or_default();
            if i == segments.len() - 1 {
                node.all = true;
                node.excerpt = modifier;
            }
        }
    }
    root
}

/// Strips HTML tags and collapses whitespace, then cuts to `max` characters.
pub fn excerpt(html: &str, max: usize, ellipsis: bool) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if !in_tag => text.push(ch),
            _ => {}
        }
    }
    let plain = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if plain.chars().count() <= max {
        return plain;
    }
    let mut cut: String = plain.chars().take(max).collect();
    cut = cut.trim_end().to_string();
    if ellipsis {
        cut.push_str("...");
    }
    cut
}

fn apply(node: &Node, v: Value) -> Value {
    if let Some((max, ellipsis)) = node.excerpt
        && let Value::String(s) = &v
    {
        return Value::String(excerpt(s, max, ellipsis));
    }
    match v {
        Value::Array(items) => Value::Array(items.into_iter().map(|i| apply(node, i)).collect()),
        Value::Object(m) => {
            if node.children.is_empty() {
                return if node.all {
                    Value::Object(m)
                } else {
                    Value::Object(Map::new())
                };
            }
            let mut out = Map::new();
            for (k, val) in m {
                match node.children.get(&k) {
                    Some(child) => {
                        out.insert(k, apply(child, val));
                    }
                    None if node.all => {
                        out.insert(k, val);
                    }
                    None => {}
                }
            }
            Value::Object(out)
        }
        other => other,
    }
}

/// Applies a `fields` spec to one response object (no spec: unchanged).
pub fn pick(v: Value, fields: Option<&str>) -> Value {
    match fields.map(str::trim).filter(|s| !s.is_empty()) {
        None => v,
        Some(spec) => apply(&build(spec), v),
    }
}

/// Applies [`pick`] to each item of a list.
pub fn pick_all(items: Vec<Value>, fields: Option<&str>) -> Vec<Value> {
    match fields.map(str::trim).filter(|s| !s.is_empty()) {
        None => items,
        Some(spec) => {
            let node = build(spec);
            items.into_iter().map(|i| apply(&node, i)).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_keys_and_nested_expand() {
        let v =
            json!({"a":1,"b":2,"expand":{"rel":{"name":"x","age":3},"many":[{"name":"y","z":1}]}});
        assert_eq!(pick(v.clone(), Some("a")), json!({"a":1}));
        assert_eq!(pick(v.clone(), Some("*")), v);
        assert_eq!(pick(v.clone(), None), v);
        assert_eq!(
            pick(v.clone(), Some("a,expand.rel.name,expand.many.z")),
            json!({"a":1,"expand":{"rel":{"name":"x"},"many":[{"z":1}]}})
        );
        assert_eq!(
            pick(v, Some("*,expand.rel.age")),
            json!({"a":1,"b":2,"expand":{"rel":{"age":3}}})
        );
    }

    #[test]
    fn excerpt_strips_html_and_cuts() {
        let v = json!({"body":"<p>Hello <b>big</b>   world</p>"});
        assert_eq!(
            pick(v.clone(), Some("body:excerpt(9,true)")),
            json!({"body":"Hello big..."})
        );
        assert_eq!(
            pick(v.clone(), Some("body:excerpt(100)")),
            json!({"body":"Hello big world"})
        );
        assert_eq!(
            pick(v, Some("body:excerpt(5,false)")),
            json!({"body":"Hello"})
        );
    }
}
