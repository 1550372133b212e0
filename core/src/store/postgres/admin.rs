//! Administrative changes: a fund created or updated, a client's contact data changed, each
//! committed with its audit event in one transaction. An update locks the row it changes
//! (`SELECT … FOR UPDATE`), lets the engine decide, and moves the row's `version`. Audit events
//! are only ever inserted; their `before`/`after` are `jsonb`, sent and read as JSON text.
//!
//! A lost reply is settled by the change's audit event: it is in the database exactly when
//! the change committed. The lookup first locks the changed row, which waits for a
//! transaction block still open on the server (its COMMIT on the way, or lost: the server
//! ends a block left idle, see `Settings::idle_transaction_limit`).

use std::cell::RefCell;
use std::time::SystemTime;

use tokio_postgres::types::ToSql;

use super::PgStore;
use super::connect::Conn;
use super::outcome::{Lost, Settled, Try, read, sent, uncommitted};
use super::rows::{audit_event_from, client_from, col, fund_from, json_text, to_sql_time};
use super::statements::Q;
use crate::audit::AuditEvent;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::fund::Fund;
use crate::ids::{AuditEventId, ClientId, FundId};

/// An audit event as the parameters of a statement: `before` and `after` as JSON text.
struct AuditRow<'a> {
    event: &'a AuditEvent,
    at: SystemTime,
    action: &'static str,
    before: String,
    after: String,
}

impl<'a> AuditRow<'a> {
    fn new(event: &'a AuditEvent) -> Result<AuditRow<'a>> {
        Ok(AuditRow {
            event,
            at: to_sql_time(event.at),
            action: event.action.as_str(),
            before: json_text(&event.before)?,
            after: json_text(&event.after)?,
        })
    }

    /// The eight values [`insert_audit_event`] expects, in order.
    fn params(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.event.id.0,
            &self.at,
            &self.event.actor,
            &self.action,
            &self.event.target,
            &self.before,
            &self.after,
            &self.event.request_id,
        ]
    }
}

pub(super) fn create_fund(store: &PgStore, fund: &Fund, event: &AuditEvent) -> Result<bool> {
    let audit = AuditRow::new(event)?;
    let fund_id = i64::from(fund.id);
    let category = fund.category.as_str();
    // One statement, so one transaction: the fund and its event, or (id taken) nothing.
    let create = |conn: &mut Conn, store: &PgStore| -> Try<bool> {
        let mut params: Vec<&(dyn ToSql + Sync)> =
            vec![&fund_id, &fund.name, &fund.minimum, &category, &fund.active];
        params.extend(audit.params());
        store.trip();
        let row = conn.query_one(Q::CreateFund, &params).map_err(sent)?;
        Ok(col::<i64>(&row, 0)? == 1)
    };
    // Sent again, the insert creates the fund if the first did not; if it finds the id taken,
    // the event tells whether by the first send.
    let look_up = |conn: &mut Conn, store: &PgStore| -> Try<Settled<bool>> {
        if create(conn, store)? {
            return Ok(Settled::Committed(true));
        }
        Ok(Settled::Committed(event_exists(conn, store, event.id)?))
    };
    store.run(Lost::LookUp(Box::new(look_up)), create)
}

/// Whether audit event `id` is in the database.
fn event_exists(conn: &mut Conn, store: &PgStore, id: AuditEventId) -> Try<bool> {
    store.trip();
    let rows = conn.query(Q::AuditEventExists, &[&id.0]).map_err(read)?;
    Ok(!rows.is_empty())
}

/// Settles an update whose COMMIT's reply was lost: locks the row (`lock`, with `key`), then
/// looks for the change's audit event.
fn look_up_update<T: Clone>(
    conn: &mut Conn,
    store: &PgStore,
    lock: Q,
    key: &(dyn ToSql + Sync),
    in_flight: &RefCell<Option<(T, AuditEventId)>>,
) -> Try<Settled<Option<T>>> {
    let Some((updated, event)) = in_flight.borrow().clone() else {
        return Ok(Settled::NotCommitted);
    };
    store.trip();
    conn.begin(store.settings.idle_transaction_limit())
        .map_err(read)?;
    store.trip();
    conn.query(lock, &[key]).map_err(read)?;
    let committed = event_exists(conn, store, event)?;
    conn.end_transaction();
    Ok(if committed {
        Settled::Committed(Some(updated))
    } else {
        Settled::NotCommitted
    })
}

pub(super) fn update_fund(
    store: &PgStore,
    id: FundId,
    decide: &mut dyn FnMut(Fund, Option<AuditEventId>) -> Result<Option<(Fund, AuditEvent)>>,
) -> Result<Option<Fund>> {
    let fund_id = i64::from(id);
    let in_flight: RefCell<Option<(Fund, AuditEventId)>> = RefCell::new(None);
    let look_up = |conn: &mut Conn, store: &PgStore| {
        look_up_update(conn, store, Q::LockFund, &fund_id, &in_flight)
    };
    let updated = store.run(Lost::LookUp(Box::new(look_up)), |conn, store| {
        store.trip();
        conn.begin(store.settings.idle_transaction_limit())
            .map_err(read)?;
        store.trip();
        let rows = conn.query(Q::LockFund, &[&fund_id]).map_err(read)?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let current = fund_from(row, 0)?;
        let newest_event = col::<Option<uuid::Uuid>>(row, 5)?.map(AuditEventId);
        let Some((updated, event)) = decide(current.clone(), newest_event)? else {
            // Nothing changes: no event either (the block is rolled back).
            return Ok(Some(current));
        };
        let audit = AuditRow::new(&event)?;
        let category = updated.category.as_str();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &fund_id,
            &updated.name,
            &updated.minimum,
            &category,
            &updated.active,
        ];
        params.extend(audit.params());
        store.trip();
        let row = conn.query_one(Q::WriteFund, &params).map_err(uncommitted)?;
        if col::<i64>(&row, 0)? != 1 {
            return Err(Error::storage("a locked fund vanished").into());
        }
        *in_flight.borrow_mut() = Some((updated.clone(), event.id));
        store.trip();
        conn.commit().map_err(sent)?;
        Ok(Some(updated))
    })?;
    if updated.is_some() {
        store.known.forget_fund(id);
    }
    Ok(updated)
}

pub(super) fn update_client(
    store: &PgStore,
    id: ClientId,
    decide: &mut dyn FnMut(Client, Option<AuditEventId>) -> Result<Option<(Client, AuditEvent)>>,
) -> Result<Option<Client>> {
    let in_flight: RefCell<Option<(Client, AuditEventId)>> = RefCell::new(None);
    let look_up = |conn: &mut Conn, store: &PgStore| {
        look_up_update(conn, store, Q::LockClientRow, &id.0, &in_flight)
    };
    let updated = store.run(Lost::LookUp(Box::new(look_up)), |conn, store| {
        store.trip();
        conn.begin(store.settings.idle_transaction_limit())
            .map_err(read)?;
        store.trip();
        let rows = conn.query(Q::LockClientRow, &[&id.0]).map_err(read)?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let current = client_from(row, 0)?;
        let newest_event = col::<Option<uuid::Uuid>>(row, 7)?.map(AuditEventId);
        let Some((updated, event)) = decide(current.clone(), newest_event)? else {
            return Ok(Some(current));
        };
        let audit = AuditRow::new(&event)?;
        let channel = updated.channel.as_str();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &id.0,
            &updated.name,
            &updated.email,
            &updated.phone,
            &channel,
        ];
        params.extend(audit.params());
        store.trip();
        let row = conn
            .query_one(Q::WriteClient, &params)
            .map_err(uncommitted)?;
        if col::<i64>(&row, 0)? != 1 {
            return Err(Error::storage("a locked client vanished").into());
        }
        *in_flight.borrow_mut() = Some((updated.clone(), event.id));
        store.trip();
        conn.commit().map_err(sent)?;
        Ok(Some(updated))
    })?;
    if updated.is_some() {
        store.known.forget_client(id);
    }
    Ok(updated)
}

pub(super) fn audit_events(
    store: &PgStore,
    limit: usize,
    before: Option<AuditEventId>,
) -> Result<Vec<AuditEvent>> {
    let before = before.map_or(uuid::Uuid::max(), |id| id.0);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    store.read(|conn, store| {
        store.trip();
        let rows = conn
            .query(Q::AuditEvents, &[&before, &limit])
            .map_err(read)?;
        Ok(rows
            .iter()
            .map(|row| audit_event_from(row, 0))
            .collect::<Result<_>>()?)
    })
}

pub(super) fn import_audit_events(store: &PgStore, events: &[AuditEvent]) -> Result<()> {
    let rows = events
        .iter()
        .map(AuditRow::new)
        .collect::<Result<Vec<_>>>()?;
    // One array per column: the whole batch is one statement.
    let ids: Vec<uuid::Uuid> = rows.iter().map(|row| row.event.id.0).collect();
    let ats: Vec<SystemTime> = rows.iter().map(|row| row.at).collect();
    let actors: Vec<&str> = rows.iter().map(|row| row.event.actor.as_str()).collect();
    let actions: Vec<&str> = rows.iter().map(|row| row.action).collect();
    let targets: Vec<&str> = rows.iter().map(|row| row.event.target.as_str()).collect();
    let befores: Vec<&str> = rows.iter().map(|row| row.before.as_str()).collect();
    let afters: Vec<&str> = rows.iter().map(|row| row.after.as_str()).collect();
    let request_ids: Vec<Option<&str>> = rows
        .iter()
        .map(|row| row.event.request_id.as_deref())
        .collect();
    // A copy writes into an empty store: a lost reply is reported, and the copy run again.
    store.run(Lost::Unknown, |conn, store| {
        store.trip();
        conn.execute(
            Q::ImportAuditEvents,
            &[
                &ids,
                &ats,
                &actors,
                &actions,
                &targets,
                &befores,
                &afters,
                &request_ids,
            ],
        )
        .map_err(sent)?;
        Ok(())
    })
}
