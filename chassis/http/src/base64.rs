//! Bytes in JSON bodies: standard base64 with padding (RFC 4648 §4), as the CloudEvents JSON
//! format's `data_base64` and Blueprint's values use it.

/// `bytes` as standard base64 with padding.
#[must_use]
pub fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pads() {
        assert_eq!(super::base64_encode(b"ab"), "YWI=");
        assert_eq!(super::base64_encode(b""), "");
    }
}
