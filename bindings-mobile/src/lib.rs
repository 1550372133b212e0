//! # fundcore-mobile
//!
//! uniffi bindings of [`fundcore`] for mobile apps: Kotlin (package `com.fundcore`, Android and
//! the JVM) and Swift (module `FundCore`, iOS and macOS). The app embeds the same engine, with
//! its own sled store, and works offline.
//!
//! This crate only declares and converts; every rule lives in [`fundcore::Engine`]:
//!
//! - `types`: the core's enums as they are (`#[uniffi::remote(Enum)]`), its ids as text and its
//!   timestamps as `SystemTime` (`java.time.Instant` / `Date`) through `uniffi::custom_type!`,
//!   and the records, with their conversions from the core's;
//! - `money`: [`Amount`] (decimal text on the wire, `java.math.BigDecimal` in Kotlin, `Decimal`
//!   in Swift), read by the engine where it is used, and the free functions on money;
//! - `error`: [`FundError`] and the mapping of [`fundcore::Error`] to it;
//! - `config`: [`EngineConfig`] and its translation to [`fundcore::Config`];
//! - `notifier`: the app's [`Notifier`] and its adapter to the core's port;
//! - `engine`: [`FundEngine`].
//!
//! Integers cross the FFI as signed types (`i64` fund ids, `i32` limits and counts, `i64`
//! milliseconds and bytes): Kotlin gives every function or property that uses an unsigned type
//! (`UInt`, `ULong`) a mangled JVM name (`subscribe-Yuhug_o`) that Java cannot call. A value
//! outside the core's range gets the error the core gives for it: a fund id that fits no `u32`
//! names no fund (`FUND_NOT_FOUND` with the id as given), a negative history limit is the
//! core's `VALIDATION_ERROR` on `limit`, a negative setting is the core's configuration error.

mod config;
mod engine;
mod error;
mod money;
mod notifier;
mod types;

pub use config::{Durability, EngineConfig};
pub use engine::FundEngine;
pub use error::FundError;
pub use money::{Amount, format_cop, parse_amount};
pub use notifier::{DeliveryError, Notifier};
pub use types::{
    AuditAction, AuditEvent, AuditEventPage, Category, Channel, Client, ClientPage, DispatchReport,
    Fund, Locale, Notification, NotificationStatus, Subscription, Transaction, TransactionKind,
    parse_channel,
};

uniffi::setup_scaffolding!();
