use std::fmt;

use super::{InvalidInput, check_length};

/// 8–128 characters. Never printed: `Debug` is redacted so a password cannot reach a log line
/// through `{:?}` or a tracing field.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN: usize = 8;
    pub const MAX: usize = 128;

    pub fn parse(field: &'static str, s: &str) -> Result<Self, InvalidInput> {
        check_length(field, "password", s, Self::MIN..=Self::MAX)?;
        Ok(Self(s.to_owned()))
    }

    /// For a login attempt: any non-empty string of at most `MAX` characters may be compared
    /// against a hash (an old account may predate a length rule). Longer input is refused
    /// before it reaches Argon2.
    pub fn for_login(field: &'static str, s: &str) -> Result<Self, InvalidInput> {
        if s.is_empty() || s.chars().count() > Self::MAX {
            return Err(InvalidInput::new(field, "password is empty or too long"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_characters() {
        assert!(Password::parse("password", "12345678").is_ok());
        assert!(Password::parse("password", "1234567").is_err());
        assert!(Password::parse("password", &"é".repeat(128)).is_ok());
        assert!(Password::parse("password", &"é".repeat(129)).is_err());
    }

    #[test]
    fn debug_does_not_show_the_password() {
        let p = Password::parse("password", "hunter2hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
