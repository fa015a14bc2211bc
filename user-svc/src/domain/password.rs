use super::ValidationError;
use std::fmt;
use zeroize::Zeroizing;

/// bcrypt reads at most 72 bytes of a password; longer ones are refused, never cut.
pub const MAX_PASSWORD_BYTES: usize = 72;
pub const MIN_PASSWORD_BYTES: usize = 8;

/// A password acceptable for a new account: 8..=72 bytes without NUL, kept as typed (no trimming),
/// wiped from memory when dropped, never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Checks a new password; `field` names it in the error (`password`, or the
    /// setting that supplied it).
    pub fn parse(raw: &str) -> Result<Password, ValidationError> {
        Self::parse_field("password", raw)
    }

    pub fn parse_field(field: &'static str, raw: &str) -> Result<Password, ValidationError> {
        let len = raw.len();
        if len < MIN_PASSWORD_BYTES {
            return Err(ValidationError::new(
                field,
                format!("{field} must be at least {MIN_PASSWORD_BYTES} bytes long"),
            ));
        }
        if len > MAX_PASSWORD_BYTES {
            return Err(ValidationError::new(
                field,
                format!(
                    "{field} must be at most {MAX_PASSWORD_BYTES} bytes long (bcrypt's limit; it is {len} bytes, and we refuse rather than silently ignore the rest)"
                ),
            ));
        }
        // Many bcrypt implementations stop at a NUL byte; refusing it keeps hashes
        // portable and the 72-byte case exact.
        if raw.contains('\0') {
            return Err(ValidationError::new(
                field,
                format!("{field} must not contain NUL characters"),
            ));
        }
        Ok(Password(Zeroizing::new(raw.to_owned())))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_bytes() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"x".repeat(72)).is_ok());
        let err = Password::parse(&"x".repeat(73)).unwrap_err();
        assert!(err.message.contains("72 bytes"), "{}", err.message);
        assert!(err.message.contains("bcrypt"));
        // 24 three-byte characters are 72 bytes; 25 are 75.
        assert!(Password::parse(&"€".repeat(24)).is_ok());
        assert!(Password::parse(&"€".repeat(25)).is_err());
        assert!(Password::parse("pass\0word").is_err());
        assert_eq!(Password::parse(" spaced  ").unwrap().expose(), " spaced  ");
        assert_eq!(
            format!("{:?}", Password::parse("secret123").unwrap()),
            "Password(***)"
        );
    }
}
