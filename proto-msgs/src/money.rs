//! Exact money: integer minor units (cents), never a float.
//!
//! On the wire an amount is a decimal string with two places (`"200.30"`). Input may
//! also be a JSON number: it is read through its shortest decimal form, so `100.1`
//! means exactly 100.10 and `0.105` is refused instead of rounded. No spaces around
//! the digits, no exponent.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// An amount in minor units (1/100 of the currency unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

/// Why a text is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("{0:?} is not a decimal amount like \"12.34\"")]
    Syntax(String),
    #[error("{0:?} has more than 2 decimal places")]
    TooPrecise(String),
    #[error("{0:?} is too large")]
    Overflow(String),
}

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_minor(minor: i64) -> Self {
        Money(minor)
    }

    pub const fn minor(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    pub fn checked_mul(self, factor: i64) -> Option<Money> {
        self.0.checked_mul(factor).map(Money)
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let s = text;
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, frac) = match digits.split_once('.') {
            Some((w, f)) => (w, f),
            None => (digits, ""),
        };
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !all_digits(whole)
            || !all_digits(frac)
            || (digits.contains('.') && frac.is_empty())
        {
            return Err(MoneyError::Syntax(text.to_owned()));
        }
        // Trailing zeros beyond two places carry no value ("1.500" is 1.50).
        let frac = frac.trim_end_matches('0');
        if frac.len() > 2 {
            return Err(MoneyError::TooPrecise(text.to_owned()));
        }
        let overflow = || MoneyError::Overflow(text.to_owned());
        let whole: i64 = whole.parse().map_err(|_| overflow())?;
        let cents: i64 = format!("{frac:0<2}")
            .parse()
            .map_err(|_| MoneyError::Syntax(text.to_owned()))?;
        let minor = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(cents))
            .ok_or_else(overflow)?;
        Ok(Money(if negative { -minor } else { minor }))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MoneyVisitor;
        impl Visitor<'_> for MoneyVisitor {
            type Value = Money;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal amount with at most 2 places, as a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
                v.checked_mul(100)
                    .map(Money)
                    .ok_or_else(|| E::custom(MoneyError::Overflow(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(|v| v.checked_mul(100))
                    .map(Money)
                    .ok_or_else(|| E::custom(MoneyError::Overflow(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
                if !v.is_finite() {
                    return Err(E::custom(MoneyError::Syntax(v.to_string())));
                }
                // Rust prints the shortest text that reads back as the same f64, never
                // in exponent form: exactly what the client wrote for sane amounts.
                v.to_string().parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(MoneyVisitor)
    }
}

/// How an amount is written in replies (JSON Schema, ECMA-262).
pub const MONEY_PATTERN: &str = r"^-?[0-9]+\.[0-9]{2}$";

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Money {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::limits::schema::string("An exact amount: a decimal string with two places.")
            .pattern(Some(MONEY_PATTERN))
            .examples(["200.30"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Money {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: serde_json::Value) -> Result<Money, String> {
        serde_json::from_value::<Money>(v).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_strings_and_numbers_exactly() {
        assert_eq!(m(json!("200.30")).unwrap().minor(), 20030);
        assert_eq!(m(json!(100)).unwrap().minor(), 10000);
        assert_eq!(m(json!(0.1)).unwrap().minor(), 10);
        assert_eq!(m(json!(100.1)).unwrap().minor(), 10010);
        assert_eq!(m(json!(19.99)).unwrap().minor(), 1999);
        assert_eq!(m(json!("1.500")).unwrap().minor(), 150);
        assert_eq!(m(json!("-3.5")).unwrap().minor(), -350);
        assert_eq!(m(json!(1000000)).unwrap().minor(), 100_000_000);
    }

    #[test]
    fn refuses_what_is_not_an_amount() {
        for bad in [
            json!("0.105"),
            json!(0.105),
            json!("abc"),
            json!("1."),
            json!(".5"),
            json!(""),
            json!("1e3"),
            json!(null),
            json!(true),
            json!("99999999999999999999"),
            json!(" 1.00"),
            json!("1.00\n"),
        ] {
            assert!(m(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn sums_are_exact() {
        let price: Money = "0.10".parse().unwrap();
        let total = price
            .checked_mul(3)
            .unwrap()
            .checked_add(Money::from_minor(20000))
            .unwrap();
        assert_eq!(total.to_string(), "200.30");
        assert_eq!(serde_json::to_value(total).unwrap(), json!("200.30"));
        assert_eq!(Money::from_minor(-5).to_string(), "-0.05");
    }
}
