//! Turning a client's line into a valid, unique Godot node name.
//!
//! The server hands the raw line to its handler; the glue calls these two
//! functions so that naming stays testable without the engine.

use std::fmt;

/// Characters Godot refuses in node names (`String::validate_node_name`).
const FORBIDDEN: [char; 6] = ['.', ':', '@', '/', '"', '%'];

/// Why a line cannot name a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// Nothing is left after trimming whitespace.
    Empty,
}

impl fmt::Display for NameError {
    /// The text goes straight into the `ERR <reason>` reply.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("empty name"),
        }
    }
}

impl std::error::Error for NameError {}

/// Makes `line` a valid node name: trims whitespace, replaces the characters
/// Godot forbids (`. : @ / " %`) and control characters with `_`, and keeps
/// at most `max_chars` characters (cut on a char boundary, trailing
/// whitespace then trimmed again). An empty result is refused.
pub fn sanitize_node_name(line: &str, max_chars: usize) -> Result<String, NameError> {
    let mut name: String = line
        .trim()
        .chars()
        .take(max_chars)
        .map(|c| if FORBIDDEN.contains(&c) || c.is_control() { '_' } else { c })
        .collect();
    // The cut may have landed just after inner whitespace.
    name.truncate(name.trim_end().len());
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    Ok(name)
}

/// Returns `base` if `exists` says it is free, else `base2`, `base3`, ...
/// (Godot's readable-name style), the first one that is free.
///
/// The suffix may push the name a few characters past the sanitizer's cap;
/// Godot has no length limit, the cap only keeps hostile lines short.
pub fn unique_name(base: &str, exists: impl Fn(&str) -> bool) -> String {
    if !exists(base) {
        return base.to_owned();
    }
    // One buffer reused for every candidate: the prefix stays, digits change.
    let mut candidate = String::with_capacity(base.len() + 4);
    (2u64..)
        .find_map(|n| {
            candidate.clear();
            candidate.push_str(base);
            candidate.push_str(&n.to_string());
            (!exists(&candidate)).then(|| candidate.clone())
        })
        .expect("u64 suffixes cannot run out")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn plain_names_pass_through() {
        assert_eq!(sanitize_node_name("Bob", 64).unwrap(), "Bob");
        assert_eq!(sanitize_node_name("  Alice Smith \t", 64).unwrap(), "Alice Smith");
    }

    #[test]
    fn forbidden_characters_become_underscores() {
        assert_eq!(sanitize_node_name(r#"a.b:c@d/e"f%g"#, 64).unwrap(), "a_b_c_d_e_f_g");
        assert_eq!(sanitize_node_name("../../root", 64).unwrap(), "______root");
        assert_eq!(sanitize_node_name("...", 64).unwrap(), "___");
    }

    #[test]
    fn control_characters_become_underscores() {
        assert_eq!(sanitize_node_name("a\u{0}b\u{7}c\rd\u{1b}[31m", 64).unwrap(), "a_b_c_d_[31m");
        assert_eq!(sanitize_node_name("x\u{85}y", 64).unwrap(), "x_y");
    }

    #[test]
    fn unicode_is_kept_and_capped_on_char_boundaries() {
        assert_eq!(sanitize_node_name("Zoë 🐉", 64).unwrap(), "Zoë 🐉");
        // 3 chars of 4 bytes each: a byte cut at 5 would split the emoji.
        assert_eq!(sanitize_node_name("🐉🐉🐉🐉", 3).unwrap(), "🐉🐉🐉");
        assert_eq!(sanitize_node_name("日本語のなまえ", 2).unwrap(), "日本");
    }

    #[test]
    fn length_is_capped() {
        let long = "x".repeat(10_000);
        assert_eq!(sanitize_node_name(&long, 64).unwrap().len(), 64);
        // The cut leaves no trailing whitespace.
        assert_eq!(sanitize_node_name("ab   cd", 4).unwrap(), "ab");
    }

    #[test]
    fn empty_names_are_refused() {
        assert_eq!(sanitize_node_name("", 64), Err(NameError::Empty));
        assert_eq!(sanitize_node_name(" \t ", 64), Err(NameError::Empty));
        assert_eq!(sanitize_node_name("abc", 0), Err(NameError::Empty));
        assert_eq!(NameError::Empty.to_string(), "empty name");
    }

    #[test]
    fn unique_name_appends_numbers_from_two() {
        let mut taken: HashSet<String> = HashSet::new();
        let mut next = |base: &str| {
            let name = unique_name(base, |n| taken.contains(n));
            taken.insert(name.clone());
            name
        };
        assert_eq!(next("Bob"), "Bob");
        assert_eq!(next("Bob"), "Bob2");
        assert_eq!(next("Bob"), "Bob3");
        assert_eq!(next("Alice"), "Alice");
        // A name that already ends in digits still just gets a suffix.
        assert_eq!(next("Bob2"), "Bob22");
    }

    #[test]
    fn unique_name_skips_holes_in_order() {
        let taken = ["N", "N2", "N4"];
        assert_eq!(unique_name("N", |n| taken.contains(&n)), "N3");
    }
}
