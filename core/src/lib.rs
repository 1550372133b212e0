//! # fundcore
//!
//! Fund subscriptions for an asset manager, written once and embedded everywhere: clients
//! subscribe to investment funds with a minimum amount, cancel and get refunded, read their
//! history and are notified by email or SMS.
//!
//! - Money is [`rust_decimal::Decimal`], validated by [`money`], never a binary float.
//! - Each subscribe or cancel is one atomic transaction in an embedded [sled] store: balance,
//!   subscription, transaction, idempotency record and outbox entry, all or nothing.
//! - Notifications leave through the [`Notifier`] port after commit, from a durable outbox,
//!   with retries and exponential backoff.
//!
//! ```
//! use fundcore::{Channel, Config, Engine};
//!
//! let engine = Engine::open_temporary(Config::default())?;
//! let ana = engine.register_client("Ana", "ana@example.com", "+573001234567", Channel::Email)?;
//! let tx = engine.subscribe(ana.id, 1, None, Some("k-1"))?;
//! assert_eq!(tx.amount.to_string(), "75000.00");
//! assert_eq!(engine.client(ana.id)?.balance.to_string(), "425000.00");
//! # Ok::<(), fundcore::Error>(())
//! ```

#![deny(missing_docs)]

pub mod client;
pub mod config;
pub mod copy;
pub mod engine;
pub mod error;
pub mod fund;
pub mod ids;
pub mod ledger;
pub mod locale;
pub mod money;
pub mod outbox;
mod rules;
mod store;
mod texts;
pub mod time;

pub use client::{Channel, Client};
pub use config::{Config, Durability};
pub use copy::{CopyReport, StoreLocation, copy_store};
pub use engine::{Engine, MAX_PAGE};
pub use error::{Error, Invalid, Result};
pub use fund::{Category, Fund, default_catalogue};
pub use ids::{ClientId, FundId, NotificationId, TransactionId};
pub use ledger::{Subscription, Transaction, TransactionKind};
pub use locale::Locale;
pub use outbox::{
    DeliveryError, DispatchReport, LoggingNotifier, Notification, NotificationStatus, Notifier,
    RecordingNotifier,
};
pub use rules::MAX_IDEMPOTENCY_KEY_CHARS;
pub use rust_decimal::Decimal;
pub use store::StoreStats;
pub use texts::SMS_MAX_CHARS;
pub use time::{Clock, ManualClock, SystemClock, Timestamp, UtcFields};
