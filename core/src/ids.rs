//! Typed identifiers: UUIDv7 values that cannot be mixed up with one another.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, IdKind, Invalid, ParseIdError};

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
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
            type Err = ParseIdError;

            fn from_str(text: &str) -> Result<Self, ParseIdError> {
                Uuid::try_parse(text.trim()).map($name).map_err(|_| ParseIdError {
                    kind: $kind,
                    text: text.to_owned(),
                })
            }
        }
    };
}

uuid_id!(
    /// A client's id. Malformed text is a [`ParseIdError`]; looked up, it is `CLIENT_NOT_FOUND`
    /// ([`ParseIdError::into_lookup_error`]).
    ClientId,
    IdKind::Client
);
impl ClientId {
    /// A new UUIDv7 client id, for [`Engine::register_client_with_id`](crate::Engine::register_client_with_id).
    pub fn generate() -> ClientId {
        ClientId(Uuid::now_v7())
    }
}

uuid_id!(
    /// A transaction's id; UUIDv7, so ids sort in creation order. Malformed text is a
    /// [`ParseIdError`].
    TransactionId,
    IdKind::Transaction
);
uuid_id!(
    /// A notification's id: receivers use it to drop duplicate deliveries.
    NotificationId,
    IdKind::Notification
);
uuid_id!(
    /// An audit event's id; UUIDv7, so events sort in the order they happened.
    AuditEventId,
    IdKind::AuditEvent
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

/// A fund id from an integer of any width, as callers in other languages hold one: a value
/// outside [`FundId`]'s range names no fund, so it is `FUND_NOT_FOUND` like any unknown id.
pub fn fund_id_from_integer(value: i128) -> Result<FundId, Error> {
    FundId::try_from(value).map_err(|_| Error::FundNotFound {
        id: value.to_string(),
    })
}

/// A fund id from text (e.g. a URL path segment): an integer as [`fund_id_from_integer`];
/// anything else is a `VALIDATION_ERROR` on `fund_id`.
pub fn parse_fund_id(text: &str) -> Result<FundId, Error> {
    let text = text.trim();
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(IdKind::Fund.field(), Invalid::Id));
    }
    match text.strip_prefix('+').unwrap_or(text).parse::<i128>() {
        Ok(value) => fund_id_from_integer(value),
        // More digits than any integer type holds: still a number, and no fund has it.
        Err(_) => Err(Error::FundNotFound {
            id: text.to_owned(),
        }),
    }
}
