use super::ValidationError;
use std::fmt;

/// A display name: trimmed, 1..=100 characters, no control characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Name(String);

pub const MAX_NAME_CHARS: usize = 100;

impl Name {
    pub fn parse(raw: &str) -> Result<Name, ValidationError> {
        let bad = |msg: &str| ValidationError::new("name", msg);
        let s = raw.trim();
        if s.is_empty() {
            return Err(bad("name is required"));
        }
        if s.chars().count() > MAX_NAME_CHARS {
            return Err(bad("name must be at most 100 characters long"));
        }
        if s.chars().any(char::is_control) {
            return Err(bad("name must not contain control characters"));
        }
        Ok(Name(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_counts_characters() {
        assert_eq!(
            Name::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse(&"é".repeat(100)).is_ok());
        assert!(Name::parse(&"é".repeat(101)).is_err());
        assert!(Name::parse("a\u{0}b").is_err());
    }
}
