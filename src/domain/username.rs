use super::{InvalidInput, check_length};

/// 3–32 ASCII letters, digits and `_`. ASCII only, so that look-alike letters from other
/// scripts cannot be used to impersonate someone, and `lower()` agrees across databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub const MIN: usize = 3;
    pub const MAX: usize = 32;
    /// Deleted accounts are renamed `deleted_…`; nobody may register as one.
    pub const DELETED_PREFIX: &'static str = "deleted_";

    pub fn parse(field: &'static str, s: &str) -> Result<Self, InvalidInput> {
        check_length(field, "username", s, Self::MIN..=Self::MAX)?;
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(InvalidInput::new(
                field,
                "username may contain only letters, digits and _",
            ));
        }
        if s.to_ascii_lowercase().starts_with(Self::DELETED_PREFIX) {
            return Err(InvalidInput::new(
                field,
                "usernames starting with deleted_ are reserved",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_letters_digits_underscore() {
        for ok in ["abc", "Alice_99", "a".repeat(32).as_str(), "___"] {
            assert!(Username::parse("username", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_bad_lengths_and_characters() {
        for bad in [
            "ab",
            &"a".repeat(33),
            "al ice",
            "alice!",
            "ålice",
            "",
            "a-b",
            "deleted_0123456789abcdef",
            "Deleted_me",
        ] {
            let err = Username::parse("username", bad).unwrap_err();
            assert_eq!(err.field, "username", "{bad}");
        }
    }
}
