//! A subscribe or cancel: the engine decides, the store writes every record in one guarded
//! statement.
//!
//! - Two round trips in general: [`Q::ReadMoney`] reads the client, the fund as the catalogue
//!   has it now, the client's subscription to it and what the idempotency key names (one
//!   snapshot); the engine decides; [`Q::WriteMoney`] writes every record, guarded by the
//!   client's and the fund's versions, so it commits only if neither changed since the read.
//!   The client's row is the only lock it takes; the fund's row is only read. A lost race
//!   reads again; after [`OPTIMISTIC_TRIES`] lost races the change runs in a transaction
//!   block that locks the client's row first.
//! - One round trip when this process has seen the client and the fund ([`Known`]): the
//!   engine decides on what it saw and the guarded write is all that is sent. If anything
//!   changed since (another process, a fund update, an idempotency key used before), the guard
//!   or the key's unique index stops the write, nothing is written, and the change takes the
//!   two-trip path. A rule's refusal is only ever given on a fresh read.
//! - A lost reply is settled by sending the same guarded write again on a fresh connection
//!   ([`write_again`]): it commits the change if the first did not (the guard still holds),
//!   and is stopped by the guard if the first did, which the transaction's id then shows.

use std::cell::RefCell;

use tokio_postgres::Row;

use super::PgStore;
use super::connect::{Conn, PgError};
use super::known::{FundGuard, Versions};
use super::outcome::{Lost, Settled, Try, read, sent, uncommitted};
use super::rows::{
    TRANSACTION_WIDTH, client_from, col, corrupt, fund_from, fund_id, subscription_from,
    transaction_from,
};
use super::statements::Q;
use crate::error::{Error, Result};
use crate::ids::{ClientId, FundId, TransactionId};
use crate::ledger::Transaction;
use crate::store::{Decision, IdempotencyRecord, MoneyMove, MoneyView, Request};

use super::rows::to_sql_time;

/// Lost optimistic races before a change locks the client's row instead.
const OPTIMISTIC_TRIES: u32 = 3;

/// The unique index a guarded write runs into when its idempotency key was used before.
const IDEMPOTENCY_KEY_CONSTRAINT: &str = "fundcore_idempotency_keys_pkey";

/// How a guarded write ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Written {
    /// The change is in the database.
    Committed,
    /// The guard found the client or the fund changed since they were read: nothing written.
    Stopped,
    /// The idempotency key was used before: nothing written.
    KeyUsed,
}

/// What one try of the two-trip or locked path gave: `None` for an unknown client.
type Moved = Option<std::result::Result<Transaction, ()>>;

/// A change about to be written, kept for the lookup of its outcome if the reply is lost.
type InFlight = RefCell<Option<(Versions, Box<MoneyMove>)>>;

pub(super) fn move_money(
    store: &PgStore,
    client_id: ClientId,
    fund: FundId,
    key: Option<&str>,
    decide: &mut dyn FnMut(MoneyView) -> Result<Decision>,
) -> Result<Option<Transaction>> {
    // One deadline for the whole call, whichever paths it takes.
    let deadline = store.settings.deadline();
    if let Some(transaction) = try_known(store, deadline, client_id, fund, decide)? {
        return Ok(Some(transaction));
    }
    let mut lost_races = 0;
    loop {
        let locked = lost_races >= OPTIMISTIC_TRIES;
        let in_flight: InFlight = RefCell::new(None);
        let look_up = |conn: &mut Conn, store: &PgStore| -> Try<Settled<Moved>> {
            let Some((versions, change)) = in_flight.borrow().clone() else {
                return Ok(Settled::NotCommitted);
            };
            let written = write_again(conn, store, versions, &change)?;
            Ok(Settled::Committed(Some(
                store.outcome(written, versions, *change),
            )))
        };
        let moved = store.run_until(deadline, Lost::LookUp(Box::new(look_up)), |conn, store| {
            try_move_money(
                store,
                conn,
                client_id,
                fund,
                key,
                locked,
                &mut *decide,
                &in_flight,
            )
        })?;
        match moved {
            None => return Ok(None),
            Some(Ok(transaction)) => return Ok(Some(transaction)),
            Some(Err(())) => {
                lost_races += 1;
                store.lost_race();
            }
        }
    }
}

/// A subscribe or cancel in one round trip, decided on what this process saw of the client
/// and the fund. `None`, with nothing written, when it saw too little, when the rules refuse
/// (a refusal is given on a fresh read only), or when the guarded write finds that anything
/// changed since or that the idempotency key was used before.
fn try_known(
    store: &PgStore,
    deadline: std::time::Instant,
    client_id: ClientId,
    fund: FundId,
    decide: &mut dyn FnMut(MoneyView) -> Result<Decision>,
) -> Result<Option<Transaction>> {
    let Some((view, versions)) = store.known.view(client_id, fund) else {
        return Ok(None);
    };
    let Ok(Decision::Commit(change)) = decide(view) else {
        return Ok(None);
    };
    let look_up = |conn: &mut Conn, store: &PgStore| {
        write_again(conn, store, versions, &change).map(Settled::Committed)
    };
    let written = store.run_until(deadline, Lost::LookUp(Box::new(look_up)), |conn, store| {
        store.trip();
        match write_money(conn, versions, &change) {
            Ok(true) => Ok(Written::Committed),
            Ok(false) => Ok(Written::Stopped),
            Err(error) if error.violates(IDEMPOTENCY_KEY_CONSTRAINT) => Ok(Written::KeyUsed),
            Err(error) => Err(sent(error)),
        }
    })?;
    if written == Written::Stopped {
        store.lost_race();
    }
    Ok(match store.outcome(written, versions, *change) {
        Ok(transaction) => Some(transaction),
        Err(()) => {
            store.known.forget(client_id, fund);
            None
        }
    })
}

/// Sends a guarded write whose reply was lost again, and tells what is in the database: the
/// change (committed by the first write or by this one), or nothing (the guard stopped this
/// one, and the change's transaction is not there). Either way no earlier send of it can
/// commit afterwards: the client's row lock orders this write after any still running, and
/// the version it moves (or found moved) stops any that arrives later.
fn write_again(
    conn: &mut Conn,
    store: &PgStore,
    versions: Versions,
    change: &MoneyMove,
) -> Try<Written> {
    store.trip();
    let written = match write_money(conn, versions, change) {
        Ok(true) => return Ok(Written::Committed),
        Ok(false) => Written::Stopped,
        Err(error) if error.violates(IDEMPOTENCY_KEY_CONSTRAINT) => Written::KeyUsed,
        Err(error) => return Err(sent(error)),
    };
    store.trip();
    let found = conn
        .query_opt(Q::Transaction, &[&change.entry.transaction.id.0])
        .map_err(read)?;
    Ok(if found.is_some() {
        Written::Committed
    } else {
        written
    })
}

impl PgStore {
    /// The transaction of a change whose guarded write committed, or `Err(())` when it did
    /// not (the change is read and decided again).
    fn outcome(
        &self,
        written: Written,
        versions: Versions,
        change: MoneyMove,
    ) -> std::result::Result<Transaction, ()> {
        if written == Written::Committed {
            self.known.committed(versions, &change);
            Ok(change.entry.transaction)
        } else {
            Err(())
        }
    }
}

/// What a fresh read and the engine's decision on it give.
enum Decided {
    UnknownClient,
    /// The idempotency key names this very request: its original transaction.
    Replay(Transaction),
    /// A change to write, guarded by the versions it was decided at.
    Commit(Versions, Box<MoneyMove>),
}

/// Reads the client, the fund, the subscription and what `key` names in one statement, and
/// lets the engine decide on it (a rule's refusal is the `Err`).
fn read_and_decide(
    store: &PgStore,
    conn: &mut Conn,
    client_id: ClientId,
    fund: FundId,
    key: Option<&str>,
    decide: &mut dyn FnMut(MoneyView) -> Result<Decision>,
) -> Try<Decided> {
    store.trip();
    let rows = conn
        .query(Q::ReadMoney, &[&client_id.0, &i64::from(fund), &key])
        .map_err(read)?;
    let Some(row) = rows.first() else {
        return Ok(Decided::UnknownClient);
    };
    let (view, versions) = money_view(row)?;
    store.known.saw(&view, versions);
    Ok(match decide(view)? {
        Decision::Replay(original) => Decided::Replay(original),
        Decision::Commit(change) => {
            versions.check_fund_read()?;
            Decided::Commit(versions, change)
        }
    })
}

/// One try at a subscribe or cancel on the two-trip path (or, `locked`, in a transaction block
/// that locks the client's row first); `Ok(None)` when the client is unknown, `Err` with a
/// core error for a rule's answer, `Ok(Some(Err(())))` when another change to the client won
/// the race. The change is put `in_flight` before it is sent.
#[allow(clippy::too_many_arguments)]
fn try_move_money(
    store: &PgStore,
    conn: &mut Conn,
    client_id: ClientId,
    fund: FundId,
    key: Option<&str>,
    locked: bool,
    decide: &mut dyn FnMut(MoneyView) -> Result<Decision>,
    in_flight: &InFlight,
) -> Try<Moved> {
    if !locked {
        let (versions, change) = match read_and_decide(store, conn, client_id, fund, key, decide)? {
            Decided::UnknownClient => return Ok(None),
            Decided::Replay(original) => return Ok(Some(Ok(original))),
            Decided::Commit(versions, change) => (versions, change),
        };
        *in_flight.borrow_mut() = Some((versions, change.clone()));
        store.trip();
        let written = if write_money(conn, versions, &change).map_err(sent)? {
            Written::Committed
        } else {
            Written::Stopped
        };
        return Ok(Some(store.outcome(written, versions, *change)));
    }
    store.trip();
    conn.begin(store.settings.idle_transaction_limit())
        .map_err(read)?;
    // Lock first, then read in a statement of its own: a locking read that waited for another
    // change would see the client's new row but the other tables as they were before that
    // change (READ COMMITTED re-checks only the locked row).
    store.trip();
    if conn
        .query(Q::LockClient, &[&client_id.0])
        .map_err(read)?
        .is_empty()
    {
        return Ok(None);
    }
    let (versions, change) = match read_and_decide(store, conn, client_id, fund, key, decide)? {
        Decided::UnknownClient => return Ok(None),
        Decided::Replay(original) => return Ok(Some(Ok(original))),
        Decided::Commit(versions, change) => (versions, change),
    };
    store.trip();
    let written = write_money(conn, versions, &change).map_err(uncommitted)?;
    *in_flight.borrow_mut() = Some((versions, change.clone()));
    store.trip();
    conn.commit().map_err(sent)?;
    let written = if written {
        Written::Committed
    } else {
        Written::Stopped
    };
    Ok(Some(store.outcome(written, versions, *change)))
}

/// Writes a decided change if the client and the fund are still at the versions read; false if
/// either is not.
fn write_money(
    conn: &mut Conn,
    versions: Versions,
    change: &MoneyMove,
) -> std::result::Result<bool, PgError> {
    let tx = &change.entry.transaction;
    let notice = change.entry.notice.as_ref();
    let (request_kind, request_fund, request_amount) = match &change.idempotency {
        Some(IdempotencyRecord {
            request: Request::Subscribe { fund_id, amount },
            ..
        }) => (Some("subscribe"), Some(i64::from(*fund_id)), *amount),
        Some(IdempotencyRecord {
            request: Request::Cancel { fund_id },
            ..
        }) => (Some("cancel"), Some(i64::from(*fund_id)), None),
        None => (None, None, None),
    };
    // A key is recorded only with its request; the transaction carries the key.
    let key = change
        .idempotency
        .as_ref()
        .and(tx.idempotency_key.as_deref());
    let row = conn.query_one(
        Q::WriteMoney,
        &[
            &tx.client_id.0,
            &change.client.balance,
            &tx.id.0,
            &versions.client,
            &i64::from(tx.fund_id),
            &tx.fund_name,
            &tx.kind.as_str(),
            &tx.amount,
            &to_sql_time(tx.created_at),
            &key,
            &request_kind,
            &request_fund,
            &request_amount,
            &notice.map(|n| n.id.0),
            &notice.map(|n| n.channel.as_str()),
            &notice.map(|n| n.recipient.as_str()),
            &notice.map(|n| n.client_name.as_str()),
            &notice.map(|n| n.locale.as_str()),
            &versions.fund.map(|fund| fund.version),
            &versions.newest_transaction.map(|id| id.0),
            &versions.fund.map(|fund| fund.minimum),
            &versions.fund.map(|fund| fund.active),
            &change.client.name,
            &change.client.channel.as_str(),
            &change.client.email,
            &change.client.phone,
        ],
    )?;
    let count: i64 = row.try_get(0).map_err(PgError::Driver)?;
    Ok(count == 1)
}

impl Versions {
    /// A change can be written only against a fund that was read (the guard would fail
    /// forever otherwise).
    fn check_fund_read(self) -> Result<()> {
        match self.fund {
            Some(_) => Ok(()),
            None => Err(Error::storage(
                "a money move for a fund the store did not read",
            )),
        }
    }
}

/// Where the fund's columns start in the row of [`Q::ReadMoney`].
const MONEY_FUND_AT: usize = 18 + TRANSACTION_WIDTH;

/// The read of a subscribe or cancel, and the versions it was made at.
pub(super) fn money_view(row: &Row) -> Result<(MoneyView, Versions)> {
    let client = client_from(row, 0)?;
    let version: i64 = col(row, 7)?;
    let newest: Option<uuid::Uuid> = col(row, 8)?;
    let subscription = match col::<Option<uuid::Uuid>>(row, 9)? {
        Some(_) => Some(subscription_from(row, 9)?),
        None => None,
    };
    let request = match col::<Option<&str>>(row, 15)? {
        Some(request_kind) => {
            let fund_id = fund_id(col(row, 16)?)?;
            Some(match request_kind {
                "subscribe" => Request::Subscribe {
                    fund_id,
                    amount: col(row, 17)?,
                },
                "cancel" => Request::Cancel { fund_id },
                other => return Err(corrupt("request kind", other)),
            })
        }
        None => None,
    };
    let replay = match request {
        Some(request) => {
            if col::<Option<uuid::Uuid>>(row, 18)?.is_none() {
                return Err(Error::storage("idempotency record without its transaction"));
            }
            Some((request, transaction_from(row, 18)?))
        }
        None => None,
    };
    let (fund, fund_guard) = match col::<Option<i64>>(row, MONEY_FUND_AT)? {
        Some(_) => {
            let fund = fund_from(row, MONEY_FUND_AT)?;
            let guard = FundGuard::of(&fund, col::<i64>(row, MONEY_FUND_AT + 5)?);
            (Some(fund), Some(guard))
        }
        None => (None, None),
    };
    let view = MoneyView {
        client,
        fund,
        subscription,
        replay,
        newest_transaction: newest.map(TransactionId),
    };
    let versions = Versions {
        client: version,
        newest_transaction: view.newest_transaction,
        fund: fund_guard,
    };
    Ok((view, versions))
}
