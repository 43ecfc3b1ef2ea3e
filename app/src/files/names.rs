//! Stored file names as PocketBase makes them: `{snake_name}_{10 random [a-z0-9]}{.ext}`.

use crate::schema::ids;

fn snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    let mut prev_lower = false;
    for ch in s.chars() {
        if ch.is_ascii_alphanumeric() {
            if ch.is_ascii_uppercase() && prev_lower && !prev_sep {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
            prev_sep = false;
            prev_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
        } else if !prev_sep {
            out.push('_');
            prev_sep = true;
            prev_lower = false;
        }
    }
    out.trim_matches('_').to_string()
}

/// A new stored name for an uploaded file.
pub fn stored_name(original: &str) -> String {
    // Only the last path segment of what the client sent counts.
    let base = original.rsplit(['/', '\\']).next().unwrap_or("");
    let (stem, ext) = match base.rfind('.') {
        Some(i) if i > 0 => (&base[..i], &base[i..]),
        _ => (base, ""),
    };
    let ext: String = ext
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .take(20)
        .collect::<String>()
        .to_ascii_lowercase();
    let ext = if ext == "." { String::new() } else { ext };
    let mut name = snake(stem);
    if name.len() < 3 {
        name.push_str(&ids::random_id(10));
    } else if name.len() > 100 {
        name.truncate(100);
    }
    format!("{name}_{}{ext}", ids::random_id(10))
}

/// Whether a name could have been made by [`stored_name`] (checked before a name from a
/// request is used as a storage key).
pub fn is_valid_stored_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 160
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_pocketbase() {
        let re = regex::Regex::new(r"^hello_world_[a-z0-9]{10}\.txt$").unwrap();
        assert!(
            re.is_match(&stored_name("Hello World.TXT")),
            "{}",
            stored_name("Hello World.TXT")
        );
        let short = stored_name("a.txt");
        assert!(
            regex::Regex::new(r"^a[a-z0-9]{10}_[a-z0-9]{10}\.txt$")
                .unwrap()
                .is_match(&short),
            "{short}"
        );
        let evil = stored_name("../../etc/passwd");
        assert!(is_valid_stored_name(&evil), "{evil}");
        assert!(evil.starts_with("passwd_"));
        assert!(is_valid_stored_name(&stored_name("x.tar.gz")));
        for bad in ["../x", "a/b", ".hidden", "", "a\\b", "a..b"] {
            assert!(!is_valid_stored_name(bad), "{bad}");
        }
    }
}
