use super::ValidationError;
use std::fmt;

/// A syntactically valid email address, trimmed and lower-cased: two spellings of one
/// address are one account.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

const FIELD: &str = "email";
/// RFC 5321's limit on a forward path.
const MAX_LEN: usize = 254;
const MAX_LOCAL: usize = 64;

impl Email {
    pub fn parse(raw: &str) -> Result<Email, ValidationError> {
        let bad = |msg: &str| ValidationError::new(FIELD, msg);
        let s = raw.trim();
        if s.is_empty() {
            return Err(bad("email is required"));
        }
        if s.len() > MAX_LEN {
            return Err(bad("email must be at most 254 characters long"));
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err(bad("email must look like name@example.com"));
        };
        if local.is_empty() || local.len() > MAX_LOCAL || !valid_local(local) {
            return Err(bad(
                "the part of the email before @ is empty, too long or has characters an address cannot have",
            ));
        }
        if !valid_domain(domain) {
            return Err(bad(
                "the part of the email after @ must be a domain like example.com",
            ));
        }
        Ok(Email(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Dot-atom of RFC 5322: atext runs separated by single dots.
fn valid_local(local: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~-";
    local.split('.').all(|atom| {
        !atom.is_empty()
            && atom
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || SPECIALS.contains(&b))
    })
}

/// At least two labels of letters, digits and inner hyphens.
fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lowercases() {
        assert_eq!(
            Email::parse("  Ada@Example.COM\t").unwrap().as_str(),
            "ada@example.com"
        );
        assert_eq!(
            Email::parse("a.b+tag@sub.example.co").unwrap().as_str(),
            "a.b+tag@sub.example.co"
        );
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "a da@example.com",
            "ada@exa mple.com",
            ".ada@example.com",
            "ada.@example.com",
            "a..da@example.com",
            "ada@-example.com",
            "ada@example..com",
            "ada@exam_ple.com",
            "ädä@example.com",
            "ada@example.com\n.x",
        ] {
            let err = Email::parse(bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long).is_err());
        let longer = format!("a@{}.com", "b".repeat(260));
        assert!(Email::parse(&longer).is_err());
    }
}
