//! Engine configuration.

use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;

use crate::fund::{Fund, default_catalogue};
use crate::locale::Locale;
use crate::money::cop;
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

/// Settings of an [`crate::Engine`].
///
/// `initial_balance` and `funds` are written to a store when it is created and read back from
/// it afterwards: a store keeps the rules it started with.
#[derive(Clone, Debug)]
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            initial_balance: cop("500000"),
            funds: default_catalogue(),
            locale: Locale::Es,
            notify_on_cancel: true,
            max_attempts: 8,
            retry_base_delay: Duration::from_secs(5),
            retry_max_delay: Duration::from_secs(3600),
            durability: Durability::EveryCommit,
            cache_capacity_bytes: 64 * 1024 * 1024,
            clock: Arc::new(SystemClock),
            dispatch_lease: Duration::from_secs(60),
            pool_size: 8,
        }
    }
}
