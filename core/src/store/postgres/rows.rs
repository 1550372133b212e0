//! Rows to records, and the conversions of values between the store and the database.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_postgres::Row;

use crate::audit::{AuditAction, AuditEvent};
use crate::client::{Channel, Client};
use crate::error::{Error, Result};
use crate::fund::{Category, Fund};
use crate::ids::{AuditEventId, ClientId, FundId, NotificationId, TransactionId};
use crate::ledger::{Subscription, Transaction, TransactionKind};
use crate::locale::Locale;
use crate::outbox::NotificationStatus;
use crate::store::Notice;
use crate::time::Timestamp;

/// Columns of [`TRANSACTION_COLUMNS`].
pub(super) const TRANSACTION_WIDTH: usize = 9;

/// Column `at` of `row`, or STORAGE_ERROR when it does not have the expected type.
pub(super) fn col<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, at: usize) -> Result<T> {
    row.try_get(at)
        .map_err(|err| Error::storage(format!("unexpected column {at}: {err}")))
}

pub(super) fn corrupt(what: &str, value: &str) -> Error {
    Error::storage(format!("corrupt record: {what} {value:?}"))
}

pub(super) fn fund_id(value: i64) -> Result<FundId> {
    FundId::try_from(value).map_err(|_| corrupt("fund id", &value.to_string()))
}

pub(super) fn channel(text: &str) -> Result<Channel> {
    text.parse().map_err(|_| corrupt("channel", text))
}

pub(super) fn kind(text: &str) -> Result<TransactionKind> {
    text.parse().map_err(|_| corrupt("transaction kind", text))
}

pub(super) fn status(text: &str) -> Result<NotificationStatus> {
    text.parse()
        .map_err(|_| corrupt("notification status", text))
}

pub(super) fn category(text: &str) -> Result<Category> {
    text.parse().map_err(|_| corrupt("category", text))
}

pub(super) fn locale(text: &str) -> Result<Locale> {
    text.parse().map_err(|_| corrupt("locale", text))
}

pub(super) fn action(text: &str) -> Result<AuditAction> {
    text.parse().map_err(|_| corrupt("audit action", text))
}

/// A JSON object as the text sent for a `jsonb` column.
pub(super) fn json_text(object: &serde_json::Map<String, serde_json::Value>) -> Result<String> {
    serde_json::to_string(object).map_err(|err| Error::storage(format!("encode: {err}")))
}

/// A `jsonb` column read as text.
pub(super) fn json_object(text: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(text).map_err(|_| corrupt("audit event field", text))
}

pub(super) fn audit_event_from(row: &Row, at: usize) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: AuditEventId(col(row, at)?),
        at: from_sql_time(col(row, at + 1)?),
        actor: col(row, at + 2)?,
        action: action(col(row, at + 3)?)?,
        target: col(row, at + 4)?,
        before: json_object(col(row, at + 5)?)?,
        after: json_object(col(row, at + 6)?)?,
        request_id: col(row, at + 7)?,
    })
}

pub(super) fn fund_from(row: &Row, at: usize) -> Result<Fund> {
    Ok(Fund {
        id: fund_id(col(row, at)?)?,
        name: col(row, at + 1)?,
        minimum: col(row, at + 2)?,
        category: category(col(row, at + 3)?)?,
        active: col(row, at + 4)?,
    })
}

pub(super) fn client_from(row: &Row, at: usize) -> Result<Client> {
    Ok(Client {
        id: ClientId(col(row, at)?),
        name: col(row, at + 1)?,
        email: col(row, at + 2)?,
        phone: col(row, at + 3)?,
        channel: channel(col(row, at + 4)?)?,
        balance: col(row, at + 5)?,
        created_at: from_sql_time(col(row, at + 6)?),
    })
}

pub(super) fn subscription_from(row: &Row, at: usize) -> Result<Subscription> {
    Ok(Subscription {
        client_id: ClientId(col(row, at)?),
        fund_id: fund_id(col(row, at + 1)?)?,
        fund_name: col(row, at + 2)?,
        amount: col(row, at + 3)?,
        transaction_id: TransactionId(col(row, at + 4)?),
        subscribed_at: from_sql_time(col(row, at + 5)?),
    })
}

pub(super) fn transaction_from(row: &Row, at: usize) -> Result<Transaction> {
    Ok(Transaction {
        client_id: ClientId(col(row, at)?),
        id: TransactionId(col(row, at + 1)?),
        fund_id: fund_id(col(row, at + 2)?)?,
        fund_name: col(row, at + 3)?,
        kind: kind(col(row, at + 4)?)?,
        amount: col(row, at + 5)?,
        balance_after: col(row, at + 6)?,
        created_at: from_sql_time(col(row, at + 7)?),
        idempotency_key: col(row, at + 8)?,
    })
}

pub(super) fn notice_from(row: &Row, at: usize) -> Result<Notice> {
    let attempts: i32 = col(row, at + 6)?;
    Ok(Notice {
        id: NotificationId(col(row, at)?),
        channel: channel(col(row, at + 1)?)?,
        recipient: col(row, at + 2)?,
        client_name: col(row, at + 3)?,
        locale: locale(col(row, at + 4)?)?,
        status: status(col(row, at + 5)?)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| corrupt("attempts", &attempts.to_string()))?,
        last_error: col(row, at + 7)?,
        delivered_at: col::<Option<SystemTime>>(row, at + 8)?.map(from_sql_time),
        next_attempt_at: col::<Option<SystemTime>>(row, at + 9)?.map(from_sql_time),
    })
}

pub(super) fn to_sql_time(at: Timestamp) -> SystemTime {
    let micros = at.unix_micros();
    let magnitude = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

pub(super) fn from_sql_time(at: SystemTime) -> Timestamp {
    let micros = match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
    };
    Timestamp::from_unix_micros(micros)
}
