//! The spawner's node-name sanitizer and de-duplicator (`spawner::sanitize_node_name`, its
//! owned-line twin `spawner::into_node_name`, `spawner::UniqueNames`), fed fuzzer lines.
//!
//! Input: 1 byte of `max_chars`, then lines separated by `\n` (lossy UTF-8).
//! Invariants: a sanitized name is a valid Godot node name (non-empty, none of `. : @ / " %`, no
//! control characters), has no surrounding whitespace and at most `max_chars` characters; it is
//! refused only when the line is blank or `max_chars` is 0. Unique names never repeat one already
//! taken and keep the base's text before its trailing number. `into_node_name` gives what
//! `sanitize_node_name` gives.
#![no_main]

use std::collections::HashSet;

use async_net_core::spawner::{NameError, UniqueNames, into_node_name, sanitize_node_name};
use libfuzzer_sys::fuzz_target;

/// Godot's `String::get_invalid_node_name_characters()`.
const GODOT_INVALID: [char; 6] = ['.', ':', '@', '/', '"', '%'];

fuzz_target!(|data: &[u8]| {
    let [max, rest @ ..] = data else { return };
    let max = usize::from(*max);
    let text = String::from_utf8_lossy(rest);
    let mut taken = HashSet::new();
    let mut names = UniqueNames::default();
    for line in text.split('\n') {
        let sanitized = sanitize_node_name(line, max);
        assert_eq!(into_node_name(line.to_owned(), max), sanitized, "{line:?}");
        match sanitized {
            Ok(name) => {
                assert!(!name.is_empty());
                assert!(name.chars().count() <= max, "{name:?} is longer than {max} chars");
                assert!(!name.chars().any(|c| GODOT_INVALID.contains(&c) || c.is_control()), "{name:?}");
                assert_eq!(name, name.trim(), "surrounding whitespace kept");
                let unique = names.name(&name, |n| taken.contains(n));
                assert!(!taken.contains(&unique), "{unique:?} handed out twice");
                let prefix = name.trim_end_matches(|c: char| c.is_ascii_digit());
                assert!(unique.starts_with(prefix), "{unique:?} does not start with {prefix:?}");
                assert!(!unique.chars().any(|c| GODOT_INVALID.contains(&c) || c.is_control()));
                taken.insert(unique);
            }
            Err(NameError::Empty) => assert!(max == 0 || line.trim().is_empty(), "{line:?} refused"),
        }
    }
});
