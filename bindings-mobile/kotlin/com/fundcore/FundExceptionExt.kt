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
