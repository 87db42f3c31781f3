//! The pre-scan: how deeply a document's text nests and how many tokens it has, found without
//! parsing it.
//!
//! async-graphql's parser (and every walk over the tree it builds) recurses once per level of
//! `{`, `[` and `(`. A 4 KB document of 2,000 nested lists overflows a worker thread's stack,
//! and a stack overflow aborts the whole process: no `catch_unwind` can stop it. So before
//! anything recursive sees a document, this loop (no recursion, no allocation, one pass)
//! refuses text that nests deeper than `GRAPHQL_MAX_NESTING` or holds more tokens than
//! `GRAPHQL_MAX_TOKENS` (which bounds every linear walk after it). Brackets inside strings,
//! block strings and comments do not count. The scan only has to be right about documents
//! that parse; for any other text, it may stop early or count roughly, and the parser then
//! says what is wrong.
use async_graphql::Pos;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An opening bracket at `pos` went one level past the limit.
    TooDeep { limit: usize, pos: Pos },
    /// The token at `pos` was one past the limit.
    TooManyTokens { limit: usize, pos: Pos },
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Self::TooDeep { limit, .. } => format!("the document nests deeper than {limit} levels"),
            Self::TooManyTokens { limit, .. } => {
                format!("the document has more than {limit} tokens")
            }
        }
    }

    pub fn pos(&self) -> Pos {
        match self {
            Self::TooDeep { pos, .. } | Self::TooManyTokens { pos, .. } => *pos,
        }
    }
}

/// Checks `text` against both limits, in one pass.
pub fn scan(text: &str, max_nesting: usize, max_tokens: usize) -> Result<(), Refusal> {
    let bytes = text.as_bytes();
    let (mut i, mut depth, mut tokens) = (0, 0usize, 0usize);
    while i < bytes.len() {
        let start = i;
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                i = line_end(bytes, i);
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => i = block_string_end(bytes, i + 3),
            b'"' => i = string_end(bytes, i + 1),
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > max_nesting {
                    return Err(Refusal::TooDeep {
                        limit: max_nesting,
                        pos: pos_at(text, start),
                    });
                }
                i += 1;
            }
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            // A name, a number, or `...`: one token each, however long.
            b if b.is_ascii_alphabetic() || b == b'_' => {
                i = run_end(bytes, i, |b| b.is_ascii_alphanumeric() || b == b'_');
            }
            b if b.is_ascii_digit() || b == b'-' => {
                i = run_end(bytes, i, |b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-')
                });
            }
            b'.' => i = run_end(bytes, i, |b| b == b'.'),
            // A character GraphQL does not have outside strings: one token, however many bytes.
            b if b >= 0x80 => i += utf8_len(b),
            // Other punctuators (`!`, `$`, `:`, `=`, `@`, `|`, `&`) and stray bytes.
            _ => i += 1,
        }
        tokens += 1;
        if tokens > max_tokens {
            return Err(Refusal::TooManyTokens {
                limit: max_tokens,
                pos: pos_at(text, start),
            });
        }
    }
    Ok(())
}

/// The length of the UTF-8 character whose first byte is `first`.
fn utf8_len(first: u8) -> usize {
    match first {
        0xF0.. => 4,
        0xE0.. => 3,
        _ => 2,
    }
}

/// Past the run of bytes from `from` (which belongs to it) that `part` accepts.
fn run_end(bytes: &[u8], from: usize, part: impl Fn(u8) -> bool) -> usize {
    bytes[from + 1..]
        .iter()
        .position(|&b| !part(b))
        .map_or(bytes.len(), |n| from + 1 + n)
}

fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map_or(bytes.len(), |n| from + n)
}

/// Past the closing quote of a string whose body starts at `from`. A string cannot span
/// lines: at a line end (or the end of the text) it is unterminated, and the parser says so.
fn string_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Past the closing `"""` of a block string whose body starts at `from` (`\"""` is escaped).
fn block_string_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\\\"\"\"") {
            i += 4;
        } else if bytes[i..].starts_with(b"\"\"\"") {
            return i + 3;
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// Line and column (both from 1, the column in characters) of byte `offset`, as the parser
/// reports positions. Only computed for a refusal. In text that is not GraphQL the scan can
/// stop inside a character (after an escape in a string, say): its start is reported.
fn pos_at(text: &str, mut offset: usize) -> Pos {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    Pos {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_ok(text: &str, max: usize) -> bool {
        scan(text, max, usize::MAX).is_ok()
    }

    #[test]
    fn every_kind_of_bracket_nests() {
        let query = "query($v: [[Int]]) { a(x: {y: [1]}) { b } }";
        // ( [ [ and { ( { [ and { {: the deepest is { ( { [ = 4.
        assert!(depth_ok(query, 4));
        assert!(!depth_ok(query, 3));
        for deep in ["[".repeat(5), "{".repeat(5), "(".repeat(5), "{[({[".into()] {
            assert!(depth_ok(&deep, 5), "{deep}");
            assert!(!depth_ok(&deep, 4), "{deep}");
        }
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let query = r#"{ a(s: "[[[[{{{{", t: """ {{{{ \""" [[[[ """) # ((((
                     b }"#;
        assert!(depth_ok(query, 2));
        assert!(depth_ok(r#"{ a(s: "\"[[[[") }"#, 2), "an escaped quote");
        // An unterminated string ends at its line; what follows still counts.
        assert!(!depth_ok("{ a(s: \"open\n[[[[[ ) }", 3));
    }

    #[test]
    fn closing_more_than_was_opened_does_not_underflow() {
        assert!(depth_ok("}}}]]])))", 1));
        assert!(!depth_ok("}}} {{", 1));
    }

    #[test]
    fn tokens_are_counted_as_the_parser_sees_them() {
        // { me { id username } } ...F @skip(if: $v): each word, bracket and mark is one.
        let query = "{ me { id username } ...F @skip(if: $v) }";
        let tokens = 17;
        assert!(scan(query, 64, tokens).is_ok());
        let refused = scan(query, 64, tokens - 1).unwrap_err();
        assert!(matches!(refused, Refusal::TooManyTokens { limit: 16, .. }));
        // A long string or a long number is one token.
        assert!(
            scan(
                &format!("{{ a(s: \"{}\", n: 12345.6e+7) }}", "x".repeat(10_000)),
                64,
                11
            )
            .is_ok()
        );
    }

    #[test]
    fn refusals_say_where() {
        let refused = scan("{\n  a {\n    b(x: [[1]])\n  }\n}", 4, 100).unwrap_err();
        assert_eq!(
            refused,
            Refusal::TooDeep {
                limit: 4,
                pos: Pos {
                    line: 3,
                    column: 11
                }
            }
        );
        assert_eq!(refused.message(), "the document nests deeper than 4 levels");
    }

    proptest::proptest! {
        #[test]
        fn scanning_never_panics(text in "(?s).{0,400}") {
            let _ = scan(&text, 8, 64);
        }

        #[test]
        fn brackets_in_strings_never_count(inner in "[\\[\\]{}()a-z #]{0,200}") {
            let doc = format!("{{ a(s: \"{inner}\", t: \"\"\"{inner}\"\"\") }}");
            proptest::prop_assert!(scan(&doc, 2, usize::MAX).is_ok(), "{}", doc);
        }

        #[test]
        fn nesting_is_refused_exactly_past_the_limit(depth in 1usize..300, limit in 1usize..300) {
            let doc = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            proptest::prop_assert_eq!(scan(&doc, limit, usize::MAX).is_ok(), depth <= limit);
        }
    }

    #[test]
    fn refusals_inside_odd_text_still_say_where() {
        // Characters outside strings, and escapes inside them, of several bytes each.
        for text in ["{😀😀😀😀", "{\"\\😀\" é é é é", "é\n😀😀😀"] {
            let refused = scan(text, 64, 2).unwrap_err();
            assert!(refused.pos().column >= 1, "{text}");
        }
    }

    #[test]
    fn any_text_is_scanned_without_panicking() {
        for text in [
            "",
            "\"",
            "\"\"\"",
            "\"\\",
            "#",
            "é{[(",
            "\"\"\"\\\"\"\"",
            "...",
        ] {
            let _ = scan(text, 2, 3);
        }
        // A hundred thousand levels: refused at the limit, in one pass.
        assert!(!depth_ok(&"[".repeat(100_000), 64));
    }
}
