//! Whitespace between JSON tokens, trimmed from structured events and batches before they are
//! read (by the fast path and by the SDK alike).

/// Whether `byte` is whitespace between JSON tokens (RFC 8259 §2: space, tab, line feed,
/// carriage return; unlike `u8::is_ascii_whitespace`, not form feed).
fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// The characters of JSON whitespace (see [`is_json_whitespace`]).
pub(super) const JSON_WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// `text` without leading or trailing JSON whitespace.
pub(super) fn trim_json_whitespace_str(text: &str) -> &str {
    text.trim_matches(JSON_WHITESPACE)
}

/// `bytes` without leading JSON whitespace.
pub(super) fn trim_json_whitespace_start(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_json_whitespace(b))
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// `bytes` without leading or trailing JSON whitespace.
pub(super) fn trim_json_whitespace(bytes: &[u8]) -> &[u8] {
    let rest = trim_json_whitespace_start(bytes);
    let end = rest
        .iter()
        .rposition(|&b| !is_json_whitespace(b))
        .map_or(0, |last| last + 1);
    &rest[..end]
}
