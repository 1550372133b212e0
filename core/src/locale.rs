//! The language of human-facing text: error messages and notifications.

use std::str::FromStr;

use crate::enum_names::variant_named;
use crate::error::{Error, Invalid};

named_enum! {
    /// Language of messages and notifications. Spanish is the default.
    #[derive(Default)]
    pub enum Locale in "lowercase" {
        /// Spanish (default).
        #[default]
        Es,
        /// English.
        En,
    }
}

impl FromStr for Locale {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        variant_named(text).ok_or(Error::invalid("locale", Invalid::Locale))
    }
}
