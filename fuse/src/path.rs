//! The request paths the ingress routes: a path that different servers could read as different
//! paths is refused with 400 `invalid_path`, before routing, rather than normalized.
//!
//! Refused: a dot-segment (`.` or `..`, also percent-encoded as `%2e`, and with path
//! parameters after it, as Tomcat reads `..;x`), an encoded slash or backslash (`%2F`,
//! `%5C`, either case) and a backslash. Why refuse rather than normalize: Fuse matches the
//! path as it is, and an upstream may or may not decode `%2F`, turn `\` into `/` or resolve
//! `..`; whichever of those Fuse did, some upstream would do otherwise, and the path it serves
//! would not be the one that was routed (`/api/public/../internal` routed by `/api/public`
//! and served as `/api/internal`). Browsers and HTTP libraries resolve dot-segments before
//! sending (RFC 3986 §5.2.4), so the refusal costs well-behaved clients nothing; a service
//! that needs `/` inside a segment can take it in the query.

use std::fmt;

/// Why a path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRefusal {
    /// A `.` or `..` segment, plain or percent-encoded.
    DotSegment,
    /// `%2F` or `%5C`: a slash or backslash inside a segment.
    EncodedSlash,
    /// A backslash, which some servers read as a slash.
    Backslash,
}

impl fmt::Display for PathRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DotSegment => "a '.' or '..' segment (plain or percent-encoded)",
            Self::EncodedSlash => "an encoded slash or backslash (%2F, %5C)",
            Self::Backslash => "a backslash",
        })
    }
}

/// Whether the ingress routes `path` (a request's path, without its query).
///
/// # Errors
/// The [`PathRefusal`].
pub fn check_path(path: &str) -> Result<(), PathRefusal> {
    let bytes = path.as_bytes();
    if bytes.contains(&b'\\') {
        return Err(PathRefusal::Backslash);
    }
    for (i, _) in path.match_indices('%') {
        if let Some(hex) = bytes.get(i + 1..i + 3)
            && (hex.eq_ignore_ascii_case(b"2f") || hex.eq_ignore_ascii_case(b"5c"))
        {
            return Err(PathRefusal::EncodedSlash);
        }
    }
    if path.split('/').any(is_dot_segment) {
        return Err(PathRefusal::DotSegment);
    }
    Ok(())
}

/// Whether a segment reads as `.` or `..` once `%2e` is decoded and any `;parameters` after
/// it are dropped.
fn is_dot_segment(segment: &str) -> bool {
    let name = segment.split(';').next().unwrap_or(segment);
    // At most two dots, each one byte or three (`%2e`): anything longer is not a dot-segment.
    if name.is_empty() || name.len() > 6 {
        return false;
    }
    let mut rest = name.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        if rest[0] == b'.' {
            rest = &rest[1..];
        } else if rest.len() >= 3 && rest[0] == b'%' && rest[1..3].eq_ignore_ascii_case(b"2e") {
            rest = &rest[3..];
        } else {
            return false;
        }
        dots += 1;
    }
    dots <= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::prefix_matches;
    use proptest::prelude::*;

    #[test]
    fn ambiguous_paths_are_refused_and_plain_ones_pass() {
        for (path, why) in [
            ("/api/public/../internal", PathRefusal::DotSegment),
            ("/api/public/./x", PathRefusal::DotSegment),
            ("/api/public/..", PathRefusal::DotSegment),
            ("/api/public/%2e%2e/internal", PathRefusal::DotSegment),
            ("/api/public/.%2E/internal", PathRefusal::DotSegment),
            (
                "/api/public/..;jsessionid=1/internal",
                PathRefusal::DotSegment,
            ),
            ("/api/public%2F..%2Finternal", PathRefusal::EncodedSlash),
            ("/api/public%2f..%2finternal", PathRefusal::EncodedSlash),
            ("/api/public%5C..%5cinternal", PathRefusal::EncodedSlash),
            ("/api/public\\..\\internal", PathRefusal::Backslash),
        ] {
            assert_eq!(check_path(path), Err(why), "{path}");
        }
        for path in [
            "/",
            "/api/public/x",
            "/api/...",
            "/api/.well-known/x",
            "/api/..x",
            "/a%20b/%2e%2e%2e",
            "/api/v1.2/file.tar.gz",
            "/a;b=1/c",
            "/trailing%",
            "/a%2",
        ] {
            assert_eq!(check_path(path), Ok(()), "{path}");
        }
    }

    /// How the most eager upstream could read a path: every escape decoded, `\` as `/`,
    /// `;parameters` dropped, then dot-segments removed (RFC 3986 §5.2.4).
    fn eager(path: &str) -> String {
        let mut decoded = Vec::new();
        let bytes = path.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'%', Some(b)) => {
                    decoded.push(b);
                    i += 3;
                }
                (b, _) => {
                    decoded.push(b);
                    i += 1;
                }
            }
        }
        let text = String::from_utf8_lossy(&decoded).replace('\\', "/");
        let mut out: Vec<&str> = Vec::new();
        for segment in text.split('/').skip(1) {
            match segment.split(';').next().unwrap_or("") {
                "." => {}
                ".." => {
                    out.pop();
                }
                s => out.push(s),
            }
        }
        format!("/{}", out.join("/"))
    }

    proptest! {
        /// A path Fuse routes by a prefix stays under that prefix however eagerly the
        /// upstream normalizes it: no routed path escapes its route.
        #[test]
        fn an_accepted_path_stays_under_its_prefix_after_any_normalization(
            tail in proptest::collection::vec(
                prop_oneof![
                    Just("/"), Just("."), Just(".."), Just("%2e"), Just("%2E"), Just("%2f"),
                    Just("%5C"), Just("\\"), Just(";x"), Just("a"), Just("b"), Just("%41"),
                ],
                0..10,
            ),
        ) {
            let path = format!("/api/public/{}", tail.concat());
            if check_path(&path).is_ok() {
                prop_assert!(prefix_matches("/api/public", &path));
                let seen = eager(&path);
                prop_assert!(prefix_matches("/api/public", &seen), "{} read as {}", path, seen);
            }
        }
    }
}
