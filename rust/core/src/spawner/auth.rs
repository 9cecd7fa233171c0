//! Constant-time token comparison for the spawner's optional shared secret.

use std::hint::black_box;

/// Compares an untrusted `input` with a `secret` in time that depends only
/// on `input.len()`: no early exit on the first differing byte, and none on a
/// length mismatch, so a client cannot learn the secret (or its length) one
/// byte at a time by timing replies.
pub fn ct_eq(input: &[u8], secret: &[u8]) -> bool {
    // Fold every difference into one accumulator; `|` never short-circuits.
    let mut diff = u8::from(input.len() != secret.len());
    if secret.is_empty() {
        // Still walk the input so timing matches the non-empty case.
        for &b in input {
            diff |= black_box(b) | 1;
        }
    } else {
        // Cycling through the secret keeps the walk as long as the input
        // without branching on where the secret ends.
        for (i, &b) in input.iter().enumerate() {
            diff |= b ^ secret[i % secret.len()];
        }
    }
    black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::ct_eq;

    #[test]
    fn equal_inputs_match() {
        assert!(ct_eq(b"s3cret", b"s3cret"));
        assert!(ct_eq(b"", b""));
        assert!(ct_eq("ünïcødé".as_bytes(), "ünïcødé".as_bytes()));
    }

    #[test]
    fn any_difference_fails() {
        assert!(!ct_eq(b"s3cret", b"s3creT"));
        assert!(!ct_eq(b"X3cret", b"s3cret"));
        assert!(!ct_eq(b"", b"s3cret"));
        assert!(!ct_eq(b"s3cret", b""));
    }

    #[test]
    fn length_mismatch_fails_even_with_matching_prefix_or_cycle() {
        assert!(!ct_eq(b"s3cre", b"s3cret"));
        assert!(!ct_eq(b"s3crets", b"s3cret"));
        // The input repeats the secret exactly: the cyclic walk sees no byte
        // difference, only the length flag catches it.
        assert!(!ct_eq(b"abab", b"ab"));
    }
}
