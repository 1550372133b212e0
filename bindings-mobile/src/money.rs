//! Money across the FFI: the `Amount` custom type and the free functions that parse and format it.

use std::fmt;

use fundcore::{Decimal, Locale};

use crate::error::FundError;

/// Money: an exact decimal, never a binary float (`java.math.BigDecimal` in Kotlin, `Decimal`
/// in Swift, as `uniffi.toml` maps it).
///
/// It crosses the FFI as decimal text (`"75000.00"`). Amounts returned by the engine always
/// have exactly 2 fractional digits.
///
/// An amount from the app is kept as the text it arrived as and read with the engine's rules
/// ([`Amount::to_decimal`]) where it is used, not while it crosses the FFI: only there is the
/// locale of the error known (the engine's, or the configuration's). A `BigDecimal` with more
/// digits than a [`Decimal`] holds (`1E+40`, `1E-40`) is then the engine's `VALIDATION_ERROR`
/// on `amount`, in that locale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount(String);

uniffi::custom_type!(
    /// Money: an exact decimal, never a binary float; amounts from the engine have 2 decimals.
    Amount, String, {
        lower: |amount| amount.0,
        try_lift: |text| Ok(Amount(text)),
    }
);

impl Amount {
    /// The amount as the app sent it; tests build malformed ones with it.
    #[cfg(test)]
    pub(crate) fn from_text(text: String) -> Self {
        Amount(text)
    }

    /// The amount as the engine reads it: [`fundcore::parse_amount`]'s decimal, or its
    /// `VALIDATION_ERROR` on `amount` for text no [`Decimal`] can hold. Range and precision are
    /// checked by the engine where the amount is used.
    pub fn to_decimal(&self) -> Result<Decimal, fundcore::Error> {
        fundcore::parse_amount(&self.0)
    }
}

impl From<Decimal> for Amount {
    fn from(amount: Decimal) -> Self {
        Amount(amount.to_string())
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses decimal text typed by a user (`"80000"`, `"80000.50"`) with the engine's rules:
/// text that is not a number is `VALIDATION_ERROR` (field `amount`), with the message in
/// `locale` (Spanish when null/nil). Range and precision are checked where the amount is used.
#[uniffi::export(default(locale = None))]
pub fn parse_amount(text: String, locale: Option<Locale>) -> Result<Amount, FundError> {
    fundcore::parse_amount(&text)
        .map(Amount::from)
        .map_err(|err| FundError::from_core(err, locale.unwrap_or_default()))
}

/// Formats money for people, the Colombian way: `COP $75.000`, `COP $1.250.000,50`.
///
/// An amount the engine cannot read (more digits than it holds, Swift's `Decimal.nan`) is
/// returned as the text it crossed the FFI as: this function has no error to report it with.
#[uniffi::export]
pub fn format_cop(amount: Amount) -> String {
    match amount.to_decimal() {
        Ok(decimal) => fundcore::format_cop(decimal),
        Err(_) => amount.0,
    }
}
