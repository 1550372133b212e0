//! Online backups of the embedded store: a consistent copy written while the engine serves
//! calls.
//!
//! sled 0.34 has no snapshots, so the copy is made client by client. Every change of the
//! embedded store falls in one of three groups, and each is kept whole in the copy:
//!
//! - **A client's changes** (register, subscribe, cancel): the store commits them while
//!   holding the client's lock stripe. The backup reads each client (its record, active
//!   subscriptions, ledger entries and idempotency records) while holding that stripe, so it
//!   sees every change to the client wholly or not at all; a subscribe or cancel waits at most
//!   for the copy of one client of its stripe.
//! - **Notification deliveries** (dispatch settling an entry, failed entries requeued): they
//!   rewrite one ledger entry (the notification's state) and move keys between the outbox's
//!   due queue and failed set. The copy takes each entry as one record and writes the queues
//!   from the entries it copied (as [`SledStore::import_bundle`] does), never from the
//!   source's queues, so the copy's queues agree with its ledger whatever was delivered
//!   meanwhile.
//! - **Administrative changes** (a fund created or updated, a client updated, audit events
//!   imported): each writes a record and its audit event, and the audit trail is store-wide.
//!   These take the store's administration gate to share, and the backup takes it alone for
//!   its whole run: they wait for the backup (they are an operator's rare calls), and the
//!   catalogue and audit trail the copy holds are exactly those every copied client was
//!   changed against.
//!
//! Every change acknowledged before the backup started had committed, so it is in the trees
//! when the backup reads them; a change made after it began is in the copy or not, whole.
//!
//! Why this and not a pause of every commit (a store-wide lock that commits share and the
//! backup takes alone while it exports the trees): that is simpler, but every call would wait
//! for the whole copy, seconds on a store of a million transactions. Here a subscribe or cancel
//! waits for at most one client's read, and core/tests/backup.rs shows each change still whole
//! in the copy and its outbox queues in agreement with its ledger (`fundcore verify`).
//!
//! The copy is written into a new sled database in a hidden directory beside the destination,
//! flushed, closed, and renamed to the destination at the end, so a backup that fails leaves
//! nothing at the destination (and removes its partial directory). A destination that exists is
//! refused before anything is written (`VALIDATION_ERROR` on `dest`): a backup never
//! overwrites anything.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{SledStore, StoreOptions, Table, Write, decode, due_key, owned_key};
use crate::error::{Error, Result};
use crate::ids::{ClientId, TransactionId};
use crate::outbox::NotificationStatus;
use crate::store::{ClientBundle, LedgerEntry};

/// Clients listed per page while copying (their ids only; each is then read under its lock).
const PAGE: usize = 1000;

/// sled's page cache for the copy while it is written (it is written once and closed).
const COPY_CACHE_BYTES: u64 = 64 << 20;

/// Distinguishes the partial directories of backups running at once in one process.
static NEXT_PARTIAL: AtomicU64 = AtomicU64::new(0);

/// What a backup copied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BackupCounts {
    pub clients: u64,
    pub transactions: u64,
}

/// One client's records as stored, read under its lock: the bytes are copied as they are.
struct RawClient {
    id: ClientId,
    client: Vec<u8>,
    subscriptions: Vec<(Vec<u8>, Vec<u8>)>,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    idempotency: Vec<(Vec<u8>, Vec<u8>)>,
}

impl SledStore {
    /// Writes a consistent copy of this store, while it serves calls, into the new directory
    /// `dest` (see the module docs for what is guaranteed and how).
    pub(crate) fn write_backup(&self, dest: &Path) -> Result<BackupCounts> {
        refuse_existing(dest)?;
        let partial = Partial::create(dest)?;
        let counts = {
            let target = SledStore::open(
                Some(&partial.path),
                &StoreOptions {
                    flush_every_ms: None,
                    cache_capacity_bytes: COPY_CACHE_BYTES,
                },
            )
            .map_err(|err| in_backup(dest, err))?;
            let counts = self
                .copy_into(&target)
                .map_err(|err| in_backup(dest, err))?;
            target
                .db
                .flush()
                .map_err(|err| in_backup(dest, err.into()))?;
            counts
            // The copy is closed here, before it is moved into place.
        };
        partial.rename_to(dest)?;
        Ok(counts)
    }

    /// Copies every record into `target` (see the module docs).
    fn copy_into(&self, target: &SledStore) -> Result<BackupCounts> {
        // No administrative change commits until the copy is complete.
        let _admin = self.admin_gate.write();
        for tree in [Table::Meta, Table::Funds, Table::Audit] {
            for entry in self.tree(tree).iter() {
                let (key, value) = entry?;
                target.tree(tree).insert(key, value)?;
            }
        }
        let mut counts = BackupCounts::default();
        let mut after = None;
        loop {
            let page = super::Store::client_ids(self, after, PAGE)?;
            for &id in &page {
                // A client listed is never removed; `None` cannot happen but costs nothing.
                if let Some(raw) = self.read_client(id)? {
                    counts.clients += 1;
                    counts.transactions += raw.entries.len() as u64;
                    target.apply(&raw_writes(raw)?)?;
                }
            }
            match page.last() {
                Some(&last) if page.len() == PAGE => after = Some(last),
                _ => break,
            }
        }
        Ok(counts)
    }

    /// One client's records, read while no change to the client can commit.
    fn read_client(&self, id: ClientId) -> Result<Option<RawClient>> {
        let _consistent = self.client_lock(id);
        let Some(client) = self.clients.get(id.as_bytes())? else {
            return Ok(None);
        };
        let pairs = |tree: &sled::Tree| -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
            tree.scan_prefix(id.as_bytes())
                .map(|entry| {
                    let (key, value) = entry?;
                    Ok((key.to_vec(), value.to_vec()))
                })
                .collect()
        };
        Ok(Some(RawClient {
            id,
            client: client.to_vec(),
            subscriptions: pairs(&self.subscriptions)?,
            entries: pairs(&self.transactions)?,
            idempotency: pairs(&self.idempotency)?,
        }))
    }
}

/// The writes that store one client's records in a copy, its indexes and outbox queues
/// derived from its ledger entries.
fn raw_writes(raw: RawClient) -> Result<Vec<Write>> {
    let id = raw.id;
    let mut writes = Vec::with_capacity(2 + raw.subscriptions.len() + 3 * raw.entries.len());
    writes.push(Write::Put(
        Table::Clients,
        id.as_bytes().to_vec(),
        raw.client,
    ));
    for (key, value) in raw.subscriptions {
        writes.push(Write::Put(Table::Subscriptions, key, value));
    }
    for (key, value) in raw.idempotency {
        writes.push(Write::Put(Table::Idempotency, key, value));
    }
    for (key, value) in raw.entries {
        let entry: LedgerEntry = decode(&value)?;
        queue_writes(id, entry.transaction.id, &entry, &mut writes);
        writes.push(Write::Put(Table::Transactions, key, value));
    }
    Ok(writes)
}

/// The index and outbox queue writes of one ledger entry (as [`SledStore::import_bundle`]
/// writes them).
fn queue_writes(
    client: ClientId,
    transaction: TransactionId,
    entry: &LedgerEntry,
    writes: &mut Vec<Write>,
) {
    let entry_key = owned_key(client, transaction.as_bytes());
    writes.push(Write::Put(
        Table::TransactionOwners,
        transaction.as_bytes().to_vec(),
        client.as_bytes().to_vec(),
    ));
    match entry.notice.as_ref().map(|n| (n.status, n.next_attempt_at)) {
        Some((NotificationStatus::Pending, Some(due))) => {
            writes.push(Write::mark(
                Table::OutboxDue,
                &due_key(due, client, transaction),
            ));
        }
        Some((NotificationStatus::Failed, _)) => {
            writes.push(Write::mark(Table::OutboxFailed, &entry_key));
        }
        _ => {}
    }
}

/// Every write that stores `bundle` (a client copied from another store) in an embedded store.
pub(crate) fn bundle_writes(bundle: &ClientBundle) -> Result<Vec<Write>> {
    let id = bundle.client.id;
    let mut writes = vec![Write::put(Table::Clients, id.as_bytes(), &bundle.client)?];
    for subscription in &bundle.subscriptions {
        let key = super::subscription_key(id, subscription.fund_id);
        writes.push(Write::put(Table::Subscriptions, &key, subscription)?);
    }
    for entry in &bundle.entries {
        let tx = &entry.transaction;
        let entry_key = owned_key(id, tx.id.as_bytes());
        writes.push(Write::put(Table::Transactions, &entry_key, entry)?);
        queue_writes(id, tx.id, entry, &mut writes);
    }
    for (key, record) in &bundle.idempotency {
        writes.push(Write::put(
            Table::Idempotency,
            &super::idempotency_key(id, key),
            record,
        )?);
    }
    Ok(writes)
}

/// Refuses a destination that exists (a file, a directory, even an empty one, or a link).
fn refuse_existing(dest: &Path) -> Result<()> {
    match fs::symlink_metadata(dest) {
        Ok(_) => Err(Error::DestinationExists {
            field: "dest",
            path: dest.display().to_string(),
        }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::storage(format!(
            "cannot write a backup to {}: {err}",
            dest.display()
        ))),
    }
}

/// A STORAGE_ERROR of a backup to `dest`, saying where.
fn in_backup(dest: &Path, err: Error) -> Error {
    match err {
        Error::Storage { detail } => Error::storage(format!(
            "the backup to {} failed, nothing was written there: {detail}",
            dest.display()
        )),
        other => other,
    }
}

/// The directory a backup is written into before it is renamed to its destination; removed,
/// with whatever it holds, unless the rename happened.
struct Partial {
    path: PathBuf,
    renamed: bool,
}

impl Partial {
    /// Creates `.<name>.partial-<pid>-<n>` beside `dest`.
    fn create(dest: &Path) -> Result<Partial> {
        let Some(name) = dest.file_name() else {
            return Err(Error::storage(format!(
                "cannot write a backup to {}: it names no directory",
                dest.display()
            )));
        };
        let parent = match dest.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let mut partial_name = std::ffi::OsString::from(".");
        partial_name.push(name);
        partial_name.push(format!(
            ".partial-{}-{}",
            std::process::id(),
            NEXT_PARTIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let path = parent.join(partial_name);
        fs::create_dir(&path).map_err(|err| {
            Error::storage(format!(
                "cannot write a backup in {}: {err}",
                parent.display()
            ))
        })?;
        Ok(Partial {
            path,
            renamed: false,
        })
    }

    /// Moves the finished copy to `dest` and makes the rename durable. A path that appeared at
    /// `dest` since the backup began is not replaced (rename refuses a file or a non-empty
    /// directory; an empty directory is checked for first).
    fn rename_to(mut self, dest: &Path) -> Result<()> {
        refuse_existing(dest)?;
        fs::rename(&self.path, dest).map_err(|err| {
            Error::storage(format!(
                "cannot move the finished backup to {}: {err}",
                dest.display()
            ))
        })?;
        self.renamed = true;
        sync_parent(dest).map_err(|err| {
            Error::storage(format!(
                "the backup is at {}, but its directory could not be synced: {err}",
                dest.display()
            ))
        })
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.renamed {
            // A failed backup's partial copy; if it cannot be removed, its hidden name says what
            // it is, and nothing at the destination was touched.
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Makes a rename in `path`'s directory durable (on Unix, an fsync of the directory).
fn sync_parent(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        fs::File::open(parent)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}
