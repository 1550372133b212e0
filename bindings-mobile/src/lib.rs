//! # fundcore-mobile
//!
//! uniffi bindings of [`fundcore`] for mobile apps: Kotlin (package `com.fundcore`, Android and
//! the JVM) and Swift (module `FundCore`, iOS and macOS). The app embeds the same engine, with
//! its own sled store, and works offline.
//!
//! This crate only converts: records to uniffi records, money to the `Amount` custom type
//! (decimal text on the wire, `java.math.BigDecimal` in Kotlin, `Decimal` in Swift), ids to
//! strings, times to `SystemTime` (`java.time.Instant` / `Date`), and [`fundcore::Error`] to
//! [`FundError`]. Every rule lives in [`fundcore::Engine`].
//!
//! Integers cross the FFI as signed types (`i64` fund ids, `i32` limits and counts, `i64`
//! milliseconds and bytes): Kotlin gives every function or property that uses an unsigned type
//! (`UInt`, `ULong`) a mangled JVM name (`subscribe-Yuhug_o`) that Java cannot call. A value
//! outside the core's range gets the error the core gives for it: a fund id that fits no `u32`
//! names no fund (`FUND_NOT_FOUND` with the id as given), a negative history limit is the
//! core's `VALIDATION_ERROR` on `limit`, a negative setting is the core's configuration error.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fundcore::{ClientId, Decimal, TransactionId};

uniffi::setup_scaffolding!();

// ---------------------------------------------------------------- money

/// Money: an exact decimal, never a binary float.
///
/// It crosses the FFI as decimal text (`"75000.00"`); `uniffi.toml` maps it to
/// `java.math.BigDecimal` in Kotlin and `Decimal` in Swift. Amounts returned by the engine
/// always have exactly 2 fractional digits.
pub type Amount = Decimal;

uniffi::custom_type!(Amount, String, {
    remote,
    lower: |amount| amount.to_string(),
    // Text that is not a number (or does not fit a Decimal) is the engine's VALIDATION_ERROR,
    // raised as FundError, not as an internal error; range and precision are checked by the
    // engine where the amount is used.
    try_lift: |text| fundcore::money::parse_amount(&text)
        .map_err(|err| FundError::from_core(err, fundcore::Locale::Es).into()),
});

// ---------------------------------------------------------------- errors

/// Every error of the engine: one case per stable code of `docs/errors.md` (`FundException` in
/// Kotlin).
///
/// Each case carries the stable `code` (`"INSUFFICIENT_BALANCE"`, ...) and the human text in
/// `reason`, in the engine's locale (Spanish by default). The text is not called `message`:
/// that name belongs to Kotlin's `Throwable.message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum FundError {
    /// `VALIDATION_ERROR`: malformed input; `field` names it (`amount`, `email`, ...).
    #[error("{code}: {reason}")]
    ValidationError {
        code: String,
        reason: String,
        field: String,
    },
    /// `BELOW_MINIMUM`: the message names the fund and its minimum.
    #[error("{code}: {reason}")]
    BelowMinimum { code: String, reason: String },
    /// `INSUFFICIENT_BALANCE`: `No tiene saldo disponible para vincularse al fondo <name>`.
    #[error("{code}: {reason}")]
    InsufficientBalance { code: String, reason: String },
    /// `ALREADY_SUBSCRIBED`.
    #[error("{code}: {reason}")]
    AlreadySubscribed { code: String, reason: String },
    /// `NOT_SUBSCRIBED`.
    #[error("{code}: {reason}")]
    NotSubscribed { code: String, reason: String },
    /// `FUND_INACTIVE`.
    #[error("{code}: {reason}")]
    FundInactive { code: String, reason: String },
    /// `IDEMPOTENCY_KEY_REUSED`.
    #[error("{code}: {reason}")]
    IdempotencyKeyReused { code: String, reason: String },
    /// `CLIENT_NOT_FOUND`.
    #[error("{code}: {reason}")]
    ClientNotFound { code: String, reason: String },
    /// `FUND_NOT_FOUND`.
    #[error("{code}: {reason}")]
    FundNotFound { code: String, reason: String },
    /// `TRANSACTION_NOT_FOUND`.
    #[error("{code}: {reason}")]
    TransactionNotFound { code: String, reason: String },
    /// `STORAGE_ERROR`: the store failed; nothing was committed.
    #[error("{code}: {reason}")]
    StorageError { code: String, reason: String },
}

impl FundError {
    /// The core error with its message rendered in `locale`.
    ///
    /// The case follows the stable code, not the core's variant: the core may report one code
    /// through several variants (every store failure is `STORAGE_ERROR`).
    pub fn from_core(err: fundcore::Error, locale: fundcore::Locale) -> Self {
        let code = err.code().to_owned();
        let reason = err.message(locale);
        match code.as_str() {
            "VALIDATION_ERROR" => FundError::ValidationError {
                field: err.field().unwrap_or_default().to_owned(),
                code,
                reason,
            },
            "BELOW_MINIMUM" => FundError::BelowMinimum { code, reason },
            "INSUFFICIENT_BALANCE" => FundError::InsufficientBalance { code, reason },
            "ALREADY_SUBSCRIBED" => FundError::AlreadySubscribed { code, reason },
            "NOT_SUBSCRIBED" => FundError::NotSubscribed { code, reason },
            "FUND_INACTIVE" => FundError::FundInactive { code, reason },
            "IDEMPOTENCY_KEY_REUSED" => FundError::IdempotencyKeyReused { code, reason },
            "CLIENT_NOT_FOUND" => FundError::ClientNotFound { code, reason },
            "FUND_NOT_FOUND" => FundError::FundNotFound { code, reason },
            "TRANSACTION_NOT_FOUND" => FundError::TransactionNotFound { code, reason },
            // STORAGE_ERROR; a code added to the core later keeps its own `code` here.
            _ => FundError::StorageError { code, reason },
        }
    }

    /// `FUND_NOT_FOUND` for a fund id outside the core's `u32` range (negative or too large):
    /// the core's message for a placeholder id, with the id as given in its place, so the text
    /// stays the core's own.
    pub fn fund_not_found(given: i64, locale: fundcore::Locale) -> Self {
        let placeholder = u32::MAX;
        let core = fundcore::Error::FundNotFound { id: placeholder };
        FundError::FundNotFound {
            code: core.code().to_owned(),
            reason: core
                .message(locale)
                .replacen(&placeholder.to_string(), &given.to_string(), 1),
        }
    }

    /// The stable code (`docs/errors.md`).
    pub fn code(&self) -> &str {
        match self {
            FundError::ValidationError { code, .. }
            | FundError::BelowMinimum { code, .. }
            | FundError::InsufficientBalance { code, .. }
            | FundError::AlreadySubscribed { code, .. }
            | FundError::NotSubscribed { code, .. }
            | FundError::FundInactive { code, .. }
            | FundError::IdempotencyKeyReused { code, .. }
            | FundError::ClientNotFound { code, .. }
            | FundError::FundNotFound { code, .. }
            | FundError::TransactionNotFound { code, .. }
            | FundError::StorageError { code, .. } => code,
        }
    }

    /// The human message.
    pub fn reason(&self) -> &str {
        match self {
            FundError::ValidationError { reason, .. }
            | FundError::BelowMinimum { reason, .. }
            | FundError::InsufficientBalance { reason, .. }
            | FundError::AlreadySubscribed { reason, .. }
            | FundError::NotSubscribed { reason, .. }
            | FundError::FundInactive { reason, .. }
            | FundError::IdempotencyKeyReused { reason, .. }
            | FundError::ClientNotFound { reason, .. }
            | FundError::FundNotFound { reason, .. }
            | FundError::TransactionNotFound { reason, .. }
            | FundError::StorageError { reason, .. } => reason,
        }
    }
}

// ---------------------------------------------------------------- enums

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

/// When committed changes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Durability {
    /// Flushed before each operation returns (the default).
    EveryCommit,
    /// Flushed in the background every `interval_ms` (not negative); `flush()` forces it.
    Periodic { interval_ms: i64 },
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

/// Engine settings; every field left `null`/`nil` keeps the engine's default.
///
/// A negative number, or a fund id outside 0..=4294967295, is the core's configuration
/// `VALIDATION_ERROR`, on the field that holds it.
///
/// `initial_balance` and `funds` are written into a store when it is created; a store keeps
/// the rules it started with.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct EngineConfig {
    /// Balance of a new client (default COP 500.000).
    #[uniffi(default = None)]
    pub initial_balance: Option<Amount>,
    /// Fund catalogue seeded on first open (default: the five funds of the specification).
    #[uniffi(default = None)]
    pub funds: Option<Vec<Fund>>,
    /// Language of messages (default `Es`).
    #[uniffi(default = None)]
    pub locale: Option<Locale>,
    /// Whether cancellations are notified too (default true).
    #[uniffi(default = None)]
    pub notify_on_cancel: Option<bool>,
    /// Delivery attempts before a notification is marked failed (default 8).
    #[uniffi(default = None)]
    pub max_attempts: Option<i32>,
    /// Delay before the first retry, in milliseconds; doubled on each failure (default 5 s).
    #[uniffi(default = None)]
    pub retry_base_delay_ms: Option<i64>,
    /// Longest delay between retries, in milliseconds (default 1 h).
    #[uniffi(default = None)]
    pub retry_max_delay_ms: Option<i64>,
    /// When changes reach the disk (default every commit).
    #[uniffi(default = None)]
    pub durability: Option<Durability>,
    /// Memory for the store's page cache, in bytes (default 64 MiB).
    #[uniffi(default = None)]
    pub cache_capacity_bytes: Option<i64>,
}

// ---------------------------------------------------------------- notifier (foreign trait)

/// Why the app's notifier could not deliver (`DeliveryException` in Kotlin).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum DeliveryError {
    /// Try again later, with exponential backoff (server down, timeout, rate limit).
    #[error("retryable: {reason}")]
    Retryable { reason: String },
    /// Never try again: the entry is marked failed at once (recipient refused).
    #[error("permanent: {reason}")]
    Permanent { reason: String },
}

/// Any other exception thrown by the app's notifier is a retryable failure.
impl From<uniffi::UnexpectedUniFFICallbackError> for DeliveryError {
    fn from(err: uniffi::UnexpectedUniFFICallbackError) -> Self {
        // Kotlin reports the whole stack trace; the first line names the exception.
        let first_line = err.reason.lines().next().unwrap_or_default();
        DeliveryError::Retryable {
            reason: first_line.to_owned(),
        }
    }
}

/// The app's way of delivering notifications (email, SMS, push, a queue), implemented in Kotlin
/// or Swift and passed to [`FundEngine::dispatch_notifications`].
#[uniffi::export(foreign)]
pub trait Notifier: Send + Sync {
    /// Delivers one notification; may be called more than once for the same `id`
    /// (at-least-once delivery). Throw/return `DeliveryError` to report a failure.
    fn send(&self, notification: Notification) -> Result<(), DeliveryError>;
}

/// Adapts the foreign notifier to the core's port.
struct NotifierPort(Arc<dyn Notifier>);

impl fundcore::Notifier for NotifierPort {
    fn send(&self, notification: &fundcore::Notification) -> Result<(), fundcore::DeliveryError> {
        self.0
            .send(notification.clone().into())
            .map_err(|err| match err {
                DeliveryError::Retryable { reason } => fundcore::DeliveryError::Retryable(reason),
                DeliveryError::Permanent { reason } => fundcore::DeliveryError::Permanent(reason),
            })
    }
}

// ---------------------------------------------------------------- the engine

/// The fund-subscription engine over a sled store in a directory the app owns.
///
/// Safe to call from several threads at once. One engine per directory per process: close it
/// (`close()` in Kotlin, dropping the last reference in Swift) before opening it again.
#[derive(uniffi::Object)]
pub struct FundEngine {
    engine: fundcore::Engine,
}

#[uniffi::export]
impl FundEngine {
    /// Opens (creating and seeding on first use) the store in directory `path`, with the
    /// default settings.
    #[uniffi::constructor]
    pub fn new(path: String) -> Result<Arc<Self>, FundError> {
        Self::with_config(Some(path), None)
    }

    /// Opens a fresh store in a temporary directory, removed when the engine is closed.
    #[uniffi::constructor]
    pub fn temporary() -> Result<Arc<Self>, FundError> {
        Self::with_config(None, None)
    }

    /// Opens the store in `path` (a temporary store when `path` is null/nil) with `config`.
    #[uniffi::constructor(default(path = None, config = None))]
    pub fn with_config(
        path: Option<String>,
        config: Option<EngineConfig>,
    ) -> Result<Arc<Self>, FundError> {
        let config = config.unwrap_or_default();
        let locale = config.locale.map_or(fundcore::Locale::Es, Into::into);
        let core_config = core_config(config).map_err(|err| FundError::from_core(err, locale))?;
        let engine = match path {
            Some(path) => fundcore::Engine::open(path, core_config),
            None => fundcore::Engine::open_temporary(core_config),
        }
        .map_err(|err| FundError::from_core(err, locale))?;
        Ok(Arc::new(FundEngine { engine }))
    }

    /// Language of the engine's messages.
    pub fn locale(&self) -> Locale {
        self.engine.locale().into()
    }

    /// The fund catalogue, by id.
    pub fn funds(&self) -> Vec<Fund> {
        self.engine.funds().into_iter().map(Into::into).collect()
    }

    /// One fund.
    pub fn fund(&self, id: i64) -> Result<Fund, FundError> {
        let id = self.fund_id(id)?;
        self.engine.fund(id).map(Into::into).map_err(self.err())
    }

    /// Registers a client with the initial balance.
    pub fn register_client(
        &self,
        name: String,
        email: String,
        phone: String,
        channel: Channel,
    ) -> Result<Client, FundError> {
        self.engine
            .register_client(&name, &email, &phone, channel.into())
            .map(Into::into)
            .map_err(self.err())
    }

    /// One client, with its current balance.
    pub fn client(&self, id: String) -> Result<Client, FundError> {
        let id = self.client_id(&id)?;
        self.engine.client(id).map(Into::into).map_err(self.err())
    }

    /// Subscribes a client to a fund for `amount` (the fund's minimum when null/nil).
    ///
    /// Repeating a call with the same `idempotency_key` returns the original transaction.
    #[uniffi::method(default(amount = None, idempotency_key = None))]
    pub fn subscribe(
        &self,
        client_id: String,
        fund_id: i64,
        amount: Option<Amount>,
        idempotency_key: Option<String>,
    ) -> Result<Transaction, FundError> {
        let client_id = self.client_id(&client_id)?;
        let fund_id = self.fund_id(fund_id)?;
        self.engine
            .subscribe(client_id, fund_id, amount, idempotency_key.as_deref())
            .map(Into::into)
            .map_err(self.err())
    }

    /// Cancels a client's active subscription to a fund, refunding the subscribed amount.
    #[uniffi::method(default(idempotency_key = None))]
    pub fn cancel(
        &self,
        client_id: String,
        fund_id: i64,
        idempotency_key: Option<String>,
    ) -> Result<Transaction, FundError> {
        let client_id = self.client_id(&client_id)?;
        let fund_id = self.fund_id(fund_id)?;
        self.engine
            .cancel(client_id, fund_id, idempotency_key.as_deref())
            .map(Into::into)
            .map_err(self.err())
    }

    /// A client's active subscriptions, by fund id.
    pub fn subscriptions(&self, client_id: String) -> Result<Vec<Subscription>, FundError> {
        let client_id = self.client_id(&client_id)?;
        self.engine
            .subscriptions(client_id)
            .map(|list| list.into_iter().map(Into::into).collect())
            .map_err(self.err())
    }

    /// A client's transactions, newest first: at most `limit` (1 to 200), older than the
    /// transaction `before` when given (an exclusive cursor: pass the last id of a page; any
    /// other text is a validation error on `before`). A limit outside 1 to 200, negative
    /// included, is the core's validation error on `limit`.
    #[uniffi::method(default(before = None))]
    pub fn history(
        &self,
        client_id: String,
        limit: i32,
        before: Option<String>,
    ) -> Result<Vec<Transaction>, FundError> {
        let client_id = self.client_id(&client_id)?;
        let before = before
            .map(|id| TransactionId::parse_cursor(&id))
            .transpose()
            .map_err(self.err())?;
        self.engine
            .history(client_id, count(limit), before)
            .map(|list| list.into_iter().map(Into::into).collect())
            .map_err(self.err())
    }

    /// One transaction by id.
    pub fn transaction(&self, id: String) -> Result<Transaction, FundError> {
        let id = TransactionId::from_str(&id).map_err(self.err())?;
        self.engine
            .transaction(id)
            .map(Into::into)
            .map_err(self.err())
    }

    /// A client's outbox entries, newest first, whatever their status.
    pub fn notifications(&self, client_id: String) -> Result<Vec<Notification>, FundError> {
        let client_id = self.client_id(&client_id)?;
        self.engine
            .notifications(client_id)
            .map(|list| list.into_iter().map(Into::into).collect())
            .map_err(self.err())
    }

    /// Delivers up to `limit` due pending notifications through the app's `notifier`, on the
    /// calling thread. Retryable failures are retried on a later call, after a backoff. A
    /// limit of 0 or less delivers nothing (as in the core and the Python binding).
    pub fn dispatch_notifications(
        &self,
        notifier: Arc<dyn Notifier>,
        limit: i32,
    ) -> Result<DispatchReport, FundError> {
        self.engine
            .dispatch_notifications(&NotifierPort(notifier), count(limit))
            .map(Into::into)
            .map_err(self.err())
    }

    /// Puts up to `limit` failed notifications back in the queue; returns how many. A limit of
    /// 0 or less requeues nothing.
    pub fn retry_failed_notifications(&self, limit: i32) -> Result<i32, FundError> {
        self.engine
            .retry_failed_notifications(count(limit))
            .map(saturating_i32)
            .map_err(self.err())
    }

    /// Makes everything acknowledged so far durable.
    pub fn flush(&self) -> Result<(), FundError> {
        self.engine.flush().map_err(self.err())
    }
}

impl FundEngine {
    fn err(&self) -> impl Fn(fundcore::Error) -> FundError + use<> {
        let locale = self.engine.locale();
        move |err| FundError::from_core(err, locale)
    }

    fn client_id(&self, id: &str) -> Result<ClientId, FundError> {
        ClientId::from_str(id).map_err(self.err())
    }

    /// The core's fund id; one outside `u32` names no fund.
    fn fund_id(&self, id: i64) -> Result<u32, FundError> {
        u32::try_from(id).map_err(|_| FundError::fund_not_found(id, self.engine.locale()))
    }
}

/// A count (`limit`) for the core: a negative one becomes 0, which the core answers as it
/// answers 0 (the history's `VALIDATION_ERROR` on `limit`; nothing to dispatch or requeue).
fn count(limit: i32) -> usize {
    usize::try_from(limit).unwrap_or(0)
}

/// A count from the core, for the FFI: it never exceeds the `i32` limit it was asked for.
fn saturating_i32(n: impl TryInto<i32>) -> i32 {
    n.try_into().unwrap_or(i32::MAX)
}

/// The core's configuration error on `field` (a negative setting, a fund id out of range).
fn config_error(field: &'static str) -> fundcore::Error {
    fundcore::Error::Validation {
        field,
        problem: fundcore::Invalid::Config,
    }
}

/// A setting that must not be negative.
fn non_negative(value: i64, field: &'static str) -> Result<u64, fundcore::Error> {
    u64::try_from(value).map_err(|_| config_error(field))
}

fn core_config(config: EngineConfig) -> Result<fundcore::Config, fundcore::Error> {
    let mut core = fundcore::Config::default();
    if let Some(initial_balance) = config.initial_balance {
        core.initial_balance = initial_balance;
    }
    if let Some(funds) = config.funds {
        core.funds = funds
            .into_iter()
            .map(fundcore::Fund::try_from)
            .collect::<Result<_, _>>()?;
    }
    if let Some(locale) = config.locale {
        core.locale = locale.into();
    }
    if let Some(notify_on_cancel) = config.notify_on_cancel {
        core.notify_on_cancel = notify_on_cancel;
    }
    if let Some(max_attempts) = config.max_attempts {
        core.max_attempts =
            u32::try_from(max_attempts).map_err(|_| config_error("max_attempts"))?;
    }
    if let Some(ms) = config.retry_base_delay_ms {
        core.retry_base_delay = Duration::from_millis(non_negative(ms, "retry_base_delay_ms")?);
    }
    if let Some(ms) = config.retry_max_delay_ms {
        core.retry_max_delay = Duration::from_millis(non_negative(ms, "retry_max_delay_ms")?);
    }
    if let Some(durability) = config.durability {
        core.durability = durability.try_into()?;
    }
    if let Some(bytes) = config.cache_capacity_bytes {
        core.cache_capacity_bytes = non_negative(bytes, "cache_capacity_bytes")?;
    }
    Ok(core)
}

// ---------------------------------------------------------------- parsing user input

/// Parses decimal text typed by a user (`"80000"`, `"80000.50"`) with the engine's rules:
/// text that is not a number is `VALIDATION_ERROR` (field `amount`), with the message in
/// `locale` (Spanish when null/nil). Range and precision are checked where the amount is used.
#[uniffi::export(default(locale = None))]
pub fn parse_amount(text: String, locale: Option<Locale>) -> Result<Amount, FundError> {
    let locale = locale.map_or(fundcore::Locale::Es, Into::into);
    fundcore::money::parse_amount(&text).map_err(|err| FundError::from_core(err, locale))
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

/// Formats money for people, the Colombian way: `COP $75.000`, `COP $1.250.000,50`.
#[uniffi::export]
pub fn format_cop(amount: Amount) -> String {
    fundcore::money::format_cop(amount)
}

// ---------------------------------------------------------------- conversions

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

impl TryFrom<Durability> for fundcore::Durability {
    type Error = fundcore::Error;

    fn try_from(value: Durability) -> Result<Self, Self::Error> {
        Ok(match value {
            Durability::EveryCommit => fundcore::Durability::EveryCommit,
            Durability::Periodic { interval_ms } => fundcore::Durability::Periodic {
                interval_ms: non_negative(interval_ms, "interval_ms")?,
            },
        })
    }
}

impl From<fundcore::Fund> for Fund {
    fn from(fund: fundcore::Fund) -> Self {
        Fund {
            id: fund.id.into(),
            name: fund.name,
            minimum: fund.minimum,
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
            minimum: fund.minimum,
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
            balance: client.balance,
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
            amount: sub.amount,
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
            amount: tx.amount,
            balance_after: tx.balance_after,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_keep_their_code_and_localized_message() {
        let err = fundcore::Error::InsufficientBalance {
            fund_name: "FDO-ACCIONES".into(),
        };
        let es = FundError::from_core(err.clone(), fundcore::Locale::Es);
        assert_eq!(es.code(), "INSUFFICIENT_BALANCE");
        assert_eq!(
            es.reason(),
            "No tiene saldo disponible para vincularse al fondo FDO-ACCIONES"
        );
        let en = FundError::from_core(err, fundcore::Locale::En);
        assert_eq!(en.code(), "INSUFFICIENT_BALANCE");
        assert_ne!(en.reason(), es.reason());
    }

    #[test]
    fn every_code_gets_its_own_case() {
        use fundcore::Error as E;
        let name = || "F".to_owned();
        let errors = [
            E::Validation {
                field: "email",
                problem: fundcore::Invalid::Email,
            },
            E::BelowMinimum {
                fund_name: name(),
                minimum: "1".parse().unwrap(),
            },
            E::InsufficientBalance { fund_name: name() },
            E::AlreadySubscribed { fund_name: name() },
            E::NotSubscribed { fund_name: name() },
            E::FundInactive { fund_name: name() },
            E::IdempotencyKeyReused { key: name() },
            E::ClientNotFound { id: name() },
            E::FundNotFound { id: 9 },
            E::TransactionNotFound { id: name() },
            E::Storage { detail: name() },
        ];
        let mut cases = std::collections::HashSet::new();
        for err in errors {
            let mapped = FundError::from_core(err.clone(), fundcore::Locale::Es);
            assert_eq!(mapped.code(), err.code());
            assert_eq!(mapped.reason(), err.message(fundcore::Locale::Es));
            cases.insert(std::mem::discriminant(&mapped));
        }
        assert_eq!(cases.len(), 11, "one FundError case per code");
        let validation = FundError::from_core(
            E::Validation {
                field: "email",
                problem: fundcore::Invalid::Email,
            },
            fundcore::Locale::Es,
        );
        assert!(matches!(validation, FundError::ValidationError { field, .. } if field == "email"));
    }

    #[test]
    fn engine_round_trip_through_the_binding_types() {
        let engine = FundEngine::temporary().unwrap();
        let ana = engine
            .register_client(
                "Ana".into(),
                "ana@example.com".into(),
                "+573001234567".into(),
                Channel::Sms,
            )
            .unwrap();
        assert_eq!(ana.balance.to_string(), "500000.00");
        let tx = engine
            .subscribe(ana.id.clone(), 1, Some("80000".parse().unwrap()), None)
            .unwrap();
        assert_eq!(tx.kind, TransactionKind::Subscription);
        assert_eq!(tx.amount.to_string(), "80000.00");
        assert_eq!(engine.transaction(tx.id.clone()).unwrap(), tx);
        let err = engine.client("not-an-id".into()).unwrap_err();
        assert_eq!(err.code(), "CLIENT_NOT_FOUND");
    }

    /// A fund id the core's `u32` cannot hold names no fund: the core's FUND_NOT_FOUND text,
    /// with the id as given, in the engine's locale.
    #[test]
    fn fund_ids_outside_u32_are_fund_not_found_with_the_id_as_given() {
        let engine = FundEngine::temporary().unwrap();
        let ana = engine
            .register_client(
                "Ana".into(),
                "ana@example.com".into(),
                "+573001234567".into(),
                Channel::Email,
            )
            .unwrap();
        let negative = engine
            .subscribe(ana.id.clone(), -3, None, None)
            .unwrap_err();
        assert_eq!(
            negative,
            FundError::FundNotFound {
                code: "FUND_NOT_FOUND".into(),
                reason: "No existe el fondo -3".into(),
            }
        );
        let too_large = engine.cancel(ana.id.clone(), 1 << 32, None).unwrap_err();
        assert_eq!(too_large.reason(), "No existe el fondo 4294967296");
        assert_eq!(engine.fund(i64::MIN).unwrap_err().code(), "FUND_NOT_FOUND");
        // The largest u32 is a valid (unknown) id: the core answers for it.
        let largest = engine.fund(u32::MAX.into()).unwrap_err();
        assert_eq!(largest.reason(), "No existe el fondo 4294967295");
        let en = FundError::fund_not_found(-3, fundcore::Locale::En);
        assert_eq!(en.reason(), "Fund -3 not found");
        // Nothing was spent.
        assert_eq!(
            engine.client(ana.id).unwrap().balance.to_string(),
            "500000.00"
        );
    }

    #[test]
    fn negative_limits_get_the_cores_answer() {
        let engine = FundEngine::temporary().unwrap();
        let ana = engine
            .register_client(
                "Ana".into(),
                "ana@example.com".into(),
                "+573001234567".into(),
                Channel::Email,
            )
            .unwrap();
        let core_error = FundError::from_core(
            fundcore::Error::Validation {
                field: "limit",
                problem: fundcore::Invalid::Limit,
            },
            fundcore::Locale::Es,
        );
        for limit in [-1, i32::MIN, 0, 201] {
            let err = engine.history(ana.id.clone(), limit, None).unwrap_err();
            assert_eq!(err, core_error, "limit {limit}");
        }
        engine.subscribe(ana.id, 1, None, None).unwrap();
        struct Refuse;
        impl Notifier for Refuse {
            fn send(&self, _: Notification) -> Result<(), DeliveryError> {
                Err(DeliveryError::Permanent {
                    reason: "not called".into(),
                })
            }
        }
        let none = DispatchReport {
            delivered: 0,
            retried: 0,
            failed: 0,
        };
        assert_eq!(
            engine.dispatch_notifications(Arc::new(Refuse), -1).unwrap(),
            none
        );
        assert_eq!(engine.retry_failed_notifications(-5).unwrap(), 0);
    }

    #[test]
    fn negative_settings_are_the_cores_configuration_error() {
        let field_of = |config: EngineConfig| match FundEngine::with_config(None, Some(config)) {
            Err(FundError::ValidationError { field, reason, .. }) => {
                assert_eq!(
                    reason,
                    format!("{field}: valor de configuración fuera de rango")
                );
                field
            }
            other => panic!("expected a validation error, got {:?}", other.map(|_| ())),
        };
        let fund = |id| Fund {
            id,
            name: "F".into(),
            minimum: "1000".parse().unwrap(),
            category: Category::Fic,
            active: true,
        };
        let cases = [
            (
                EngineConfig {
                    max_attempts: Some(-1),
                    ..Default::default()
                },
                "max_attempts",
            ),
            (
                EngineConfig {
                    max_attempts: Some(0),
                    ..Default::default()
                },
                "max_attempts",
            ),
            (
                EngineConfig {
                    retry_base_delay_ms: Some(-1),
                    ..Default::default()
                },
                "retry_base_delay_ms",
            ),
            (
                EngineConfig {
                    retry_max_delay_ms: Some(-1),
                    ..Default::default()
                },
                "retry_max_delay_ms",
            ),
            (
                EngineConfig {
                    cache_capacity_bytes: Some(-1),
                    ..Default::default()
                },
                "cache_capacity_bytes",
            ),
            (
                EngineConfig {
                    durability: Some(Durability::Periodic { interval_ms: -1 }),
                    ..Default::default()
                },
                "interval_ms",
            ),
            (
                EngineConfig {
                    funds: Some(vec![fund(-1)]),
                    ..Default::default()
                },
                "funds",
            ),
            (
                EngineConfig {
                    funds: Some(vec![fund(1 << 32)]),
                    ..Default::default()
                },
                "funds",
            ),
        ];
        for (config, field) in cases {
            assert_eq!(field_of(config), field);
        }
        let largest = EngineConfig {
            funds: Some(vec![fund(u32::MAX.into())]),
            ..Default::default()
        };
        let engine = FundEngine::with_config(None, Some(largest)).unwrap();
        assert_eq!(engine.funds()[0].id, i64::from(u32::MAX));
    }
}
