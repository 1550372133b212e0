//! # fundcore
//!
//! Fund subscriptions for an asset manager, written once and embedded everywhere: clients
//! subscribe to investment funds with a minimum amount, cancel and get refunded, read their
//! history and are notified by email or SMS.
//!
//! - Money is [`rust_decimal::Decimal`], validated by [`validate_amount`], never a binary float.
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
//!
//! ## Features
//!
//! - `postgres`: the PostgreSQL store (`Engine::connect`), for any number of processes and
//!   hosts sharing one database, and the `fundcore` command (`copy`, `verify`, `outbox`).
//! - `testing`: test doubles for code that embeds fundcore (`RecordingNotifier`,
//!   `ManualClock`).
//!
//! Without features the crate is the engine on the embedded store, as the mobile builds use it.

#![deny(missing_docs)]
// docs.rs (`--cfg docsrs`) marks each item with the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod enum_names;
mod admin;
mod audit;
mod client;
mod config;
mod copy;
mod engine;
mod error;
mod fund;
mod ids;
mod ledger;
pub mod limits;
mod locale;
mod money;
mod observe;
mod outbox;
mod page;
mod reports;
mod rules;
mod store;
mod texts;
mod time;
mod verify;

pub use admin::{ContactChanges, FundChanges};
pub use audit::{Actor, AuditAction, AuditEvent};
pub use client::{Channel, Client};
pub use config::{Config, ConfigBuilder, Durability};
pub use copy::{CopyReport, StoreLocation, copy_store};
pub use engine::Engine;
pub use error::{DiskFault, Error, ErrorCode, ErrorKind, IdKind, Invalid, ParseIdError, Result};
pub use fund::{Category, Fund, default_catalogue};
pub use ids::{
    AuditEventId, ClientId, FundId, NotificationId, TransactionId, fund_id_from_integer,
    parse_fund_id,
};
pub use ledger::{Subscription, Transaction, TransactionKind};
pub use limits::{MAX_IDEMPOTENCY_KEY_CHARS, MAX_PAGE, SMS_MAX_CHARS};
pub use locale::Locale;
pub use money::{format_cop, parse_amount, validate_amount};
#[cfg(feature = "testing")]
pub use outbox::RecordingNotifier;
pub use outbox::{
    DeliveryError, DispatchReport, LoggingNotifier, Notification, NotificationStatus, Notifier,
    OutboxState,
};
pub use page::Page;
pub use reports::{HistoryFilter, NotificationPage, Statement, StatementLine};
pub use rust_decimal::Decimal;
pub use store::StoreStats;
#[cfg(feature = "testing")]
pub use time::ManualClock;
pub use time::{Clock, SystemClock, Timestamp, UtcFields};
pub use verify::{LedgerReport, OutboxCounts, Rule, Violation, verify_store};
