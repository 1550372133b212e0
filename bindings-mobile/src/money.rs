//! Money across the FFI: the `Amount` custom type and the free functions that parse and format it.

use crate::error::FundError;
use crate::types::Locale;
use fundcore::Decimal;

/// Money: an exact decimal, never a binary float.
///
/// It crosses the FFI as decimal text (`"75000.00"`); `uniffi.toml` maps it to
/// `java.math.BigDecimal` in Kotlin and `Decimal` in Swift. Amounts returned by the engine
/// always have exactly 2 fractional digits.
pub type Amount = Decimal;

uniffi::custom_type!(Amount, String, {
    remote,
    lower: |amount| amount.to_string(),
    // Text that is not a number (or does not fit a Decimal) is the engine's VALIDATION_ERROR,
    // raised as FundError, not as an internal error; range and precision are checked by the
    // engine where the amount is used.
    try_lift: |text| fundcore::money::parse_amount(&text)
        .map_err(|err| FundError::from_core(err, fundcore::Locale::Es).into()),
});

/// Parses decimal text typed by a user (`"80000"`, `"80000.50"`) with the engine's rules:
/// text that is not a number is `VALIDATION_ERROR` (field `amount`), with the message in
/// `locale` (Spanish when null/nil). Range and precision are checked where the amount is used.
#[uniffi::export(default(locale = None))]
pub fn parse_amount(text: String, locale: Option<Locale>) -> Result<Amount, FundError> {
    let locale = locale.map_or(fundcore::Locale::Es, Into::into);
    fundcore::money::parse_amount(&text).map_err(|err| FundError::from_core(err, locale))
}

/// Formats money for people, the Colombian way: `COP $75.000`, `COP $1.250.000,50`.
#[uniffi::export]
pub fn format_cop(amount: Amount) -> String {
    fundcore::money::format_cop(amount)
}
