//! Limits of the contract that belong to no single service, and the shared text rule.
//!
//! One constant per limit, used by the code that checks it (services and gateway) and
//! by the documents that describe it (the gateway's OpenAPI document is generated from
//! the contract types, which read these; `docs/asyncapi.yaml` is tested against them).
//! Limits of one service's fields live beside its types: [`crate::users`],
//! [`crate::orders`].
//!
//! The `*_pattern` functions describe a rule to JSON Schema as an ECMA-262 regular
//! expression (the dialect OpenAPI 3.1 uses); tests check each against its rule.

/// Longest idempotency key (`Idempotency-Key` at the gateway, `x-idempotency-key` on the
/// bus). Keys are visible ASCII, so this is bytes and characters alike.
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 200;

/// The idempotency-key rule: 1 to [`IDEMPOTENCY_KEY_MAX_LEN`] visible ASCII characters
/// (no spaces). The gateway checks the HTTP header with it and order-svc the bus header.
pub fn check_idempotency_key(key: &str) -> Result<(), String> {
    if key.is_empty()
        || key.len() > IDEMPOTENCY_KEY_MAX_LEN
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(format!(
            "the idempotency key must be 1 to {IDEMPOTENCY_KEY_MAX_LEN} visible ASCII characters (no spaces)"
        ));
    }
    Ok(())
}

/// [`check_idempotency_key`] as a pattern.
pub fn idempotency_key_pattern() -> String {
    format!("^[!-~]{{1,{IDEMPOTENCY_KEY_MAX_LEN}}}$")
}

/// Whitespace as `str::trim` sees it (Unicode `White_Space`), as the inside of a class.
const WHITESPACE: &str =
    r"\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";
/// A character that is neither whitespace nor a control character.
const VISIBLE: &str =
    r"[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";
/// A character that is not a control character (Unicode `Cc`).
const NOT_CONTROL: &str = r"[^\u0000-\u001F\u007F-\u009F]";

/// The rule of names (a user's, an item's): surrounding whitespace is dropped; what is
/// left has 1 to `max_chars` characters (Unicode scalar values) and no control
/// characters. Returns the trimmed text.
pub fn trimmed_text(raw: &str, max_chars: usize) -> Result<String, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err("must not be empty or only whitespace".to_owned());
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(format!(
            "must be at most {max_chars} characters long after trimming, not {chars}"
        ));
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(text.to_owned())
}

/// [`trimmed_text`] as a pattern (`max_chars` ≥ 2).
pub fn trimmed_text_pattern(max_chars: usize) -> String {
    let inner = max_chars.saturating_sub(2);
    format!("^[{WHITESPACE}]*{VISIBLE}(?:{NOT_CONTROL}{{0,{inner}}}{VISIBLE})?[{WHITESPACE}]*$")
}

/// Serialize as the string `as_str` gives and deserialize through `parse`, so that
/// reading a value of the type is checking it (the error is `parse`'s message, and
/// `serde_path_to_error` adds where it was).
macro_rules! parsed_string {
    ($ty:ident) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                // Wiped when dropped: some of these are passwords.
                let raw = zeroize::Zeroizing::new(String::deserialize(deserializer)?);
                $ty::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use parsed_string;

/// JSON Schema pieces for the contract types (feature `openapi`).
#[cfg(feature = "openapi")]
pub mod schema {
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::openapi::{RefOr, SchemaFormat};

    /// A string schema.
    pub fn string(description: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
    }

    /// An integer schema with bounds.
    pub fn integer(description: &str, min: i64, max: i64) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .minimum(Some(min))
            .maximum(Some(max))
            .description(Some(description))
    }

    /// A string enum of `values`.
    pub fn string_enum<'a>(
        description: &str,
        values: impl IntoIterator<Item = &'a str>,
    ) -> RefOr<Schema> {
        string(description)
            .enum_values(Some(values.into_iter().collect::<Vec<_>>()))
            .into()
    }
}

/// serde `deserialize_with` for an optional field that, when present, is a value:
/// `null` is refused (as the documents say), not read as absent.
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    #[test]
    fn idempotency_keys() {
        let re = Regex::new(&idempotency_key_pattern()).unwrap();
        let long = "k".repeat(IDEMPOTENCY_KEY_MAX_LEN);
        let longer = "k".repeat(IDEMPOTENCY_KEY_MAX_LEN + 1);
        for key in [
            "a",
            "7d3c1f2e-first-try",
            &long,
            "",
            " a",
            "a b",
            "é",
            &longer,
            "a\n",
        ] {
            assert_eq!(
                re.is_match(key),
                check_idempotency_key(key).is_ok(),
                "{key:?}"
            );
        }
        assert!(check_idempotency_key(&long).is_ok());
        assert!(check_idempotency_key(&longer).is_err());
    }

    #[test]
    fn trimmed_text_and_its_pattern_agree() {
        let re = Regex::new(&trimmed_text_pattern(5)).unwrap();
        for text in [
            "a",
            "abcde",
            " abcde ",
            "\t a b \n",
            "ab cd",
            "é",
            "\u{3000}x\u{a0}",
            "abcdef",
            "",
            "   ",
            "\u{a0}",
            "a\u{0}b",
            "a\u{85}b",
            "\u{85}a",
            "a\tb",
            "a\u{7f}",
            "\u{2028}",
            "ab\u{9f}",
            "x\u{200b}",
        ] {
            assert_eq!(re.is_match(text), trimmed_text(text, 5).is_ok(), "{text:?}");
        }
        assert_eq!(trimmed_text("  Ada  ", 5).unwrap(), "Ada");
        assert!(trimmed_text(&"é".repeat(5), 5).is_ok());
        assert!(trimmed_text(&"é".repeat(6), 5).is_err());
    }
}
