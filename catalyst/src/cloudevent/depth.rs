//! How deeply a JSON text nests, without parsing it: every consumer's parser has a limit
//! (`serde_json`'s is 128, Go's decoder stops at 10,000, Python's `json` at its recursion
//! limit), so an event nested past the common one is refused at the door instead of stored
//! for every reader to fail on.

/// The deepest an event may nest, the event object itself counting as one: what `serde_json`
/// accepts by default (its recursion limit of 128 allows 127 levels), so the fast path and
/// the SDK's path (`serde_json`) refuse exactly the same events.
pub(crate) const MAX_DEPTH: usize = 127;

/// Whether `json` nests arrays and objects more than `limit` deep (brackets inside strings
/// do not count). Linear in the length, constant memory; meant for text that is otherwise
/// valid JSON, and harmless on text that is not.
#[must_use]
pub(crate) fn deeper_than(json: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn counts_brackets_outside_strings() {
        assert!(!deeper_than(b"{}", 1));
        assert!(deeper_than(b"{\"a\":[]}", 1));
        assert!(!deeper_than(br#"{"a":"[[[[{{{{"}"#, 1));
        assert!(!deeper_than(br#"{"a":"\"[[[["}"#, 1));
        assert!(deeper_than(br#"{"a":"\\",  "b":[[]]}"#, 2));
        assert!(!deeper_than(nested(127).as_bytes(), MAX_DEPTH));
        assert!(deeper_than(nested(128).as_bytes(), MAX_DEPTH));
        assert!(deeper_than(nested(100_000).as_bytes(), MAX_DEPTH));
    }

    proptest! {
        /// The scan agrees with `serde_json`'s own limit on every depth around it.
        #[test]
        fn agrees_with_serde_json(depth in 1usize..300, object in any::<bool>()) {
            let text = if object {
                let mut t = String::new();
                for _ in 0..depth { t.push_str("{\"k\":"); }
                t.push('1');
                for _ in 0..depth { t.push('}'); }
                t
            } else {
                nested(depth)
            };
            let serde_ok = serde_json::from_str::<serde_json::Value>(&text).is_ok();
            prop_assert_eq!(!deeper_than(text.as_bytes(), MAX_DEPTH), serde_ok, "depth {}", depth);
        }
    }
}
