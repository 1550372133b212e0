//! A lost reply: a change was sent (a write outside a transaction block, or a COMMIT) and the
//! connection then failed in any way (reset, end of stream, timeout, the server going away).
//! Whether it committed is learned on a fresh connection, in a way that also makes sure the
//! lost statement can no longer commit afterwards, so the answer stays true:
//!
//! - a change that is the same records whatever happened before ([`Lost::Repeat`]: a new
//!   client with its engine-chosen id, a settled notification, the seed) is sent again;
//! - a guarded change ([`Lost::LookUp`]: a subscribe or cancel, a fund created, an
//!   administrative update) is looked up by its id after the statement that decides it (the
//!   same guarded write sent again, or a lock on the row it changed) has waited for any
//!   earlier one still running on the server;
//! - when neither can be done before the deadline, the answer is OUTCOME_UNKNOWN.

use std::time::Instant;

use super::connect::{Conn, PgError};
use super::{
    MAX_SERIALIZATION_RETRIES, PgStore, RECONNECT_PAUSE as LOOKUP_PAUSE, retry_delay, sleep_before,
};
use crate::error::{Error, Result};

/// Why one try at an operation failed.
pub(super) enum Failure {
    /// The database said no, or the connection failed; `sent` says what may have committed.
    Db { error: PgError, sent: Sent },
    /// A rule or a record said no: the answer, not a store failure.
    Core(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Core(error)
    }
}

pub(super) type Try<T> = std::result::Result<T, Failure>;

/// What a failed try had sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sent {
    /// Nothing that changes data.
    Nothing,
    /// Changes inside a transaction block whose COMMIT was not sent: they cannot commit.
    Uncommitted,
    /// A change outside a transaction block, or a COMMIT: it may have committed.
    MaybeCommitted,
}

/// `map_err` for a read: nothing was written.
pub(super) fn read(error: PgError) -> Failure {
    Failure::Db {
        error,
        sent: Sent::Nothing,
    }
}

/// `map_err` for a write inside a transaction block, before its COMMIT.
pub(super) fn uncommitted(error: PgError) -> Failure {
    Failure::Db {
        error,
        sent: Sent::Uncommitted,
    }
}

/// `map_err` for a write outside a transaction block, or a COMMIT: it may have committed.
pub(super) fn sent(error: PgError) -> Failure {
    Failure::Db {
        error,
        sent: Sent::MaybeCommitted,
    }
}

/// What an outcome's lookup found.
pub(super) enum Settled<T> {
    /// The change committed (before the lookup, or by it): the call's answer.
    Committed(T),
    /// Nothing committed, and nothing sent before can commit any more: the operation is tried
    /// again from its start, as after a failure before anything was written.
    NotCommitted,
}

/// A lookup: it runs on a fresh connection and must leave no statement of the lost try able
/// to commit after it.
pub(super) type LookUp<'a, T> = dyn FnMut(&mut Conn, &PgStore) -> Try<Settled<T>> + 'a;

/// How an operation's lost reply is settled.
pub(super) enum Lost<'a, T> {
    /// Nothing is known of it: OUTCOME_UNKNOWN at once (reads never get here).
    Unknown,
    /// The operation is the same records however often it is sent: send it again.
    Repeat,
    /// Look the change up.
    LookUp(Box<LookUp<'a, T>>),
}

impl PgStore {
    /// Runs `look_up` on fresh connections until it answers or `deadline` passes
    /// (OUTCOME_UNKNOWN, naming `lost`, the failure that lost the reply).
    pub(super) fn look_up<T>(
        &self,
        deadline: Instant,
        lost: &PgError,
        look_up: &mut LookUp<'_, T>,
    ) -> Result<Settled<T>> {
        let mut serialization_failures = 0;
        loop {
            let error = match self.checkout(deadline, true) {
                Ok(mut conn) => match look_up(&mut conn, self) {
                    Ok(settled) => return Ok(settled),
                    Err(Failure::Core(error)) => return Err(error),
                    Err(Failure::Db { error, .. }) => error,
                },
                Err(error) => error,
            };
            if error.retry_reason().is_some() && serialization_failures < MAX_SERIALIZATION_RETRIES
            {
                serialization_failures += 1;
                sleep_before(retry_delay(serialization_failures), deadline);
                continue;
            }
            // A standby reached before the promotion is waited out; an answer that cannot be
            // trusted (a refusal, a commit that may not be replicated) ends the lookup.
            let waiting_for_primary = error.read_only_server();
            let final_answer = (error.refused_by_server() && !waiting_for_primary)
                || matches!(error, PgError::NotReplicated);
            if final_answer || Instant::now() + LOOKUP_PAUSE >= deadline {
                return Err(self.outcome_unknown(format!(
                    "{lost}; the lookup of its outcome failed: {error}"
                )));
            }
            sleep_before(LOOKUP_PAUSE, deadline);
        }
    }
}
