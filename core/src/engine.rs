//! The engine: every operation of docs/operations.md, each change one atomic store
//! transaction.
//!
//! Each operation reads through the storage port, lets [`crate::rules`] decide, writes the
//! change through the port, then makes it durable: lock/read → decide → write → flush.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};

use rust_decimal::Decimal;

use crate::client::{Channel, Client, validate_contact};
use crate::config::{Config, Durability};
use crate::copy::StoreLocation;
use crate::error::{Error, Invalid, Result};
use crate::fund::Fund;
use crate::ids::{ClientId, FundId, NotificationId, TransactionId};
use crate::ledger::{Subscription, Transaction, TransactionKind};
use crate::locale::Locale;
use crate::money::{to_minor_units, validate_amount};
use crate::outbox::{DeliveryError, DispatchReport, Notification, Notifier, OutboxState};
use crate::page::{Page, check_limit};
use crate::rules::{self, Attempt, RetryPolicy};
use crate::store::sled::{SledStore, StoreOptions};
use crate::store::{
    Decision, IdempotencyRecord, LedgerEntry, MoneyMove, MoneyView, Notice, Request, Seed, Store,
    StoreStats,
};
use crate::time::{IdGenerator, Timestamp};

/// The fund-subscription engine. `Send + Sync`; clones share one store.
///
/// An embedded store directory may be opened by one engine at a time; it is released when the
/// last clone of the engine is dropped.
///
/// An engine belongs to the process that opened it: after a `fork()`, every operation in the
/// child fails at once with [`Error::OpenedInAnotherProcess`] (the store's threads and
/// connections stay in the parent). Open the engine after the fork, in each child. With an
/// embedded store the parent must not open one before forking at all: a child of such a
/// parent cannot open one either ([`Error::EmbeddedStoreForked`]).
#[derive(Clone, Debug)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) store: Box<dyn Store>,
    pub(crate) config: Config,
    initial_balance: Decimal,
    pub(crate) ids: IdGenerator,
    dispatch_lock: Mutex<()>,
    /// The id of the process that opened the store (see [`Engine::check_process`]).
    opened_in: u32,
}

impl Engine {
    /// Opens the embedded store in directory `path`, creating and seeding it on first use.
    ///
    /// If another engine holds the directory, this waits up to 2 seconds for it to close, then
    /// fails with [`Error::StoreInUse`] (`STORAGE_ERROR`): one process per embedded store.
    pub fn open(path: impl AsRef<Path>, config: Config) -> Result<Engine> {
        Self::open_embedded(Some(path.as_ref()), config)
    }

    /// Opens a fresh embedded store in a temporary directory, removed when the engine is
    /// dropped.
    pub fn open_temporary(config: Config) -> Result<Engine> {
        Self::open_embedded(None, config)
    }

    /// Connects to the PostgreSQL database at `url` (`postgresql://user@host:port/db`),
    /// creating or upgrading fundcore's tables and seeding a new database. Any number of
    /// engines, in any number of processes and hosts, may share one database.
    #[cfg(feature = "postgres")]
    pub fn connect(url: &str, config: Config) -> Result<Engine> {
        config.validate()?;
        let store = crate::store::postgres::PgStore::connect(url, &config)?;
        Self::with_store(Box::new(store), config)
    }

    /// Opens the store that exists at `location`, never creating one: an embedded store's
    /// directory must hold a store, and a database must hold fundcore's tables at this
    /// library's schema version (nothing is migrated). For operations tools (`fundcore
    /// outbox`), where a mistyped location must fail (STORAGE_ERROR) rather than start an empty
    /// store. An embedded store is opened (and locked) as by [`Engine::open`].
    pub fn open_existing(location: &StoreLocation, config: Config) -> Result<Engine> {
        config.validate()?;
        let store = location.open_existing(&config)?;
        Self::with_store(store, config)
    }

    fn open_embedded(path: Option<&Path>, config: Config) -> Result<Engine> {
        config.validate()?;
        let store = SledStore::open_recovered(path, &store_options(&config))?;
        Self::with_store(Box::new(store), config)
    }

    fn with_store(store: Box<dyn Store>, config: Config) -> Result<Engine> {
        let seed = Seed {
            initial_balance: to_minor_units(config.initial_balance),
            funds: config
                .funds
                .iter()
                .map(|fund| Fund {
                    minimum: to_minor_units(fund.minimum),
                    ..fund.clone()
                })
                .collect(),
        };
        let stored = store.seed(&seed)?;
        let ids = IdGenerator::above(store.largest_id()?);
        Ok(Engine {
            inner: Arc::new(Inner {
                store,
                initial_balance: stored.initial_balance,
                ids,
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

    /// The fund catalogue, by id, as the store has it now (administrators change it; on a
    /// shared database, from any process).
    pub fn funds(&self) -> Result<Vec<Fund>> {
        self.check_process()?;
        self.inner.store.funds()
    }

    /// One fund.
    pub fn fund(&self, id: FundId) -> Result<Fund> {
        self.check_process()?;
        self.inner.store.fund(id)?.ok_or_else(|| fund_not_found(id))
    }

    /// Registers a client with the initial balance.
    pub fn register_client(
        &self,
        name: &str,
        email: &str,
        phone: &str,
        channel: Channel,
    ) -> Result<Client> {
        crate::observe::operation("register_client", None, None, || {
            self.check_process()?;
            let now = self.now();
            let client = self.new_client(
                ClientId(self.inner.ids.next(now)),
                now,
                name,
                email,
                phone,
                channel,
            )?;
            self.inner.store.insert_client(&client)?;
            self.commit_durably()?;
            Ok(client)
        })
    }

    /// A client not yet stored: validated contact data, the initial balance.
    fn new_client(
        &self,
        id: ClientId,
        created_at: Timestamp,
        name: &str,
        email: &str,
        phone: &str,
        channel: Channel,
    ) -> Result<Client> {
        let contact = validate_contact(name, email, phone)?;
        Ok(Client {
            id,
            name: contact.name,
            email: contact.email,
            phone: contact.phone,
            channel,
            balance: self.inner.initial_balance,
            created_at,
        })
    }

    /// Registers a client under an id the caller chose, a UUIDv7 it made for this registration
    /// ([`ClientId::generate`]): the id is the registration's idempotency key. With an id already
    /// registered, the client is returned as the store holds it and nothing changes, so a
    /// caller that did not learn the outcome (a lost reply, [`ErrorCode::OutcomeUnknown`], a
    /// crash) repeats the call, and a caller that keeps something of its own beside the client
    /// (an account, a sign-in) can write it first, under the id, and then register.
    ///
    /// An id that is not a UUIDv7 is a `VALIDATION_ERROR` on `client_id`.
    ///
    /// [`ErrorCode::OutcomeUnknown`]: crate::ErrorCode::OutcomeUnknown
    pub fn register_client_with_id(
        &self,
        id: ClientId,
        name: &str,
        email: &str,
        phone: &str,
        channel: Channel,
    ) -> Result<Client> {
        crate::observe::operation("register_client", Some(&id), None, || {
            self.check_process()?;
            if id.0.get_version_num() != 7 {
                return Err(Error::invalid("client_id", Invalid::Id));
            }
            let client = self.new_client(id, self.now(), name, email, phone, channel)?;
            // Both stores leave a client whose id exists as it is, so the insert is safe to
            // repeat; what the store holds afterwards (this client or the one registered before
            // under the id) is the answer.
            self.inner.store.insert_client(&client)?;
            self.commit_durably()?;
            self.inner
                .store
                .client(id)?
                .ok_or_else(|| Error::storage("a client inserted is not in the store"))
        })
    }

    /// One client, with its current balance.
    pub fn client(&self, id: ClientId) -> Result<Client> {
        crate::observe::operation("client", Some(&id), None, || {
            self.check_process()?;
            self.inner
                .store
                .client(id)?
                .ok_or_else(|| client_not_found(id))
        })
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
        crate::observe::operation("subscribe", Some(&client_id), Some(fund_id), || {
            self.check_process()?;
            let amount = amount.map(validate_amount).transpose()?;
            let key = idempotency_key
                .map(rules::validate_idempotency_key)
                .transpose()?;
            let request = Request::Subscribe { fund_id, amount };
            self.move_money(client_id, fund_id, request, key, |view, fund| {
                let amount = amount.unwrap_or(fund.minimum);
                rules::check_subscribe(fund, amount, &view.client, view.subscription.as_ref())?;
                Ok((TransactionKind::Subscription, amount))
            })
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
        crate::observe::operation("cancel", Some(&client_id), Some(fund_id), || {
            self.check_process()?;
            let key = idempotency_key
                .map(rules::validate_idempotency_key)
                .transpose()?;
            let request = Request::Cancel { fund_id };
            self.move_money(client_id, fund_id, request, key, |view, fund| {
                let refund = rules::check_cancel(fund, view.subscription.as_ref())?;
                Ok((TransactionKind::Cancellation, refund))
            })
        })
    }

    /// The one write path for money: the store reads the client, the fund as the catalogue has
    /// it now, the client's subscription to it and what `key` names; a replay answers with the
    /// original; otherwise `rule` decides and every record of the change is committed at once.
    fn move_money(
        &self,
        client_id: ClientId,
        fund_id: FundId,
        request: Request,
        key: Option<&str>,
        rule: impl Fn(&MoneyView, &Fund) -> Result<(TransactionKind, Decimal)>,
    ) -> Result<Transaction> {
        let mut decide = |view: MoneyView| -> Result<Decision> {
            // The fund is named first, before the key: an unknown fund is FUND_NOT_FOUND even
            // with a key used before.
            let fund = view.fund.clone().ok_or_else(|| fund_not_found(fund_id))?;
            if let Some((original_request, original)) = view.replay {
                return if original_request == request {
                    Ok(Decision::Replay(original))
                } else {
                    Err(Error::IdempotencyKeyReused {
                        key: key.unwrap_or_default().to_owned(),
                    })
                };
            }
            let (kind, amount) = rule(&view, &fund)?;
            Ok(Decision::Commit(Box::new(
                self.money_move(view, &fund, kind, amount, &request, key),
            )))
        };
        let Some(transaction) =
            self.inner
                .store
                .move_money(client_id, fund_id, key, &mut decide)?
        else {
            // An unknown fund is named first, as when both ids are unknown the fund is checked
            // first (an extra read on this error path only).
            return Err(match self.inner.store.fund(fund_id)? {
                Some(_) => client_not_found(client_id),
                None => fund_not_found(fund_id),
            });
        };
        // A replay is flushed too: its original may still be on its way to disk.
        self.commit_durably()?;
        Ok(transaction)
    }

    /// The records of a decided subscribe or cancel.
    fn money_move(
        &self,
        view: MoneyView,
        fund: &Fund,
        kind: TransactionKind,
        amount: Decimal,
        request: &Request,
        key: Option<&str>,
    ) -> MoneyMove {
        let MoneyView {
            mut client,
            newest_transaction,
            ..
        } = view;
        // Ids come from the clock while the client is locked and above its newest transaction,
        // so a client's transactions are committed in id order.
        let now = self.now();
        let floor = newest_transaction.map_or(uuid::Uuid::nil(), |id| id.0);
        let transaction_id = TransactionId(self.inner.ids.next_above(now, floor));
        client.balance = rules::balance_after(client.balance, kind, amount);
        let transaction = Transaction {
            id: transaction_id,
            client_id: client.id,
            fund_id: fund.id,
            fund_name: fund.name.clone(),
            kind,
            amount,
            balance_after: client.balance,
            created_at: now,
            idempotency_key: key.map(str::to_owned),
        };
        let notify = kind == TransactionKind::Subscription || self.inner.config.notify_on_cancel;
        let notice = notify.then(|| {
            let id = NotificationId(self.inner.ids.next(now));
            Notice::pending(id, &client, self.inner.config.locale, now)
        });
        let opened = (kind == TransactionKind::Subscription).then(|| Subscription {
            client_id: client.id,
            fund_id: fund.id,
            fund_name: fund.name.clone(),
            amount,
            transaction_id,
            subscribed_at: now,
        });
        let idempotency = key.map(|_| IdempotencyRecord {
            request: request.clone(),
            transaction_id,
        });
        MoneyMove {
            client,
            entry: LedgerEntry {
                transaction,
                notice,
            },
            opened,
            idempotency,
        }
    }

    /// A client's active subscriptions, by fund id.
    pub fn subscriptions(&self, client_id: ClientId) -> Result<Vec<Subscription>> {
        crate::observe::operation("subscriptions", Some(&client_id), None, || {
            self.check_process()?;
            self.inner
                .store
                .subscriptions(client_id)?
                .ok_or_else(|| client_not_found(client_id))
        })
    }

    /// A client's transactions, newest first: at most `limit` (1..=[`MAX_PAGE`](crate::MAX_PAGE)), all older
    /// than the transaction `before` when given (an exclusive cursor).
    pub fn history(
        &self,
        client_id: ClientId,
        limit: usize,
        before: Option<TransactionId>,
    ) -> Result<Vec<Transaction>> {
        self.history_page(client_id, limit, before)
            .map(|page| page.items)
    }

    /// A page of a client's history, newest first, as [`Engine::history`], with the cursor of
    /// the following page (`None` on the last page, also when it is exactly full).
    pub fn history_page(
        &self,
        client_id: ClientId,
        limit: usize,
        before: Option<TransactionId>,
    ) -> Result<Page<Transaction, TransactionId>> {
        crate::observe::operation("history", Some(&client_id), None, || {
            self.check_process()?;
            check_limit(limit)?;
            // One row more than asked says whether a following page exists.
            let rows = self
                .inner
                .store
                .history(client_id, limit + 1, before)?
                .ok_or_else(|| client_not_found(client_id))?;
            Ok(Page::from_rows(rows, limit, |tx| tx.id))
        })
    }

    /// One transaction by id.
    pub fn transaction(&self, id: TransactionId) -> Result<Transaction> {
        crate::observe::operation("transaction", None, None, || {
            self.check_process()?;
            self.inner
                .store
                .transaction(id)?
                .ok_or_else(|| Error::TransactionNotFound { id: id.to_string() })
        })
    }

    /// A client's outbox entries, newest first, whatever their status.
    pub fn notifications(&self, client_id: ClientId) -> Result<Vec<Notification>> {
        crate::observe::operation("notifications", Some(&client_id), None, || {
            self.check_process()?;
            let entries = self
                .inner
                .store
                .notifications(client_id)?
                .ok_or_else(|| client_not_found(client_id))?;
            Ok(entries
                .iter()
                .filter_map(|entry| {
                    Some(entry.notice.as_ref()?.to_notification(&entry.transaction))
                })
                .collect())
        })
    }

    /// Delivers up to `limit` due pending notifications through `notifier`, after their
    /// transactions committed. Retryable failures are retried later with exponential backoff;
    /// a permanent failure or the last allowed attempt marks the entry `failed`.
    ///
    /// Delivery is at-least-once: a crash between a send and the recording of its outcome sends
    /// that notification again. One dispatch runs at a time per engine; on a shared database,
    /// the dispatchers of several engines claim different entries.
    pub fn dispatch_notifications(
        &self,
        notifier: &dyn Notifier,
        limit: usize,
    ) -> Result<DispatchReport> {
        crate::observe::operation("dispatch_notifications", None, None, || {
            self.check_process()?;
            let _dispatching = self.dispatching();
            let config = &self.inner.config;
            let policy = RetryPolicy {
                max_attempts: config.max_attempts,
                base_delay: config.retry_base_delay,
                max_delay: config.retry_max_delay,
            };
            let claimed = self
                .inner
                .store
                .claim_due(self.now(), limit, config.dispatch_lease)?;
            let mut report = DispatchReport::default();
            for claim in claimed {
                let notification = claim.notice.to_notification(&claim.transaction);
                let outcome = catch_unwind(AssertUnwindSafe(|| notifier.send(&notification)))
                    .unwrap_or_else(|_| {
                        Err(DeliveryError::Retryable("the notifier panicked".into()))
                    });
                let (notice, attempt) =
                    rules::after_attempt(claim.notice.clone(), outcome, self.now(), policy);
                let (count, outcome) = match attempt {
                    Attempt::Delivered => (&mut report.delivered, "delivered"),
                    Attempt::Retried => (&mut report.retried, "retried"),
                    Attempt::Failed => (&mut report.failed, "failed"),
                };
                *count += 1;
                crate::observe::delivery(outcome);
                self.inner.store.settle(&claim, &notice)?;
            }
            self.commit_durably()?;
            Ok(report)
        })
    }

    /// Puts up to `limit` failed notifications back in the queue, due now, with their attempt
    /// count reset. Returns how many were requeued.
    pub fn retry_failed_notifications(&self, limit: usize) -> Result<usize> {
        crate::observe::operation("retry_failed_notifications", None, None, || {
            self.check_process()?;
            let _dispatching = self.dispatching();
            let requeued = self.inner.store.requeue_failed(self.now(), limit)?;
            self.commit_durably()?;
            Ok(requeued)
        })
    }

    /// How the outbox stands: pending, failed and delivered entries, and when the oldest
    /// pending one was written and how long it has waited (by the engine's clock). On
    /// PostgreSQL, one statement over the outbox of every process; on the embedded store, read
    /// from its queues (the delivered count is kept up to date after one scan of the ledger,
    /// the first time it is asked for).
    pub fn outbox_state(&self) -> Result<OutboxState> {
        self.check_process()?;
        let mut state = self.inner.store.outbox_state()?;
        let now = self.now();
        state.oldest_pending_age = state.oldest_pending_at.map(|at| {
            let micros = now.unix_micros().saturating_sub(at.unix_micros()).max(0);
            Duration::from_micros(micros.unsigned_abs())
        });
        Ok(state)
    }

    /// Counters of the store's work (round trips and retries on PostgreSQL).
    pub fn store_stats(&self) -> StoreStats {
        self.inner.store.stats()
    }

    /// Makes everything acknowledged so far durable.
    pub fn flush(&self) -> Result<()> {
        self.check_process()?;
        self.inner.store.flush()
    }

    /// Writes a consistent copy of the embedded store into the new directory `dest` while the
    /// engine goes on serving calls; the copy opens as a store of its own
    /// ([`Engine::open`]`(dest, …)`) and passes [`verify_store`](crate::verify_store).
    ///
    /// - Every change acknowledged before the call began is in the copy, and every change is
    ///   wholly in it or wholly out of it (a subscribe or cancel with its balance, subscription,
    ///   transaction, idempotency record and outbox entry; a delivery with its queue).
    /// - The copy is made client by client, each under the lock its changes commit under (sled
    ///   0.34 has no snapshots): a subscribe or cancel waits at most for the copy of one client,
    ///   never for the whole backup. Administrative changes (`create_fund`, `update_fund`,
    ///   `update_client`) wait until the backup ends, which keeps the catalogue and the audit
    ///   trail consistent with the clients. Dispatch goes on; the copy's outbox queues are
    ///   written from its ledger entries.
    /// - It is written into a hidden directory beside `dest` (`.<name>.partial-…`), flushed and
    ///   renamed to `dest` at the end: a backup that fails leaves nothing at `dest`.
    ///
    /// Errors: `dest` exists (a file, or a directory even if empty) → [`Error::DestinationExists`]
    /// (`VALIDATION_ERROR` on `dest`), and nothing is touched; a parent directory that cannot be
    /// written, or any I/O failure → `STORAGE_ERROR` naming the path. A PostgreSQL store
    /// refuses with `STORAGE_ERROR`: it is backed up with `pg_dump` (docs/stores.md).
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<()> {
        let dest = dest.as_ref();
        crate::observe::operation("backup", None, None, || {
            self.check_process()?;
            self.inner.store.backup(dest)
        })
    }

    pub(crate) fn commit_durably(&self) -> Result<()> {
        match self.inner.config.durability {
            _ if self.inner.store.commits_are_durable() => Ok(()),
            Durability::EveryCommit => self.inner.store.flush(),
            Durability::Periodic { .. } => Ok(()),
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.inner.config.clock.now()
    }

    /// The engine's one dispatch at a time.
    fn dispatching(&self) -> MutexGuard<'_, ()> {
        self.inner.dispatch_lock.lock()
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

/// How the embedded store is opened for `config`.
pub(crate) fn store_options(config: &Config) -> StoreOptions {
    let flush_every_ms = match config.durability {
        // The background flush still runs so that `flush()` has little left to do.
        Durability::EveryCommit => Some(Config::DEFAULT_FLUSH_INTERVAL_MS),
        Durability::Periodic { interval_ms } => Some(interval_ms.max(1)),
    };
    StoreOptions {
        flush_every_ms,
        cache_capacity_bytes: config.cache_capacity_bytes,
    }
}

pub(crate) fn client_not_found(id: ClientId) -> Error {
    Error::ClientNotFound { id: id.to_string() }
}

pub(crate) fn fund_not_found(id: FundId) -> Error {
    Error::FundNotFound { id: id.to_string() }
}
