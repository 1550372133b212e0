//! The records and enums of the API and their conversions from the core's.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::config_error;
use crate::error::FundError;
use crate::money::Amount;

/// Fund category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum Category {
    /// Voluntary pension fund.
    Fpv,
    /// Collective investment fund.
    Fic,
}

/// How a client wants to be notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum Channel {
    Email,
    Sms,
}

/// Subscription (money out of the balance) or cancellation (refund).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum TransactionKind {
    Subscription,
    Cancellation,
}

/// Where an outbox entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum NotificationStatus {
    Pending,
    Delivered,
    Failed,
}

/// Language of error messages and notifications (`FundLocale` in Swift).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum Locale {
    Es,
    En,
}

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
    pub id: String,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub channel: Channel,
    pub balance: Amount,
    pub created_at: SystemTime,
}

/// An active subscription of a client to a fund.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Subscription {
    pub client_id: String,
    pub fund_id: i64,
    pub fund_name: String,
    pub amount: Amount,
    pub transaction_id: String,
    pub subscribed_at: SystemTime,
}

/// A subscription or cancellation; a cancellation's `amount` is the refund.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Transaction {
    pub id: String,
    pub client_id: String,
    pub fund_id: i64,
    pub fund_name: String,
    pub kind: TransactionKind,
    pub amount: Amount,
    pub balance_after: Amount,
    pub created_at: SystemTime,
    pub idempotency_key: Option<String>,
}

/// An outbox entry (`FundNotification` in Swift).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Notification {
    pub id: String,
    pub client_id: String,
    pub transaction_id: String,
    pub channel: Channel,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub status: NotificationStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: SystemTime,
    pub delivered_at: Option<SystemTime>,
    pub next_attempt_at: Option<SystemTime>,
}

/// What one dispatch run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct DispatchReport {
    pub delivered: i32,
    pub retried: i32,
    pub failed: i32,
}

/// Parses a channel name (`"email"`, `"sms"`); anything else is `VALIDATION_ERROR` (field
/// `channel`), with the message in `locale` (Spanish when null/nil).
#[uniffi::export(default(locale = None))]
pub fn parse_channel(text: String, locale: Option<Locale>) -> Result<Channel, FundError> {
    let locale = locale.map_or(fundcore::Locale::Es, Into::into);
    fundcore::Channel::from_str(&text)
        .map(Into::into)
        .map_err(|err| FundError::from_core(err, locale))
}

/// A count from the core, for the FFI: it never exceeds the `i32` limit it was asked for.
pub(crate) fn saturating_i32(n: impl TryInto<i32>) -> i32 {
    n.try_into().unwrap_or(i32::MAX)
}

fn time(at: fundcore::Timestamp) -> SystemTime {
    let micros = at.unix_micros();
    let offset = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        UNIX_EPOCH + offset
    } else {
        UNIX_EPOCH - offset
    }
}

impl From<fundcore::Category> for Category {
    fn from(value: fundcore::Category) -> Self {
        match value {
            fundcore::Category::Fpv => Category::Fpv,
            fundcore::Category::Fic => Category::Fic,
        }
    }
}

impl From<Category> for fundcore::Category {
    fn from(value: Category) -> Self {
        match value {
            Category::Fpv => fundcore::Category::Fpv,
            Category::Fic => fundcore::Category::Fic,
        }
    }
}

impl From<fundcore::Channel> for Channel {
    fn from(value: fundcore::Channel) -> Self {
        match value {
            fundcore::Channel::Email => Channel::Email,
            fundcore::Channel::Sms => Channel::Sms,
        }
    }
}

impl From<Channel> for fundcore::Channel {
    fn from(value: Channel) -> Self {
        match value {
            Channel::Email => fundcore::Channel::Email,
            Channel::Sms => fundcore::Channel::Sms,
        }
    }
}

impl From<fundcore::TransactionKind> for TransactionKind {
    fn from(value: fundcore::TransactionKind) -> Self {
        match value {
            fundcore::TransactionKind::Subscription => TransactionKind::Subscription,
            fundcore::TransactionKind::Cancellation => TransactionKind::Cancellation,
        }
    }
}

impl From<fundcore::NotificationStatus> for NotificationStatus {
    fn from(value: fundcore::NotificationStatus) -> Self {
        match value {
            fundcore::NotificationStatus::Pending => NotificationStatus::Pending,
            fundcore::NotificationStatus::Delivered => NotificationStatus::Delivered,
            fundcore::NotificationStatus::Failed => NotificationStatus::Failed,
        }
    }
}

impl From<fundcore::Locale> for Locale {
    fn from(value: fundcore::Locale) -> Self {
        match value {
            fundcore::Locale::Es => Locale::Es,
            fundcore::Locale::En => Locale::En,
        }
    }
}

impl From<Locale> for fundcore::Locale {
    fn from(value: Locale) -> Self {
        match value {
            Locale::Es => fundcore::Locale::Es,
            Locale::En => fundcore::Locale::En,
        }
    }
}

impl From<fundcore::Fund> for Fund {
    fn from(fund: fundcore::Fund) -> Self {
        Fund {
            id: fund.id.into(),
            name: fund.name,
            minimum: fund.minimum.into(),
            category: fund.category.into(),
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
            category: fund.category.into(),
            active: fund.active,
        })
    }
}

impl From<fundcore::Client> for Client {
    fn from(client: fundcore::Client) -> Self {
        Client {
            id: client.id.to_string(),
            name: client.name,
            email: client.email,
            phone: client.phone,
            channel: client.channel.into(),
            balance: client.balance.into(),
            created_at: time(client.created_at),
        }
    }
}

impl From<fundcore::Subscription> for Subscription {
    fn from(sub: fundcore::Subscription) -> Self {
        Subscription {
            client_id: sub.client_id.to_string(),
            fund_id: sub.fund_id.into(),
            fund_name: sub.fund_name,
            amount: sub.amount.into(),
            transaction_id: sub.transaction_id.to_string(),
            subscribed_at: time(sub.subscribed_at),
        }
    }
}

impl From<fundcore::Transaction> for Transaction {
    fn from(tx: fundcore::Transaction) -> Self {
        Transaction {
            id: tx.id.to_string(),
            client_id: tx.client_id.to_string(),
            fund_id: tx.fund_id.into(),
            fund_name: tx.fund_name,
            kind: tx.kind.into(),
            amount: tx.amount.into(),
            balance_after: tx.balance_after.into(),
            created_at: time(tx.created_at),
            idempotency_key: tx.idempotency_key,
        }
    }
}

impl From<fundcore::Notification> for Notification {
    fn from(n: fundcore::Notification) -> Self {
        Notification {
            id: n.id.to_string(),
            client_id: n.client_id.to_string(),
            transaction_id: n.transaction_id.to_string(),
            channel: n.channel.into(),
            recipient: n.recipient,
            subject: n.subject,
            body: n.body,
            status: n.status.into(),
            attempts: saturating_i32(n.attempts),
            last_error: n.last_error,
            created_at: time(n.created_at),
            delivered_at: n.delivered_at.map(time),
            next_attempt_at: n.next_attempt_at.map(time),
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
