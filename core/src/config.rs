//! Engine configuration.

use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use crate::copy::StoreLocation;
use crate::error::{Error, Invalid, Result};
use crate::fund::{Fund, default_catalogue};
use crate::locale::Locale;
use crate::money::validate_amount;
use crate::time::{Clock, SystemClock};

/// When committed changes reach the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Every operation is flushed to disk before it returns (the default for money).
    #[default]
    EveryCommit,
    /// The store flushes in the background every `interval_ms`; a crash may lose the last
    /// interval. Call [`crate::Engine::flush`] to force a flush.
    Periodic {
        /// Milliseconds between background flushes.
        interval_ms: u64,
    },
}

impl Durability {
    /// The durability named `every_commit` or `periodic` (the names the bindings and the REST
    /// host's settings use); `periodic` flushes every `flush_interval_ms`, by default
    /// [`Config::DEFAULT_FLUSH_INTERVAL_MS`]. An interval with `every_commit` is refused.
    pub fn from_name(name: &str, flush_interval_ms: Option<u64>) -> Result<Durability> {
        match (name, flush_interval_ms) {
            ("every_commit", None) => Ok(Durability::EveryCommit),
            ("every_commit", Some(_)) => Err(config_error("flush_interval_ms")),
            ("periodic", interval) => Ok(Durability::Periodic {
                interval_ms: interval.unwrap_or(Config::DEFAULT_FLUSH_INTERVAL_MS),
            }),
            _ => Err(config_error("durability")),
        }
    }
}

/// Settings of an [`crate::Engine`].
///
/// `initial_balance` and `funds` are written to a store when it is created and read back from
/// it afterwards: a store keeps the rules it started with.
/// Build one with [`Config::builder`] (or start from [`Config::default`]); every setting has a
/// `DEFAULT_*` constant.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Balance of a newly registered client (default COP 500.000).
    pub initial_balance: Decimal,
    /// Fund catalogue seeded on the first open (default: the catalogue of docs/rules.md).
    pub funds: Vec<Fund>,
    /// Language of error messages and notifications (default Spanish).
    pub locale: Locale,
    /// Whether cancellations are notified too (default true).
    pub notify_on_cancel: bool,
    /// Delivery attempts before an entry is marked failed (default 8).
    pub max_attempts: u32,
    /// Delay before the first retry; doubled on each further failure (default 5 s).
    pub retry_base_delay: Duration,
    /// Longest delay between retries (default 1 h).
    pub retry_max_delay: Duration,
    /// When changes are flushed to disk (default every commit).
    pub durability: Durability,
    /// Memory the store may use for its page cache (default 64 MiB).
    pub cache_capacity_bytes: u64,
    /// Source of time (default the system clock).
    pub clock: Arc<dyn Clock>,
    /// How long a dispatcher may hold a claimed notification before another dispatcher may
    /// take it over (default 60 s): longer than any send should take.
    pub dispatch_lease: Duration,
    /// Database connections an engine keeps open, PostgreSQL store only (default 8).
    pub pool_size: u32,
    /// The longest a call waits on the network, PostgreSQL store only (default 10 s): for a
    /// connection, for a pooled connection, for the database's answer and, when a reply was
    /// lost, for learning whether the change committed. Past it a read fails with
    /// `STORAGE_ERROR` and a change whose outcome is not known with `OUTCOME_UNKNOWN`.
    pub operation_timeout: Duration,
    /// Whether each connection prepares its statements once, PostgreSQL store only (default
    /// true, the fastest). `false` sends every statement unnamed in one round trip, which is
    /// what a pooler in transaction mode (PgBouncer before 1.21, RDS Proxy) needs.
    pub prepared_statements: bool,
}

impl Config {
    /// Balance of a newly registered client: COP 500.000.
    pub const DEFAULT_INITIAL_BALANCE: Decimal = dec!(500000.00);
    /// Delivery attempts before an entry is marked failed.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
    /// Delay before the first retry of a delivery.
    pub const DEFAULT_RETRY_BASE_DELAY: Duration = Duration::from_secs(5);
    /// Longest delay between retries.
    pub const DEFAULT_RETRY_MAX_DELAY: Duration = Duration::from_secs(3600);
    /// Milliseconds between background flushes of the embedded store (with
    /// [`Durability::Periodic`], and behind every-commit durability so `flush()` has little left).
    pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 500;
    /// Page cache of the embedded store: 64 MiB.
    pub const DEFAULT_CACHE_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;
    /// How long a dispatcher may hold a claimed notification.
    pub const DEFAULT_DISPATCH_LEASE: Duration = Duration::from_secs(60);
    /// Database connections of a PostgreSQL engine.
    pub const DEFAULT_POOL_SIZE: u32 = 8;
    /// The longest a PostgreSQL call waits on the network.
    pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
    /// The shortest operation timeout accepted: a deadline must leave room for one round trip
    /// and a lookup on a fresh connection.
    pub const MIN_OPERATION_TIMEOUT: Duration = Duration::from_millis(100);
    /// The longest operation timeout accepted.
    pub const MAX_OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// Checks the settings: a non-negative initial balance within the money rules, at least one
    /// delivery attempt, retry delays in order, at least one connection, a valid catalogue.
    pub fn validate(&self) -> Result<()> {
        let initial_ok = self.initial_balance >= Decimal::ZERO
            && (self.initial_balance.is_zero() || validate_amount(self.initial_balance).is_ok());
        if !initial_ok {
            return Err(config_error("initial_balance"));
        }
        if self.max_attempts == 0 {
            return Err(config_error("max_attempts"));
        }
        if self.retry_base_delay > self.retry_max_delay {
            return Err(config_error("retry_base_delay"));
        }
        if self.pool_size == 0 {
            return Err(config_error("pool_size"));
        }
        if !(Config::MIN_OPERATION_TIMEOUT..=Config::MAX_OPERATION_TIMEOUT)
            .contains(&self.operation_timeout)
        {
            return Err(config_error("operation_timeout"));
        }
        let mut ids = std::collections::BTreeSet::new();
        for fund in &self.funds {
            let valid = ids.insert(fund.id)
                && !fund.name.trim().is_empty()
                && validate_amount(fund.minimum).is_ok();
            if !valid {
                return Err(config_error("funds"));
            }
        }
        Ok(())
    }
}

/// The configuration error on `field` (`VALIDATION_ERROR`).
fn config_error(field: &'static str) -> Error {
    Error::invalid(field, Invalid::Config)
}

/// Builds a [`Config`]: each setter takes a value or an `Option` (`None` keeps the default),
/// so bindings pass their optional arguments straight through.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ConfigBuilder {
    config: Config,
    /// Settings given that only the embedded store reads.
    embedded_only: Vec<&'static str>,
    /// Settings given that only the PostgreSQL store reads.
    postgres_only: Vec<&'static str>,
}

impl ConfigBuilder {
    /// See [`Config::initial_balance`].
    pub fn initial_balance(mut self, value: impl Into<Option<Decimal>>) -> Self {
        if let Some(value) = value.into() {
            self.config.initial_balance = value;
        }
        self
    }

    /// See [`Config::funds`].
    pub fn funds(mut self, value: impl Into<Option<Vec<Fund>>>) -> Self {
        if let Some(value) = value.into() {
            self.config.funds = value;
        }
        self
    }

    /// See [`Config::locale`].
    pub fn locale(mut self, value: impl Into<Option<Locale>>) -> Self {
        if let Some(value) = value.into() {
            self.config.locale = value;
        }
        self
    }

    /// See [`Config::notify_on_cancel`].
    pub fn notify_on_cancel(mut self, value: impl Into<Option<bool>>) -> Self {
        if let Some(value) = value.into() {
            self.config.notify_on_cancel = value;
        }
        self
    }

    /// See [`Config::max_attempts`].
    pub fn max_attempts(mut self, value: impl Into<Option<u32>>) -> Self {
        if let Some(value) = value.into() {
            self.config.max_attempts = value;
        }
        self
    }

    /// See [`Config::retry_base_delay`].
    pub fn retry_base_delay(mut self, value: impl Into<Option<Duration>>) -> Self {
        if let Some(value) = value.into() {
            self.config.retry_base_delay = value;
        }
        self
    }

    /// See [`Config::retry_max_delay`].
    pub fn retry_max_delay(mut self, value: impl Into<Option<Duration>>) -> Self {
        if let Some(value) = value.into() {
            self.config.retry_max_delay = value;
        }
        self
    }

    /// See [`Config::durability`] (embedded store only, unless every commit).
    pub fn durability(mut self, value: impl Into<Option<Durability>>) -> Self {
        if let Some(value) = value.into() {
            if value != Durability::EveryCommit {
                self.embedded_only.push("durability");
            }
            self.config.durability = value;
        }
        self
    }

    /// See [`Config::cache_capacity_bytes`] (embedded store only).
    pub fn cache_capacity_bytes(mut self, value: impl Into<Option<u64>>) -> Self {
        if let Some(value) = value.into() {
            self.embedded_only.push("cache_capacity_bytes");
            self.config.cache_capacity_bytes = value;
        }
        self
    }

    /// See [`Config::clock`].
    pub fn clock(mut self, value: impl Into<Option<Arc<dyn Clock>>>) -> Self {
        if let Some(value) = value.into() {
            self.config.clock = value;
        }
        self
    }

    /// See [`Config::dispatch_lease`].
    pub fn dispatch_lease(mut self, value: impl Into<Option<Duration>>) -> Self {
        if let Some(value) = value.into() {
            self.config.dispatch_lease = value;
        }
        self
    }

    /// See [`Config::pool_size`] (PostgreSQL store only).
    pub fn pool_size(mut self, value: impl Into<Option<u32>>) -> Self {
        if let Some(value) = value.into() {
            self.postgres_only.push("pool_size");
            self.config.pool_size = value;
        }
        self
    }

    /// See [`Config::operation_timeout`] (PostgreSQL store only; 100 ms to 30 s).
    pub fn operation_timeout(mut self, value: impl Into<Option<Duration>>) -> Self {
        if let Some(value) = value.into() {
            self.postgres_only.push("operation_timeout");
            self.config.operation_timeout = value;
        }
        self
    }

    /// See [`Config::prepared_statements`] (PostgreSQL store only).
    pub fn prepared_statements(mut self, value: impl Into<Option<bool>>) -> Self {
        if let Some(value) = value.into() {
            self.postgres_only.push("prepared_statements");
            self.config.prepared_statements = value;
        }
        self
    }

    /// The configuration, checked by [`Config::validate`].
    pub fn build(self) -> Result<Config> {
        self.config.validate()?;
        Ok(self.config)
    }

    /// The configuration for the store at `location`: also refuses a setting that the other
    /// kind of store reads (it would be silently ignored).
    pub fn build_for(self, location: &StoreLocation) -> Result<Config> {
        let foreign = match location {
            StoreLocation::Embedded(_) => &self.postgres_only,
            StoreLocation::Postgres(_) => &self.embedded_only,
        };
        if let Some(field) = foreign.first() {
            return Err(config_error(field));
        }
        self.build()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            initial_balance: Config::DEFAULT_INITIAL_BALANCE,
            funds: default_catalogue(),
            locale: Locale::Es,
            notify_on_cancel: true,
            max_attempts: Config::DEFAULT_MAX_ATTEMPTS,
            retry_base_delay: Config::DEFAULT_RETRY_BASE_DELAY,
            retry_max_delay: Config::DEFAULT_RETRY_MAX_DELAY,
            durability: Durability::EveryCommit,
            cache_capacity_bytes: Config::DEFAULT_CACHE_CAPACITY_BYTES,
            clock: Arc::new(SystemClock),
            dispatch_lease: Config::DEFAULT_DISPATCH_LEASE,
            pool_size: Config::DEFAULT_POOL_SIZE,
            operation_timeout: Config::DEFAULT_OPERATION_TIMEOUT,
            prepared_statements: true,
        }
    }
}
