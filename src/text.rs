//! Text a client chose, cut to a byte budget before it is repeated back (a close reason, an
//! error message), without splitting a character.

/// The longest prefix of `s` that fits in `max_bytes` and ends at a character boundary.
pub fn cut(s: &str, max_bytes: usize) -> &str {
    let mut end = s.len().min(max_bytes);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_a_character_boundary() {
        assert_eq!(cut("hello", 10), "hello");
        assert_eq!(cut("hello", 3), "hel");
        assert_eq!(cut("ééé", 3), "é");
        assert_eq!(cut("😀", 3), "");
    }
}
