//! Stream names and subjects from partition names: pure, and one to one.
//!
//! A JetStream stream name may not hold `.`, `*`, `>`, whitespace or path separators, and has
//! at most 255 characters; a partition name is `[a-z0-9_][a-z0-9._-]{0,127}`. The stream of a
//! partition is `DRAFT_` and the partition name with `_` written `__` and `.` written `_o`, so
//! distinct partitions get distinct streams and the name reads back. A name that would be
//! longer than [`MAX_STREAM_NAME`] (only partitions with very many `_` or `.`) keeps a prefix
//! and ends in `_h` and 32 hex digits of the name's SHA-256. Either way the partition's name is
//! also kept in the stream's metadata under [`PARTITION_KEY`], which is what Draft trusts when
//! it lists partitions.

use sha2::{Digest, Sha256};

/// The stream metadata key holding the partition's own name.
pub const PARTITION_KEY: &str = "draft.partition";

/// The prefix of every stream Draft creates.
pub const STREAM_PREFIX: &str = "DRAFT_";

/// The longest stream name JetStream takes.
pub const MAX_STREAM_NAME: usize = 255;

/// The prefix of every subject Draft publishes to.
pub const SUBJECT_PREFIX: &str = "draft.log.";

/// The stream that holds `partition`.
///
/// # Examples
/// ```
/// use draft_log_jetstream::stream_name;
/// assert_eq!(stream_name("orders.v1"), "DRAFT_orders_ov1");
/// assert_eq!(stream_name("_draft"), "DRAFT___draft");
/// ```
#[must_use]
pub fn stream_name(partition: &str) -> String {
    let mut name = String::with_capacity(STREAM_PREFIX.len() + partition.len() * 2);
    name.push_str(STREAM_PREFIX);
    for c in partition.chars() {
        match c {
            '_' => name.push_str("__"),
            '.' => name.push_str("_o"),
            c => name.push(c),
        }
    }
    if name.len() <= MAX_STREAM_NAME {
        return name;
    }
    let digest = Sha256::digest(partition.as_bytes());
    let hex: String = digest[..16]
        .iter()
        .fold(String::with_capacity(32), |mut hex, b| {
            use std::fmt::Write;
            let _ = write!(hex, "{b:02x}");
            hex
        });
    // `_h` cannot end a full escaped name (there `_` is always followed by `_` or `o`), and a
    // cut one may end in a lone `_`: drop it so the suffix stays unambiguous.
    let keep = MAX_STREAM_NAME - 2 - hex.len();
    let mut cut = name[..keep].to_owned();
    if cut.ends_with('_') && cut.chars().rev().take_while(|&c| c == '_').count() % 2 == 1 {
        cut.pop();
    }
    format!("{cut}_h{hex}")
}

/// The one subject of `stream` (a stream name has no `.`, so it is one token).
#[must_use]
pub fn subject(stream: &str) -> String {
    format!("{SUBJECT_PREFIX}{stream}")
}

/// Whether `name` is a valid JetStream stream name.
#[must_use]
pub fn is_valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_STREAM_NAME
        && !name
            .chars()
            .any(|c| matches!(c, '.' | '*' | '>' | '/' | '\\') || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_valid_distinct_and_readable() {
        let partitions = [
            "a",
            "a.b",
            "a_b",
            "a_ob",
            "a._b",
            "a__b",
            "a.o",
            "_draft",
            "_groups",
            "orders",
            "orders-v1",
            "0",
        ];
        let streams: HashSet<String> = partitions.iter().map(|p| stream_name(p)).collect();
        assert_eq!(streams.len(), partitions.len(), "one to one: {streams:?}");
        for s in &streams {
            assert!(is_valid_stream_name(s), "{s}");
            assert!(is_valid_stream_name(&subject(s).replace('.', "")));
            assert_eq!(
                subject(s).matches('.').count(),
                2,
                "one token after the prefix"
            );
        }
        assert_eq!(stream_name("a.b"), "DRAFT_a_ob");
        assert_eq!(stream_name("a_ob"), "DRAFT_a__ob");
    }

    #[test]
    fn the_longest_names_are_cut_and_hashed_within_the_limit() {
        let long_a = "_".repeat(128);
        let long_b = format!("{}a", "_".repeat(127));
        let long_c = ".".repeat(127) + "a";
        let names: HashSet<String> = [&long_a, &long_b, &long_c, &"a".repeat(128)]
            .iter()
            .map(|p| stream_name(p))
            .collect();
        assert_eq!(names.len(), 4);
        for n in &names {
            assert!(is_valid_stream_name(n), "{n} ({} chars)", n.len());
        }
        assert_eq!(
            stream_name(&"a".repeat(128)).len(),
            6 + 128,
            "short enough: not hashed"
        );
        assert!(stream_name(&long_a).contains("_h"));
    }

    #[test]
    fn bad_stream_names_are_recognised() {
        for bad in ["", "a.b", "a*", "a>", "a b", "a/b", &"x".repeat(256)] {
            assert!(!is_valid_stream_name(bad), "{bad:?}");
        }
    }
}
