//! UTC timestamps and the clock port, so tests can drive time (and retry backoff) without sleeping.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

    /// The UTC calendar fields of this instant (proleptic Gregorian calendar).
    pub fn to_utc(self) -> UtcFields {
        let secs = self.0.div_euclid(1_000_000);
        let day_secs = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        UtcFields {
            year,
            month: month as u8,
            day: day as u8,
            hour: (day_secs / 3600) as u8,
            minute: ((day_secs % 3600) / 60) as u8,
            second: (day_secs % 60) as u8,
            microsecond: self.0.rem_euclid(1_000_000) as u32,
        }
    }

    /// RFC 3339 text in UTC with microseconds, e.g. `2026-11-23T12:00:00.123456Z`.
    pub fn to_rfc3339(self) -> String {
        let UtcFields {
            year,
            month,
            day,
            hour,
            minute,
            second,
            microsecond,
        } = self.to_utc();
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{microsecond:06}Z")
    }

    /// Parses the RFC 3339 form produced by [`Timestamp::to_rfc3339`] (UTC, `Z` suffix,
    /// optional fraction of up to 9 digits, truncated to microseconds).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() < 20 || !text.ends_with('Z') {
            return None;
        }
        let num = |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse().ok() };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
        if separators.iter().any(|&(i, c)| bytes[i] != c)
            || !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let fraction = &text[19..text.len() - 1];
        let micros = match fraction.strip_prefix('.') {
            None if fraction.is_empty() => 0,
            Some(digits)
                if (1..=9).contains(&digits.len())
                    && digits.bytes().all(|b| b.is_ascii_digit()) =>
            {
                let padded = format!("{digits:0<6}");
                padded[..6].parse::<i64>().ok()?
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
        Some(Timestamp(secs * 1_000_000 + micros))
    }
}

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

// Howard Hinnant's civil-date algorithms (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

/// A clock that only moves when told to; for tests of time-dependent behaviour.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

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
        // A poisoned lock only means another thread panicked mid-generation; the state is valid.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
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
