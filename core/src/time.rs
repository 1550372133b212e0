//! UTC timestamps and the clock port, so tests can drive time (and retry backoff) without sleeping.

use std::fmt;

use parking_lot::Mutex;
#[cfg(any(test, feature = "testing"))]
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::time::format_description::well_known::Rfc3339;
use ::time::{OffsetDateTime, PrimitiveDateTime};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant with microsecond precision.
///
/// Stored as microseconds since the Unix epoch; in JSON it is an RFC 3339 string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `micros` microseconds after 1970-01-01T00:00:00Z.
    pub const fn from_unix_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    /// This instant moved forward by `delta` (saturating).
    pub fn plus(self, delta: Duration) -> Self {
        let micros = i64::try_from(delta.as_micros()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(micros))
    }

    /// This instant as a `time` date-time in UTC; instants beyond the years -9999..=9999 are
    /// clamped to them.
    pub fn to_datetime(self) -> OffsetDateTime {
        let nanos = i128::from(self.0) * 1000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(if nanos < 0 {
            PrimitiveDateTime::MIN.assume_utc()
        } else {
            PrimitiveDateTime::MAX.assume_utc()
        })
    }

    /// The instant of a `time` date-time, at microsecond precision (saturating).
    pub fn from_datetime(at: OffsetDateTime) -> Self {
        let micros = at.unix_timestamp_nanos().div_euclid(1000);
        Timestamp(i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX }))
    }

    /// The UTC calendar fields of this instant (proleptic Gregorian calendar).
    pub fn to_utc(self) -> UtcFields {
        let at = self.to_datetime();
        UtcFields {
            year: i64::from(at.year()),
            month: u8::from(at.month()),
            day: at.day(),
            hour: at.hour(),
            minute: at.minute(),
            second: at.second(),
            microsecond: at.microsecond(),
        }
    }

    /// RFC 3339 text in UTC with microseconds, e.g. `2026-11-23T12:00:00.123456Z`.
    pub fn to_rfc3339(self) -> String {
        // The description is a literal known to be valid; formatting a UTC date-time with it
        // cannot fail for years 0..=9999, and the fallback keeps this total anyway.
        self.to_datetime()
            .format(RFC3339_MICROS)
            .unwrap_or_else(|_| self.to_datetime().to_string())
    }

    /// Parses RFC 3339 text in UTC (`Z` suffix, optional fraction of up to 9 digits, truncated
    /// to microseconds), the form [`Timestamp::to_rfc3339`] writes.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        if !text.ends_with('Z') {
            return None;
        }
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .map(Timestamp::from_datetime)
    }
}

const RFC3339_MICROS: &[::time::format_description::BorrowedFormatItem<'static>] = ::time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
);

/// A UTC date and time split into calendar fields, for conversions to other date types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcFields {
    /// Year (proleptic Gregorian).
    pub year: i64,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of the month, 1..=31.
    pub day: u8,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
    /// Second, 0..=59.
    pub second: u8,
    /// Microsecond, 0..=999_999.
    pub microsecond: u32,
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_rfc3339())
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            Timestamp::parse_rfc3339(&text).ok_or_else(|| {
                serde::de::Error::custom(format!("not an RFC 3339 UTC time: {text}"))
            })
        } else {
            i64::deserialize(deserializer).map(Timestamp)
        }
    }
}

/// Where the engine reads the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(micros)
    }
}

/// A clock that only moves when told to; for tests of time-dependent behaviour (feature
/// `testing`).
#[cfg(any(test, feature = "testing"))]
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

#[cfg(any(test, feature = "testing"))]
impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            micros: AtomicI64::new(start.0),
        }
    }

    /// Moves the clock forward by `delta`.
    pub fn advance(&self, delta: Duration) {
        let micros = i64::try_from(delta.as_micros()).unwrap_or(i64::MAX);
        self.micros.fetch_add(micros, Ordering::SeqCst);
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: Timestamp) {
        self.micros.store(at.0, Ordering::SeqCst);
    }
}

#[cfg(any(test, feature = "testing"))]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.micros.load(Ordering::SeqCst))
    }
}

/// Produces UUIDv7 values from a [`Clock`], strictly increasing for the life of a store.
///
/// A fresh UUIDv7 context after a restart (or a clock stepping backwards) could produce an id
/// below one already stored; ids are kept above the largest one seen so history order holds.
#[derive(Debug, Default)]
pub(crate) struct IdGenerator {
    state: Mutex<(uuid::ContextV7, u128)>,
}

impl IdGenerator {
    /// A generator whose ids are all greater than `floor`.
    pub(crate) fn above(floor: uuid::Uuid) -> Self {
        IdGenerator {
            state: Mutex::new((uuid::ContextV7::new(), floor.as_u128())),
        }
    }

    /// A new time-ordered id for the instant `at`.
    pub(crate) fn next(&self, at: Timestamp) -> uuid::Uuid {
        self.next_above(at, uuid::Uuid::nil())
    }

    /// A new time-ordered id for the instant `at`, greater than `floor` too (an id another
    /// process stored).
    pub(crate) fn next_above(&self, at: Timestamp, floor: uuid::Uuid) -> uuid::Uuid {
        let micros = at.0.max(0);
        let secs = (micros / 1_000_000) as u64;
        let nanos = ((micros % 1_000_000) * 1000) as u32;
        let mut state = self.state.lock();
        let (context, last) = &mut *state;
        let candidate =
            uuid::Uuid::new_v7(uuid::Timestamp::from_unix(&*context, secs, nanos)).as_u128();
        // Past the floor, step the random tail: still a valid v7 with the same time prefix.
        let id = candidate
            .max(last.saturating_add(1))
            .max(floor.as_u128().saturating_add(1));
        *last = id;
        uuid::Uuid::from_u128(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        for micros in [0, 1, 1_779_537_600_123_456, 951_782_400_000_000, -1] {
            let ts = Timestamp::from_unix_micros(micros);
            assert_eq!(Timestamp::parse_rfc3339(&ts.to_rfc3339()), Some(ts), "{ts}");
        }
        assert_eq!(
            Timestamp::from_unix_micros(0).to_rfc3339(),
            "1970-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::from_unix_micros(951_782_400_000_000).to_rfc3339(),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(Timestamp::parse_rfc3339("2026-11-23T12:00:00+05:00"), None);
    }

    #[test]
    fn ids_stay_above_the_floor_when_the_clock_goes_back() {
        let floor = IdGenerator::default().next(Timestamp::from_unix_micros(1_779_537_600_000_000));
        let ids = IdGenerator::above(floor);
        let earlier = Timestamp::from_unix_micros(1_779_537_000_000_000);
        let first = ids.next(earlier);
        assert!(first > floor);
        assert_eq!(first.get_version_num(), 7);
        assert!(ids.next(earlier) > first);
    }

    #[test]
    fn ids_increase_even_when_the_clock_stands_still() {
        let ids = IdGenerator::default();
        let at = Timestamp::from_unix_micros(1_779_537_600_000_000);
        let mut last = ids.next(at);
        for _ in 0..10_000 {
            let next = ids.next(at);
            assert!(next > last);
            assert_eq!(next.get_version_num(), 7);
            last = next;
        }
    }
}
