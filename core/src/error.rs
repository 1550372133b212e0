//! The one error type of the engine, with the stable codes of docs/errors.md and localized
//! messages.

use rust_decimal::Decimal;

use crate::locale::Locale;
use crate::money::format_cop;

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

impl Invalid {
    fn text(self, locale: Locale) -> &'static str {
        use crate::locale::Locale::{En, Es};
        use Invalid::*;
        match (locale, self) {
            (Es, AmountNotANumber) => "el monto debe ser un número decimal",
            (Es, AmountNotPositive) => "el monto debe ser mayor que cero",
            (Es, AmountTooPrecise) => "el monto admite como máximo 2 decimales",
            (Es, AmountTooLarge) => "el monto no puede superar 1.000.000.000.000",
            (Es, Name) => "el nombre es obligatorio y tiene como máximo 100 caracteres",
            (Es, Email) => "el correo electrónico no es válido",
            (Es, Phone) => "el teléfono debe estar en formato E.164, p. ej. +573001234567",
            (Es, Channel) => "el canal debe ser 'email' o 'sms'",
            (Es, Limit) => "el límite debe estar entre 1 y 200",
            (Es, IdempotencyKey) => {
                "la clave de idempotencia debe tener entre 1 y 200 caracteres visibles"
            }
            (Es, Cursor) => "el cursor debe ser un identificador de transacción",
            (Es, Locale) => "el idioma debe ser 'es' o 'en'",
            (Es, Config) => "valor de configuración fuera de rango",
            (En, AmountNotANumber) => "the amount must be a decimal number",
            (En, AmountNotPositive) => "the amount must be greater than zero",
            (En, AmountTooPrecise) => "the amount allows at most 2 decimal places",
            (En, AmountTooLarge) => "the amount cannot exceed 1,000,000,000,000",
            (En, Name) => "the name is required and has at most 100 characters",
            (En, Email) => "the email address is not valid",
            (En, Phone) => "the phone must be in E.164 format, e.g. +573001234567",
            (En, Channel) => "the channel must be 'email' or 'sms'",
            (En, Limit) => "the limit must be between 1 and 200",
            (En, IdempotencyKey) => {
                "the idempotency key must have between 1 and 200 visible characters"
            }
            (En, Cursor) => "the cursor must be a transaction id",
            (En, Locale) => "the locale must be 'es' or 'en'",
            (En, Config) => "configuration value out of range",
        }
    }
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
            | Error::OpenedInAnotherProcess { .. } => "STORAGE_ERROR",
        }
    }

    /// The input field at fault, for `VALIDATION_ERROR`.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::Validation { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The human message in `locale`.
    pub fn message(&self, locale: Locale) -> String {
        let es = locale == Locale::Es;
        match self {
            Error::Validation { field, problem } => format!("{field}: {}", problem.text(locale)),
            Error::BelowMinimum { fund_name, minimum } if es => format!(
                "El monto mínimo para vincularse al fondo {fund_name} es {}",
                format_cop(*minimum)
            ),
            Error::BelowMinimum { fund_name, minimum } => format!(
                "The minimum amount to subscribe to fund {fund_name} is {}",
                format_cop(*minimum)
            ),
            Error::InsufficientBalance { fund_name } if es => {
                format!("No tiene saldo disponible para vincularse al fondo {fund_name}")
            }
            Error::InsufficientBalance { fund_name } => {
                format!("Insufficient available balance to subscribe to fund {fund_name}")
            }
            Error::AlreadySubscribed { fund_name } if es => {
                format!("Ya tiene una suscripción activa al fondo {fund_name}")
            }
            Error::AlreadySubscribed { fund_name } => {
                format!("You already have an active subscription to fund {fund_name}")
            }
            Error::NotSubscribed { fund_name } if es => {
                format!("No tiene una suscripción activa al fondo {fund_name}")
            }
            Error::NotSubscribed { fund_name } => {
                format!("You have no active subscription to fund {fund_name}")
            }
            Error::FundInactive { fund_name } if es => {
                format!("El fondo {fund_name} no recibe nuevas suscripciones")
            }
            Error::FundInactive { fund_name } => {
                format!("Fund {fund_name} does not accept new subscriptions")
            }
            Error::IdempotencyKeyReused { key } if es => {
                format!("La clave de idempotencia '{key}' ya se usó para otra solicitud")
            }
            Error::IdempotencyKeyReused { key } => {
                format!("The idempotency key '{key}' was already used for a different request")
            }
            Error::ClientNotFound { id } if es => format!("No existe el cliente {id}"),
            Error::ClientNotFound { id } => format!("Client {id} not found"),
            Error::FundNotFound { id } if es => format!("No existe el fondo {id}"),
            Error::FundNotFound { id } => format!("Fund {id} not found"),
            Error::TransactionNotFound { id } if es => format!("No existe la transacción {id}"),
            Error::TransactionNotFound { id } => format!("Transaction {id} not found"),
            Error::Storage { detail } if es => {
                format!("Falla del almacenamiento; no se guardó ningún cambio ({detail})")
            }
            Error::Storage { detail } => {
                format!("The store failed; no change was saved ({detail})")
            }
            Error::StoreInUse { path } if es => format!(
                "El almacén {path} ya está abierto en otro proceso (o en otro motor de este \
                 proceso). Un almacén embebido lo usa un solo proceso a la vez; varios procesos \
                 de trabajo necesitan el almacén PostgreSQL"
            ),
            Error::StoreInUse { path } => format!(
                "The store {path} is already open in another process (or in another engine of \
                 this process). An embedded store is used by one process at a time; several \
                 worker processes need the PostgreSQL store"
            ),
            Error::OpenedInAnotherProcess {
                opened_in,
                called_from,
            } if es => format!(
                "Este motor se abrió en otro proceso (pid {opened_in}) y no se puede usar en el \
                 proceso {called_from}, creado con fork(): abra el motor después del fork, en \
                 cada proceso hijo"
            ),
            Error::OpenedInAnotherProcess {
                opened_in,
                called_from,
            } => format!(
                "This engine was opened in another process (pid {opened_in}) and cannot be used \
                 in process {called_from}, created by fork(): open the engine after the fork, \
                 in each child process"
            ),
        }
    }
}

impl From<sled::Error> for Error {
    fn from(err: sled::Error) -> Self {
        Error::storage(err)
    }
}
