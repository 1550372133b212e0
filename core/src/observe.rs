//! What an engine tells the world about its work, through the `tracing` and `metrics` facades:
//! a span and a closing event for every operation (operation, ids, outcome, never contact data),
//! and counters and a duration histogram. The library installs no subscriber and no recorder;
//! an application that installs them gets everything below, one that does not pays almost
//! nothing (each call checks a global once).
//!
//! Metric names and labels (docs/operations.md, "Observability"):
//! - `fundcore_operations_total{operation, result}`: calls by operation and result (`ok` or
//!   the error code);
//! - `fundcore_operation_duration_seconds{operation}`: how long each call took;
//! - `fundcore_store_retries_total{reason}`: store transactions tried again (`serialization`,
//!   `deadlock`, PostgreSQL);
//! - `fundcore_store_lost_races_total`: subscribes and cancels read again after a concurrent
//!   change to the client or fund (PostgreSQL);
//! - `fundcore_store_lost_replies_total`: changes whose reply was lost and whose outcome was
//!   looked up on a fresh connection (PostgreSQL);
//! - `fundcore_deliveries_total{outcome}`: delivery attempts by outcome (`delivered`,
//!   `retried`, `failed`).

use std::fmt::Display;
use std::time::Instant;

use crate::error::Result;

/// Runs one engine operation inside its span, then records its outcome and duration.
/// `client` and `fund` are ids only: nothing a person could be recognised by.
pub(crate) fn operation<T>(
    operation: &'static str,
    client: Option<&dyn Display>,
    fund: Option<u32>,
    work: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let span = tracing::debug_span!(
        "fundcore",
        operation,
        client_id = client.map(tracing::field::display),
        fund_id = fund,
    );
    let _entered = span.enter();
    let started = Instant::now();
    let outcome = work();
    let seconds = started.elapsed().as_secs_f64();
    let result = match &outcome {
        Ok(_) => "ok",
        Err(err) => err.code().as_str(),
    };
    match &outcome {
        Err(err) if err.kind() == crate::ErrorKind::Unavailable => {
            tracing::warn!(result, seconds, "operation failed: {}", err.code())
        }
        _ => tracing::debug!(result, seconds, "operation done"),
    }
    metrics::counter!("fundcore_operations_total", "operation" => operation, "result" => result)
        .increment(1);
    metrics::histogram!("fundcore_operation_duration_seconds", "operation" => operation)
        .record(seconds);
    outcome
}

/// A store transaction tried again (`serialization` or `deadlock`).
// Only the PostgreSQL store counts these.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn store_retry(reason: &'static str) {
    tracing::debug!(reason, "store transaction retried");
    metrics::counter!("fundcore_store_retries_total", "reason" => reason).increment(1);
}

/// A subscribe or cancel read again after a concurrent change.
// Only the PostgreSQL store counts these.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn lost_race() {
    metrics::counter!("fundcore_store_lost_races_total").increment(1);
}

/// A change whose reply was lost (the connection failed after it was sent), settled by a
/// lookup on a fresh connection.
// Only the PostgreSQL store counts these.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn lost_reply() {
    tracing::warn!("the connection failed after a change was sent; looking its outcome up");
    metrics::counter!("fundcore_store_lost_replies_total").increment(1);
}

/// A delivery attempt's outcome (`delivered`, `retried`, `failed`).
pub(crate) fn delivery(outcome: &'static str) {
    metrics::counter!("fundcore_deliveries_total", "outcome" => outcome).increment(1);
}
