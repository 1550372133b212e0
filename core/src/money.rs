//! Money: exact decimals in Colombian pesos, validated once and formatted the Colombian way.

use rust_decimal::Decimal;

use crate::error::{Error, Invalid, Result};

pub use crate::limits::{MAX_AMOUNT, MINOR_DIGITS};

/// Parses decimal text (`"80000"`, `"80000.50"`) into an amount; it is not yet validated.
///
/// Text that reads one way as a decimal number and another the Colombian way is refused
/// ([`Invalid::AmountAmbiguous`]): `"75.000"` would be 75 here and is seventy-five thousand to
/// a person who writes money as `COP $75.000`.
pub fn parse_amount(text: &str) -> Result<Decimal> {
    let trimmed = text.trim();
    let plain = !trimmed.is_empty()
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+');
    if !plain {
        return Err(Error::invalid("amount", Invalid::AmountNotANumber));
    }
    if reads_as_thousands(trimmed) {
        return Err(Error::invalid("amount", Invalid::AmountAmbiguous));
    }
    Decimal::from_str_exact(trimmed)
        .map_err(|_| Error::invalid("amount", Invalid::AmountNotANumber))
}

/// Whether plain decimal text is also a whole number written with a thousands dot: one to three
/// digits, a dot, three digits ending in zero (`"75.000"`, `"1.500"`, `"125.550"`); a decimal
/// reading of such text gives an amount of at most 2 decimals a person did not mean. Text whose
/// third decimal is not zero (`"0.001"`) is refused as too precise anyway.
fn reads_as_thousands(text: &str) -> bool {
    let digits = text.trim_start_matches(['+', '-']);
    match digits.split_once('.') {
        Some((units, thousands)) => {
            (1..=3).contains(&units.len())
                && thousands.len() == 3
                && thousands.ends_with('0')
                && units
                    .bytes()
                    .chain(thousands.bytes())
                    .all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// Checks an amount against the rules of docs/money.md (> 0, at most 2 fractional digits, at
/// most 10^12) and returns it with exactly 2 fractional digits, the form every stored amount has.
pub fn validate_amount(amount: Decimal) -> Result<Decimal> {
    if amount <= Decimal::ZERO {
        return Err(Error::invalid("amount", Invalid::AmountNotPositive));
    }
    if amount.normalize().scale() > MINOR_DIGITS {
        return Err(Error::invalid("amount", Invalid::AmountTooPrecise));
    }
    if amount > MAX_AMOUNT {
        return Err(Error::invalid("amount", Invalid::AmountTooLarge));
    }
    Ok(to_minor_units(amount))
}

/// `amount` with exactly 2 fractional digits (callers pass values that already fit).
pub(crate) fn to_minor_units(amount: Decimal) -> Decimal {
    let mut exact = amount.normalize();
    exact.rescale(MINOR_DIGITS);
    exact
}

/// Formats money for people, the Colombian way: `COP $75.000`, `COP $1.250.000,50`.
///
/// Cents are shown only when there are some.
pub fn format_cop(amount: Decimal) -> String {
    let cents_total = to_minor_units(amount.abs());
    let units = cents_total.trunc();
    let cents = ((cents_total - units) * Decimal::ONE_HUNDRED).trunc();
    let digits = units.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(digit);
    }
    let sign = if amount.is_sign_negative() && !amount.is_zero() {
        "-"
    } else {
        ""
    };
    if cents.is_zero() {
        format!("COP {sign}${grouped}")
    } else {
        format!("COP {sign}${grouped},{cents:0>2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn text_with_a_thousands_dot_is_refused_not_read_as_a_small_amount() {
        for text in [
            "75.000",
            " 125.000 ",
            "1.500",
            "125.550",
            "+75.000",
            "999.990",
        ] {
            let refused = parse_amount(text).unwrap_err();
            assert_eq!(
                refused,
                Error::invalid("amount", Invalid::AmountAmbiguous),
                "{text}"
            );
        }
        // unambiguous text is read as before
        assert_eq!(parse_amount("75000").unwrap(), d("75000"));
        assert_eq!(parse_amount("80000.000").unwrap(), d("80000.000"));
        assert_eq!(parse_amount("75.50").unwrap(), d("75.50"));
        assert_eq!(parse_amount("1234.500").unwrap(), d("1234.500"));
        assert_eq!(parse_amount("0.001").unwrap(), d("0.001")); // too precise, refused later
        assert_eq!(parse_amount("75.005").unwrap(), d("75.005"));
    }

    #[test]
    fn max_amount_is_one_trillion() {
        assert_eq!(MAX_AMOUNT, d("1000000000000"));
    }

    #[test]
    fn valid_amounts_come_back_with_two_decimals() {
        assert_eq!(validate_amount(d("75000")).unwrap().to_string(), "75000.00");
        assert_eq!(
            validate_amount(d("80000.5")).unwrap().to_string(),
            "80000.50"
        );
        assert_eq!(validate_amount(d("0.01")).unwrap().to_string(), "0.01");
        assert_eq!(
            validate_amount(d("80000.000")).unwrap().to_string(),
            "80000.00"
        );
        assert_eq!(
            validate_amount(MAX_AMOUNT).unwrap().to_string(),
            "1000000000000.00"
        );
    }

    #[test]
    fn invalid_amounts_are_validation_errors() {
        for bad in [
            "0",
            "-1",
            "0.001",
            "75000.123",
            "1000000000000.01",
            "99999999999999",
        ] {
            let err = validate_amount(d(bad)).unwrap_err();
            assert_eq!(err.code(), "VALIDATION_ERROR", "{bad}");
            assert_eq!(err.field(), Some("amount"));
        }
        for bad in ["", "abc", "1e5", "NaN", "12,5", " "] {
            assert_eq!(
                parse_amount(bad).unwrap_err().code(),
                "VALIDATION_ERROR",
                "{bad:?}"
            );
        }
        assert_eq!(parse_amount(" 80000.50 ").unwrap(), d("80000.50"));
    }

    #[test]
    fn formats_the_colombian_way() {
        assert_eq!(format_cop(d("75000")), "COP $75.000");
        assert_eq!(format_cop(d("500000.00")), "COP $500.000");
        assert_eq!(format_cop(d("1250000.5")), "COP $1.250.000,50");
        assert_eq!(format_cop(d("999")), "COP $999");
        assert_eq!(format_cop(d("1000000000000")), "COP $1.000.000.000.000");
        assert_eq!(format_cop(d("0.07")), "COP $0,07");
    }
}
