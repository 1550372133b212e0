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
    Category, Channel, Client, DispatchReport, Fund, Locale, Notification, NotificationStatus,
    Subscription, Transaction, TransactionKind, parse_channel,
};

uniffi::setup_scaffolding!();
