//! The business rules as pure functions: what a subscribe or cancel may do given what the store
//! holds, and how a delivery attempt moves a notification along. No store, no clock, no I/O:
//! the engine reads, asks these, then writes.

use std::time::Duration;

use rust_decimal::Decimal;

use crate::client::Client;
use crate::error::{Error, Invalid, Result};
use crate::fund::Fund;
use crate::ledger::{Subscription, TransactionKind};
use crate::limits::{MAX_IDEMPOTENCY_KEY_CHARS, MINOR_DIGITS};
use crate::money::to_minor_units;
use crate::outbox::{DeliveryError, NotificationStatus};
use crate::store::Notice;
use crate::time::Timestamp;

/// Checks an idempotency key: 1 to 200 characters, none of them control characters.
pub(crate) fn validate_idempotency_key(key: &str) -> Result<&str> {
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_IDEMPOTENCY_KEY_CHARS || key.chars().any(char::is_control) {
        return Err(Error::invalid("idempotency_key", Invalid::IdempotencyKey));
    }
    Ok(key)
}

/// May `client` subscribe `amount` (already validated) to `fund`, given its current
/// `subscription` to that fund? The checks run in this order, so each refusal names the first
/// rule broken.
pub(crate) fn check_subscribe(
    fund: &Fund,
    amount: Decimal,
    client: &Client,
    subscription: Option<&Subscription>,
) -> Result<()> {
    if !fund.active {
        return Err(Error::FundInactive {
            fund_name: fund.name.clone(),
        });
    }
    if amount < fund.minimum {
        return Err(Error::BelowMinimum {
            fund_name: fund.name.clone(),
            minimum: fund.minimum,
        });
    }
    if subscription.is_some() {
        return Err(Error::AlreadySubscribed {
            fund_name: fund.name.clone(),
        });
    }
    if client.balance < amount {
        return Err(Error::InsufficientBalance {
            fund_name: fund.name.clone(),
        });
    }
    Ok(())
}

/// The amount a cancellation refunds: exactly what the active subscription stored.
pub(crate) fn check_cancel(fund: &Fund, subscription: Option<&Subscription>) -> Result<Decimal> {
    subscription
        .map(|subscription| subscription.amount)
        .ok_or_else(|| Error::NotSubscribed {
            fund_name: fund.name.clone(),
        })
}

/// The balance after a transaction of `kind` for `amount`.
pub(crate) fn balance_after(balance: Decimal, kind: TransactionKind, amount: Decimal) -> Decimal {
    let after = to_minor_units(match kind {
        TransactionKind::Subscription => balance - amount,
        TransactionKind::Cancellation => balance + amount,
    });
    // The checks above never let a balance go below zero, and every stored amount has exactly
    // the currency's digits; the stores and the invariants rely on both. Only a bug breaks them.
    assert!(after >= Decimal::ZERO, "negative balance {after}");
    assert_eq!(
        after.scale(),
        MINOR_DIGITS,
        "balance {after} not in minor units"
    );
    after
}

/// Retry policy of the outbox.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

/// What a delivery attempt came to, for the dispatch report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Attempt {
    Delivered,
    Retried,
    Failed,
}

/// The notice after one delivery attempt that finished at `at` with `outcome`.
pub(crate) fn after_attempt(
    mut notice: Notice,
    outcome: std::result::Result<(), DeliveryError>,
    at: Timestamp,
    policy: RetryPolicy,
) -> (Notice, Attempt) {
    notice.attempts = notice.attempts.saturating_add(1);
    notice.next_attempt_at = None;
    let attempt = match outcome {
        Ok(()) => {
            notice.status = NotificationStatus::Delivered;
            notice.delivered_at = Some(at);
            Attempt::Delivered
        }
        Err(DeliveryError::Retryable(reason)) if notice.attempts < policy.max_attempts => {
            let delay = backoff(notice.attempts, policy.base_delay, policy.max_delay);
            notice.next_attempt_at = Some(at.plus(delay));
            notice.last_error = Some(reason);
            Attempt::Retried
        }
        Err(DeliveryError::Retryable(reason) | DeliveryError::Permanent(reason)) => {
            notice.status = NotificationStatus::Failed;
            notice.last_error = Some(reason);
            Attempt::Failed
        }
    };
    (notice, attempt)
}

/// Delay before attempt `failed_attempts + 1`: `base * 2^(failed_attempts - 1)`, at most `max`.
pub(crate) fn backoff(failed_attempts: u32, base: Duration, max: Duration) -> Duration {
    let exponent = failed_attempts.saturating_sub(1).min(30);
    base.saturating_mul(1u32 << exponent).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_secs(5);
        let max = Duration::from_secs(60);
        let delays: Vec<u64> = (1..=6).map(|n| backoff(n, base, max).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 60, 60]);
        assert_eq!(backoff(u32::MAX, base, max), max);
    }
}
