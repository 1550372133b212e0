//! The records, enums, ids and times of the API.
//!
//! The core's enums cross the FFI as they are (`#[uniffi::remote(Enum)]`), and so do its ids
//! (as text) and its timestamps (as `SystemTime`: `java.time.Instant` / `Date`), through
//! `uniffi::custom_type!`. The records are declared here because each of them holds a value the
//! core's own type cannot show to Java: a fund id or a count is a `u32` in the core, which
//! Kotlin would make a `UInt` with mangled JVM names (`getId-pVg5ArA`), and money is
//! [`Amount`], read where it is used (see there); an audit event's changed fields are JSON
//! objects in the core, maps of text here ([`AuditEvent`]); a page is generic in the core, one
//! record per kind here. Their conversions move each field as it is, except those.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use fundcore::{
    AuditAction, AuditEventId, Category, Channel, ClientId, Locale, NotificationId,
    NotificationStatus, Timestamp, TransactionId, TransactionKind,
};

use crate::config::config_error;
use crate::error::FundError;
use crate::money::Amount;

// ---------------------------------------------------------------- the core's enums

/// Fund category.
#[uniffi::remote(Enum)]
pub enum Category {
    /// Voluntary pension fund.
    Fpv,
    /// Collective investment fund.
    Fic,
}

/// How a client wants to be notified.
#[uniffi::remote(Enum)]
pub enum Channel {
    Email,
    Sms,
}

/// Subscription (money out of the balance) or cancellation (refund).
#[uniffi::remote(Enum)]
pub enum TransactionKind {
    Subscription,
    Cancellation,
}

/// Where an outbox entry stands.
#[uniffi::remote(Enum)]
pub enum NotificationStatus {
    Pending,
    Delivered,
    Failed,
}

/// What an administrative change did.
#[uniffi::remote(Enum)]
pub enum AuditAction {
    /// A fund was added to the catalogue.
    FundCreated,
    /// A fund's name, minimum or active flag changed.
    FundUpdated,
    /// A client's name, email, phone or channel changed.
    ClientUpdated,
}

/// Language of error messages and notifications (`FundLocale` in Swift).
#[uniffi::remote(Enum)]
pub enum Locale {
    Es,
    En,
}

// ---------------------------------------------------------------- ids and times

/// Each id crosses the FFI as its text (`String` in Kotlin and Swift, under the id's name).
///
/// Ids are only lowered: no operation takes a record that holds one (an id given to an
/// operation is a `String`, read by the engine, whose errors are in its locale), so a lift
/// never meets text that is not an id; should one, it fails with the core's reason.
macro_rules! ids_as_text {
    ($($(#[$doc:meta])* $id:ident),+ $(,)?) => {$(
        uniffi::custom_type!($(#[$doc])* $id, String, {
            remote,
            lower: |id| id.to_string(),
            try_lift: |text| Ok($id::from_str(&text).map_err(fundcore::Error::from)?),
        });
    )+};
}

ids_as_text!(
    /// A client's id: UUIDv7 text.
    ClientId,
    /// A transaction's id: UUIDv7 text, so ids sort in creation order.
    TransactionId,
    /// A notification's id: UUIDv7 text; receivers drop duplicate deliveries by it.
    NotificationId,
    /// An audit event's id: UUIDv7 text, so events sort in the order they happened.
    AuditEventId,
);

uniffi::custom_type!(
    /// An instant, to the microsecond (`java.time.Instant` in Kotlin, `Date` in Swift).
    Timestamp, SystemTime, {
        remote,
        lower: |at| system_time(at),
        try_lift: |time| timestamp(time),
    }
);

/// The instant of a core timestamp (microseconds since the Unix epoch).
fn system_time(at: Timestamp) -> SystemTime {
    let micros = at.unix_micros();
    let offset = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        UNIX_EPOCH + offset
    } else {
        UNIX_EPOCH - offset
    }
}

/// A core timestamp from an instant, sub-microseconds dropped; an instant beyond the core's
/// range (about 292,000 years either side of 1970) is an error.
fn timestamp(time: SystemTime) -> uniffi::Result<Timestamp> {
    let micros = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_micros())?,
        Err(before) => -i128::try_from(before.duration().as_micros())?,
    };
    Ok(Timestamp::from_unix_micros(i64::try_from(micros)?))
}

// ---------------------------------------------------------------- records

/// An investment fund.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Fund {
    /// 0 to 4294967295 (the core's `u32`); outside that range a fund id names no fund.
    pub id: i64,
    pub name: String,
    pub minimum: Amount,
    pub category: Category,
    pub active: bool,
}

/// A client and its available balance.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub channel: Channel,
    pub balance: Amount,
    pub created_at: Timestamp,
}

/// An active subscription of a client to a fund.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Subscription {
    pub client_id: ClientId,
    pub fund_id: i64,
    pub fund_name: String,
    pub amount: Amount,
    pub transaction_id: TransactionId,
    pub subscribed_at: Timestamp,
}

/// A subscription or cancellation; a cancellation's `amount` is the refund.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Transaction {
    pub id: TransactionId,
    pub client_id: ClientId,
    pub fund_id: i64,
    pub fund_name: String,
    pub kind: TransactionKind,
    pub amount: Amount,
    pub balance_after: Amount,
    pub created_at: Timestamp,
    pub idempotency_key: Option<String>,
}

/// An outbox entry (`FundNotification` in Swift).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Notification {
    pub id: NotificationId,
    pub client_id: ClientId,
    pub transaction_id: TransactionId,
    pub channel: Channel,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub status: NotificationStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    pub next_attempt_at: Option<Timestamp>,
}

/// One administrative change, as it was made: who (`actor`, and `request_id` when the caller
/// gave one), what (`action` on `target`, a fund id or a client id) and the changed fields.
///
/// `before` and `after` hold the changed fields only (`before` is empty for a fund created),
/// each value as text: strings as they are (money as decimal text, `"20000.00"`), booleans as
/// `"true"` / `"false"`. A plain map of text reads the same in Kotlin, Java and Swift without a
/// JSON library (`event.after["minimum"]`, `event.getAfter().get("minimum")`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub at: Timestamp,
    pub actor: String,
    pub action: AuditAction,
    pub target: String,
    pub before: HashMap<String, String>,
    pub after: HashMap<String, String>,
    pub request_id: Option<String>,
}

/// A page of clients, newest first; `next` is the `before` cursor of the following page, null
/// (nil) on the last one.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ClientPage {
    pub items: Vec<Client>,
    pub next: Option<ClientId>,
}

/// A page of the audit trail, newest first; `next` is the `before` cursor of the following
/// page, null (nil) on the last one.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AuditEventPage {
    pub items: Vec<AuditEvent>,
    pub next: Option<AuditEventId>,
}

/// What one dispatch run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct DispatchReport {
    pub delivered: i32,
    pub retried: i32,
    pub failed: i32,
}

/// A page of a client's history, newest first; `next` is the `before` cursor of the following
/// page, null (nil) on the last one.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TransactionPage {
    pub items: Vec<Transaction>,
    pub next: Option<TransactionId>,
}

/// A page of failed notifications of every client, newest first; `next` is the `before`
/// cursor of the following page, null (nil) on the last one.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    pub next: Option<NotificationId>,
}

/// One transaction of a [`Statement`]; `invested_after` is the sum of the client's active
/// subscription amounts right after it (plus the transaction's `balance_after`, the initial
/// balance).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct StatementLine {
    pub transaction: Transaction,
    pub invested_after: Amount,
}

/// A client's account over `start <= createdAt < end`: where it stood at `start`, the range's
/// transactions oldest first, and where it stood at `end`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Statement {
    pub client_id: ClientId,
    pub start: Timestamp,
    pub end: Timestamp,
    pub opening_balance: Amount,
    pub opening_invested: Amount,
    pub lines: Vec<StatementLine>,
    pub closing_balance: Amount,
    pub closing_invested: Amount,
}

/// One broken rule the ledger check found: the client (null for a store-wide one), the rule's
/// name (`"reconciliation"`, ...) and what is wrong, in words.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Violation {
    pub client: Option<ClientId>,
    pub rule: String,
    pub detail: String,
}

/// What the ledger check read and found; `violations` lists at most the first 1000 of
/// `violation_count`, and `summary` is the report in a few lines of English.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LedgerReport {
    pub clean: bool,
    pub clients: i64,
    pub transactions: i64,
    pub active_subscriptions: i64,
    pub idempotency_keys: i64,
    pub outbox_pending: i64,
    pub outbox_delivered: i64,
    pub outbox_failed: i64,
    pub audit_events: i64,
    pub violation_count: i64,
    pub violations: Vec<Violation>,
    pub summary: String,
}

impl From<fundcore::Fund> for Fund {
    fn from(fund: fundcore::Fund) -> Self {
        Fund {
            id: fund.id.into(),
            name: fund.name,
            minimum: fund.minimum.into(),
            category: fund.category,
            active: fund.active,
        }
    }
}

/// A fund of a configured catalogue: an id outside the core's range is a bad catalogue.
impl TryFrom<Fund> for fundcore::Fund {
    type Error = fundcore::Error;

    fn try_from(fund: Fund) -> Result<Self, Self::Error> {
        Ok(fundcore::Fund {
            id: u32::try_from(fund.id).map_err(|_| config_error("funds"))?,
            name: fund.name,
            minimum: fund.minimum.to_decimal()?,
            category: fund.category,
            active: fund.active,
        })
    }
}

impl From<fundcore::Client> for Client {
    fn from(client: fundcore::Client) -> Self {
        Client {
            id: client.id,
            name: client.name,
            email: client.email,
            phone: client.phone,
            channel: client.channel,
            balance: client.balance.into(),
            created_at: client.created_at,
        }
    }
}

impl From<fundcore::Subscription> for Subscription {
    fn from(sub: fundcore::Subscription) -> Self {
        Subscription {
            client_id: sub.client_id,
            fund_id: sub.fund_id.into(),
            fund_name: sub.fund_name,
            amount: sub.amount.into(),
            transaction_id: sub.transaction_id,
            subscribed_at: sub.subscribed_at,
        }
    }
}

impl From<fundcore::Transaction> for Transaction {
    fn from(tx: fundcore::Transaction) -> Self {
        Transaction {
            id: tx.id,
            client_id: tx.client_id,
            fund_id: tx.fund_id.into(),
            fund_name: tx.fund_name,
            kind: tx.kind,
            amount: tx.amount.into(),
            balance_after: tx.balance_after.into(),
            created_at: tx.created_at,
            idempotency_key: tx.idempotency_key,
        }
    }
}

impl From<fundcore::Notification> for Notification {
    fn from(n: fundcore::Notification) -> Self {
        Notification {
            id: n.id,
            client_id: n.client_id,
            transaction_id: n.transaction_id,
            channel: n.channel,
            recipient: n.recipient,
            subject: n.subject,
            body: n.body,
            status: n.status,
            attempts: saturating_i32(n.attempts),
            last_error: n.last_error,
            created_at: n.created_at,
            delivered_at: n.delivered_at,
            next_attempt_at: n.next_attempt_at,
        }
    }
}

impl From<fundcore::DispatchReport> for DispatchReport {
    fn from(report: fundcore::DispatchReport) -> Self {
        DispatchReport {
            delivered: saturating_i32(report.delivered),
            retried: saturating_i32(report.retried),
            failed: saturating_i32(report.failed),
        }
    }
}

impl From<fundcore::AuditEvent> for AuditEvent {
    fn from(event: fundcore::AuditEvent) -> Self {
        AuditEvent {
            id: event.id,
            at: event.at,
            actor: event.actor,
            action: event.action,
            target: event.target,
            before: fields_as_text(event.before),
            after: fields_as_text(event.after),
            request_id: event.request_id,
        }
    }
}

/// The changed fields of an audit event, each value as text: a string as it is, anything else
/// (`true`, `false`) as its JSON.
fn fields_as_text(fields: serde_json::Map<String, serde_json::Value>) -> HashMap<String, String> {
    fields
        .into_iter()
        .map(|(field, value)| {
            let text = match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            (field, text)
        })
        .collect()
}

impl From<fundcore::Page<fundcore::Client, ClientId>> for ClientPage {
    fn from(page: fundcore::Page<fundcore::Client, ClientId>) -> Self {
        ClientPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next: page.next,
        }
    }
}

impl From<fundcore::Page<fundcore::AuditEvent, AuditEventId>> for AuditEventPage {
    fn from(page: fundcore::Page<fundcore::AuditEvent, AuditEventId>) -> Self {
        AuditEventPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next: page.next,
        }
    }
}

impl From<fundcore::Page<fundcore::Transaction, TransactionId>> for TransactionPage {
    fn from(page: fundcore::Page<fundcore::Transaction, TransactionId>) -> Self {
        TransactionPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next: page.next,
        }
    }
}

impl From<fundcore::NotificationPage> for NotificationPage {
    fn from(page: fundcore::NotificationPage) -> Self {
        NotificationPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next: page.next,
        }
    }
}

impl From<fundcore::Statement> for Statement {
    fn from(statement: fundcore::Statement) -> Self {
        Statement {
            client_id: statement.client_id,
            start: statement.from,
            end: statement.to,
            opening_balance: statement.opening_balance.into(),
            opening_invested: statement.opening_invested.into(),
            lines: statement
                .lines
                .into_iter()
                .map(|line| StatementLine {
                    transaction: line.transaction.into(),
                    invested_after: line.invested_after.into(),
                })
                .collect(),
            closing_balance: statement.closing_balance.into(),
            closing_invested: statement.closing_invested.into(),
        }
    }
}

impl From<fundcore::LedgerReport> for LedgerReport {
    fn from(report: fundcore::LedgerReport) -> Self {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        LedgerReport {
            clean: report.is_clean(),
            summary: report.to_string(),
            clients: count(report.clients),
            transactions: count(report.transactions),
            active_subscriptions: count(report.active_subscriptions),
            idempotency_keys: count(report.idempotency_keys),
            outbox_pending: count(report.outbox.pending),
            outbox_delivered: count(report.outbox.delivered),
            outbox_failed: count(report.outbox.failed),
            audit_events: count(report.audit_events),
            violation_count: count(report.violation_count),
            violations: report
                .violations
                .into_iter()
                .map(|violation| Violation {
                    client: violation.client,
                    rule: violation.rule.to_string(),
                    detail: violation.detail,
                })
                .collect(),
        }
    }
}

/// A count from the core, for the FFI: it never exceeds the `i32` limit it was asked for.
pub(crate) fn saturating_i32(n: impl TryInto<i32>) -> i32 {
    n.try_into().unwrap_or(i32::MAX)
}

/// Parses a channel name (`"email"`, `"sms"`); anything else is `VALIDATION_ERROR` (field
/// `channel`), with the message in `locale` (Spanish when null/nil).
#[uniffi::export(default(locale = None))]
pub fn parse_channel(text: String, locale: Option<Locale>) -> Result<Channel, FundError> {
    Channel::from_str(&text).map_err(|err| FundError::from_core(err, locale.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_cross_as_instants_to_the_microsecond_both_ways() {
        for micros in [
            0,
            1,
            -1,
            1_700_000_000_123_456,
            -86_400_000_000,
            i64::MAX,
            i64::MIN,
        ] {
            let at = Timestamp::from_unix_micros(micros);
            assert_eq!(timestamp(system_time(at)).unwrap(), at, "{micros} µs");
        }
        let sub_micro = UNIX_EPOCH + Duration::from_nanos(1_999);
        assert_eq!(timestamp(sub_micro).unwrap().unix_micros(), 1);
        let beyond = UNIX_EPOCH + Duration::from_micros(i64::MAX as u64 + 1);
        assert!(timestamp(beyond).is_err());
    }
}
