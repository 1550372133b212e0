//! Engine settings (`EngineConfig`) and their translation to the core's `Config`.

use std::time::Duration;

use crate::money::Amount;
use crate::types::{Fund, Locale};

/// When committed changes reach the disk.
///
/// Declared here rather than taken from the core (`#[uniffi::remote]`): the core's interval is
/// a `u64`, which Kotlin would make a `ULong` with mangled JVM names Java cannot call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Durability {
    /// Flushed before each operation returns (the default).
    EveryCommit,
    /// Flushed in the background every `interval_ms` (not negative); `flush()` forces it.
    Periodic { interval_ms: i64 },
}

/// Engine settings; every field left `null`/`nil` keeps the engine's default.
///
/// A negative number, or a fund id outside 0..=4294967295, is the core's configuration
/// `VALIDATION_ERROR`, on the field that holds it.
///
/// `initial_balance` and `funds` are written into a store when it is created; a store keeps
/// the rules it started with. An amount here that the engine cannot read is refused in this
/// configuration's `locale`.
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

/// The core's configuration error on `field` (a negative setting, a fund id out of range).
pub(crate) fn config_error(field: &'static str) -> fundcore::Error {
    fundcore::Error::Validation {
        field,
        problem: fundcore::Invalid::Config,
    }
}

/// A setting that must not be negative.
fn non_negative(value: i64, field: &'static str) -> Result<u64, fundcore::Error> {
    u64::try_from(value).map_err(|_| config_error(field))
}

pub(crate) fn core_config(config: EngineConfig) -> Result<fundcore::Config, fundcore::Error> {
    let delay = |ms: Option<i64>, field| -> Result<_, fundcore::Error> {
        ms.map(|ms| non_negative(ms, field).map(Duration::from_millis))
            .transpose()
    };
    let funds = config
        .funds
        .map(|funds| funds.into_iter().map(fundcore::Fund::try_from).collect())
        .transpose()?;
    let max_attempts = config
        .max_attempts
        .map(|n| u32::try_from(n).map_err(|_| config_error("max_attempts")))
        .transpose()?;
    fundcore::Config::builder()
        .initial_balance(config.initial_balance.map(|a| a.to_decimal()).transpose()?)
        .funds(funds)
        .locale(config.locale)
        .notify_on_cancel(config.notify_on_cancel)
        .max_attempts(max_attempts)
        .retry_base_delay(delay(config.retry_base_delay_ms, "retry_base_delay_ms")?)
        .retry_max_delay(delay(config.retry_max_delay_ms, "retry_max_delay_ms")?)
        .durability(config.durability.map(TryInto::try_into).transpose()?)
        .cache_capacity_bytes(
            config
                .cache_capacity_bytes
                .map(|bytes| non_negative(bytes, "cache_capacity_bytes"))
                .transpose()?,
        )
        .build()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::FundEngine;
    use crate::error::FundError;
    use crate::types::Category;

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
            minimum: fundcore::Decimal::from(1000).into(),
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
        assert_eq!(engine.funds().unwrap()[0].id, i64::from(u32::MAX));
    }
}
