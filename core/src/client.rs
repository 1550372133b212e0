//! Clients, their notification channel and the validation of their contact data.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::enum_names::variant_named;
use crate::error::{Error, Invalid, Result};
use crate::ids::ClientId;
use crate::limits::{
    MAX_EMAIL_CHARS, MAX_EMAIL_LOCAL_BYTES, MAX_NAME_CHARS, MAX_PHONE_DIGITS, MIN_PHONE_DIGITS,
};
use crate::time::Timestamp;

named_enum! {
    /// How a client wants to be notified.
    pub enum Channel in "lowercase" {
        /// By email, to the client's address.
        Email,
        /// By SMS, to the client's phone.
        Sms,
    }
}

impl FromStr for Channel {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        variant_named(text).ok_or(Error::invalid("channel", Invalid::Channel))
    }
}

/// A client of the asset manager and their available balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// UUIDv7 id.
    pub id: ClientId,
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Phone in E.164 form, e.g. `+573001234567`.
    pub phone: String,
    /// Preferred notification channel.
    pub channel: Channel,
    /// Money available to subscribe with.
    pub balance: Decimal,
    /// When the client was registered.
    pub created_at: Timestamp,
}

impl Client {
    /// The address notifications go to on the client's channel.
    pub fn recipient(&self) -> &str {
        match self.channel {
            Channel::Email => &self.email,
            Channel::Sms => &self.phone,
        }
    }
}

/// Contact data checked and normalized for registration.
pub(crate) struct ContactData {
    pub name: String,
    pub email: String,
    pub phone: String,
}

/// Checks name, email and phone; returns them trimmed (email domain lower-cased).
pub(crate) fn validate_contact(name: &str, email: &str, phone: &str) -> Result<ContactData> {
    Ok(ContactData {
        name: validate_name(name)?,
        email: validate_email(email)?,
        phone: validate_phone(phone)?,
    })
}

/// A client's or fund's name, trimmed: not empty, at most [`MAX_NAME_CHARS`], no control
/// characters.
pub(crate) fn validate_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(Error::invalid("name", Invalid::Name));
    }
    Ok(name.to_owned())
}

/// An email address, trimmed, its domain lower-cased.
pub(crate) fn validate_email(email: &str) -> Result<String> {
    normalize_email(email).ok_or(Error::invalid("email", Invalid::Email))
}

/// An E.164 phone number, trimmed.
pub(crate) fn validate_phone(phone: &str) -> Result<String> {
    let phone = phone.trim();
    if !is_e164(phone) {
        return Err(Error::invalid("phone", Invalid::Phone));
    }
    Ok(phone.to_owned())
}

/// A deliberately plain check: one `@`, a non-empty local part, a dotted domain, no spaces.
fn normalize_email(email: &str) -> Option<String> {
    let email = email.trim();
    if email.len() > MAX_EMAIL_CHARS || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = email.split_once('@')?;
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if local.is_empty() || local.len() > MAX_EMAIL_LOCAL_BYTES || !domain_ok {
        return None;
    }
    Some(format!("{local}@{}", domain.to_lowercase()))
}

/// E.164: `+`, a non-zero country digit, 8 to 15 digits in all.
fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_contact_data() {
        let data = validate_contact("  Ana Gómez ", "ana@Example.COM", "+573001234567").unwrap();
        assert_eq!(data.name, "Ana Gómez");
        assert_eq!(data.email, "ana@example.com");
        assert_eq!(data.phone, "+573001234567");
    }

    #[test]
    fn refuses_each_malformed_field_by_name() {
        let cases = [
            ("", "ana@example.com", "+573001234567", "name"),
            (&"x".repeat(101), "ana@example.com", "+573001234567", "name"),
            ("Ana", "ana.example.com", "+573001234567", "email"),
            ("Ana", "ana@example", "+573001234567", "email"),
            ("Ana", "a b@example.com", "+573001234567", "email"),
            ("Ana", "ana@@example.com", "+573001234567", "email"),
            ("Ana", "ana@example.com", "3001234567", "phone"),
            ("Ana", "ana@example.com", "+57 300 123", "phone"),
            ("Ana", "ana@example.com", "+0573001234567", "phone"),
            ("Ana", "ana@example.com", "+5730012345678901", "phone"),
        ];
        for (name, email, phone, field) in cases {
            let err = validate_contact(name, email, phone).err().unwrap();
            assert_eq!(
                (err.code(), err.field()),
                (crate::ErrorCode::ValidationError, Some(field)),
                "{email} {phone}"
            );
        }
    }

    #[test]
    fn channel_parses_only_email_and_sms() {
        assert_eq!("email".parse::<Channel>().unwrap(), Channel::Email);
        assert_eq!("SMS".parse::<Channel>().unwrap(), Channel::Sms);
        assert_eq!(
            "fax".parse::<Channel>().unwrap_err().field(),
            Some("channel")
        );
    }
}
