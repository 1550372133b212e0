// Hand-written companion of the generated bindings (compile it together with
// fundcore_mobile.kt): the stable code and the human message of any FundException, without a
// `when` over its cases at every call site.
package com.fundcore

/** The stable code of the error (`"INSUFFICIENT_BALANCE"`, ...), identical in every language. */
val FundException.code: String
    get() = when (this) {
        is FundException.ValidationException -> code
        is FundException.BelowMinimum -> code
        is FundException.InsufficientBalance -> code
        is FundException.AlreadySubscribed -> code
        is FundException.NotSubscribed -> code
        is FundException.FundInactive -> code
        is FundException.IdempotencyKeyReused -> code
        is FundException.FundAlreadyExists -> code
        is FundException.ClientNotFound -> code
        is FundException.FundNotFound -> code
        is FundException.TransactionNotFound -> code
        is FundException.StorageException -> code
        is FundException.OutcomeUnknown -> code
    }

/** The human message, in the engine's locale (Spanish by default). */
val FundException.reason: String
    get() = when (this) {
        is FundException.ValidationException -> reason
        is FundException.BelowMinimum -> reason
        is FundException.InsufficientBalance -> reason
        is FundException.AlreadySubscribed -> reason
        is FundException.NotSubscribed -> reason
        is FundException.FundInactive -> reason
        is FundException.IdempotencyKeyReused -> reason
        is FundException.FundAlreadyExists -> reason
        is FundException.ClientNotFound -> reason
        is FundException.FundNotFound -> reason
        is FundException.TransactionNotFound -> reason
        is FundException.StorageException -> reason
        is FundException.OutcomeUnknown -> reason
    }

/** The human message in Spanish, whatever the engine's locale (empty in an error the app made). */
val FundException.reasonEs: String
    get() = when (this) {
        is FundException.ValidationException -> reasonEs
        is FundException.BelowMinimum -> reasonEs
        is FundException.InsufficientBalance -> reasonEs
        is FundException.AlreadySubscribed -> reasonEs
        is FundException.NotSubscribed -> reasonEs
        is FundException.FundInactive -> reasonEs
        is FundException.IdempotencyKeyReused -> reasonEs
        is FundException.FundAlreadyExists -> reasonEs
        is FundException.ClientNotFound -> reasonEs
        is FundException.FundNotFound -> reasonEs
        is FundException.TransactionNotFound -> reasonEs
        is FundException.StorageException -> reasonEs
        is FundException.OutcomeUnknown -> reasonEs
    }

/** The human message in English, whatever the engine's locale (empty in an error the app made). */
val FundException.reasonEn: String
    get() = when (this) {
        is FundException.ValidationException -> reasonEn
        is FundException.BelowMinimum -> reasonEn
        is FundException.InsufficientBalance -> reasonEn
        is FundException.AlreadySubscribed -> reasonEn
        is FundException.NotSubscribed -> reasonEn
        is FundException.FundInactive -> reasonEn
        is FundException.IdempotencyKeyReused -> reasonEn
        is FundException.FundAlreadyExists -> reasonEn
        is FundException.ClientNotFound -> reasonEn
        is FundException.FundNotFound -> reasonEn
        is FundException.TransactionNotFound -> reasonEn
        is FundException.StorageException -> reasonEn
        is FundException.OutcomeUnknown -> reasonEn
    }
