//! Copying a client between stores: everything of one client read in one snapshot, and
//! written in one transaction.

use super::PgStore;
use super::connect::Conn;
use super::outcome::{Lost, Try, read, sent, uncommitted};
use super::rows::{
    TRANSACTION_WIDTH, client_from, col, corrupt, fund_id, notice_from, subscription_from,
    to_sql_time, transaction_from,
};
use super::statements::Q;
use crate::error::Result;
use crate::ids::{ClientId, TransactionId};
use crate::store::{ClientBundle, IdempotencyRecord, LedgerEntry, Request};

pub(super) fn bundle(store: &PgStore, id: ClientId) -> Result<Option<ClientBundle>> {
    store.read(|conn, store| {
        // One snapshot for all four reads.
        conn.begin_with(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            store.settings.idle_transaction_limit(),
        )
        .map_err(read)?;
        let Some(row) = conn.query_opt(Q::Client, &[&id.0]).map_err(read)? else {
            return Ok(None);
        };
        let client = client_from(&row, 0)?;
        let subscriptions = conn
            .query(Q::Subscriptions, &[&id.0])
            .map_err(read)?
            .iter()
            .map(|row| subscription_from(row, 0))
            .collect::<Result<_>>()?;
        let entries = conn
            .query(Q::BundleEntries, &[&id.0])
            .map_err(read)?
            .iter()
            .map(|row| {
                let notice = match col::<Option<uuid::Uuid>>(row, TRANSACTION_WIDTH)? {
                    Some(_) => Some(notice_from(row, TRANSACTION_WIDTH)?),
                    None => None,
                };
                Ok(LedgerEntry {
                    transaction: transaction_from(row, 0)?,
                    notice,
                })
            })
            .collect::<Result<_>>()?;
        let idempotency = conn
            .query(Q::BundleKeys, &[&id.0])
            .map_err(read)?
            .iter()
            .map(|row| {
                let fund_id = fund_id(col(row, 2)?)?;
                let request = match col::<&str>(row, 1)? {
                    "subscribe" => Request::Subscribe {
                        fund_id,
                        amount: col(row, 3)?,
                    },
                    "cancel" => Request::Cancel { fund_id },
                    other => return Err(corrupt("request kind", other)),
                };
                let record = IdempotencyRecord {
                    request,
                    transaction_id: TransactionId(col(row, 4)?),
                };
                Ok((col::<String>(row, 0)?, record))
            })
            .collect::<Result<_>>()?;
        conn.end_transaction();
        Ok(Some(ClientBundle {
            client,
            subscriptions,
            entries,
            idempotency,
        }))
    })
}

pub(super) fn import_bundle(store: &PgStore, bundle: &ClientBundle) -> Result<()> {
    // A copy writes into an empty store: a lost reply is reported, and the copy run again.
    store.run(Lost::Unknown, |conn, store| import(conn, store, bundle))
}

/// Writes a copied client in one transaction.
fn import(conn: &mut Conn, store: &PgStore, bundle: &ClientBundle) -> Try<()> {
    let c = &bundle.client;
    let newest = bundle.entries.last().map(|entry| entry.transaction.id.0);
    conn.begin(store.settings.idle_transaction_limit())
        .map_err(read)?;
    conn.execute(
        Q::ImportClient,
        &[
            &c.id.0,
            &c.name,
            &c.email,
            &c.phone,
            &c.channel.as_str(),
            &c.balance,
            &to_sql_time(c.created_at),
            &newest,
        ],
    )
    .map_err(uncommitted)?;
    for entry in &bundle.entries {
        let t = &entry.transaction;
        conn.execute(
            Q::ImportTransaction,
            &[
                &t.client_id.0,
                &t.id.0,
                &i64::from(t.fund_id),
                &t.fund_name,
                &t.kind.as_str(),
                &t.amount,
                &t.balance_after,
                &to_sql_time(t.created_at),
                &t.idempotency_key,
            ],
        )
        .map_err(uncommitted)?;
        if let Some(n) = &entry.notice {
            let attempts = i32::try_from(n.attempts).unwrap_or(i32::MAX);
            conn.execute(
                Q::ImportNotice,
                &[
                    &t.client_id.0,
                    &t.id.0,
                    &n.id.0,
                    &n.channel.as_str(),
                    &n.recipient,
                    &n.client_name,
                    &n.locale.as_str(),
                    &n.status.as_str(),
                    &attempts,
                    &n.last_error,
                    &n.delivered_at.map(to_sql_time),
                    &n.next_attempt_at.map(to_sql_time),
                ],
            )
            .map_err(uncommitted)?;
        }
    }
    for s in &bundle.subscriptions {
        conn.execute(
            Q::ImportSubscription,
            &[
                &s.client_id.0,
                &i64::from(s.fund_id),
                &s.fund_name,
                &s.amount,
                &s.transaction_id.0,
                &to_sql_time(s.subscribed_at),
            ],
        )
        .map_err(uncommitted)?;
    }
    for (key, record) in &bundle.idempotency {
        let (kind, fund, amount) = match &record.request {
            Request::Subscribe { fund_id, amount } => ("subscribe", *fund_id, *amount),
            Request::Cancel { fund_id } => ("cancel", *fund_id, None),
        };
        conn.execute(
            Q::ImportKey,
            &[
                &c.id.0,
                key,
                &kind,
                &i64::from(fund),
                &amount,
                &record.transaction_id.0,
            ],
        )
        .map_err(uncommitted)?;
    }
    conn.commit().map_err(sent)
}
