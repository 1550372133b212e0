//! The embedded store: sled trees, their key layouts, the record encoding and atomic commits.
//!
//! A change that spans several keys is committed through a redo journal: one journal record
//! holding every write, then the writes themselves, then the record's removal. sled recovers a
//! prefix of its log after a crash, so if any write of a change survived, its journal record
//! did too, and [`SledStore::recover`] re-applies it on open: every change is all or nothing.
//! This costs plain sled writes only; sled's own multi-tree transactions roll the log buffer
//! twice per commit, which made them the bottleneck of the engine.
//!
//! Operations on one client are serialized through lock stripes chosen by client id, so
//! writers never race on a balance and reads see whole changes. Every per-client listing is a
//! key range that starts with the client id.

use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

mod backup;
mod damage;
pub(crate) mod io_errors;

use super::{
    Claimed, ClientBundle, Decision, IdempotencyRecord, LedgerEntry, MoneyView, Notice, Seed, Store,
};
use crate::audit::AuditEvent;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::fund::Fund;
use crate::ids::{AuditEventId, ClientId, FundId, NotificationId, TransactionId};
use crate::ledger::{Subscription, Transaction};
use crate::outbox::{NotificationStatus, OutboxState};
use crate::time::Timestamp;

/// Layout version written on creation; a store of another version is refused.
const FORMAT_VERSION: u8 = 2;

/// The sled database and its trees.
#[derive(Debug)]
pub(crate) struct SledStore {
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
    /// audit event id -> AuditEvent (JSON: its before/after are JSON objects).
    pub audit: sled::Tree,
    /// sequence number -> the writes of a change being applied (see the module docs).
    journal: sled::Tree,
    next_journal_key: AtomicU64,
    group_commit: GroupCommit,
    client_locks: Vec<Mutex<()>>,
    /// Written while a fund is created or updated, read by each subscribe or cancel from its
    /// read of the fund to its commit: no catalogue change commits in between.
    catalogue_lock: RwLock<()>,
    /// Taken to share by every administrative change (catalogue, client update, audit events)
    /// before its other locks, and alone by a backup for its whole run (see `backup.rs`).
    admin_gate: RwLock<()>,
    /// Delivered notifications, counted by a scan of the ledger on the first
    /// [`Store::outbox_state`] and kept up to date from then on by every write that delivers one
    /// (no index lists them, and one process holds the store, so this store sees every write).
    /// Held across such a write, so the scan counts it either before or after, never twice.
    delivered: Mutex<Option<u64>>,
    /// The first failure of a write or a sync, after which no change is taken (io_errors.rs).
    health: io_errors::Health,
    /// Whether closing may seal the store (damage.rs).
    seal: damage::Seal,
    /// The last handle on sled, dropped after every other field (io_errors.rs: sled panics when
    /// its last sync on closing fails).
    _closing: io_errors::Closing,
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
    // New tables go last: the journal stores a table by its position.
    Audit,
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

impl SledStore {
    /// Opens (creating if needed) the store in `path`, or a temporary one removed on drop.
    pub fn open(path: Option<&Path>, options: &StoreOptions) -> Result<SledStore> {
        let config = sled::Config::new()
            .cache_capacity(options.cache_capacity_bytes)
            .flush_every_ms(options.flush_every_ms);
        let config = match path {
            Some(path) => config.path(path),
            None => config.temporary(true),
        };
        claim_sled_for_this_process()?;
        let db = open_waiting_for_lock(&config, path)?;
        let tree = |name: &str| db.open_tree(name);
        Ok(SledStore {
            meta: tree("meta")?,
            funds: tree("funds")?,
            clients: tree("clients")?,
            subscriptions: tree("subscriptions")?,
            transactions: tree("transactions")?,
            transaction_owners: tree("transaction_owners")?,
            idempotency: tree("idempotency")?,
            outbox_due: tree("outbox_due")?,
            outbox_failed: tree("outbox_failed")?,
            audit: tree("audit")?,
            journal: tree("journal")?,
            next_journal_key: AtomicU64::new(0),
            group_commit: GroupCommit::default(),
            client_locks: (0..CLIENT_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            catalogue_lock: RwLock::new(()),
            admin_gate: RwLock::new(()),
            delivered: Mutex::new(None),
            health: io_errors::Health::open(path)?,
            seal: damage::Seal::default(),
            _closing: io_errors::Closing(Some(db.clone())),
            db,
        })
    }

    /// Opens the store like [`SledStore::open`], checks its layout version and completes any
    /// change a crash interrupted.
    pub fn open_recovered(path: Option<&Path>, options: &StoreOptions) -> Result<SledStore> {
        // A store damaged on disk is refused, naming its path (damage.rs).
        damage::catching_panics(path, || {
            let store = SledStore::open(path, options)?;
            store.check_format()?;
            damage::check_seal(path, &store.meta, &store.seal)?;
            store.recover()?;
            Ok(store)
        })
        .map_err(|err| damage::on_open(err, path))
    }

    /// Opens the store in `path` like [`SledStore::open_recovered`] (completing any change a
    /// crash interrupted, as an engine would), but only where a store exists: nothing is
    /// created in a directory that holds none. sled has no read-only mode, so the store is
    /// opened as an engine opens it and locked for this process meanwhile.
    pub fn open_existing(path: &Path, options: &StoreOptions) -> Result<SledStore> {
        // sled keeps its settings in a `conf` file beside its log, written on creation.
        if !path.join("conf").is_file() {
            return Err(Error::storage(format!(
                "{} holds no fundcore store",
                path.display()
            )));
        }
        SledStore::open_recovered(Some(path), options)
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
            Table::Audit => &self.audit,
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
        self.health.check()?;
        self.health.watch(self.commit_unchecked(writes))?;
        self.seal.count_change();
        Ok(())
    }

    fn commit_unchecked(&self, writes: &[Write]) -> Result<()> {
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

    /// Makes every write completed before this call durable, sharing the flush with
    /// concurrent callers.
    fn group_flush(&self) -> Result<()> {
        let group = &self.group_commit;
        let mut state = group.state.lock();
        state.tickets += 1;
        let ticket = state.tickets;
        while state.durable_through < ticket {
            // After a failed write or sync nothing more is made durable (io_errors.rs).
            self.health.check_written()?;
            if state.leader_active {
                group.flushed.wait(&mut state);
                continue;
            }
            state.leader_active = true;
            let covers = state.tickets;
            drop(state);
            let flushed = self.health.watch(
                self.db
                    .flush()
                    .map_err(Error::from)
                    .and_then(|_| self.health.sync()),
            );
            state = group.state.lock();
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

/// Operations on one client are serialized through one of these locks (chosen by client id).
const CLIENT_LOCK_STRIPES: usize = 64;

impl SledStore {
    fn client_lock(&self, client: ClientId) -> MutexGuard<'_, ()> {
        // The last byte of a UUIDv7 is random, so stripes fill evenly.
        let stripe = usize::from(client.as_bytes()[15]) % CLIENT_LOCK_STRIPES;
        self.client_locks[stripe].lock()
    }

    fn load_client(&self, id: ClientId) -> Result<Option<Client>> {
        self.clients
            .get(id.as_bytes())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    fn load_fund(&self, id: FundId) -> Result<Option<Fund>> {
        self.funds
            .get(fund_key(id))?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    fn client_exists(&self, id: ClientId) -> Result<bool> {
        Ok(self.clients.contains_key(id.as_bytes())?)
    }

    fn entry(&self, key: &[u8]) -> Result<Option<LedgerEntry>> {
        self.transactions
            .get(key)?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    fn stored_transaction(
        &self,
        client: ClientId,
        id: TransactionId,
    ) -> Result<Option<Transaction>> {
        self.transactions
            .get(owned_key(client, id.as_bytes()))?
            .map(|bytes| decode_first(&bytes))
            .transpose()
    }
}

impl Store for SledStore {
    fn seed(&self, seed: &Seed) -> Result<Seed> {
        let initial_balance = match self.meta.get(b"initial_balance")? {
            Some(bytes) => decode(&bytes)?,
            None => {
                let funds = seed
                    .funds
                    .iter()
                    .map(|fund| Write::put(Table::Funds, &fund_key(fund.id), fund));
                let mut writes: Vec<Write> = funds.collect::<Result<_>>()?;
                writes.push(Write::put(
                    Table::Meta,
                    b"initial_balance",
                    &seed.initial_balance,
                )?);
                self.commit(&writes)?;
                self.group_flush()?;
                seed.initial_balance
            }
        };
        let funds = self
            .funds
            .iter()
            .map(|entry| decode::<Fund>(&entry?.1))
            .collect::<Result<_>>()?;
        Ok(Seed {
            initial_balance,
            funds,
        })
    }

    fn largest_id(&self) -> Result<uuid::Uuid> {
        let mut largest = uuid::Uuid::nil();
        for tree in [&self.transaction_owners, &self.clients, &self.audit] {
            if let Some((key, _)) = tree.last()? {
                let id = uuid::Uuid::from_slice(&key)
                    .map_err(|_| Error::storage("corrupt key: not a 16-byte id"))?;
                largest = largest.max(id);
            }
        }
        Ok(largest)
    }

    fn insert_client(&self, client: &Client) -> Result<()> {
        // Every change to a client holds its lock: the id cannot be taken between the two steps.
        let _serialized = self.client_lock(client.id);
        if self.clients.contains_key(client.id.as_bytes())? {
            return Ok(());
        }
        self.commit(&[Write::put(Table::Clients, client.id.as_bytes(), client)?])
    }

    fn client(&self, id: ClientId) -> Result<Option<Client>> {
        let _consistent = self.client_lock(id);
        self.load_client(id)
    }

    fn move_money(
        &self,
        client_id: ClientId,
        fund: FundId,
        key: Option<&str>,
        decide: &mut dyn FnMut(MoneyView) -> Result<Decision>,
    ) -> Result<Option<Transaction>> {
        let _serialized = self.client_lock(client_id);
        let _catalogue_stays = self.catalogue_lock.read();
        let Some(client) = self.load_client(client_id)? else {
            return Ok(None);
        };
        let idem_key = key.map(|key| idempotency_key(client_id, key));
        let replay = match &idem_key {
            Some(idem_key) => match self.idempotency.get(idem_key)? {
                Some(bytes) => {
                    let record: IdempotencyRecord = decode(&bytes)?;
                    let original = self
                        .stored_transaction(client_id, record.transaction_id)?
                        .ok_or_else(|| {
                            Error::storage("idempotency record without its transaction")
                        })?;
                    Some((record.request, original))
                }
                None => None,
            },
            None => None,
        };
        let subscription_key = subscription_key(client_id, fund);
        let subscription: Option<Subscription> = self
            .subscriptions
            .get(subscription_key)?
            .map(|bytes| decode(&bytes))
            .transpose()?;
        let fund = self.load_fund(fund)?;
        let view = MoneyView {
            client,
            fund,
            subscription,
            replay,
            // The engine's id generator is already above every id of this process's store.
            newest_transaction: None,
        };
        let change = match decide(view)? {
            Decision::Replay(original) => return Ok(Some(original)),
            Decision::Commit(change) => change,
        };
        let transaction = &change.entry.transaction;
        let entry_key = owned_key(client_id, transaction.id.as_bytes());
        // The transaction is written before its owner index, so a lookup by id that finds the
        // owner always finds the transaction.
        let mut writes = vec![
            Write::put(Table::Clients, client_id.as_bytes(), &change.client)?,
            Write::put(Table::Transactions, &entry_key, &change.entry)?,
            Write::Put(
                Table::TransactionOwners,
                transaction.id.as_bytes().to_vec(),
                client_id.as_bytes().to_vec(),
            ),
        ];
        writes.push(match &change.opened {
            Some(opened) => Write::put(Table::Subscriptions, &subscription_key, opened)?,
            None => Write::delete(Table::Subscriptions, &subscription_key),
        });
        if let (Some(idem_key), Some(record)) = (&idem_key, &change.idempotency) {
            writes.push(Write::put(Table::Idempotency, idem_key, record)?);
        }
        if let Some(due) = change.entry.notice.as_ref().and_then(|n| n.next_attempt_at) {
            let key = due_key(due, client_id, transaction.id);
            writes.push(Write::mark(Table::OutboxDue, &key));
        }
        self.commit(&writes)?;
        Ok(Some(change.entry.transaction))
    }

    fn subscriptions(&self, client: ClientId) -> Result<Option<Vec<Subscription>>> {
        let _consistent = self.client_lock(client);
        if !self.client_exists(client)? {
            return Ok(None);
        }
        self.subscriptions
            .scan_prefix(client.as_bytes())
            .map(|entry| decode(&entry?.1))
            .collect::<Result<_>>()
            .map(Some)
    }

    fn history(
        &self,
        client: ClientId,
        limit: usize,
        before: Option<TransactionId>,
    ) -> Result<Option<Vec<Transaction>>> {
        let _consistent = self.client_lock(client);
        if !self.client_exists(client)? {
            return Ok(None);
        }
        let start = owned_key(client, &[0; 16]);
        let end = owned_key(client, &before.map_or([0xff; 16], |id| *id.as_bytes()));
        let mut page = Vec::with_capacity(limit);
        // Without a cursor the range must include the all-0xff key; no UUIDv7 has it, so the
        // exclusive end loses nothing.
        for entry in self.transactions.range(start..end).rev().take(limit) {
            page.push(decode_first(&entry?.1)?);
        }
        Ok(Some(page))
    }

    fn transaction(&self, id: TransactionId) -> Result<Option<Transaction>> {
        let Some(owner) = self.transaction_owners.get(id.as_bytes())? else {
            return Ok(None);
        };
        let owner = ClientId::from_slice(&owner)
            .ok_or_else(|| Error::storage("corrupt transaction owner"))?;
        self.stored_transaction(owner, id)
    }

    fn notifications(&self, client: ClientId) -> Result<Option<Vec<LedgerEntry>>> {
        let _consistent = self.client_lock(client);
        if !self.client_exists(client)? {
            return Ok(None);
        }
        let mut entries = Vec::new();
        for entry in self.transactions.scan_prefix(client.as_bytes()).rev() {
            let entry: LedgerEntry = decode(&entry?.1)?;
            if entry.notice.is_some() {
                entries.push(entry);
            }
        }
        Ok(Some(entries))
    }

    fn claim_due(&self, now: Timestamp, limit: usize, _lease: Duration) -> Result<Vec<Claimed>> {
        // One process holds the store and the engine runs one dispatch at a time, so reading
        // the due queue is claim enough.
        let mut due_upper = due_prefix(now).to_vec();
        due_upper.push(0xff);
        let mut claimed = Vec::new();
        for due in self.outbox_due.range(..due_upper).keys() {
            if claimed.len() >= limit {
                break;
            }
            let due = due?;
            let pending = match parse_due_key(&due) {
                Some((client, transaction)) => self
                    .entry(&owned_key(client, transaction.as_bytes()))?
                    .and_then(|entry| Some((entry.transaction, entry.notice?)))
                    .filter(|(_, notice)| notice.status == NotificationStatus::Pending),
                None => None,
            };
            match pending {
                Some((transaction, notice)) => claimed.push(Claimed {
                    transaction,
                    notice,
                    claim: due.to_vec(),
                }),
                // A due key whose notification is gone or no longer pending is stale.
                None => {
                    self.outbox_due.remove(&due)?;
                }
            }
        }
        Ok(claimed)
    }

    fn settle(&self, claimed: &Claimed, notice: &Notice) -> Result<()> {
        let tx = &claimed.transaction;
        let entry_key = owned_key(tx.client_id, tx.id.as_bytes());
        let entry = LedgerEntry {
            transaction: tx.clone(),
            notice: Some(notice.clone()),
        };
        let mut writes = vec![
            Write::put(Table::Transactions, &entry_key, &entry)?,
            Write::delete(Table::OutboxDue, &claimed.claim),
        ];
        if let Some(next) = notice.next_attempt_at {
            writes.push(Write::mark(
                Table::OutboxDue,
                &due_key(next, tx.client_id, tx.id),
            ));
        }
        if notice.status == NotificationStatus::Failed {
            writes.push(Write::mark(Table::OutboxFailed, &entry_key));
        }
        // A claimed entry is pending: delivering it adds one to the count.
        let delivered = notice.status == NotificationStatus::Delivered;
        let mut count = delivered.then(|| self.delivered.lock());
        self.commit(&writes)?;
        if let Some(Some(count)) = count.as_deref_mut() {
            *count += 1;
        }
        Ok(())
    }

    fn requeue_failed(&self, now: Timestamp, limit: usize) -> Result<usize> {
        let failed: Vec<sled::IVec> = self
            .outbox_failed
            .iter()
            .keys()
            .take(limit)
            .collect::<std::result::Result<_, _>>()?;
        let mut requeued = 0;
        for entry_key in failed {
            let Some(LedgerEntry {
                transaction,
                notice: Some(mut notice),
            }) = self.entry(&entry_key)?
            else {
                self.outbox_failed.remove(&entry_key)?;
                continue;
            };
            notice.status = NotificationStatus::Pending;
            notice.attempts = 0;
            notice.next_attempt_at = Some(now);
            let due = due_key(now, transaction.client_id, transaction.id);
            let entry = LedgerEntry {
                transaction,
                notice: Some(notice),
            };
            self.commit(&[
                Write::put(Table::Transactions, &entry_key, &entry)?,
                Write::mark(Table::OutboxDue, &due),
                Write::delete(Table::OutboxFailed, &entry_key),
            ])?;
            requeued += 1;
        }
        Ok(requeued)
    }

    fn failed_notifications(
        &self,
        limit: usize,
        before: Option<NotificationId>,
    ) -> Result<Vec<LedgerEntry>> {
        // The failed set is keyed by client, not by time: each page reads the whole set (an
        // operator's backlog of failures, not the ledger) and sorts it.
        let mut failed = Vec::new();
        for entry_key in self.outbox_failed.iter().keys() {
            let Some(entry) = self.entry(&entry_key?)? else {
                continue;
            };
            // A key whose entry was requeued since is stale (see `claim_due`).
            let id = match &entry.notice {
                Some(notice) if notice.status == NotificationStatus::Failed => notice.id,
                _ => continue,
            };
            if before.is_none_or(|before| id < before) {
                failed.push((id, entry));
            }
        }
        failed.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
        failed.truncate(limit);
        Ok(failed.into_iter().map(|(_, entry)| entry).collect())
    }

    fn outbox_state(&self) -> Result<OutboxState> {
        // The due queue lists the pending entries, the failed set the failed ones; a key whose
        // entry is gone or in another state (stale, see `claim_due`) is not counted.
        let mut pending = 0;
        let mut oldest_pending_at: Option<Timestamp> = None;
        for due in self.outbox_due.iter().keys() {
            let Some((client, transaction)) = parse_due_key(&due?) else {
                continue;
            };
            let Some(entry) = self.entry(&owned_key(client, transaction.as_bytes()))? else {
                continue;
            };
            if entry.notice.map(|notice| notice.status) == Some(NotificationStatus::Pending) {
                pending += 1;
                let at = entry.transaction.created_at;
                oldest_pending_at = Some(oldest_pending_at.map_or(at, |oldest| oldest.min(at)));
            }
        }
        let mut failed = 0;
        for entry_key in self.outbox_failed.iter().keys() {
            let failed_now = self.entry(&entry_key?)?.and_then(|entry| entry.notice);
            if failed_now.map(|notice| notice.status) == Some(NotificationStatus::Failed) {
                failed += 1;
            }
        }
        let mut delivered = self.delivered.lock();
        let delivered = match *delivered {
            Some(count) => count,
            None => {
                let mut count = 0;
                for entry in self.transactions.iter().values() {
                    if is_delivered(&decode(&entry?)?) {
                        count += 1;
                    }
                }
                *delivered = Some(count);
                count
            }
        };
        Ok(OutboxState {
            pending,
            failed,
            delivered,
            oldest_pending_at,
            oldest_pending_age: None,
        })
    }

    fn flush(&self) -> Result<()> {
        self.group_flush()
    }

    fn stored_seed(&self) -> Result<Option<Seed>> {
        let Some(bytes) = self.meta.get(b"initial_balance")? else {
            return Ok(None);
        };
        let funds = self
            .funds
            .iter()
            .map(|entry| decode::<Fund>(&entry?.1))
            .collect::<Result<_>>()?;
        Ok(Some(Seed {
            initial_balance: decode(&bytes)?,
            funds,
        }))
    }

    fn client_ids(&self, after: Option<ClientId>, limit: usize) -> Result<Vec<ClientId>> {
        let range = match after {
            Some(after) => self.clients.range(after.as_bytes().to_vec()..),
            None => self.clients.range::<Vec<u8>, _>(..),
        };
        let mut ids = Vec::with_capacity(limit);
        for key in range.keys() {
            let id = ClientId::from_slice(&key?)
                .ok_or_else(|| Error::storage("corrupt key: not a client id"))?;
            if Some(id) == after {
                continue;
            }
            if ids.len() == limit {
                break;
            }
            ids.push(id);
        }
        Ok(ids)
    }

    fn bundle(&self, id: ClientId) -> Result<Option<ClientBundle>> {
        let _consistent = self.client_lock(id);
        let Some(client) = self.load_client(id)? else {
            return Ok(None);
        };
        let subscriptions = self
            .subscriptions
            .scan_prefix(id.as_bytes())
            .map(|entry| decode(&entry?.1))
            .collect::<Result<_>>()?;
        let entries = self
            .transactions
            .scan_prefix(id.as_bytes())
            .map(|entry| decode(&entry?.1))
            .collect::<Result<_>>()?;
        let mut idempotency = Vec::new();
        for entry in self.idempotency.scan_prefix(id.as_bytes()) {
            let (key, bytes) = entry?;
            let text = std::str::from_utf8(&key[16..])
                .map_err(|_| Error::storage("corrupt idempotency key"))?;
            idempotency.push((text.to_owned(), decode(&bytes)?));
        }
        Ok(Some(ClientBundle {
            client,
            subscriptions,
            entries,
            idempotency,
        }))
    }

    fn import_bundle(&self, bundle: &ClientBundle) -> Result<()> {
        let _serialized = self.client_lock(bundle.client.id);
        let writes = backup::bundle_writes(bundle)?;
        let delivered = bundle
            .entries
            .iter()
            .filter(|entry| is_delivered(entry))
            .count() as u64;
        let mut count = self.delivered.lock();
        self.commit(&writes)?;
        if let Some(count) = count.as_mut() {
            *count += delivered;
        }
        Ok(())
    }

    fn commits_are_durable(&self) -> bool {
        false
    }

    fn backup(&self, dest: &Path) -> Result<()> {
        self.write_backup(dest).map(|_counts| ())
    }

    fn funds(&self) -> Result<Vec<Fund>> {
        self.funds
            .iter()
            .map(|entry| decode::<Fund>(&entry?.1))
            .collect()
    }

    fn fund(&self, id: FundId) -> Result<Option<Fund>> {
        self.load_fund(id)
    }

    fn create_fund(&self, fund: &Fund, event: &AuditEvent) -> Result<bool> {
        let _not_during_a_backup = self.admin_gate.read();
        let _catalogue = self.catalogue_lock.write();
        if self.funds.contains_key(fund_key(fund.id))? {
            return Ok(false);
        }
        self.commit(&[
            Write::put(Table::Funds, &fund_key(fund.id), fund)?,
            audit_write(event)?,
        ])?;
        Ok(true)
    }

    fn update_fund(
        &self,
        id: FundId,
        decide: &mut dyn FnMut(Fund, Option<AuditEventId>) -> Result<Option<(Fund, AuditEvent)>>,
    ) -> Result<Option<Fund>> {
        let _not_during_a_backup = self.admin_gate.read();
        let _catalogue = self.catalogue_lock.write();
        let Some(current) = self.load_fund(id)? else {
            return Ok(None);
        };
        // One process: the engine's id generator already orders its own events.
        let Some((updated, event)) = decide(current.clone(), None)? else {
            return Ok(Some(current));
        };
        self.commit(&[
            Write::put(Table::Funds, &fund_key(id), &updated)?,
            audit_write(&event)?,
        ])?;
        Ok(Some(updated))
    }

    fn update_client(
        &self,
        id: ClientId,
        decide: &mut dyn FnMut(
            Client,
            Option<AuditEventId>,
        ) -> Result<Option<(Client, AuditEvent)>>,
    ) -> Result<Option<Client>> {
        let _not_during_a_backup = self.admin_gate.read();
        let _serialized = self.client_lock(id);
        let Some(current) = self.load_client(id)? else {
            return Ok(None);
        };
        let Some((updated, event)) = decide(current.clone(), None)? else {
            return Ok(Some(current));
        };
        self.commit(&[
            Write::put(Table::Clients, id.as_bytes(), &updated)?,
            audit_write(&event)?,
        ])?;
        Ok(Some(updated))
    }

    fn clients(&self, limit: usize, before: Option<ClientId>) -> Result<Vec<Client>> {
        let range = match before {
            Some(before) => self.clients.range(..before.as_bytes().to_vec()),
            None => self.clients.range::<Vec<u8>, _>(..),
        };
        range
            .rev()
            .take(limit)
            .map(|entry| decode(&entry?.1))
            .collect()
    }

    fn audit_events(&self, limit: usize, before: Option<AuditEventId>) -> Result<Vec<AuditEvent>> {
        let range = match before {
            Some(before) => self.audit.range(..before.as_bytes().to_vec()),
            None => self.audit.range::<Vec<u8>, _>(..),
        };
        range
            .rev()
            .take(limit)
            .map(|entry| decode_json(&entry?.1))
            .collect()
    }

    fn import_audit_events(&self, events: &[AuditEvent]) -> Result<()> {
        let _not_during_a_backup = self.admin_gate.read();
        let writes = events.iter().map(audit_write).collect::<Result<Vec<_>>>()?;
        self.commit(&writes)
    }
}

/// Whether a ledger entry's notification was delivered.
fn is_delivered(entry: &LedgerEntry) -> bool {
    entry.notice.as_ref().map(|notice| notice.status) == Some(NotificationStatus::Delivered)
}

/// The write of an audit event (JSON, since its before/after are JSON objects).
fn audit_write(event: &AuditEvent) -> Result<Write> {
    let bytes =
        serde_json::to_vec(event).map_err(|err| Error::storage(format!("encode: {err}")))?;
    Ok(Write::Put(
        Table::Audit,
        event.id.as_bytes().to_vec(),
        bytes,
    ))
}

fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|err| Error::storage(format!("corrupt record: {err}")))
}

impl Drop for SledStore {
    fn drop(&mut self) {
        // Write everything out now, so the store is closed (and its lock free) soon after the
        // last engine using it is dropped. An error here has no one to report to; the log is
        // recovered on the next open either way. A clean close seals the store (damage.rs).
        self.close_sealed();
    }
}

/// The process that first opened a sled store in this address space (0: none yet).
///
/// sled runs its I/O on a process-wide thread pool. A child created by `fork()` inherits the
/// pool's bookkeeping (threads waiting, queue) but none of its threads, so any store it opens
/// waits forever for work nobody picks up. A child inherits this value too, which is how it
/// knows.
static SLED_PROCESS: AtomicU32 = AtomicU32::new(0);

/// Fails with [`Error::EmbeddedStoreForked`] in a forked child of a process that had opened a
/// sled store; records this process as sled's otherwise.
fn claim_sled_for_this_process() -> Result<()> {
    let here = std::process::id();
    match SLED_PROCESS.compare_exchange(0, here, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => Ok(()),
        Err(owner) if owner == here => Ok(()),
        Err(owner) => Err(Error::EmbeddedStoreForked {
            opened_in: owner,
            called_from: here,
        }),
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
            opened => return opened.map_err(|err| damage::sled_open_error(err, path)),
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
            let store = SledStore::open(Some(dir.path()), &options()).unwrap();
            store.subscriptions.insert(b"old", b"x").unwrap();
            // The crash: the journal record and only the first write reached the log.
            store
                .journal
                .insert(7u64.to_be_bytes(), encode(&writes).unwrap())
                .unwrap();
            store.apply(&writes[..1]).unwrap();
            store.db.flush().unwrap();
        }
        let store = SledStore::open(Some(dir.path()), &options()).unwrap();
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
        let store = SledStore::open(None, &options()).unwrap();
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
