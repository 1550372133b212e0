//! The outbox, shared by every dispatcher: a due entry is claimed with `FOR UPDATE SKIP
//! LOCKED` and a lease (its next attempt moves to the lease's end); a dispatcher that dies
//! mid-send loses its claim when the lease ends, and the entry is tried again.

use std::time::{Duration, SystemTime};

use super::PgStore;
use super::connect::Conn;
use super::outcome::{Lost, Settled, Try, read, sent};
use super::rows::{
    TRANSACTION_WIDTH, col, corrupt, from_sql_time, notice_from, to_sql_time, transaction_from,
};
use super::statements::Q;
use crate::error::{Error, Result};
use crate::ids::{ClientId, NotificationId};
use crate::outbox::OutboxState;
use crate::store::{Claimed, LedgerEntry, Notice};
use crate::time::Timestamp;

pub(super) fn notifications(store: &PgStore, client: ClientId) -> Result<Option<Vec<LedgerEntry>>> {
    store.read(|conn, store| {
        store.trip();
        let rows = conn.query(Q::Notifications, &[&client.0]).map_err(read)?;
        if rows.is_empty() && !store.client_exists(conn, client)? {
            return Ok(None);
        }
        let entries = rows.iter().map(|row| {
            Ok(LedgerEntry {
                transaction: transaction_from(row, 0)?,
                notice: Some(notice_from(row, TRANSACTION_WIDTH)?),
            })
        });
        Ok(Some(entries.collect::<Result<_>>()?))
    })
}

/// The claimed entries of `rows` (the transaction's columns, then the notice's), due `now`.
fn claimed_from(
    rows: &[tokio_postgres::Row],
    now: Timestamp,
    claim: uuid::Uuid,
) -> Result<Vec<Claimed>> {
    let mut claimed: Vec<Claimed> = rows
        .iter()
        .map(|row| {
            let mut notice = notice_from(row, TRANSACTION_WIDTH)?;
            // The lease moved the next attempt; the notice is due now for the engine.
            notice.next_attempt_at = Some(now);
            Ok(Claimed {
                transaction: transaction_from(row, 0)?,
                notice,
                claim: claim.as_bytes().to_vec(),
            })
        })
        .collect::<Result<_>>()?;
    claimed.sort_by_key(|c| c.transaction.id);
    Ok(claimed)
}

pub(super) fn claim_due(
    store: &PgStore,
    now: Timestamp,
    limit: usize,
    lease: Duration,
) -> Result<Vec<Claimed>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let lease_end = now.plus(lease);
    // Unique per claim; v7 only because the crate builds v7 ids already.
    let claim = uuid::Uuid::now_v7();
    // A claim whose reply was lost is read back by its id: what it took is sent now; when it
    // took nothing (it did not commit), the claim is made again. (A claim still on its way
    // commits later or never; what it takes is sent when its lease ends.)
    let look_up = |conn: &mut Conn, store: &PgStore| -> Try<Settled<Vec<Claimed>>> {
        store.trip();
        let rows = conn.query(Q::ClaimedBy, &[&claim]).map_err(read)?;
        Ok(if rows.is_empty() {
            Settled::NotCommitted
        } else {
            Settled::Committed(claimed_from(&rows, now, claim)?)
        })
    };
    store.run(Lost::LookUp(Box::new(look_up)), |conn, store| {
        store.trip();
        let rows = conn
            .query(
                Q::ClaimDue,
                &[&to_sql_time(now), &limit, &to_sql_time(lease_end), &claim],
            )
            .map_err(sent)?;
        Ok(claimed_from(&rows, now, claim)?)
    })
}

pub(super) fn settle(store: &PgStore, claimed: &Claimed, notice: &Notice) -> Result<()> {
    let claim = uuid::Uuid::from_slice(&claimed.claim)
        .map_err(|_| Error::storage("a claim that this store did not make"))?;
    let tx = &claimed.transaction;
    let attempts = i32::try_from(notice.attempts).unwrap_or(i32::MAX);
    // Guarded by the claim, which settling clears: sent again, it changes nothing.
    store.run(Lost::Repeat, |conn, store| {
        store.trip();
        conn.execute(
            Q::Settle,
            &[
                &tx.client_id.0,
                &tx.id.0,
                &notice.status.as_str(),
                &attempts,
                &notice.last_error,
                &notice.delivered_at.map(to_sql_time),
                &notice.next_attempt_at.map(to_sql_time),
                &claim,
            ],
        )
        .map_err(sent)?;
        Ok(())
    })
}

pub(super) fn requeue_failed(store: &PgStore, now: Timestamp, limit: usize) -> Result<usize> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Sent again it would requeue whatever failed since and count only that: the count of a
    // lost reply is not known (OUTCOME_UNKNOWN; requeueing again is safe).
    store.run(Lost::Unknown, |conn, store| {
        store.trip();
        let requeued = conn
            .execute(Q::RequeueFailed, &[&to_sql_time(now), &limit])
            .map_err(sent)?;
        Ok(usize::try_from(requeued).unwrap_or(usize::MAX))
    })
}

pub(super) fn failed(
    store: &PgStore,
    limit: usize,
    before: Option<NotificationId>,
) -> Result<Vec<LedgerEntry>> {
    let before = before.map_or(uuid::Uuid::max(), |id| id.0);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    store.read(|conn, store| {
        store.trip();
        let rows = conn
            .query(Q::FailedNotifications, &[&before, &limit])
            .map_err(read)?;
        let entries = rows.iter().map(|row| {
            Ok(LedgerEntry {
                transaction: transaction_from(row, 0)?,
                notice: Some(notice_from(row, TRANSACTION_WIDTH)?),
            })
        });
        Ok(entries.collect::<Result<_>>()?)
    })
}

pub(super) fn state(store: &PgStore) -> Result<OutboxState> {
    store.read(|conn, store| {
        store.trip();
        let row = conn.query_one(Q::OutboxState, &[]).map_err(read)?;
        let count = |at: usize| -> Result<u64> {
            let count: i64 = col(&row, at)?;
            u64::try_from(count).map_err(|_| corrupt("count", &count.to_string()))
        };
        Ok(OutboxState {
            pending: count(0)?,
            failed: count(1)?,
            delivered: count(2)?,
            oldest_pending_at: col::<Option<SystemTime>>(&row, 3)?.map(from_sql_time),
            oldest_pending_age: None,
        })
    })
}
