//! The language of human-facing text: error messages and notifications.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::enum_names::variant_named;
use crate::error::{Error, Invalid};

/// Language of messages and notifications. Spanish is the default.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Locale {
    /// Spanish (default).
    #[default]
    Es,
    /// English.
    En,
}

impl Locale {
    /// The two-letter code: `es` or `en`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl FromStr for Locale {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        variant_named(text).ok_or(Error::invalid("locale", Invalid::Locale))
    }
}
