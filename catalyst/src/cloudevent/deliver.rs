//! What consumers receive: the stored event with the extensions Draft adds on delivery.

/// The text a consumer receives: the stored event with `draftchannel` and `draftoffset`
/// added. Built once per event and shared by every consumer of the live feed.
#[must_use]
pub fn delivered(channel: &str, offset: u64, stored: &[u8]) -> String {
    use std::fmt::Write as _;
    // Stored events were valid UTF-8 when produced; `from_utf8` checks that much faster than
    // `from_utf8_lossy` (measured: the lossy check was ~10% of the node's time in a replay).
    let stored = match std::str::from_utf8(stored) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(stored),
    };
    let rest = stored
        .trim()
        .strip_prefix('{')
        .unwrap_or(&stored)
        .trim_start();
    // Channel names are `[a-z0-9_][a-z0-9._-]*`: nothing to escape.
    let mut out = String::with_capacity(rest.len() + channel.len() + 48);
    out.push_str("{\"draftchannel\":\"");
    out.push_str(channel);
    out.push_str("\",\"draftoffset\":");
    let _ = write!(out, "{offset},");
    out.push_str(rest);
    out
}
