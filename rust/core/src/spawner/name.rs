//! Turning a client's line into a valid, unique Godot node name.
//!
//! The server hands the raw line to its handler; the glue calls these two
//! functions so that naming stays testable without the engine.

use std::{collections::HashMap, fmt::Write};

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

/// [`sanitize_node_name`] for a line the caller owns: one that is a valid
/// name already (the usual case) comes back as it is, without a copy.
pub fn into_node_name(line: String, max_chars: usize) -> Result<String, NameError> {
    let valid = !line.is_empty()
        && line.trim().len() == line.len()
        && !line.chars().any(|c| FORBIDDEN.contains(&c) || c.is_control())
        && (line.len() <= max_chars || line.chars().count() <= max_chars);
    if valid { Ok(line) } else { sanitize_node_name(&line, max_chars) }
}

/// Most name prefixes [`UniqueNames`] remembers; past this it starts over,
/// so a client inventing endless names cannot grow it without bound.
const MAX_REMEMBERED_PREFIXES: usize = 4096;

/// Makes names unique the way Godot's editor does: `Bob` → `Bob2` → `Bob3`,
/// and a name that already ends in a number counts on from it (`Zoë_1` →
/// `Zoë_2`). It remembers the next number per prefix, so a flood of one name
/// costs one or two `exists` checks per line instead of a scan from 2.
#[derive(Debug, Default)]
pub struct UniqueNames {
    next: HashMap<String, u64>,
}

impl UniqueNames {
    /// `base` if `exists` says it is free, else the first free numbered form.
    ///
    /// The suffix may push the name a few characters past the sanitizer's cap;
    /// Godot has no length limit, the cap only keeps hostile lines short.
    pub fn name(&mut self, base: &str, exists: impl Fn(&str) -> bool) -> String {
        if !exists(base) {
            return base.to_owned();
        }
        let digits_at = base.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (prefix, first) = match base[digits_at..].parse::<u64>() {
            Ok(n) => (&base[..digits_at], n.saturating_add(1)),
            Err(_) => (base, 2), // no trailing number, or one too long to count on from
        };
        let start = self.next.get(prefix).copied().unwrap_or(first).max(first);
        let mut candidate = String::with_capacity(prefix.len() + 20);
        for n in start..=u64::MAX {
            candidate.clear();
            let _ = write!(candidate, "{prefix}{n}");
            if !exists(&candidate) {
                if self.next.len() >= MAX_REMEMBERED_PREFIXES && !self.next.contains_key(prefix) {
                    self.next.clear();
                }
                self.next.insert(prefix.to_owned(), n.saturating_add(1));
                return candidate;
            }
        }
        unreachable!("u64 suffixes cannot run out")
    }
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
    fn an_owned_line_gets_the_same_name_and_a_valid_one_is_not_copied() {
        let lines = [
            "Bob",
            "  Alice Smith \t",
            "a.b:c@d/e\"f%g",
            "...",
            "a\u{0}b\u{7}c\rd",
            "x\u{85}y",
            "Zoë 🐉",
            "🐉🐉🐉🐉",
            "日本語のなまえ",
            "ab   cd",
            "",
            " \t ",
            "abc",
            "exactly4",
        ];
        for line in lines {
            for max in [0, 2, 3, 4, 8, 64] {
                assert_eq!(into_node_name(line.to_owned(), max), sanitize_node_name(line, max), "{line:?} {max}");
            }
        }
        let line = String::from("Valid Name");
        let at = line.as_ptr();
        let name = into_node_name(line, 64).unwrap();
        assert_eq!(name.as_ptr(), at);
    }

    /// Hands out names from `base`s, remembering what is taken.
    fn namer() -> impl FnMut(&str) -> String {
        let mut taken: HashSet<String> = HashSet::new();
        let mut names = UniqueNames::default();
        move |base: &str| {
            let name = names.name(base, |n| taken.contains(n));
            taken.insert(name.clone());
            name
        }
    }

    #[test]
    fn duplicates_are_numbered_from_two_like_godot() {
        let mut next = namer();
        assert_eq!(next("Bob"), "Bob");
        assert_eq!(next("Bob"), "Bob2");
        assert_eq!(next("Bob"), "Bob3");
        assert_eq!(next("Alice"), "Alice");
        // A name ending in a number counts on from it.
        assert_eq!(next("Bob3"), "Bob4");
        assert_eq!(next("Zoë_1"), "Zoë_1");
        assert_eq!(next("Zoë_1"), "Zoë_2");
        assert_eq!(next("7"), "7");
        assert_eq!(next("7"), "8");
    }

    #[test]
    fn numbers_too_long_to_count_get_a_suffix_instead() {
        let mut next = namer();
        let long = "X99999999999999999999999";
        assert_eq!(next(long), long);
        assert_eq!(next(long), format!("{long}2"));
    }

    #[test]
    fn holes_are_filled_in_order_the_first_time() {
        let taken = ["N", "N2", "N4"];
        assert_eq!(UniqueNames::default().name("N", |n| taken.contains(&n)), "N3");
    }

    #[test]
    fn a_flood_of_one_name_checks_few_names_per_line() {
        let taken = std::cell::RefCell::new(HashSet::new());
        let checks = std::cell::Cell::new(0u64);
        let mut names = UniqueNames::default();
        for _ in 0..10_000 {
            let name = names.name("Bob", |n| {
                checks.set(checks.get() + 1);
                taken.borrow().contains(n)
            });
            taken.borrow_mut().insert(name);
        }
        assert!(checks.get() <= 2 * 10_000, "{} checks for 10 000 lines", checks.get());
    }

    #[test]
    fn remembered_prefixes_are_bounded() {
        let mut names = UniqueNames::default();
        for i in 0..(3 * MAX_REMEMBERED_PREFIXES) {
            // The base is taken; its numbered forms are free.
            names.name(&format!("p{i}x"), |n| n.ends_with('x'));
        }
        assert!(names.next.len() <= MAX_REMEMBERED_PREFIXES);
    }
}
