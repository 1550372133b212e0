//! The one error type of the engine, with the stable codes of docs/errors.md and localized
//! messages.

use rust_decimal::Decimal;

use crate::locale::Locale;

/// Result of every fallible engine operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What is wrong with a malformed input (the reason of a `VALIDATION_ERROR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// The amount text is not a plain decimal number.
    AmountNotANumber,
    /// The amount is zero or negative.
    AmountNotPositive,
    /// The amount has more than 2 fractional digits.
    AmountTooPrecise,
    /// The amount is above 1,000,000,000,000.
    AmountTooLarge,
    /// The name is empty or longer than 100 characters.
    Name,
    /// The email address is not a plausible address.
    Email,
    /// The phone is not an E.164 number.
    Phone,
    /// The channel is not `email` or `sms`.
    Channel,
    /// The page size is outside 1..=200.
    Limit,
    /// The idempotency key is empty, longer than 200 characters or has control characters.
    IdempotencyKey,
    /// The history cursor is not a transaction id.
    Cursor,
    /// The locale is not `es` or `en`.
    Locale,
    /// A configuration value is out of range.
    Config,
}

/// Everything that can go wrong in fundcore.
///
/// [`Error::code`] gives the stable code (docs/errors.md); [`Error::message`] the human text in a
/// locale. `Display` is the Spanish message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Malformed input (`VALIDATION_ERROR`).
    #[error("{}", self.message(Locale::Es))]
    Validation {
        /// The input that is wrong (`amount`, `email`, `phone`, ...).
        field: &'static str,
        /// What is wrong with it.
        problem: Invalid,
    },
    /// Amount below the fund's minimum (`BELOW_MINIMUM`).
    #[error("{}", self.message(Locale::Es))]
    BelowMinimum {
        /// The fund's name.
        fund_name: String,
        /// The fund's minimum subscription.
        minimum: Decimal,
    },
    /// Not enough available balance (`INSUFFICIENT_BALANCE`).
    #[error("{}", self.message(Locale::Es))]
    InsufficientBalance {
        /// The fund's name.
        fund_name: String,
    },
    /// An active subscription to that fund exists (`ALREADY_SUBSCRIBED`).
    #[error("{}", self.message(Locale::Es))]
    AlreadySubscribed {
        /// The fund's name.
        fund_name: String,
    },
    /// Cancel with no active subscription (`NOT_SUBSCRIBED`).
    #[error("{}", self.message(Locale::Es))]
    NotSubscribed {
        /// The fund's name.
        fund_name: String,
    },
    /// The fund does not accept subscriptions (`FUND_INACTIVE`).
    #[error("{}", self.message(Locale::Es))]
    FundInactive {
        /// The fund's name.
        fund_name: String,
    },
    /// The idempotency key was used for a different request (`IDEMPOTENCY_KEY_REUSED`).
    #[error("{}", self.message(Locale::Es))]
    IdempotencyKeyReused {
        /// The key.
        key: String,
    },
    /// Unknown client (`CLIENT_NOT_FOUND`).
    #[error("{}", self.message(Locale::Es))]
    ClientNotFound {
        /// The id as given.
        id: String,
    },
    /// Unknown fund (`FUND_NOT_FOUND`).
    #[error("{}", self.message(Locale::Es))]
    FundNotFound {
        /// The id as given.
        id: u32,
    },
    /// Unknown transaction (`TRANSACTION_NOT_FOUND`).
    #[error("{}", self.message(Locale::Es))]
    TransactionNotFound {
        /// The id as given.
        id: String,
    },
    /// The store failed; nothing was committed (`STORAGE_ERROR`).
    #[error("{}", self.message(Locale::Es))]
    Storage {
        /// What the store reported.
        detail: String,
    },
    /// The store directory is locked by another engine, normally in another process
    /// (`STORAGE_ERROR`): an embedded store belongs to one process at a time.
    #[error("{}", self.message(Locale::Es))]
    StoreInUse {
        /// The store directory.
        path: String,
    },
    /// The engine was opened in another process, typically the parent of a `fork()`
    /// (`STORAGE_ERROR`): its store cannot be used from this process.
    #[error("{}", self.message(Locale::Es))]
    OpenedInAnotherProcess {
        /// The id of the process that opened the engine.
        opened_in: u32,
        /// The id of the process that made the call.
        called_from: u32,
    },
    /// An embedded store cannot be opened in this process (`STORAGE_ERROR`): it was created by
    /// `fork()` after its parent had opened one, and the embedded store's worker threads do not
    /// survive a fork. Engines of a forking program are opened only in the children.
    #[error("{}", self.message(Locale::Es))]
    EmbeddedStoreForked {
        /// The id of the process that opened an embedded store before forking.
        opened_in: u32,
        /// The id of this process.
        called_from: u32,
    },
}

impl Error {
    pub(crate) fn invalid(field: &'static str, problem: Invalid) -> Self {
        Error::Validation { field, problem }
    }

    pub(crate) fn storage(detail: impl std::fmt::Display) -> Self {
        Error::Storage {
            detail: detail.to_string(),
        }
    }

    /// The stable code (docs/errors.md), identical in every language.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation { .. } => "VALIDATION_ERROR",
            Error::BelowMinimum { .. } => "BELOW_MINIMUM",
            Error::InsufficientBalance { .. } => "INSUFFICIENT_BALANCE",
            Error::AlreadySubscribed { .. } => "ALREADY_SUBSCRIBED",
            Error::NotSubscribed { .. } => "NOT_SUBSCRIBED",
            Error::FundInactive { .. } => "FUND_INACTIVE",
            Error::IdempotencyKeyReused { .. } => "IDEMPOTENCY_KEY_REUSED",
            Error::ClientNotFound { .. } => "CLIENT_NOT_FOUND",
            Error::FundNotFound { .. } => "FUND_NOT_FOUND",
            Error::TransactionNotFound { .. } => "TRANSACTION_NOT_FOUND",
            Error::Storage { .. }
            | Error::StoreInUse { .. }
            | Error::OpenedInAnotherProcess { .. }
            | Error::EmbeddedStoreForked { .. } => "STORAGE_ERROR",
        }
    }

    /// The input field at fault, for `VALIDATION_ERROR`.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::Validation { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<sled::Error> for Error {
    fn from(err: sled::Error) -> Self {
        Error::storage(err)
    }
}
