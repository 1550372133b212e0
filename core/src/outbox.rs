//! The transactional outbox: notifications written in the same store transaction as the money
//! movement, delivered afterwards through a [`Notifier`] port with retries and backoff.

use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::{Channel, Client};
use crate::ids::{ClientId, NotificationId, TransactionId};
use crate::ledger::{Transaction, TransactionKind};
use crate::locale::Locale;
use crate::money::format_cop;
use crate::time::Timestamp;

/// Where a notification stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationStatus {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// Accepted by the notifier.
    Delivered,
    /// Given up on: a permanent failure or too many attempts. Kept and visible.
    Failed,
}

impl NotificationStatus {
    /// `pending`, `delivered` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Pending => "pending",
            NotificationStatus::Delivered => "delivered",
            NotificationStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for NotificationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An outbox entry: one message to one client about one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// UUIDv7; receivers use it to drop duplicates (delivery is at-least-once).
    pub id: NotificationId,
    /// The client notified.
    pub client_id: ClientId,
    /// The transaction it reports.
    pub transaction_id: TransactionId,
    /// Email or SMS, the client's preference when the transaction committed.
    pub channel: Channel,
    /// Email address or phone number.
    pub recipient: String,
    /// Subject line (email) or short title (SMS).
    pub subject: String,
    /// Message text; at most 160 characters for SMS.
    pub body: String,
    /// Pending, delivered or failed.
    pub status: NotificationStatus,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// The notifier's last failure text.
    pub last_error: Option<String>,
    /// When the entry was written (with its transaction).
    pub created_at: Timestamp,
    /// When the notifier accepted it.
    pub delivered_at: Option<Timestamp>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<Timestamp>,
}

/// What the store keeps of a notification, inside its transaction's record: the delivery state
/// and what rendering needs. Subject and body are rendered when the notification is read, so
/// the store does not hold a second copy of every transaction as text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Notice {
    pub id: NotificationId,
    pub channel: Channel,
    pub recipient: String,
    pub client_name: String,
    pub locale: Locale,
    pub status: NotificationStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
    pub next_attempt_at: Option<Timestamp>,
}

impl Notice {
    /// A notification about a transaction committing now, due at once.
    pub(crate) fn pending(
        id: NotificationId,
        client: &Client,
        locale: Locale,
        at: Timestamp,
    ) -> Notice {
        Notice {
            id,
            channel: client.channel,
            recipient: client.recipient().to_owned(),
            client_name: client.name.clone(),
            locale,
            status: NotificationStatus::Pending,
            attempts: 0,
            last_error: None,
            delivered_at: None,
            next_attempt_at: Some(at),
        }
    }

    /// The notification about `tx`, with its subject and body rendered.
    pub(crate) fn to_notification(&self, tx: &Transaction) -> Notification {
        let (subject, body) = render(&self.client_name, self.channel, tx, self.locale);
        Notification {
            id: self.id,
            client_id: tx.client_id,
            transaction_id: tx.id,
            channel: self.channel,
            recipient: self.recipient.clone(),
            subject,
            body,
            status: self.status,
            attempts: self.attempts,
            last_error: self.last_error.clone(),
            created_at: tx.created_at,
            delivered_at: self.delivered_at,
            next_attempt_at: self.next_attempt_at,
        }
    }
}

/// Why a delivery failed, as reported by a [`Notifier`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Try again later (server down, timeout, rate limit).
    #[error("retryable delivery failure: {0}")]
    Retryable(String),
    /// Never try again (recipient refused, message rejected).
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
}

/// The port through which notifications leave the engine: email, SMS, a queue, a test.
pub trait Notifier: Send + Sync {
    /// Delivers one notification. Called after the transaction committed, possibly more than
    /// once for the same notification id.
    fn send(&self, notification: &Notification) -> Result<(), DeliveryError>;
}

/// What one dispatch run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchReport {
    /// Entries the notifier accepted.
    pub delivered: u32,
    /// Entries that failed and will be tried again later.
    pub retried: u32,
    /// Entries given up on in this run.
    pub failed: u32,
}

/// Delay before attempt `failed_attempts + 1`: `base * 2^(failed_attempts - 1)`, at most `max`.
pub(crate) fn backoff(failed_attempts: u32, base: Duration, max: Duration) -> Duration {
    let exponent = failed_attempts.saturating_sub(1).min(30);
    base.saturating_mul(1u32 << exponent).min(max)
}

/// The longest SMS body: one GSM-7 segment.
pub const SMS_MAX_CHARS: usize = 160;

/// Subject and body for a committed transaction, in `locale`, for the client's channel.
pub(crate) fn render(
    name: &str,
    channel: Channel,
    tx: &Transaction,
    locale: Locale,
) -> (String, String) {
    let fund = tx.fund_name.as_str();
    let amount = format_cop(tx.amount);
    let balance = format_cop(tx.balance_after);
    let id = tx.id;
    let subject = match (locale, tx.kind) {
        (Locale::Es, TransactionKind::Subscription) => format!("Suscripción confirmada: {fund}"),
        (Locale::Es, TransactionKind::Cancellation) => format!("Cancelación confirmada: {fund}"),
        (Locale::En, TransactionKind::Subscription) => format!("Subscription confirmed: {fund}"),
        (Locale::En, TransactionKind::Cancellation) => format!("Cancellation confirmed: {fund}"),
    };
    let body = match channel {
        Channel::Email => match (locale, tx.kind) {
            (Locale::Es, TransactionKind::Subscription) => format!(
                "Hola {name}:\n\nSu suscripción al fondo {fund} por {amount} quedó registrada.\n\
                     Saldo disponible: {balance}.\nTransacción: {id}\n"
            ),
            (Locale::Es, TransactionKind::Cancellation) => format!(
                "Hola {name}:\n\nSu suscripción al fondo {fund} fue cancelada y le reintegramos {amount}.\n\
                     Saldo disponible: {balance}.\nTransacción: {id}\n"
            ),
            (Locale::En, TransactionKind::Subscription) => format!(
                "Hello {name},\n\nYour subscription to fund {fund} for {amount} is confirmed.\n\
                     Available balance: {balance}.\nTransaction: {id}\n"
            ),
            (Locale::En, TransactionKind::Cancellation) => format!(
                "Hello {name},\n\nYour subscription to fund {fund} was cancelled and {amount} refunded.\n\
                     Available balance: {balance}.\nTransaction: {id}\n"
            ),
        },
        Channel::Sms => sms_body(fund, &amount, &balance, id, tx.kind, locale),
    };
    (subject, body)
}

/// One SMS segment of plain GSM-7 text (no accents); a long fund name is shortened to fit.
fn sms_body(
    fund: &str,
    amount: &str,
    balance: &str,
    id: TransactionId,
    kind: TransactionKind,
    locale: Locale,
) -> String {
    let compose = |fund: &str| match (locale, kind) {
        (Locale::Es, TransactionKind::Subscription) => {
            format!("Suscripcion a {fund} por {amount}. Saldo {balance}. Tx {id}")
        }
        (Locale::Es, TransactionKind::Cancellation) => {
            format!("Cancelacion de {fund}, reintegro {amount}. Saldo {balance}. Tx {id}")
        }
        (Locale::En, TransactionKind::Subscription) => {
            format!("Subscribed to {fund} for {amount}. Balance {balance}. Tx {id}")
        }
        (Locale::En, TransactionKind::Cancellation) => {
            format!("Cancelled {fund}, refund {amount}. Balance {balance}. Tx {id}")
        }
    };
    let full = compose(fund);
    let overflow = full.chars().count().saturating_sub(SMS_MAX_CHARS);
    if overflow == 0 {
        return full;
    }
    let keep = fund.chars().count().saturating_sub(overflow + 2);
    let short: String = fund.chars().take(keep).chain("..".chars()).collect();
    compose(&short)
}

/// A notifier that keeps what it is sent, and fails on cue; for tests and examples.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    delivered: Mutex<Vec<Notification>>,
    attempts: Mutex<u32>,
    scripted: Mutex<VecDeque<Result<(), DeliveryError>>>,
}

impl RecordingNotifier {
    /// A notifier that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues outcomes for the next sends; once they run out, sends succeed.
    pub fn script(&self, outcomes: impl IntoIterator<Item = Result<(), DeliveryError>>) {
        lock(&self.scripted).extend(outcomes);
    }

    /// Notifications accepted so far, in delivery order.
    pub fn delivered(&self) -> Vec<Notification> {
        lock(&self.delivered).clone()
    }

    /// Calls to `send` so far, failed ones included.
    pub fn attempts(&self) -> u32 {
        *lock(&self.attempts)
    }
}

impl Notifier for RecordingNotifier {
    fn send(&self, notification: &Notification) -> Result<(), DeliveryError> {
        *lock(&self.attempts) += 1;
        let outcome = lock(&self.scripted).pop_front().unwrap_or(Ok(()));
        if outcome.is_ok() {
            lock(&self.delivered).push(notification.clone());
        }
        outcome
    }
}

/// A notifier that writes each notification as a few readable lines; for demos.
pub struct LoggingNotifier {
    out: Mutex<Box<dyn Write + Send>>,
}

impl LoggingNotifier {
    /// Logs to standard output.
    pub fn stdout() -> Self {
        Self::to_writer(Box::new(std::io::stdout()))
    }

    /// Logs to any writer.
    pub fn to_writer(out: Box<dyn Write + Send>) -> Self {
        LoggingNotifier {
            out: Mutex::new(out),
        }
    }
}

impl fmt::Debug for LoggingNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoggingNotifier")
    }
}

impl Notifier for LoggingNotifier {
    fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        let mut out = lock(&self.out);
        writeln!(
            out,
            "[{} -> {}] {}\n{}",
            n.channel,
            n.recipient,
            n.subject,
            n.body.trim_end()
        )
        .and_then(|()| out.flush())
        .map_err(|err| DeliveryError::Retryable(err.to_string()))
    }
}

/// Locks a mutex, recovering the data if another thread panicked while holding it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::cop;
    use uuid::Uuid;

    fn sample(
        channel: Channel,
        fund_name: &str,
        amount: &str,
        kind: TransactionKind,
    ) -> (Client, Transaction) {
        let client_id = ClientId(Uuid::now_v7());
        let client = Client {
            id: client_id,
            name: "Ana".into(),
            email: "ana@example.com".into(),
            phone: "+573001234567".into(),
            channel,
            balance: cop("0"),
            created_at: Timestamp::from_unix_micros(0),
        };
        let tx = Transaction {
            id: TransactionId(Uuid::now_v7()),
            client_id,
            fund_id: 1,
            fund_name: fund_name.into(),
            kind,
            amount: cop(amount),
            balance_after: cop(amount),
            created_at: Timestamp::from_unix_micros(0),
            idempotency_key: None,
        };
        (client, tx)
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_secs(5);
        let max = Duration::from_secs(60);
        let delays: Vec<u64> = (1..=6).map(|n| backoff(n, base, max).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 60, 60]);
        assert_eq!(backoff(u32::MAX, base, max), max);
    }

    #[test]
    fn messages_name_fund_amount_transaction_and_balance() {
        for locale in [Locale::Es, Locale::En] {
            for kind in [TransactionKind::Subscription, TransactionKind::Cancellation] {
                for channel in [Channel::Email, Channel::Sms] {
                    let (client, tx) = sample(channel, "FPV_BTG_PACTUAL_ECOPETROL", "125000", kind);
                    let (subject, body) = render(&client.name, client.channel, &tx, locale);
                    assert!(subject.contains("FPV_BTG_PACTUAL_ECOPETROL"));
                    for needle in [
                        "FPV_BTG_PACTUAL_ECOPETROL",
                        "COP $125.000",
                        &tx.id.to_string(),
                    ] {
                        assert!(body.contains(needle), "{locale} {kind} {channel}: {body}");
                    }
                }
            }
        }
        let (client, tx) = sample(
            Channel::Email,
            "DEUDAPRIVADA",
            "50000",
            TransactionKind::Subscription,
        );
        assert!(
            render(&client.name, client.channel, &tx, Locale::Es)
                .0
                .starts_with("Suscripción")
        );
        assert!(
            render(&client.name, client.channel, &tx, Locale::En)
                .0
                .starts_with("Subscription")
        );
    }

    #[test]
    fn sms_fits_one_plain_segment_even_at_the_limits() {
        for fund in ["FPV_BTG_PACTUAL_RECAUDADORA", &"F".repeat(120)] {
            for locale in [Locale::Es, Locale::En] {
                for kind in [TransactionKind::Subscription, TransactionKind::Cancellation] {
                    let (client, tx) = sample(Channel::Sms, fund, "999999999999.99", kind);
                    let (_, body) = render(&client.name, client.channel, &tx, locale);
                    assert!(
                        body.chars().count() <= SMS_MAX_CHARS,
                        "{} chars: {body}",
                        body.len()
                    );
                    assert!(body.is_ascii(), "{body}");
                    assert!(body.contains(&tx.id.to_string()));
                }
            }
        }
    }
}
