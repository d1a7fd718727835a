//! Integer rupiah and integer points. No floating point anywhere near money.

use serde::{Deserialize, Serialize};

use super::{FieldError, InvalidInput};

/// An amount of rupiah (IDR has no minor unit in practice).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = i64)]
pub struct Money(i64);

/// Largest single amount accepted from a client (1 billion rupiah).
pub const MAX_AMOUNT: i64 = 1_000_000_000;

impl Money {
    pub const ZERO: Money = Money(0);

    /// Any integer (balances, ledger sums).
    pub const fn from_rupiah(n: i64) -> Money {
        Money(n)
    }

    /// A client-supplied amount: positive and at most [`MAX_AMOUNT`].
    pub fn positive(field: &str, n: i64) -> Result<Money, InvalidInput> {
        Money::positive_up_to(field, n, MAX_AMOUNT)
    }

    /// A client-supplied amount: positive and at most `max` (itself at most [`MAX_AMOUNT`]).
    pub fn positive_up_to(field: &str, n: i64, max: i64) -> Result<Money, InvalidInput> {
        let max = max.min(MAX_AMOUNT);
        if n <= 0 || n > max {
            return Err(InvalidInput::Fields(vec![FieldError::new(
                field,
                format!("must be a whole number of rupiah between 1 and {max}"),
            )]));
        }
        Ok(Money(n))
    }

    pub const fn rupiah(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IDR {}", self.0)
    }
}

/// A number of reward points.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = i64)]
pub struct Points(i64);

impl Points {
    pub const ZERO: Points = Points(0);

    pub const fn new(n: i64) -> Points {
        Points(n)
    }

    /// A client-supplied positive number of points.
    pub fn positive(field: &str, n: i64) -> Result<Points, InvalidInput> {
        if n <= 0 || n > MAX_AMOUNT {
            return Err(InvalidInput::Fields(vec![FieldError::new(
                field,
                "must be a positive whole number",
            )]));
        }
        Ok(Points(n))
    }

    pub const fn value(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_amounts_must_be_positive_and_bounded() {
        assert!(Money::positive("amount", 0).is_err());
        assert!(Money::positive("amount", -5).is_err());
        assert!(Money::positive("amount", MAX_AMOUNT + 1).is_err());
        assert_eq!(
            Money::positive("amount", 10_000).map(Money::rupiah),
            Ok(10_000)
        );
    }
}
