//! The one error type of the engine, with the stable codes of docs/errors.md, the kind of
//! failure each code is, and localized messages (texts.rs).

use rust_decimal::Decimal;

use crate::locale::Locale;

/// Result of every fallible engine operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

named_enum! {
    /// The stable error codes of docs/errors.md, identical in every language.
    ///
    /// Deliberately exhaustive (no `#[non_exhaustive]`): each binding maps every code with a `match`
    /// the compiler checks, so a new code does not build until every binding says what it becomes.
    #[derive(strum::EnumString)]
    pub enum ErrorCode in "SCREAMING_SNAKE_CASE" {
        /// Malformed input.
        ValidationError,
        /// Amount below the fund's minimum.
        BelowMinimum,
        /// Not enough available balance.
        InsufficientBalance,
        /// An active subscription to that fund exists.
        AlreadySubscribed,
        /// Cancel with no active subscription to that fund.
        NotSubscribed,
        /// Subscribe to a fund that is not active.
        FundInactive,
        /// Same idempotency key, different request.
        IdempotencyKeyReused,
        /// `create_fund` with an id that is taken.
        FundAlreadyExists,
        /// Unknown client id.
        ClientNotFound,
        /// Unknown fund id.
        FundNotFound,
        /// Unknown transaction id.
        TransactionNotFound,
        /// The store failed; nothing was committed.
        StorageError,
        /// A change was sent to the database and its outcome could not be learned within the
        /// operation's deadline: it may have been saved. Repeat the call with the same
        /// idempotency key.
        OutcomeUnknown,
    }
}

impl ErrorCode {
    /// What kind of failure the code is.
    pub fn kind(self) -> ErrorKind {
        use ErrorCode::*;
        match self {
            ValidationError | BelowMinimum => ErrorKind::Invalid,
            InsufficientBalance | AlreadySubscribed | NotSubscribed | FundInactive
            | IdempotencyKeyReused | FundAlreadyExists => ErrorKind::Conflict,
            ClientNotFound | FundNotFound | TransactionNotFound => ErrorKind::NotFound,
            StorageError | OutcomeUnknown => ErrorKind::Unavailable,
        }
    }

    /// The HTTP status a REST API answers with (docs/errors.md).
    pub fn http_status(self) -> u16 {
        self.kind().http_status()
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

named_enum! {
    /// The four kinds of failure, for callers that handle errors by kind (exception classes,
    /// HTTP statuses). Exhaustive for the same reason as [`ErrorCode`].
    pub enum ErrorKind in "snake_case" {
        /// The input is wrong; the same call will fail again (`VALIDATION_ERROR`,
        /// `BELOW_MINIMUM`).
        Invalid,
        /// The request conflicts with the current state (balance, subscription, idempotency
        /// key).
        Conflict,
        /// An id names nothing.
        NotFound,
        /// The store failed or could not be reached; the call may succeed later
        /// (`STORAGE_ERROR`, `OUTCOME_UNKNOWN`).
        Unavailable,
    }
}

impl ErrorKind {
    /// 422, 409, 404 or 503.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Invalid => 422,
            ErrorKind::Conflict => 409,
            ErrorKind::NotFound => 404,
            ErrorKind::Unavailable => 503,
        }
    }
}

/// What is wrong with a malformed input (the reason of a `VALIDATION_ERROR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalid {
    /// The amount text is not a plain decimal number.
    AmountNotANumber,
    /// The amount text is also a whole number written with a thousands dot (`"75.000"`).
    AmountAmbiguous,
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
    /// The text is not an id (a UUID; a fund id is an integer).
    Id,
    /// The fund category is not `FPV` or `FIC`.
    Category,
    /// The actor of an administrative change is empty, too long or has control characters.
    Actor,
    /// The request id of an administrative change is empty, too long or has control characters.
    RequestId,
    /// A change that changes nothing: no field was given.
    NoChange,
    /// A range whose start is after its end.
    Range,
    /// The transaction kind is not `subscription` or `cancellation`.
    Kind,
}

/// Everything that can go wrong in fundcore.
///
/// [`Error::code`] gives the stable code (docs/errors.md); [`Error::message`] the human text in a
/// locale. `Display` is the Spanish message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// A fund with that id exists already (`FUND_ALREADY_EXISTS`).
    #[error("{}", self.message(Locale::Es))]
    FundAlreadyExists {
        /// The id asked for.
        id: u32,
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
        /// The id as given (any integer: one outside the id range names no fund either).
        id: String,
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
    /// A change was sent to the database and whether it committed could not be learned within
    /// the operation's deadline (`OUTCOME_UNKNOWN`): it may have been saved. Repeating the call
    /// with the same idempotency key gives the first result if it was, and makes the change if
    /// it was not.
    #[error("{}", self.message(Locale::Es))]
    OutcomeUnknown {
        /// What the store saw (the network failure), never a secret.
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
    /// The destination of a backup exists (`VALIDATION_ERROR` on `field`): a backup never
    /// overwrites anything, so it is written only to a path that does not exist yet.
    #[error("{}", self.message(Locale::Es))]
    DestinationExists {
        /// The input that names the destination (`dest`).
        field: &'static str,
        /// The destination as given.
        path: String,
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
    /// The embedded store's disk failed: it is full, or it reported an I/O error on a write or
    /// a sync. The store takes no further change until it is reopened (a failed sync cannot be
    /// retried); every change acknowledged before is on disk. The change that met the failure
    /// while its writes were under way may or may not be on disk (`OUTCOME_UNKNOWN`: repeat it
    /// with the same idempotency key once the store is reopened); a change refused because of
    /// an earlier failure was not saved (`STORAGE_ERROR`).
    #[error("{}", self.message(Locale::Es))]
    DiskFault {
        /// What failed.
        fault: DiskFault,
        /// Whether the change that met it had begun writing (so it may have been saved).
        in_doubt: bool,
        /// What the system said.
        detail: String,
    },
    /// The embedded store is damaged on disk and cannot be opened (`STORAGE_ERROR`): a file of
    /// it is corrupt or cut short.
    #[error("{}", self.message(Locale::Es))]
    StoreDamaged {
        /// The store directory.
        path: String,
        /// What was found.
        detail: String,
    },
}

/// What failed under an embedded store ([`Error::DiskFault`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFault {
    /// The disk is full (ENOSPC, or a full quota).
    Full,
    /// The disk reported an I/O error (EIO) on a write or a sync.
    Io,
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

    // Only the PostgreSQL store can lose a reply.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn outcome_unknown(detail: impl std::fmt::Display) -> Self {
        Error::OutcomeUnknown {
            detail: detail.to_string(),
        }
    }

    /// The stable code (docs/errors.md), identical in every language.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Validation { .. } => ErrorCode::ValidationError,
            Error::DestinationExists { .. } => ErrorCode::ValidationError,
            Error::BelowMinimum { .. } => ErrorCode::BelowMinimum,
            Error::InsufficientBalance { .. } => ErrorCode::InsufficientBalance,
            Error::AlreadySubscribed { .. } => ErrorCode::AlreadySubscribed,
            Error::NotSubscribed { .. } => ErrorCode::NotSubscribed,
            Error::FundInactive { .. } => ErrorCode::FundInactive,
            Error::IdempotencyKeyReused { .. } => ErrorCode::IdempotencyKeyReused,
            Error::FundAlreadyExists { .. } => ErrorCode::FundAlreadyExists,
            Error::ClientNotFound { .. } => ErrorCode::ClientNotFound,
            Error::FundNotFound { .. } => ErrorCode::FundNotFound,
            Error::TransactionNotFound { .. } => ErrorCode::TransactionNotFound,
            Error::Storage { .. }
            | Error::StoreInUse { .. }
            | Error::OpenedInAnotherProcess { .. }
            | Error::EmbeddedStoreForked { .. }
            | Error::DiskFault {
                in_doubt: false, ..
            }
            | Error::StoreDamaged { .. } => ErrorCode::StorageError,
            Error::OutcomeUnknown { .. } | Error::DiskFault { in_doubt: true, .. } => {
                ErrorCode::OutcomeUnknown
            }
        }
    }

    /// What kind of failure this is (the kind of its code).
    pub fn kind(&self) -> ErrorKind {
        self.code().kind()
    }

    /// The same error about input `field` (a `VALIDATION_ERROR` from a shared check, such as
    /// the amount rules applied to a fund's `minimum`); other errors are returned unchanged.
    pub fn on_field(self, field: &'static str) -> Error {
        match self {
            Error::Validation { problem, .. } => Error::Validation { field, problem },
            other => other,
        }
    }

    /// The input field at fault, for `VALIDATION_ERROR`.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::Validation { field, .. } | Error::DestinationExists { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Which kind of id a text failed to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    /// A client id (UUID).
    Client,
    /// A transaction id (UUID).
    Transaction,
    /// A notification id (UUID).
    Notification,
    /// An audit event id (UUID).
    AuditEvent,
    /// A fund id (an integer).
    Fund,
}

impl IdKind {
    /// The input field that names this kind of id.
    pub fn field(self) -> &'static str {
        match self {
            IdKind::Client => "client_id",
            IdKind::Transaction => "transaction_id",
            IdKind::Notification => "notification_id",
            IdKind::AuditEvent => "audit_event_id",
            IdKind::Fund => "fund_id",
        }
    }
}

/// A text that is not an id of its kind (from `FromStr` of the id types).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a {kind:?} id")]
pub struct ParseIdError {
    /// The kind of id expected.
    pub kind: IdKind,
    /// The text as given.
    pub text: String,
}

impl ParseIdError {
    /// The answer to a lookup by this text: an id that cannot exist names nothing, so it is the
    /// not-found error of its kind (docs/operations.md), like any unknown id. Notification ids
    /// are never looked up; a malformed one is a validation error.
    pub fn into_lookup_error(self) -> Error {
        match self.kind {
            IdKind::Client => Error::ClientNotFound { id: self.text },
            IdKind::Transaction => Error::TransactionNotFound { id: self.text },
            IdKind::Fund => Error::FundNotFound { id: self.text },
            IdKind::Notification | IdKind::AuditEvent => {
                Error::invalid(self.kind.field(), Invalid::Id)
            }
        }
    }
}

impl From<ParseIdError> for Error {
    /// A malformed id given as a value (not looked up): a validation error on its field.
    fn from(err: ParseIdError) -> Self {
        Error::invalid(err.kind.field(), Invalid::Id)
    }
}

impl From<sled::Error> for Error {
    /// A full disk or an I/O error is [`Error::DiskFault`], corrupt files
    /// [`Error::StoreDamaged`], anything else [`Error::Storage`].
    fn from(err: sled::Error) -> Self {
        crate::store::sled::io_errors::from_sled(err)
    }
}
