//! The transactional outbox: notifications written in the same store transaction as the money
//! movement, delivered afterwards through a [`Notifier`] port with retries and backoff.

#[cfg(any(test, feature = "testing"))]
use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::time::Duration;

use parking_lot::Mutex;

use serde::{Deserialize, Serialize};

use crate::client::Channel;
use crate::ids::{ClientId, NotificationId, TransactionId};
use crate::time::Timestamp;

named_enum! {
    /// Where a notification stands.
    #[derive(strum::EnumString)]
    pub enum NotificationStatus in "lowercase" {
        /// Waiting for (another) delivery attempt.
        Pending,
        /// Accepted by the notifier.
        Delivered,
        /// Given up on: a permanent failure or too many attempts. Kept and visible.
        Failed,
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

/// How the outbox stands: its entries by status, and how long the oldest pending one has waited
/// (what an operator watches: a growing backlog or age means deliveries are not keeping up).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxState {
    /// Entries waiting for a (further) delivery attempt.
    pub pending: u64,
    /// Entries given up on (see [`crate::Engine::retry_failed_notifications`]).
    pub failed: u64,
    /// Entries the notifier accepted.
    pub delivered: u64,
    /// When the oldest pending entry was written (with its transaction); `None` when nothing is
    /// pending.
    pub oldest_pending_at: Option<Timestamp>,
    /// How long the oldest pending entry has waited, by the engine's clock (zero when the clock
    /// is behind it); `None` when nothing is pending. In JSON, an ISO 8601 duration in
    /// seconds: `"PT12.5S"`.
    #[serde(with = "optional_iso_seconds")]
    pub oldest_pending_age: Option<Duration>,
}

/// An optional duration as an ISO 8601 duration in seconds, exact to the microsecond
/// (`"PT12.5S"`, the form Python's pydantic gives a `timedelta`): a string, as money and times
/// are, so no record carries a binary float.
mod optional_iso_seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(age) => serializer.serialize_some(&to_text(*age)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) => from_text(&text).map(Some).ok_or_else(|| {
                serde::de::Error::custom(format!("not an ISO 8601 duration in seconds: {text}"))
            }),
            None => Ok(None),
        }
    }

    pub(super) fn to_text(age: Duration) -> String {
        let micros = age.subsec_micros();
        if micros == 0 {
            return format!("PT{}S", age.as_secs());
        }
        let fraction = format!("{micros:06}");
        format!("PT{}.{}S", age.as_secs(), fraction.trim_end_matches('0'))
    }

    pub(super) fn from_text(text: &str) -> Option<Duration> {
        let seconds = text.strip_prefix("PT")?.strip_suffix('S')?;
        let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
        let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || fraction.len() > 6 || !all_digits(fraction) {
            return None;
        }
        let micros: u32 = format!("{fraction:0<6}").parse().ok()?;
        Some(Duration::new(whole.parse().ok()?, micros * 1000))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::optional_iso_seconds::{from_text, to_text};

    #[test]
    fn ages_are_iso_8601_seconds_exact_to_the_microsecond() {
        for (age, text) in [
            (Duration::ZERO, "PT0S"),
            (Duration::from_secs(90_061), "PT90061S"),
            (Duration::from_micros(12_500_000), "PT12.5S"),
            (Duration::from_micros(7_322), "PT0.007322S"),
        ] {
            assert_eq!(to_text(age), text);
            assert_eq!(from_text(text), Some(age));
        }
        for bad in [
            "12.5",
            "PT.5S",
            "PT1.1234567S",
            "PT-1S",
            "PT1,5S",
            "P1DT1S",
            "PTS",
        ] {
            assert_eq!(from_text(bad), None, "{bad}");
        }
    }
}

/// A notifier that keeps what it is sent, and fails on cue; for tests (feature `testing`).
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    delivered: Mutex<Vec<Notification>>,
    attempts: Mutex<u32>,
    scripted: Mutex<VecDeque<Result<(), DeliveryError>>>,
}

#[cfg(any(test, feature = "testing"))]
impl RecordingNotifier {
    /// A notifier that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues outcomes for the next sends; once they run out, sends succeed.
    pub fn script(&self, outcomes: impl IntoIterator<Item = Result<(), DeliveryError>>) {
        self.scripted.lock().extend(outcomes);
    }

    /// Notifications accepted so far, in delivery order.
    pub fn delivered(&self) -> Vec<Notification> {
        self.delivered.lock().clone()
    }

    /// Calls to `send` so far, failed ones included.
    pub fn attempts(&self) -> u32 {
        *self.attempts.lock()
    }
}

#[cfg(any(test, feature = "testing"))]
impl Notifier for RecordingNotifier {
    fn send(&self, notification: &Notification) -> Result<(), DeliveryError> {
        *self.attempts.lock() += 1;
        let outcome = self.scripted.lock().pop_front().unwrap_or(Ok(()));
        if outcome.is_ok() {
            self.delivered.lock().push(notification.clone());
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
        let mut out = self.out.lock();
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
