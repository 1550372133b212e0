//! The durable store: sled trees, their key layouts, the record encoding and atomic commits.
//!
//! A change that spans several keys is committed through a redo journal: one journal record
//! holding every write, then the writes themselves, then the record's removal. sled recovers a
//! prefix of its log after a crash, so if any write of a change survived, its journal record
//! did too, and [`Store::recover`] re-applies it on open: every change is all or nothing. This
//! costs plain sled writes only; sled's own multi-tree transactions roll the log buffer twice
//! per commit, which made them the bottleneck of the engine.
//!
//! Every per-client listing is a key range that starts with the client id.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{ClientId, FundId, TransactionId};
use crate::time::Timestamp;

/// Layout version written on creation; a store of another version is refused.
const FORMAT_VERSION: u8 = 2;

/// The sled database and its trees.
#[derive(Debug)]
pub(crate) struct Store {
    pub db: sled::Db,
    /// Store-wide settings fixed at creation (format, initial balance).
    pub meta: sled::Tree,
    /// fund id (u32 BE) -> Fund.
    pub funds: sled::Tree,
    /// client id -> Client (with its balance).
    pub clients: sled::Tree,
    /// client id ++ fund id -> active Subscription.
    pub subscriptions: sled::Tree,
    /// client id ++ transaction id -> LedgerEntry (the transaction and its notification's
    /// state): a client's history and outbox in time order.
    pub transactions: sled::Tree,
    /// transaction id -> client id, to find a transaction by id alone.
    pub transaction_owners: sled::Tree,
    /// client id ++ key -> IdempotencyRecord.
    pub idempotency: sled::Tree,
    /// due time ++ client id ++ transaction id -> (): pending notifications in due order.
    pub outbox_due: sled::Tree,
    /// client id ++ transaction id -> (): failed notifications, for retrying them.
    pub outbox_failed: sled::Tree,
    /// sequence number -> the writes of a change being applied (see the module docs).
    journal: sled::Tree,
    next_journal_key: AtomicU64,
    group_commit: GroupCommit,
}

/// The trees a change may write to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Table {
    Meta,
    Funds,
    Clients,
    Subscriptions,
    Transactions,
    TransactionOwners,
    Idempotency,
    OutboxDue,
    OutboxFailed,
}

/// One write of a change: a value stored under a key, or a key removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Write {
    Put(Table, Vec<u8>, Vec<u8>),
    Delete(Table, Vec<u8>),
}

impl Write {
    /// Stores `value` encoded under `key`.
    pub fn put<T: Serialize>(table: Table, key: &[u8], value: &T) -> Result<Write> {
        Ok(Write::Put(table, key.to_vec(), encode(value)?))
    }

    /// Stores an empty marker under `key`.
    pub fn mark(table: Table, key: &[u8]) -> Write {
        Write::Put(table, key.to_vec(), Vec::new())
    }

    /// Removes `key`.
    pub fn delete(table: Table, key: &[u8]) -> Write {
        Write::Delete(table, key.to_vec())
    }
}

/// Group commit: callers that need durability at the same time share one flush.
///
/// Each caller takes a ticket after its write; a flush that starts after ticket `n` was taken
/// covers writes `1..=n`. One caller at a time flushes (the leader) while the others wait for a
/// flush that covers their ticket, so N concurrent callers cost about one fsync, not N.
#[derive(Debug, Default)]
struct GroupCommit {
    state: Mutex<FlushState>,
    flushed: Condvar,
}

#[derive(Debug, Default)]
struct FlushState {
    tickets: u64,
    durable_through: u64,
    leader_active: bool,
}

/// How sled is opened.
pub(crate) struct StoreOptions {
    pub flush_every_ms: Option<u64>,
    pub cache_capacity_bytes: u64,
}

impl Store {
    /// Opens (creating if needed) the store in `path`, or a temporary one removed on drop.
    pub fn open(path: Option<&Path>, options: &StoreOptions) -> Result<Store> {
        let config = sled::Config::new()
            .cache_capacity(options.cache_capacity_bytes)
            .flush_every_ms(options.flush_every_ms);
        let config = match path {
            Some(path) => config.path(path),
            None => config.temporary(true),
        };
        let db = open_waiting_for_lock(&config, path)?;
        let tree = |name: &str| db.open_tree(name);
        Ok(Store {
            meta: tree("meta")?,
            funds: tree("funds")?,
            clients: tree("clients")?,
            subscriptions: tree("subscriptions")?,
            transactions: tree("transactions")?,
            transaction_owners: tree("transaction_owners")?,
            idempotency: tree("idempotency")?,
            outbox_due: tree("outbox_due")?,
            outbox_failed: tree("outbox_failed")?,
            journal: tree("journal")?,
            next_journal_key: AtomicU64::new(0),
            group_commit: GroupCommit::default(),
            db,
        })
    }

    /// Checks the layout version, writing it on a new store.
    pub fn check_format(&self) -> Result<()> {
        match self.meta.get(b"format")? {
            None => {
                self.meta.insert(b"format", &[FORMAT_VERSION])?;
                Ok(())
            }
            Some(v) if v.as_ref() == [FORMAT_VERSION] => Ok(()),
            Some(v) => Err(Error::storage(format!(
                "unsupported store format {:?}",
                v.as_ref()
            ))),
        }
    }

    fn tree(&self, table: Table) -> &sled::Tree {
        match table {
            Table::Meta => &self.meta,
            Table::Funds => &self.funds,
            Table::Clients => &self.clients,
            Table::Subscriptions => &self.subscriptions,
            Table::Transactions => &self.transactions,
            Table::TransactionOwners => &self.transaction_owners,
            Table::Idempotency => &self.idempotency,
            Table::OutboxDue => &self.outbox_due,
            Table::OutboxFailed => &self.outbox_failed,
        }
    }

    fn apply(&self, writes: &[Write]) -> Result<()> {
        for write in writes {
            match write {
                Write::Put(table, key, value) => {
                    self.tree(*table).insert(key.as_slice(), value.as_slice())?
                }
                Write::Delete(table, key) => self.tree(*table).remove(key.as_slice())?,
            };
        }
        Ok(())
    }

    /// Applies `writes` all or nothing (across a crash too). Callers serialize changes to the
    /// same keys themselves (the engine's per-client locks).
    pub fn commit(&self, writes: &[Write]) -> Result<()> {
        if let [single] = writes {
            return self.apply(std::slice::from_ref(single));
        }
        let key = self
            .next_journal_key
            .fetch_add(1, Ordering::Relaxed)
            .to_be_bytes();
        self.journal.insert(key, encode(&writes)?)?;
        self.apply(writes)?;
        self.journal.remove(key)?;
        Ok(())
    }

    /// Re-applies the changes a crash interrupted; returns how many there were.
    pub fn recover(&self) -> Result<usize> {
        let mut recovered = 0;
        for entry in self.journal.iter() {
            let (key, bytes) = entry?;
            let writes: Vec<Write> = decode(&bytes)?;
            self.apply(&writes)?;
            self.journal.remove(key)?;
            recovered += 1;
        }
        if recovered > 0 {
            self.db.flush()?;
        }
        Ok(recovered)
    }

    /// The largest id the store holds (transactions and clients), so new ids sort after it.
    pub fn largest_id(&self) -> Result<uuid::Uuid> {
        let mut largest = uuid::Uuid::nil();
        for tree in [&self.transaction_owners, &self.clients] {
            if let Some((key, _)) = tree.last()? {
                largest = largest.max(uuid::Uuid::from_slice(&key).unwrap_or_default());
            }
        }
        Ok(largest)
    }

    /// Makes every write completed before this call durable, sharing the flush with
    /// concurrent callers.
    pub fn flush(&self) -> Result<()> {
        let group = &self.group_commit;
        // The state is plain counters, valid even if a holder panicked.
        let mut state = group.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.tickets += 1;
        let ticket = state.tickets;
        while state.durable_through < ticket {
            if state.leader_active {
                state = group
                    .flushed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.leader_active = true;
            let covers = state.tickets;
            drop(state);
            let flushed = self.db.flush();
            state = group.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.leader_active = false;
            if flushed.is_ok() {
                state.durable_through = state.durable_through.max(covers);
            }
            group.flushed.notify_all();
            flushed?;
        }
        Ok(())
    }
}

/// How long opening waits for a store lock held by a store being closed (sled writes out a
/// dropped store on a shared I/O pool, which lags under load).
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens sled, waiting up to [`LOCK_WAIT`] while the directory lock is held: sled's I/O
/// threads can keep it for a moment after the previous engine on that path was dropped. A lock
/// still held after that belongs to a live engine, normally in another process:
/// [`Error::StoreInUse`].
fn open_waiting_for_lock(config: &sled::Config, path: Option<&Path>) -> Result<sled::Db> {
    let started = Instant::now();
    loop {
        match config.open() {
            Err(err) if is_lock_held(&err) => {
                if started.elapsed() >= LOCK_WAIT {
                    return Err(Error::StoreInUse {
                        path: path.map_or_else(String::new, |p| p.display().to_string()),
                    });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            opened => return Ok(opened?),
        }
    }
}

/// Whether sled failed to open because another open store holds the directory lock (sled
/// reports it as an `Other` I/O error with this text).
fn is_lock_held(err: &sled::Error) -> bool {
    matches!(err, sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock"))
}

/// Serializes a record for storage (compact binary; money as decimal text, never a float).
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|err| Error::storage(format!("encode: {err}")))
}

/// Reads a stored record.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|err| Error::storage(format!("corrupt record: {err}")))
}

/// Reads the first field of a stored struct, skipping the rest (postcard writes a struct as its
/// fields in order, with no header): a ledger entry's transaction without its notification.
pub(crate) fn decode_first<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    postcard::take_from_bytes(bytes)
        .map(|(value, _rest)| value)
        .map_err(|err| Error::storage(format!("corrupt record: {err}")))
}

/// Fund ids as big-endian bytes, so keys sort by id.
pub(crate) fn fund_key(fund: FundId) -> [u8; 4] {
    fund.to_be_bytes()
}

/// Key of a client's active subscription to a fund.
pub(crate) fn subscription_key(client: ClientId, fund: FundId) -> [u8; 20] {
    let mut key = [0u8; 20];
    key[..16].copy_from_slice(client.as_bytes());
    key[16..].copy_from_slice(&fund_key(fund));
    key
}

/// Key of a client's transaction (and of its entry in the failed set): client id, then the
/// UUIDv7, so a client's records sort by time.
pub(crate) fn owned_key(client: ClientId, id: &[u8; 16]) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(client.as_bytes());
    key[16..].copy_from_slice(id);
    key
}

/// Key of a client's idempotency key.
pub(crate) fn idempotency_key(client: ClientId, key: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16 + key.len());
    bytes.extend_from_slice(client.as_bytes());
    bytes.extend_from_slice(key.as_bytes());
    bytes
}

/// Key of a pending notification (named by its transaction): due time first, so a range scan
/// yields what is due.
pub(crate) fn due_key(at: Timestamp, client: ClientId, id: TransactionId) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..8].copy_from_slice(&due_prefix(at));
    key[8..24].copy_from_slice(client.as_bytes());
    key[24..].copy_from_slice(id.as_bytes());
    key
}

/// The first 8 bytes of a due key: the time as an order-preserving unsigned number.
pub(crate) fn due_prefix(at: Timestamp) -> [u8; 8] {
    ((at.unix_micros() as u64) ^ (1 << 63)).to_be_bytes()
}

/// Splits a due key into client and transaction ids.
pub(crate) fn parse_due_key(key: &[u8]) -> Option<(ClientId, TransactionId)> {
    if key.len() != 40 {
        return None;
    }
    Some((
        ClientId::from_slice(&key[8..24])?,
        TransactionId::from_slice(&key[24..])?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> StoreOptions {
        StoreOptions {
            flush_every_ms: None,
            cache_capacity_bytes: 1 << 20,
        }
    }

    #[test]
    fn a_change_interrupted_after_its_journal_record_is_completed_on_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let writes = vec![
            Write::Put(Table::Clients, b"client".to_vec(), b"balance 0".to_vec()),
            Write::Put(
                Table::Transactions,
                b"tx".to_vec(),
                b"subscription".to_vec(),
            ),
            Write::Delete(Table::Subscriptions, b"old".to_vec()),
        ];
        {
            let store = Store::open(Some(dir.path()), &options()).unwrap();
            store.subscriptions.insert(b"old", b"x").unwrap();
            // The crash: the journal record and only the first write reached the log.
            store
                .journal
                .insert(7u64.to_be_bytes(), encode(&writes).unwrap())
                .unwrap();
            store.apply(&writes[..1]).unwrap();
            store.db.flush().unwrap();
        }
        let store = Store::open(Some(dir.path()), &options()).unwrap();
        assert_eq!(store.recover().unwrap(), 1);
        assert_eq!(
            store.clients.get(b"client").unwrap().as_deref(),
            Some(&b"balance 0"[..])
        );
        assert_eq!(
            store.transactions.get(b"tx").unwrap().as_deref(),
            Some(&b"subscription"[..])
        );
        assert_eq!(store.subscriptions.get(b"old").unwrap(), None);
        assert!(store.journal.is_empty());
        assert_eq!(store.recover().unwrap(), 0, "recovery is done once");
    }

    #[test]
    fn a_committed_change_leaves_no_journal_record() {
        let store = Store::open(None, &options()).unwrap();
        let writes = [
            Write::mark(Table::OutboxDue, b"a"),
            Write::mark(Table::OutboxFailed, b"b"),
        ];
        store.commit(&writes).unwrap();
        assert!(store.journal.is_empty());
        assert!(
            store.outbox_due.contains_key(b"a").unwrap()
                && store.outbox_failed.contains_key(b"b").unwrap()
        );
    }
}
