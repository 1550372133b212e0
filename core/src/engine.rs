//! The engine: every operation of docs/operations.md, each money movement one atomic store
//! transaction.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rust_decimal::Decimal;

use crate::client::{Channel, Client, validate_contact};
use crate::config::{Config, Durability};
use crate::error::{Error, Invalid, Result};
use crate::fund::Fund;
use crate::ids::{ClientId, FundId, NotificationId, TransactionId};
use crate::ledger::{
    IdempotencyRecord, LedgerEntry, Request, Subscription, Transaction, TransactionKind,
    validate_idempotency_key,
};
use crate::locale::Locale;
use crate::money::{to_minor_units, validate_amount};
use crate::outbox::{
    DeliveryError, DispatchReport, Notice, Notification, NotificationStatus, Notifier, backoff,
};
use crate::store::{
    Store, StoreOptions, Table, Write, decode, due_key, due_prefix, fund_key, idempotency_key,
    owned_key, parse_due_key, subscription_key,
};
use crate::time::{IdGenerator, Timestamp};

/// Largest page of history a caller may ask for.
pub const MAX_PAGE: usize = 200;

/// Operations on one client are serialized through one of these locks (chosen by client id),
/// so concurrent callers never race on a balance and ids commit in time order.
const CLIENT_LOCK_STRIPES: usize = 64;

/// The fund-subscription engine. `Send + Sync`; clones share one store.
///
/// A store directory may be opened by one engine at a time; it is released when the last
/// clone of the engine is dropped.
///
/// An engine belongs to the process that opened it: after a `fork()`, every operation in the
/// child fails at once with [`Error::OpenedInAnotherProcess`] (the store's threads stay in the
/// parent). Open the engine after the fork, in each child.
#[derive(Clone, Debug)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: Config,
    initial_balance: Decimal,
    funds: BTreeMap<FundId, Fund>,
    ids: IdGenerator,
    client_locks: Vec<Mutex<()>>,
    dispatch_lock: Mutex<()>,
    /// The id of the process that opened the store (see [`Engine::check_process`]).
    opened_in: u32,
}

impl Engine {
    /// Opens the store in directory `path`, creating and seeding it on first use.
    ///
    /// If another engine holds the directory, this waits up to 2 seconds for it to close, then
    /// fails with [`Error::StoreInUse`] (`STORAGE_ERROR`): one process per embedded store.
    pub fn open(path: impl AsRef<Path>, config: Config) -> Result<Engine> {
        Self::open_store(Some(path.as_ref()), config)
    }

    /// Opens a fresh store in a temporary directory, removed when the engine is dropped.
    pub fn open_temporary(config: Config) -> Result<Engine> {
        Self::open_store(None, config)
    }

    fn open_store(path: Option<&Path>, config: Config) -> Result<Engine> {
        validate_config(&config)?;
        let flush_every_ms = match config.durability {
            // The background flush still runs so that `flush()` has little left to do.
            Durability::EveryCommit => Some(500),
            Durability::Periodic { interval_ms } => Some(interval_ms.max(1)),
        };
        let options = StoreOptions {
            flush_every_ms,
            cache_capacity_bytes: config.cache_capacity_bytes,
        };
        let store = Store::open(path, &options)?;
        store.check_format()?;
        store.recover()?;
        let (initial_balance, funds) = seed(&store, &config)?;
        store.flush()?;
        let ids = IdGenerator::above(store.largest_id()?);
        Ok(Engine {
            inner: Arc::new(Inner {
                store,
                initial_balance,
                funds,
                ids,
                client_locks: (0..CLIENT_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
                dispatch_lock: Mutex::new(()),
                opened_in: std::process::id(),
                config,
            }),
        })
    }

    /// Fails with [`Error::OpenedInAnotherProcess`] (`STORAGE_ERROR`) when called in a process
    /// other than the one that opened the engine, i.e. in a child after `fork()`, where the
    /// store's threads do not exist and any store call would hang. Every fallible operation
    /// checks this first; bindings may call it before their own infallible reads.
    pub fn check_process(&self) -> Result<()> {
        let called_from = std::process::id();
        if called_from == self.inner.opened_in {
            Ok(())
        } else {
            Err(Error::OpenedInAnotherProcess {
                opened_in: self.inner.opened_in,
                called_from,
            })
        }
    }

    /// The locale of messages and notifications.
    pub fn locale(&self) -> Locale {
        self.inner.config.locale
    }

    /// The balance new clients start with (fixed when the store was created).
    pub fn initial_balance(&self) -> Decimal {
        self.inner.initial_balance
    }

    /// The engine's configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The fund catalogue, by id.
    pub fn funds(&self) -> Vec<Fund> {
        self.inner.funds.values().cloned().collect()
    }

    /// One fund.
    pub fn fund(&self, id: FundId) -> Result<Fund> {
        self.check_process()?;
        self.inner
            .funds
            .get(&id)
            .cloned()
            .ok_or(Error::FundNotFound { id })
    }

    /// Registers a client with the initial balance.
    pub fn register_client(
        &self,
        name: &str,
        email: &str,
        phone: &str,
        channel: Channel,
    ) -> Result<Client> {
        self.check_process()?;
        let contact = validate_contact(name, email, phone)?;
        let now = self.now();
        let client = Client {
            id: ClientId(self.inner.ids.next(now)),
            name: contact.name,
            email: contact.email,
            phone: contact.phone,
            channel,
            balance: self.inner.initial_balance,
            created_at: now,
        };
        let write = Write::put(Table::Clients, client.id.as_bytes(), &client)?;
        self.inner.store.commit(&[write])?;
        self.commit_durably()?;
        Ok(client)
    }

    /// One client, with its current balance.
    pub fn client(&self, id: ClientId) -> Result<Client> {
        self.check_process()?;
        let _consistent = self.client_lock(id);
        self.load_client(id)
    }

    fn load_client(&self, id: ClientId) -> Result<Client> {
        match self.inner.store.clients.get(id.as_bytes())? {
            Some(bytes) => decode(&bytes),
            None => Err(Error::ClientNotFound { id: id.to_string() }),
        }
    }

    /// Subscribes a client to a fund for `amount` (the fund's minimum when `None`).
    ///
    /// Balance, subscription, transaction, idempotency record and notification commit together
    /// or not at all. With an `idempotency_key` already used for the same request, the original
    /// transaction is returned and nothing changes.
    pub fn subscribe(
        &self,
        client_id: ClientId,
        fund_id: FundId,
        amount: Option<Decimal>,
        idempotency_key: Option<&str>,
    ) -> Result<Transaction> {
        self.check_process()?;
        let amount = amount.map(validate_amount).transpose()?;
        let key = idempotency_key.map(validate_idempotency_key).transpose()?;
        let fund = self.fund(fund_id)?;
        let request = Request::Subscribe { fund_id, amount };
        let amount = amount.unwrap_or(fund.minimum);
        self.move_money(client_id, &fund, request, key, |client, subscription| {
            if !fund.active {
                return Err(Error::FundInactive {
                    fund_name: fund.name.clone(),
                });
            }
            if amount < fund.minimum {
                return Err(Error::BelowMinimum {
                    fund_name: fund.name.clone(),
                    minimum: fund.minimum,
                });
            }
            if subscription.is_some() {
                return Err(Error::AlreadySubscribed {
                    fund_name: fund.name.clone(),
                });
            }
            if client.balance < amount {
                return Err(Error::InsufficientBalance {
                    fund_name: fund.name.clone(),
                });
            }
            Ok((TransactionKind::Subscription, amount))
        })
    }

    /// Cancels a client's active subscription to a fund, refunding the subscribed amount.
    ///
    /// Same atomicity and idempotency as [`Engine::subscribe`].
    pub fn cancel(
        &self,
        client_id: ClientId,
        fund_id: FundId,
        idempotency_key: Option<&str>,
    ) -> Result<Transaction> {
        self.check_process()?;
        let key = idempotency_key.map(validate_idempotency_key).transpose()?;
        let fund = self.fund(fund_id)?;
        self.move_money(
            client_id,
            &fund,
            Request::Cancel { fund_id },
            key,
            |_, subscription| match subscription {
                Some(subscription) => Ok((TransactionKind::Cancellation, subscription.amount)),
                None => Err(Error::NotSubscribed {
                    fund_name: fund.name.clone(),
                }),
            },
        )
    }

    /// The one write path for money: under the client's lock, reads the client and its
    /// subscription to `fund`, lets `decide` apply the business rule, then commits every record
    /// of the change at once.
    fn move_money(
        &self,
        client_id: ClientId,
        fund: &Fund,
        request: Request,
        key: Option<&str>,
        decide: impl Fn(&Client, Option<&Subscription>) -> Result<(TransactionKind, Decimal)>,
    ) -> Result<Transaction> {
        let client_guard = self.client_lock(client_id);
        let transaction = self.move_money_locked(client_id, fund, request, key, decide)?;
        drop(client_guard);
        // A replay is flushed too: its original may still be on its way to disk.
        self.commit_durably()?;
        Ok(transaction)
    }

    fn move_money_locked(
        &self,
        client_id: ClientId,
        fund: &Fund,
        request: Request,
        key: Option<&str>,
        decide: impl Fn(&Client, Option<&Subscription>) -> Result<(TransactionKind, Decimal)>,
    ) -> Result<Transaction> {
        let store = &self.inner.store;
        let mut client = self.load_client(client_id)?;
        let idem_key = key.map(|key| idempotency_key(client_id, key));
        if let Some(idem_key) = &idem_key
            && let Some(bytes) = store.idempotency.get(idem_key)?
        {
            let record: IdempotencyRecord = decode(&bytes)?;
            if record.request != request {
                return Err(Error::IdempotencyKeyReused {
                    key: key.unwrap_or_default().to_owned(),
                });
            }
            let original = store
                .transactions
                .get(owned_key(client_id, record.transaction_id.as_bytes()))?;
            let original = original
                .ok_or_else(|| Error::storage("idempotency record without its transaction"))?;
            return LedgerEntry::transaction_in(&original);
        }
        let subscription_key = subscription_key(client_id, fund.id);
        let subscription: Option<Subscription> = store
            .subscriptions
            .get(subscription_key)?
            .map(|bytes| decode(&bytes))
            .transpose()?;
        let (kind, amount) = decide(&client, subscription.as_ref())?;

        // Ids come from the clock while the client's lock is held, so a client's transactions
        // are committed in id order.
        let now = self.now();
        let transaction_id = TransactionId(self.inner.ids.next(now));
        client.balance = to_minor_units(match kind {
            TransactionKind::Subscription => client.balance - amount,
            TransactionKind::Cancellation => client.balance + amount,
        });
        let transaction = Transaction {
            id: transaction_id,
            client_id,
            fund_id: fund.id,
            fund_name: fund.name.clone(),
            kind,
            amount,
            balance_after: client.balance,
            created_at: now,
            idempotency_key: key.map(str::to_owned),
        };
        let notice = (kind == TransactionKind::Subscription || self.inner.config.notify_on_cancel)
            .then(|| {
                let id = NotificationId(self.inner.ids.next(now));
                Notice::pending(id, &client, self.inner.config.locale, now)
            });
        let due = notice
            .is_some()
            .then(|| Write::mark(Table::OutboxDue, &due_key(now, client_id, transaction_id)));
        let entry = LedgerEntry {
            transaction,
            notice,
        };
        // The transaction is written before its owner index, so a lookup by id that finds the
        // owner always finds the transaction.
        let mut writes = vec![
            Write::put(Table::Clients, client_id.as_bytes(), &client)?,
            Write::put(
                Table::Transactions,
                &owned_key(client_id, transaction_id.as_bytes()),
                &entry,
            )?,
            Write::Put(
                Table::TransactionOwners,
                transaction_id.as_bytes().to_vec(),
                client_id.as_bytes().to_vec(),
            ),
        ];
        writes.push(match kind {
            TransactionKind::Subscription => {
                let opened = Subscription {
                    client_id,
                    fund_id: fund.id,
                    fund_name: fund.name.clone(),
                    amount,
                    transaction_id,
                    subscribed_at: now,
                };
                Write::put(Table::Subscriptions, &subscription_key, &opened)?
            }
            TransactionKind::Cancellation => Write::delete(Table::Subscriptions, &subscription_key),
        });
        if let Some(idem_key) = &idem_key {
            let record = IdempotencyRecord {
                request,
                transaction_id,
            };
            writes.push(Write::put(Table::Idempotency, idem_key, &record)?);
        }
        writes.extend(due);
        store.commit(&writes)?;
        Ok(entry.transaction)
    }

    /// A client's active subscriptions, by fund id.
    pub fn subscriptions(&self, client_id: ClientId) -> Result<Vec<Subscription>> {
        self.check_process()?;
        let _consistent = self.client_lock(client_id);
        self.ensure_client(client_id)?;
        self.inner
            .store
            .subscriptions
            .scan_prefix(client_id.as_bytes())
            .map(|entry| decode(&entry?.1))
            .collect()
    }

    /// A client's transactions, newest first: at most `limit` (1..=200), all older than the
    /// transaction `before` when given (an exclusive cursor).
    pub fn history(
        &self,
        client_id: ClientId,
        limit: usize,
        before: Option<TransactionId>,
    ) -> Result<Vec<Transaction>> {
        self.check_process()?;
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(Error::invalid("limit", Invalid::Limit));
        }
        let _consistent = self.client_lock(client_id);
        self.ensure_client(client_id)?;
        let start = owned_key(client_id, &[0; 16]);
        let end = owned_key(client_id, &before.map_or([0xff; 16], |id| *id.as_bytes()));
        let range = self.inner.store.transactions.range(start..end);
        let mut page = Vec::with_capacity(limit);
        // Without a cursor the range must include the all-0xff key; no UUIDv7 has it, so the
        // exclusive end loses nothing.
        for entry in range.rev().take(limit) {
            page.push(LedgerEntry::transaction_in(&entry?.1)?);
        }
        Ok(page)
    }

    /// One transaction by id.
    pub fn transaction(&self, id: TransactionId) -> Result<Transaction> {
        self.check_process()?;
        let store = &self.inner.store;
        let not_found = || Error::TransactionNotFound { id: id.to_string() };
        let owner = store
            .transaction_owners
            .get(id.as_bytes())?
            .ok_or_else(not_found)?;
        let owner = ClientId::from_slice(&owner)
            .ok_or_else(|| Error::storage("corrupt transaction owner"))?;
        let bytes = store
            .transactions
            .get(owned_key(owner, id.as_bytes()))?
            .ok_or_else(not_found)?;
        LedgerEntry::transaction_in(&bytes)
    }

    /// A client's outbox entries, newest first, whatever their status.
    pub fn notifications(&self, client_id: ClientId) -> Result<Vec<Notification>> {
        self.check_process()?;
        let _consistent = self.client_lock(client_id);
        self.ensure_client(client_id)?;
        let entries = self
            .inner
            .store
            .transactions
            .scan_prefix(client_id.as_bytes());
        let mut notifications = Vec::new();
        for entry in entries.rev() {
            let entry: LedgerEntry = decode(&entry?.1)?;
            if let Some(notice) = &entry.notice {
                notifications.push(notice.to_notification(&entry.transaction));
            }
        }
        Ok(notifications)
    }

    /// Delivers up to `limit` due pending notifications through `notifier`, after their
    /// transactions committed. Retryable failures are retried later with exponential backoff;
    /// a permanent failure or the last allowed attempt marks the entry `failed`.
    ///
    /// Delivery is at-least-once: a crash between a send and the recording of its outcome sends
    /// that notification again. One dispatch runs at a time per engine.
    pub fn dispatch_notifications(
        &self,
        notifier: &dyn Notifier,
        limit: usize,
    ) -> Result<DispatchReport> {
        self.check_process()?;
        let _dispatching = lock(&self.inner.dispatch_lock);
        let store = &self.inner.store;
        let now = self.now();
        let mut due_upper = due_prefix(now).to_vec();
        due_upper.push(0xff);
        let due: Vec<sled::IVec> = store
            .outbox_due
            .range(..due_upper)
            .keys()
            .take(limit)
            .collect::<std::result::Result<_, _>>()?;
        let mut report = DispatchReport::default();
        for due_key_bytes in due {
            let found = match parse_due_key(&due_key_bytes) {
                Some((client_id, transaction_id)) => {
                    let entry_key = owned_key(client_id, transaction_id.as_bytes());
                    self.stored_notice(&entry_key)?
                        .filter(|(_, notice)| notice.status == NotificationStatus::Pending)
                        .map(|(transaction, notice)| (entry_key, transaction, notice))
                }
                None => None,
            };
            // A due key whose notification is gone or no longer pending is stale.
            let Some((entry_key, transaction, mut notice)) = found else {
                store.outbox_due.remove(&due_key_bytes)?;
                continue;
            };
            let notification = notice.to_notification(&transaction);
            let outcome = catch_unwind(AssertUnwindSafe(|| notifier.send(&notification)))
                .unwrap_or_else(|_| Err(DeliveryError::Retryable("the notifier panicked".into())));
            let finished_at = self.now();
            notice.attempts = notice.attempts.saturating_add(1);
            notice.next_attempt_at = None;
            match outcome {
                Ok(()) => {
                    notice.status = NotificationStatus::Delivered;
                    notice.delivered_at = Some(finished_at);
                    report.delivered += 1;
                }
                Err(DeliveryError::Retryable(reason))
                    if notice.attempts < self.inner.config.max_attempts =>
                {
                    let delay = backoff(
                        notice.attempts,
                        self.inner.config.retry_base_delay,
                        self.inner.config.retry_max_delay,
                    );
                    notice.next_attempt_at = Some(finished_at.plus(delay));
                    notice.last_error = Some(reason);
                    report.retried += 1;
                }
                Err(DeliveryError::Retryable(reason) | DeliveryError::Permanent(reason)) => {
                    notice.status = NotificationStatus::Failed;
                    notice.last_error = Some(reason);
                    report.failed += 1;
                }
            }
            let entry = LedgerEntry {
                transaction,
                notice: Some(notice),
            };
            self.record_outcome(&due_key_bytes, entry_key, &entry)?;
        }
        self.commit_durably()?;
        Ok(report)
    }

    /// Writes a delivery outcome: the entry, its place in the due queue and the failed set.
    /// Only dispatch (one at a time) rewrites an existing entry, so no client lock is needed.
    fn record_outcome(
        &self,
        old_due_key: &[u8],
        entry_key: [u8; 32],
        entry: &LedgerEntry,
    ) -> Result<()> {
        let mut writes = vec![
            Write::put(Table::Transactions, &entry_key, entry)?,
            Write::delete(Table::OutboxDue, old_due_key),
        ];
        if let Some(notice) = &entry.notice {
            let tx = &entry.transaction;
            if let Some(next) = notice.next_attempt_at {
                writes.push(Write::mark(
                    Table::OutboxDue,
                    &due_key(next, tx.client_id, tx.id),
                ));
            }
            if notice.status == NotificationStatus::Failed {
                writes.push(Write::mark(Table::OutboxFailed, &entry_key));
            }
        }
        self.inner.store.commit(&writes)
    }

    /// The transaction stored under `entry_key` and its notification, if it has one.
    fn stored_notice(&self, entry_key: &[u8]) -> Result<Option<(Transaction, Notice)>> {
        let Some(bytes) = self.inner.store.transactions.get(entry_key)? else {
            return Ok(None);
        };
        let entry: LedgerEntry = decode(&bytes)?;
        Ok(entry.notice.map(|notice| (entry.transaction, notice)))
    }

    /// Puts up to `limit` failed notifications back in the queue, due now, with their attempt
    /// count reset. Returns how many were requeued.
    pub fn retry_failed_notifications(&self, limit: usize) -> Result<usize> {
        self.check_process()?;
        let _dispatching = lock(&self.inner.dispatch_lock);
        let store = &self.inner.store;
        let now = self.now();
        let failed: Vec<sled::IVec> = store
            .outbox_failed
            .iter()
            .keys()
            .take(limit)
            .collect::<std::result::Result<_, _>>()?;
        let mut requeued = 0;
        for entry_key in failed {
            let Some((transaction, mut notice)) = self.stored_notice(&entry_key)? else {
                store.outbox_failed.remove(&entry_key)?;
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
            store.commit(&[
                Write::put(Table::Transactions, &entry_key, &entry)?,
                Write::mark(Table::OutboxDue, &due),
                Write::delete(Table::OutboxFailed, &entry_key),
            ])?;
            requeued += 1;
        }
        self.commit_durably()?;
        Ok(requeued)
    }

    /// Makes everything acknowledged so far durable.
    pub fn flush(&self) -> Result<()> {
        self.check_process()?;
        self.inner.store.flush()
    }

    fn commit_durably(&self) -> Result<()> {
        match self.inner.config.durability {
            Durability::EveryCommit => self.inner.store.flush(),
            Durability::Periodic { .. } => Ok(()),
        }
    }

    fn ensure_client(&self, client_id: ClientId) -> Result<()> {
        if self
            .inner
            .store
            .clients
            .contains_key(client_id.as_bytes())?
        {
            Ok(())
        } else {
            Err(Error::ClientNotFound {
                id: client_id.to_string(),
            })
        }
    }

    fn client_lock(&self, client_id: ClientId) -> MutexGuard<'_, ()> {
        // The last byte of a UUIDv7 is random, so stripes fill evenly.
        let stripe = usize::from(client_id.as_bytes()[15]) % CLIENT_LOCK_STRIPES;
        lock(&self.inner.client_locks[stripe])
    }

    fn now(&self) -> Timestamp {
        self.inner.config.clock.now()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // In a forked child the store's threads do not exist, so closing the store would hang,
        // and writing it out would write into the parent's store. Forgetting one reference per
        // dropped handle keeps `Inner` (and the store) from ever being dropped in the child;
        // the parent keeps using and closes it.
        if std::process::id() != self.inner.opened_in {
            std::mem::forget(Arc::clone(&self.inner));
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Write everything out now, so the store is closed (and its lock free) soon after the
        // last clone of the engine is dropped. An error here has no one to report to; the log
        // is recovered on the next open either way.
        let _ = self.store.db.flush();
    }
}

/// Locks a mutex; a panic elsewhere while it was held cannot leave store data half-written
/// (sled transactions are atomic), so a poisoned lock is still safe to use.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn validate_config(config: &Config) -> Result<()> {
    let initial_ok = config.initial_balance >= Decimal::ZERO
        && (config.initial_balance.is_zero() || validate_amount(config.initial_balance).is_ok());
    if !initial_ok {
        return Err(Error::invalid("initial_balance", Invalid::Config));
    }
    if config.max_attempts == 0 || config.retry_base_delay > config.retry_max_delay {
        return Err(Error::invalid("max_attempts", Invalid::Config));
    }
    let mut ids = std::collections::BTreeSet::new();
    for fund in &config.funds {
        let valid = ids.insert(fund.id)
            && !fund.name.trim().is_empty()
            && validate_amount(fund.minimum).is_ok();
        if !valid {
            return Err(Error::invalid("funds", Invalid::Config));
        }
    }
    Ok(())
}

/// Writes the initial balance and the catalogue into a new store; reads them from an old one.
fn seed(store: &Store, config: &Config) -> Result<(Decimal, BTreeMap<FundId, Fund>)> {
    let initial_balance = match store.meta.get(b"initial_balance")? {
        Some(bytes) => decode(&bytes)?,
        None => {
            let initial = to_minor_units(config.initial_balance);
            let funds = config.funds.iter().map(|fund| {
                let fund = Fund {
                    minimum: to_minor_units(fund.minimum),
                    ..fund.clone()
                };
                Write::put(Table::Funds, &fund_key(fund.id), &fund)
            });
            let mut writes: Vec<Write> = funds.collect::<Result<_>>()?;
            writes.push(Write::put(Table::Meta, b"initial_balance", &initial)?);
            store.commit(&writes)?;
            initial
        }
    };
    let funds = store
        .funds
        .iter()
        .map(|entry| decode::<Fund>(&entry?.1).map(|fund| (fund.id, fund)))
        .collect::<Result<_>>()?;
    Ok((initial_balance, funds))
}
