//! The language of human-facing text: error messages and notifications.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Invalid};

/// Language of messages and notifications. Spanish is the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
        match self {
            Locale::Es => "es",
            Locale::En => "en",
        }
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Locale {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "es" => Ok(Locale::Es),
            "en" => Ok(Locale::En),
            _ => Err(Error::invalid("locale", Invalid::Locale)),
        }
    }
}
