//! Typed identifiers: UUIDv7 values that cannot be mixed up with one another.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Invalid};

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $parse_error:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The 16 bytes of the UUID, big-endian, so byte order is time order.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// The id from 16 bytes, or `None` if there are not exactly 16.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                Uuid::from_slice(bytes).ok().map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(text: &str) -> Result<Self, Error> {
                let make_error: fn(&str) -> Error = $parse_error;
                Uuid::try_parse(text.trim()).map($name).map_err(|_| make_error(text))
            }
        }
    };
}

uuid_id!(
    /// A client's id. Parsing malformed text gives `CLIENT_NOT_FOUND`: no such client exists.
    ClientId,
    |text| Error::ClientNotFound { id: text.to_owned() }
);
uuid_id!(
    /// A transaction's id; UUIDv7, so ids sort in creation order. Parsing malformed text gives
    /// `TRANSACTION_NOT_FOUND`.
    TransactionId,
    |text| Error::TransactionNotFound { id: text.to_owned() }
);
uuid_id!(
    /// A notification's id: receivers use it to drop duplicate deliveries.
    NotificationId,
    |_| Error::invalid("notification_id", Invalid::Cursor)
);

impl TransactionId {
    /// Reads a history cursor (the id of the last transaction of a page). Malformed text is a
    /// `VALIDATION_ERROR` on `before`: a cursor is an input, not a transaction looked up.
    pub fn parse_cursor(text: &str) -> Result<TransactionId, Error> {
        text.parse()
            .map_err(|_| Error::invalid("before", Invalid::Cursor))
    }
}

/// A fund's id.
pub type FundId = u32;
