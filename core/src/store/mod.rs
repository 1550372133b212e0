//! The storage port: what the engine asks of a store, and the records it keeps.
//!
//! Every business rule lives in the engine. A store reads records, runs the engine's decision
//! under the client's lock, commits the resulting change atomically, and queues the outbox.
//! Two stores implement the port: the embedded [`sled`] store and, behind the `postgres`
//! feature, [`postgres`].

use std::time::Duration;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::client::{Channel, Client};
use crate::error::Result;
use crate::fund::Fund;
use crate::ids::{AuditEventId, ClientId, FundId, NotificationId, TransactionId};
use crate::ledger::{Subscription, Transaction};
use crate::locale::Locale;
use crate::outbox::{Notification, NotificationStatus, OutboxState};
use crate::texts::render_notification;
use crate::time::Timestamp;

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod sled;

/// A transaction as stored, with the state of the notification about it (none for a
/// cancellation when those are not notified).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LedgerEntry {
    /// First, so a store can read the transaction alone.
    pub transaction: Transaction,
    pub notice: Option<Notice>,
}

/// What a store keeps of a notification: its delivery state and what rendering needs. Subject
/// and body are rendered when the notification is read, so no store holds a second copy of
/// every transaction as text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Notice {
    pub id: NotificationId,
    pub channel: Channel,
    pub recipient: String,
    pub client_name: String,
    pub locale: Locale,
    pub status: NotificationStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
    pub next_attempt_at: Option<Timestamp>,
}

impl Notice {
    /// A notification to `client` about a transaction committing at `at`, due at once.
    pub(crate) fn pending(
        id: NotificationId,
        client: &Client,
        locale: Locale,
        at: Timestamp,
    ) -> Notice {
        Notice {
            id,
            channel: client.channel,
            recipient: client.recipient().to_owned(),
            client_name: client.name.clone(),
            locale,
            status: NotificationStatus::Pending,
            attempts: 0,
            last_error: None,
            delivered_at: None,
            next_attempt_at: Some(at),
        }
    }

    /// The notification about `tx`, with its subject and body rendered.
    pub(crate) fn to_notification(&self, tx: &Transaction) -> Notification {
        let (subject, body) = render_notification(&self.client_name, self.channel, tx, self.locale);
        Notification {
            id: self.id,
            client_id: tx.client_id,
            transaction_id: tx.id,
            channel: self.channel,
            recipient: self.recipient.clone(),
            subject,
            body,
            status: self.status,
            attempts: self.attempts,
            last_error: self.last_error.clone(),
            created_at: tx.created_at,
            delivered_at: self.delivered_at,
            next_attempt_at: self.next_attempt_at,
        }
    }
}

/// A money-moving request as the caller stated it (amount normalized to 2 decimals), kept with
/// its idempotency key so a replay can be recognised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Request {
    Subscribe {
        fund_id: FundId,
        amount: Option<Decimal>,
    },
    Cancel {
        fund_id: FundId,
    },
}

/// What an idempotency key was first used for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdempotencyRecord {
    pub request: Request,
    pub transaction_id: TransactionId,
}

/// What a subscribe or cancel reads, under the client's lock.
#[derive(Clone, Debug)]
pub(crate) struct MoneyView {
    pub client: Client,
    /// The fund as the catalogue has it now; `None` when there is no such fund.
    pub fund: Option<Fund>,
    /// The client's active subscription to the fund.
    pub subscription: Option<Subscription>,
    /// The request and transaction an already used idempotency key names.
    pub replay: Option<(Request, Transaction)>,
    /// The client's newest transaction id, when the store knows it cheaply: new ids go above
    /// it, so a client's history stays in time order across processes.
    pub newest_transaction: Option<TransactionId>,
}

/// What the engine decided about a subscribe or cancel.
#[derive(Clone, Debug)]
pub(crate) enum Decision {
    /// The key was used for this very request: answer with its transaction, change nothing.
    Replay(Transaction),
    /// Commit this change.
    Commit(Box<MoneyMove>),
}

/// Every record a subscribe or cancel writes, committed all or nothing.
#[derive(Clone, Debug)]
pub(crate) struct MoneyMove {
    /// The client with its new balance.
    pub client: Client,
    /// The new transaction and its notification.
    pub entry: LedgerEntry,
    /// The subscription opened, or `None` when the client's subscription to the fund closes.
    pub opened: Option<Subscription>,
    /// Recorded under the transaction's idempotency key, when it has one.
    pub idempotency: Option<IdempotencyRecord>,
}

/// A due notification handed to one dispatcher until its lease ends.
#[derive(Clone, Debug)]
pub(crate) struct Claimed {
    pub transaction: Transaction,
    pub notice: Notice,
    /// Proves the claim when the outcome is recorded (a store-specific token).
    pub claim: Vec<u8>,
}

/// The settings a store is created with and keeps afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Seed {
    pub initial_balance: Decimal,
    pub funds: Vec<Fund>,
}

/// Everything a store keeps about one client, for copying a store into another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientBundle {
    pub client: Client,
    /// Active subscriptions, by fund id.
    pub subscriptions: Vec<Subscription>,
    /// Every transaction with its notification state, oldest first.
    pub entries: Vec<LedgerEntry>,
    /// Idempotency keys and what they were used for, by key.
    pub idempotency: Vec<(String, IdempotencyRecord)>,
}

/// The storage port.
///
/// Reads of one client see whole changes only. `move_money` runs `decide` while no other change
/// to the client can commit, and commits what it returns atomically; `decide` may run more
/// than once (a store may retry after a conflict), so it must not have side effects.
pub(crate) trait Store: Send + Sync + std::fmt::Debug {
    /// Writes `seed` into a new store; returns what the store holds (the first seed wins).
    fn seed(&self, seed: &Seed) -> Result<Seed>;

    /// The largest client, transaction or audit event id stored, so new ids sort after it.
    fn largest_id(&self) -> Result<uuid::Uuid>;

    /// Adds a new client; a client whose id exists is left as it is (a registration repeated
    /// under its id changes nothing).
    fn insert_client(&self, client: &Client) -> Result<()>;

    /// One client.
    fn client(&self, id: ClientId) -> Result<Option<Client>>;

    /// Reads the client, its subscription to `fund` and what `key` names, lets `decide` rule,
    /// and commits its change. `None` when the client does not exist.
    fn move_money(
        &self,
        client: ClientId,
        fund: FundId,
        key: Option<&str>,
        decide: &mut dyn FnMut(MoneyView) -> Result<Decision>,
    ) -> Result<Option<Transaction>>;

    /// A client's active subscriptions by fund id; `None` when the client does not exist.
    fn subscriptions(&self, client: ClientId) -> Result<Option<Vec<Subscription>>>;

    /// A client's transactions newest first, older than `before` when given; `None` when the
    /// client does not exist.
    fn history(
        &self,
        client: ClientId,
        limit: usize,
        before: Option<TransactionId>,
    ) -> Result<Option<Vec<Transaction>>>;

    /// One transaction.
    fn transaction(&self, id: TransactionId) -> Result<Option<Transaction>>;

    /// A client's notifications newest first, with their transactions; `None` when the client
    /// does not exist.
    fn notifications(&self, client: ClientId) -> Result<Option<Vec<LedgerEntry>>>;

    /// Up to `limit` pending notifications due at `now`, each withheld from other dispatchers
    /// for `lease` (after which a claim that was never settled is due again).
    fn claim_due(&self, now: Timestamp, limit: usize, lease: Duration) -> Result<Vec<Claimed>>;

    /// Records the outcome of a claimed delivery: the notice's new state. A claim that another
    /// dispatcher has taken over since (its lease ran out) is left alone.
    fn settle(&self, claimed: &Claimed, notice: &Notice) -> Result<()>;

    /// Puts up to `limit` failed notifications back in the queue, due at `now` with no
    /// attempts; returns how many.
    fn requeue_failed(&self, now: Timestamp, limit: usize) -> Result<usize>;

    /// Up to `limit` failed notifications of every client with their transactions, newest
    /// (by notification id) first, older than `before` when given.
    fn failed_notifications(
        &self,
        limit: usize,
        before: Option<NotificationId>,
    ) -> Result<Vec<LedgerEntry>>;

    /// The outbox's entries by status and the oldest pending entry's time (its age is left
    /// for the engine, which owns the clock).
    fn outbox_state(&self) -> Result<OutboxState>;

    /// Makes everything written so far durable (a no-op where commits are durable already).
    fn flush(&self) -> Result<()>;

    /// Whether each commit is durable when it returns, without `flush`.
    fn commits_are_durable(&self) -> bool;

    /// The settings the store was created with; `None` for a store never seeded.
    fn stored_seed(&self) -> Result<Option<Seed>>;

    /// Up to `limit` client ids in id order, after `after` when given.
    fn client_ids(&self, after: Option<ClientId>, limit: usize) -> Result<Vec<ClientId>>;

    /// Everything kept about one client.
    fn bundle(&self, client: ClientId) -> Result<Option<ClientBundle>>;

    /// Writes a client and everything about it, as copied from another store, in one commit.
    fn import_bundle(&self, bundle: &ClientBundle) -> Result<()>;

    /// The catalogue, by fund id.
    fn funds(&self) -> Result<Vec<Fund>>;

    /// One fund of the catalogue.
    fn fund(&self, id: FundId) -> Result<Option<Fund>>;

    /// Adds `fund` with its audit event, in one commit; false (and nothing written) when the
    /// id is taken.
    fn create_fund(&self, fund: &Fund, event: &AuditEvent) -> Result<bool>;

    /// Reads the fund, lets `decide` return its new state with the audit event (or `None`
    /// when nothing changes), and commits both at once while no other change to the fund can
    /// commit. `decide` also gets the newest audit event id stored, when the store knows it
    /// cheaply, so the new event's id goes above it (the trail lists changes in the order they
    /// happened across processes). `None` when there is no such fund; otherwise the fund as it
    /// now is.
    fn update_fund(
        &self,
        id: FundId,
        decide: &mut dyn FnMut(Fund, Option<AuditEventId>) -> Result<Option<(Fund, AuditEvent)>>,
    ) -> Result<Option<Fund>>;

    /// As [`Store::update_fund`], for a client's contact data, under the client's lock.
    fn update_client(
        &self,
        id: ClientId,
        decide: &mut dyn FnMut(
            Client,
            Option<AuditEventId>,
        ) -> Result<Option<(Client, AuditEvent)>>,
    ) -> Result<Option<Client>>;

    /// Up to `limit` clients, newest first, older than `before` when given.
    fn clients(&self, limit: usize, before: Option<ClientId>) -> Result<Vec<Client>>;

    /// Up to `limit` audit events, newest first, older than `before` when given.
    fn audit_events(&self, limit: usize, before: Option<AuditEventId>) -> Result<Vec<AuditEvent>>;

    /// Writes audit events copied from another store (the catalogue comes with the seed).
    fn import_audit_events(&self, events: &[AuditEvent]) -> Result<()>;

    /// Writes a consistent copy of the store, while it serves calls, into the new directory
    /// `dest` (embedded store); a store that cannot refuses with a STORAGE_ERROR that says
    /// how to back it up instead.
    fn backup(&self, dest: &std::path::Path) -> Result<()>;

    /// What the store has done so far.
    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }
}

/// Counters of a store's work, for capacity planning and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Statements sent to a database server (0 for the embedded store).
    pub round_trips: u64,
    /// Operations tried again after a serialization failure or a deadlock (SQLSTATE 40001,
    /// 40P01).
    pub serialization_retries: u64,
    /// Subscribes and cancels read again because another change to the client or the fund
    /// committed between their read (or what the engine saw last) and their write.
    pub lost_races: u64,
}
