//! The durable store: sled trees, their key layouts and the record encoding.
//!
//! Everything a subscribe or cancel transaction reads is reachable by key (sled transactions
//! cannot scan), and every per-client listing is a key range that starts with the client id.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::error::{Error, Result};
use crate::ids::{ClientId, FundId, NotificationId};
use crate::time::Timestamp;

/// Layout version written on creation; a store of another version is refused.
const FORMAT_VERSION: u8 = 1;

/// The sled database and its trees.
#[derive(Clone, Debug)]
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
    /// client id ++ transaction id -> Transaction: a client's history in time order.
    pub transactions: sled::Tree,
    /// transaction id -> client id, to find a transaction by id alone.
    pub transaction_owners: sled::Tree,
    /// client id ++ key -> IdempotencyRecord.
    pub idempotency: sled::Tree,
    /// client id ++ notification id -> Notification.
    pub outbox: sled::Tree,
    /// due time ++ client id ++ notification id -> (): pending entries in due order.
    pub outbox_due: sled::Tree,
    /// client id ++ notification id -> (): failed entries, for retrying them.
    pub outbox_failed: sled::Tree,
    group_commit: Arc<GroupCommit>,
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
        let db = config.open()?;
        let tree = |name: &str| db.open_tree(name);
        Ok(Store {
            meta: tree("meta")?,
            funds: tree("funds")?,
            clients: tree("clients")?,
            subscriptions: tree("subscriptions")?,
            transactions: tree("transactions")?,
            transaction_owners: tree("transaction_owners")?,
            idempotency: tree("idempotency")?,
            outbox: tree("outbox")?,
            outbox_due: tree("outbox_due")?,
            outbox_failed: tree("outbox_failed")?,
            group_commit: Arc::default(),
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

/// Serializes a record for storage (compact binary; money as decimal text, never a float).
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|err| Error::storage(format!("encode: {err}")))
}

/// Reads a stored record.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|err| Error::storage(format!("corrupt record: {err}")))
}

/// [`decode`] inside a sled transaction.
pub(crate) fn decode_in_tx<T: DeserializeOwned>(
    bytes: &[u8],
) -> std::result::Result<T, ConflictableTransactionError<Error>> {
    decode(bytes).map_err(ConflictableTransactionError::Abort)
}

/// [`encode`] inside a sled transaction.
pub(crate) fn encode_in_tx<T: Serialize>(
    value: &T,
) -> std::result::Result<Vec<u8>, ConflictableTransactionError<Error>> {
    encode(value).map_err(ConflictableTransactionError::Abort)
}

/// Turns a finished sled transaction into our result: aborts carry our error, store failures
/// become `STORAGE_ERROR`.
pub(crate) fn finish<T>(result: std::result::Result<T, TransactionError<Error>>) -> Result<T> {
    result.map_err(|err| match err {
        TransactionError::Abort(err) => err,
        TransactionError::Storage(err) => Error::storage(err),
    })
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

/// Key of a record owned by a client and ordered by a UUIDv7 (transactions, notifications).
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

/// Key of a pending outbox entry: due time first, so a range scan yields what is due.
pub(crate) fn due_key(at: Timestamp, client: ClientId, id: NotificationId) -> [u8; 40] {
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

/// Splits a due key into client and notification ids.
pub(crate) fn parse_due_key(key: &[u8]) -> Option<(ClientId, NotificationId)> {
    if key.len() != 40 {
        return None;
    }
    Some((
        ClientId::from_slice(&key[8..24])?,
        NotificationId::from_slice(&key[24..])?,
    ))
}

/// Splits an owned key into client id and record id.
pub(crate) fn parse_owned_key(key: &[u8]) -> Option<(ClientId, NotificationId)> {
    if key.len() != 32 {
        return None;
    }
    Some((
        ClientId::from_slice(&key[..16])?,
        NotificationId::from_slice(&key[16..])?,
    ))
}
