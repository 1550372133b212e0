//! `FundError` (`FundException` in Kotlin): every error of the engine, with its stable code and
//! its message in a locale.

/// Every error of the engine: one case per stable code of `docs/errors.md` (`FundException` in
/// Kotlin).
///
/// Each case carries the stable `code` (`"INSUFFICIENT_BALANCE"`, ...) and the human text in
/// `reason`, in the engine's locale (Spanish by default), and in each locale in `reason_es` and
/// `reason_en` (`reasonEs`, `reasonEn`; empty in an error the app made itself). The text is
/// not called `message`: that name belongs to Kotlin's `Throwable.message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum FundError {
    /// `VALIDATION_ERROR`: malformed input; `field` names it (`amount`, `email`, ...).
    #[error("{code}: {reason}")]
    ValidationError {
        code: String,
        reason: String,
        field: String,
        reason_es: String,
        reason_en: String,
    },
    /// `BELOW_MINIMUM`: the message names the fund and its minimum.
    #[error("{code}: {reason}")]
    BelowMinimum {
        code: String,
        reason: String,
        reason_es: String,
        reason_en: String,
    },
    /// `INSUFFICIENT_BALANCE`: `No tiene saldo disponible para vincularse al fondo <name>`.
    #[error("{code}: {reason}")]
    InsufficientBalance {
        code: String,
        reason: String,
        reason_es: String,
        reason_en: String,
    },
    /// `ALREADY_SUBSCRIBED`.
    #[error("{code}: {reason}")]
    AlreadySubscribed {
        code: String,
        reason: String,
        reason_es: String,
        reason_en: String,
    },
    /// `NOT_SUBSCRIBED`.
    #[error("{code}: {reason}")]
    NotSubscribed {
        code: String,
        reason: String,
        reason_es: String,
        reason_en: String,
    },
    /// `FUND_INACTIVE`.
    #[error("{code}: {reason}")]
    FundInactive {
        code: String,
        reason: String,
        reason_es: String,
        reason_en: String,
    },
    /// `IDEMPOTENCY_KEY_REUSED`.
    #[error("{code}: {reason}")]
    IdempotencyKeyReused {
        code: String,
        reason: String,
        reason_es: String,
        reason_en: String,
    },
    /// `FUND_ALREADY_EXISTS`: `createFund` with a fund id that is taken.
    #[error("{code}: {reason}")]
    FundAlreadyExists {
        code: String,
        reason: String,
        reason_es: String,
        reason_en: String,
    },
    /// `CLIENT_NOT_FOUND`.
    #[error("{code}: {reason}")]
    ClientNotFound {
        code: String,
        reason: String,
        reason_es: String,
        reason_en: String,
    },
    /// `FUND_NOT_FOUND`.
    #[error("{code}: {reason}")]
    FundNotFound {
        code: String,
        reason: String,
        reason_es: String,
        reason_en: String,
    },
    /// `TRANSACTION_NOT_FOUND`.
    #[error("{code}: {reason}")]
    TransactionNotFound {
        code: String,
        reason: String,
        reason_es: String,
        reason_en: String,
    },
    /// `STORAGE_ERROR`: the store failed; nothing was committed.
    #[error("{code}: {reason}")]
    StorageError {
        code: String,
        reason: String,
        reason_es: String,
        reason_en: String,
    },
    /// `OUTCOME_UNKNOWN`: a change was sent and whether it committed could not be learned in
    /// time; it may have been saved. Repeat the call with the same idempotency key.
    #[error("{code}: {reason}")]
    OutcomeUnknown {
        code: String,
        reason: String,
        reason_es: String,
        reason_en: String,
    },
}

impl FundError {
    /// The core error with its message rendered in `locale`.
    ///
    /// The case follows the stable code, not the core's variant: the core may report one code
    /// through several variants (every store failure is `STORAGE_ERROR`). The match is
    /// exhaustive: a code added to the core does not compile until it has its case here.
    pub fn from_core(err: fundcore::Error, locale: fundcore::Locale) -> Self {
        use fundcore::ErrorCode as C;
        let code = err.code().as_str().to_owned();
        let reason = err.message(locale);
        // Every locale's text too, for an app that answers each reader in theirs.
        let reason_es = err.message(fundcore::Locale::Es);
        let reason_en = err.message(fundcore::Locale::En);
        match err.code() {
            C::ValidationError => FundError::ValidationError {
                field: err.field().unwrap_or_default().to_owned(),
                code,
                reason,
                reason_es,
                reason_en,
            },
            C::BelowMinimum => FundError::BelowMinimum {
                code,
                reason,
                reason_es,
                reason_en,
            },
            C::InsufficientBalance => FundError::InsufficientBalance {
                code,
                reason,
                reason_es,
                reason_en,
            },
            C::AlreadySubscribed => FundError::AlreadySubscribed {
                code,
                reason,
                reason_es,
                reason_en,
            },
            C::NotSubscribed => FundError::NotSubscribed {
                code,
                reason,
                reason_es,
                reason_en,
            },
            C::FundInactive => FundError::FundInactive {
                code,
                reason,
                reason_es,
                reason_en,
            },
            C::IdempotencyKeyReused => FundError::IdempotencyKeyReused {
                code,
                reason,
                reason_es,
                reason_en,
            },
            C::FundAlreadyExists => FundError::FundAlreadyExists {
                code,
                reason,
                reason_es,
                reason_en,
            },
            C::ClientNotFound => FundError::ClientNotFound {
                code,
                reason,
                reason_es,
                reason_en,
            },
            C::FundNotFound => FundError::FundNotFound {
                code,
                reason,
                reason_es,
                reason_en,
            },
            C::TransactionNotFound => FundError::TransactionNotFound {
                code,
                reason,
                reason_es,
                reason_en,
            },
            C::StorageError => FundError::StorageError {
                code,
                reason,
                reason_es,
                reason_en,
            },
            C::OutcomeUnknown => FundError::OutcomeUnknown {
                code,
                reason,
                reason_es,
                reason_en,
            },
        }
    }

    /// The stable code (`docs/errors.md`).
    pub fn code(&self) -> &str {
        match self {
            FundError::ValidationError { code, .. }
            | FundError::BelowMinimum { code, .. }
            | FundError::InsufficientBalance { code, .. }
            | FundError::AlreadySubscribed { code, .. }
            | FundError::NotSubscribed { code, .. }
            | FundError::FundInactive { code, .. }
            | FundError::IdempotencyKeyReused { code, .. }
            | FundError::FundAlreadyExists { code, .. }
            | FundError::ClientNotFound { code, .. }
            | FundError::FundNotFound { code, .. }
            | FundError::TransactionNotFound { code, .. }
            | FundError::StorageError { code, .. }
            | FundError::OutcomeUnknown { code, .. } => code,
        }
    }

    /// The human message in `locale` (as the engine's own locale gives it in `reason`).
    pub fn reason_in(&self, locale: fundcore::Locale) -> &str {
        let (es, en) = match self {
            FundError::ValidationError {
                reason_es,
                reason_en,
                ..
            }
            | FundError::BelowMinimum {
                reason_es,
                reason_en,
                ..
            }
            | FundError::InsufficientBalance {
                reason_es,
                reason_en,
                ..
            }
            | FundError::AlreadySubscribed {
                reason_es,
                reason_en,
                ..
            }
            | FundError::NotSubscribed {
                reason_es,
                reason_en,
                ..
            }
            | FundError::FundInactive {
                reason_es,
                reason_en,
                ..
            }
            | FundError::IdempotencyKeyReused {
                reason_es,
                reason_en,
                ..
            }
            | FundError::FundAlreadyExists {
                reason_es,
                reason_en,
                ..
            }
            | FundError::ClientNotFound {
                reason_es,
                reason_en,
                ..
            }
            | FundError::FundNotFound {
                reason_es,
                reason_en,
                ..
            }
            | FundError::TransactionNotFound {
                reason_es,
                reason_en,
                ..
            }
            | FundError::StorageError {
                reason_es,
                reason_en,
                ..
            }
            | FundError::OutcomeUnknown {
                reason_es,
                reason_en,
                ..
            } => (reason_es, reason_en),
        };
        match locale {
            fundcore::Locale::Es => es,
            fundcore::Locale::En => en,
        }
    }

    /// The human message.
    pub fn reason(&self) -> &str {
        match self {
            FundError::ValidationError { reason, .. }
            | FundError::BelowMinimum { reason, .. }
            | FundError::InsufficientBalance { reason, .. }
            | FundError::AlreadySubscribed { reason, .. }
            | FundError::NotSubscribed { reason, .. }
            | FundError::FundInactive { reason, .. }
            | FundError::IdempotencyKeyReused { reason, .. }
            | FundError::FundAlreadyExists { reason, .. }
            | FundError::ClientNotFound { reason, .. }
            | FundError::FundNotFound { reason, .. }
            | FundError::TransactionNotFound { reason, .. }
            | FundError::StorageError { reason, .. }
            | FundError::OutcomeUnknown { reason, .. } => reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_keep_their_code_and_localized_message() {
        let err = fundcore::Error::InsufficientBalance {
            fund_name: "FDO-ACCIONES".into(),
        };
        let es = FundError::from_core(err.clone(), fundcore::Locale::Es);
        assert_eq!(es.code(), "INSUFFICIENT_BALANCE");
        assert_eq!(
            es.reason(),
            "No tiene saldo disponible para vincularse al fondo FDO-ACCIONES"
        );
        let en = FundError::from_core(err, fundcore::Locale::En);
        assert_eq!(en.code(), "INSUFFICIENT_BALANCE");
        assert_ne!(en.reason(), es.reason());
        // Either engine gives the text in every locale.
        for mapped in [&es, &en] {
            assert_eq!(mapped.reason_in(fundcore::Locale::Es), es.reason());
            assert_eq!(mapped.reason_in(fundcore::Locale::En), en.reason());
        }
    }

    #[test]
    fn every_code_gets_its_own_case() {
        use fundcore::Error as E;
        let name = || "F".to_owned();
        let errors = [
            E::Validation {
                field: "email",
                problem: fundcore::Invalid::Email,
            },
            E::BelowMinimum {
                fund_name: name(),
                minimum: "1".parse().unwrap(),
            },
            E::InsufficientBalance { fund_name: name() },
            E::AlreadySubscribed { fund_name: name() },
            E::NotSubscribed { fund_name: name() },
            E::FundInactive { fund_name: name() },
            E::IdempotencyKeyReused { key: name() },
            E::FundAlreadyExists { id: 6 },
            E::ClientNotFound { id: name() },
            E::FundNotFound { id: "9".into() },
            E::TransactionNotFound { id: name() },
            E::Storage { detail: name() },
            E::OutcomeUnknown { detail: name() },
        ];
        let mut cases = std::collections::HashSet::new();
        for err in errors {
            let mapped = FundError::from_core(err.clone(), fundcore::Locale::Es);
            assert_eq!(mapped.code(), err.code().as_str());
            assert_eq!(mapped.reason(), err.message(fundcore::Locale::Es));
            cases.insert(std::mem::discriminant(&mapped));
        }
        assert_eq!(
            cases.len(),
            fundcore::ErrorCode::ALL.len(),
            "one FundError case per code"
        );
        let validation = FundError::from_core(
            E::Validation {
                field: "email",
                problem: fundcore::Invalid::Email,
            },
            fundcore::Locale::Es,
        );
        assert!(matches!(validation, FundError::ValidationError { field, .. } if field == "email"));
    }
}
