//! Copying a store into another, of either kind, with every record and id intact: a team that
//! starts on the embedded store and outgrows one process moves its data to PostgreSQL (or back).

use std::fmt;
use std::path::PathBuf;

use crate::config::Config;
use crate::engine::store_options;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::sled::{SledStore, StoreOptions};

/// Where a store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// An embedded store's directory.
    Embedded(PathBuf),
    /// A PostgreSQL URL (`postgresql://…` or `postgres://…`).
    Postgres(String),
}

impl StoreLocation {
    /// A URL that starts with `postgresql://` or `postgres://` is a database; anything else
    /// is a directory.
    pub fn parse(text: &str) -> StoreLocation {
        if text.starts_with("postgresql://") || text.starts_with("postgres://") {
            StoreLocation::Postgres(text.to_owned())
        } else {
            StoreLocation::Embedded(PathBuf::from(text))
        }
    }

    fn open(&self) -> Result<Box<dyn Store>> {
        let config = Config::default();
        match self {
            StoreLocation::Embedded(path) => {
                let options = StoreOptions {
                    flush_every_ms: Some(Config::DEFAULT_FLUSH_INTERVAL_MS),
                    cache_capacity_bytes: config.cache_capacity_bytes,
                };
                Ok(Box::new(SledStore::open_recovered(Some(path), &options)?))
            }
            #[cfg(feature = "postgres")]
            StoreLocation::Postgres(url) => Ok(Box::new(crate::store::postgres::PgStore::connect(
                url, &config,
            )?)),
            #[cfg(not(feature = "postgres"))]
            StoreLocation::Postgres(_) => Err(no_postgres()),
        }
    }

    /// Opens the store that exists at this location, never creating one: an embedded store's
    /// directory must hold one, and a database must have fundcore's schema at this library's
    /// version (nothing is migrated) and its settings. The embedded store is opened as an
    /// engine opens it (sled has no read-only mode): it must not be open in another process.
    pub(crate) fn open_existing(&self, config: &Config) -> Result<Box<dyn Store>> {
        let store: Box<dyn Store> = match self {
            StoreLocation::Embedded(path) => {
                Box::new(SledStore::open_existing(path, &store_options(config))?)
            }
            #[cfg(feature = "postgres")]
            StoreLocation::Postgres(url) => Box::new(
                crate::store::postgres::PgStore::connect_existing(url, config)?,
            ),
            #[cfg(not(feature = "postgres"))]
            StoreLocation::Postgres(_) => return Err(no_postgres()),
        };
        if store.stored_seed()?.is_none() {
            return Err(Error::storage(format!("{self} holds no fundcore store")));
        }
        Ok(store)
    }
}

#[cfg(not(feature = "postgres"))]
fn no_postgres() -> Error {
    Error::storage("this build of fundcore has no PostgreSQL store (feature `postgres`)")
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Embedded(path) => write!(f, "{}", path.display()),
            StoreLocation::Postgres(url) => f.write_str(&redacted_url(url)),
        }
    }
}

/// A database URL without its credentials, safe to show and log: the user information becomes
/// `…@` and the query string `?…`, as the password may be in either. When a `?` comes before
/// the last `@`, where the credentials end is ambiguous and only the scheme is kept.
fn redacted_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgresql", url));
    let (credentials, location) = match rest.rsplit_once('@') {
        Some((hidden, _)) if hidden.contains('?') => return format!("{scheme}://…"),
        Some((_, location)) => ("…@", location),
        None => ("", rest),
    };
    match location.split_once('?') {
        Some((location, _query)) => format!("{scheme}://{credentials}{location}?…"),
        None => format!("{scheme}://{credentials}{location}"),
    }
}

/// What a copy moved (and verified record by record).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Funds of the catalogue, as it is now (funds created since the store was made, with their
    /// current minimums and active flags).
    pub funds: usize,
    /// Clients, with their balances.
    pub clients: u64,
    /// Transactions, with their notifications' states.
    pub transactions: u64,
    /// Notifications (outbox entries).
    pub notifications: u64,
    /// Active subscriptions.
    pub subscriptions: u64,
    /// Idempotency records.
    pub idempotency_keys: u64,
    /// Audit events (the whole audit trail).
    pub audit_events: u64,
}

/// Clients (and audit events) copied per page.
const PAGE: usize = 500;

/// Copies the store at `from` into the empty store at `to` (created when missing), then reads
/// every client and audit event back from `to` and compares it with the source. The catalogue
/// is copied as it is now. Refuses a target that holds clients or audit events, or was created
/// with other settings. Run it while nothing writes to the source.
pub fn copy_store(from: &StoreLocation, to: &StoreLocation) -> Result<CopyReport> {
    let source = from.open()?;
    let target = to.open()?;
    let seed = source
        .stored_seed()?
        .ok_or_else(|| Error::storage(format!("{from} holds no fundcore store")))?;
    if !target.client_ids(None, 1)?.is_empty() {
        return Err(Error::storage(format!(
            "{to} already holds clients: copy only into an empty store"
        )));
    }
    if !target.audit_events(1, None)?.is_empty() {
        return Err(Error::storage(format!(
            "{to} already holds audit events: copy only into an empty store"
        )));
    }
    match target.stored_seed()? {
        Some(existing) if existing != seed => {
            return Err(Error::storage(format!(
                "{to} was created with another initial balance or catalogue"
            )));
        }
        _ => {
            let written = target.seed(&seed)?;
            verify(written == seed, "the settings", to)?;
        }
    }
    let mut report = CopyReport {
        funds: seed.funds.len(),
        ..CopyReport::default()
    };
    let mut after = None;
    loop {
        let page = source.client_ids(after, PAGE)?;
        for &id in &page {
            let bundle = source
                .bundle(id)?
                .ok_or_else(|| Error::storage(format!("client {id} vanished from {from}")))?;
            target.import_bundle(&bundle)?;
            let copied = target.bundle(id)?;
            verify(
                copied.as_ref() == Some(&bundle),
                &format!("client {id}"),
                to,
            )?;
            report.clients += 1;
            report.transactions += bundle.entries.len() as u64;
            report.notifications +=
                bundle.entries.iter().filter(|e| e.notice.is_some()).count() as u64;
            report.subscriptions += bundle.subscriptions.len() as u64;
            report.idempotency_keys += bundle.idempotency.len() as u64;
        }
        match page.last() {
            Some(&last) if page.len() == PAGE => after = Some(last),
            _ => break,
        }
    }
    report.audit_events = copy_audit_trail(source.as_ref(), target.as_ref(), to)?;
    // The catalogue once more, now that everything else is in: what the target serves is what
    // the source had.
    verify(target.funds()? == source.funds()?, "the catalogue", to)?;
    target.flush()?;
    Ok(report)
}

/// Copies the audit trail page by page, newest first, checking each page read back from the
/// target against the source; returns how many events it copied.
fn copy_audit_trail(source: &dyn Store, target: &dyn Store, to: &StoreLocation) -> Result<u64> {
    let mut copied = 0;
    let mut before = None;
    loop {
        let page = source.audit_events(PAGE, before)?;
        if page.is_empty() {
            return Ok(copied);
        }
        target.import_audit_events(&page)?;
        let read_back = target.audit_events(PAGE, before)?;
        verify(read_back == page, "audit events", to)?;
        copied += page.len() as u64;
        if page.len() < PAGE {
            return Ok(copied);
        }
        before = page.last().map(|event| event.id);
    }
}

fn verify(same: bool, what: &str, to: &StoreLocation) -> Result<()> {
    if same {
        Ok(())
    } else {
        Err(Error::storage(format!(
            "{what} read back from {to} differ from the source"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::StoreLocation;

    #[test]
    fn a_database_location_is_shown_without_credentials() {
        for (url, shown) in [
            (
                "postgresql://ana:secret@db.example:5433/funds",
                "postgresql://…@db.example:5433/funds",
            ),
            ("postgres://db.example/funds", "postgres://db.example/funds"),
            (
                "postgresql://db.example/funds?user=ana&password=secret",
                "postgresql://db.example/funds?…",
            ),
            (
                "postgresql://ana:p@ss@db.example/funds",
                "postgresql://…@db.example/funds",
            ),
            // Where the credentials end is ambiguous: only the scheme is shown.
            (
                "postgresql://ana:se?cret@db.example/funds",
                "postgresql://…",
            ),
        ] {
            assert_eq!(StoreLocation::parse(url).to_string(), shown);
        }
        assert_eq!(
            StoreLocation::parse("data/fundcore").to_string(),
            "data/fundcore"
        );
    }
}
