//! The ledger check: reads every client of a store through the storage port and checks the
//! invariants of docs/invariants.md, without going through the engine's write paths.
//!
//! Each client is read whole at once ([`Store::bundle`]: on PostgreSQL one `REPEATABLE READ`
//! snapshot, on the embedded store under the client's lock), so the check is sound while other
//! processes write to a PostgreSQL store: every client is seen between two of its changes,
//! never in the middle of one. The totals add up clients read at different moments.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use rust_decimal::Decimal;

use crate::config::Config;
use crate::copy::StoreLocation;
use crate::error::{Error, Result};
use crate::ids::{ClientId, FundId, NotificationId, TransactionId};
use crate::ledger::{Subscription, Transaction, TransactionKind};
use crate::outbox::NotificationStatus;
use crate::store::{ClientBundle, Request, Store};

named_enum! {
    /// The rule a [`Violation`] breaks (docs/invariants.md).
    pub enum Rule in "snake_case" {
        /// The balance is below zero (invariant 1).
        NegativeBalance,
        /// Balance plus active subscriptions is not the initial balance (invariant 2).
        Reconciliation,
        /// Replaying the history from the initial balance does not give the stored balance,
        /// subscriptions or a transaction's `balance_after` (invariant 3).
        Replay,
        /// An id is used twice, or two active subscriptions name one fund (invariant 4).
        UniqueIds,
        /// A transaction lacks its outbox entry, or an entry's state is inconsistent
        /// (invariant 5).
        Outbox,
        /// An idempotency record does not match the transaction it names, or a transaction's
        /// key has no record (invariant 6).
        Idempotency,
        /// A record names a fund the catalogue does not have.
        Reference,
        /// The embedded store's outbox queues disagree with the ledger.
        StoreIndex,
    }
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// The client whose records break it; `None` for a store-wide one.
    pub client: Option<ClientId>,
    /// The rule broken.
    pub rule: Rule,
    /// What is wrong, in words.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.client {
            Some(client) => write!(f, "client {client}: [{}] {}", self.rule, self.detail),
            None => write!(f, "store: [{}] {}", self.rule, self.detail),
        }
    }
}

/// Outbox entries by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutboxCounts {
    /// Waiting for a (further) delivery attempt.
    pub pending: u64,
    /// Accepted by the notifier.
    pub delivered: u64,
    /// Given up on.
    pub failed: u64,
}

/// What [`verify_store`] read and found. In JSON, its fields as named here.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LedgerReport {
    /// Clients checked.
    pub clients: u64,
    /// Their transactions.
    pub transactions: u64,
    /// Their active subscriptions.
    pub active_subscriptions: u64,
    /// Their idempotency records.
    pub idempotency_keys: u64,
    /// Their outbox entries by status.
    pub outbox: OutboxCounts,
    /// Audit events (administrative changes).
    pub audit_events: u64,
    /// The first [`LedgerReport::MAX_LISTED`] violations found, client by client.
    pub violations: Vec<Violation>,
    /// Every violation found, also those beyond the list.
    pub violation_count: u64,
}

impl LedgerReport {
    /// Violations listed at most; the rest are only counted.
    pub const MAX_LISTED: usize = 1000;

    /// Whether no rule is broken.
    pub fn is_clean(&self) -> bool {
        self.violation_count == 0
    }

    fn add(&mut self, violation: Violation) {
        self.violation_count += 1;
        if self.violations.len() < Self::MAX_LISTED {
            self.violations.push(violation);
        }
    }
}

/// The summary: what was read and how many violations were found (the violations themselves
/// are listed by the caller, one per line, from [`LedgerReport::violations`]).
impl fmt::Display for LedgerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let OutboxCounts {
            pending,
            delivered,
            failed,
        } = self.outbox;
        writeln!(
            f,
            "clients: {}, transactions: {}, active subscriptions: {}, idempotency keys: {}",
            self.clients, self.transactions, self.active_subscriptions, self.idempotency_keys
        )?;
        writeln!(
            f,
            "outbox: {pending} pending, {delivered} delivered, {failed} failed"
        )?;
        writeln!(f, "audit events: {}", self.audit_events)?;
        match self.violation_count {
            0 => write!(f, "violations: none"),
            count => write!(f, "violations: {count}"),
        }
    }
}

/// Clients (and audit events) read per page.
const PAGE: usize = 500;

/// Checks every client of the store at `location` against the invariants of
/// docs/invariants.md; the report lists what it read and each violation with its client.
///
/// For every client: balance ≥ 0; balance + active subscriptions = the initial balance;
/// replaying its history from the initial balance gives every `balance_after`, the balance and
/// the active subscriptions (a cancellation refunds exactly the subscribed amount); one outbox
/// entry per subscription, and none or one per cancellation (whether cancellations are notified
/// is the engine's setting, which the store does not keep); every idempotency record names a
/// transaction of that client made for that request with that key, and every key a transaction
/// carries has its record; transaction and notification ids are unique in the store; every
/// transaction names a fund of the catalogue. On the embedded store, its outbox queues must also
/// agree with the ledger.
///
/// Nothing is written, and a location that holds no store is refused (STORAGE_ERROR) rather
/// than created. A PostgreSQL store may be in use by any number of processes meanwhile. An
/// embedded store is opened as an engine opens it (sled has no read-only mode; a change a crash
/// interrupted is completed first, as any engine would): no other process may hold it, so stop
/// the application first (an open store is refused as in use).
pub fn verify_store(location: &StoreLocation) -> Result<LedgerReport> {
    let store = location.open_existing(&Config::default())?;
    let report = verify(store.as_ref())?;
    // Nothing else writes to an embedded store while this process holds it, so its outbox
    // queues must count what the ledger holds, exactly.
    match location {
        StoreLocation::Embedded(_) => Ok(check_outbox_queues(store.as_ref(), report)?),
        StoreLocation::Postgres(_) => Ok(report),
    }
}

pub(crate) fn verify(store: &dyn Store) -> Result<LedgerReport> {
    let seed = store
        .stored_seed()?
        .ok_or_else(|| Error::storage("the store holds no fundcore settings"))?;
    let mut check = Check {
        report: LedgerReport::default(),
        initial_balance: seed.initial_balance,
        funds: seed.funds.iter().map(|fund| fund.id).collect(),
        transaction_ids: HashSet::new(),
        notification_ids: HashSet::new(),
    };
    let mut after = None;
    loop {
        let page = store.client_ids(after, PAGE)?;
        for &id in &page {
            match store.bundle(id)? {
                Some(bundle) => check.client(store, &bundle)?,
                // Clients are never removed.
                None => check.report.add(Violation {
                    client: Some(id),
                    rule: Rule::Reference,
                    detail: "listed among the clients but not found".to_owned(),
                }),
            }
        }
        match page.last() {
            Some(&last) if page.len() == PAGE => after = Some(last),
            _ => break,
        }
    }
    let mut before = None;
    loop {
        let page = store.audit_events(PAGE, before)?;
        check.report.audit_events += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == PAGE => before = Some(last.id),
            _ => break,
        }
    }
    Ok(check.report)
}

/// Compares the embedded store's outbox queues (what [`Store::outbox_state`] counts) with the
/// entries of the ledger: a pending entry missing from the due queue would never be sent.
fn check_outbox_queues(store: &dyn Store, mut report: LedgerReport) -> Result<LedgerReport> {
    let queues = store.outbox_state()?;
    for (what, queued, in_ledger) in [
        ("pending", queues.pending, report.outbox.pending),
        ("failed", queues.failed, report.outbox.failed),
        ("delivered", queues.delivered, report.outbox.delivered),
    ] {
        if queued != in_ledger {
            report.add(Violation {
                client: None,
                rule: Rule::StoreIndex,
                detail: format!(
                    "the outbox queues count {queued} {what} entries, the ledger holds {in_ledger}"
                ),
            });
        }
    }
    Ok(report)
}

/// The state of a check in progress.
struct Check {
    report: LedgerReport,
    initial_balance: Decimal,
    /// The catalogue's fund ids (read again when a record names another one: on a shared
    /// database a fund may have been created since).
    funds: HashSet<FundId>,
    transaction_ids: HashSet<TransactionId>,
    notification_ids: HashSet<NotificationId>,
}

impl Check {
    fn client(&mut self, store: &dyn Store, bundle: &ClientBundle) -> Result<()> {
        let id = bundle.client.id;
        let mut found: Vec<(Rule, String)> = Vec::new();
        let mut flag = |rule: Rule, detail: String| found.push((rule, detail));
        let report = &mut self.report;
        report.clients += 1;
        report.transactions += bundle.entries.len() as u64;
        report.active_subscriptions += bundle.subscriptions.len() as u64;
        report.idempotency_keys += bundle.idempotency.len() as u64;

        // 1. and 2.
        let balance = bundle.client.balance;
        if balance < Decimal::ZERO {
            flag(Rule::NegativeBalance, format!("balance {balance}"));
        }
        let invested: Decimal = bundle.subscriptions.iter().map(|s| s.amount).sum();
        if balance + invested != self.initial_balance {
            flag(
                Rule::Reconciliation,
                format!(
                    "balance {balance} + active subscriptions {invested} = {}, not the initial \
                     balance {}",
                    balance + invested,
                    self.initial_balance
                ),
            );
        }

        // 4. One active subscription per fund, each of this client.
        let mut stored: BTreeMap<FundId, &Subscription> = BTreeMap::new();
        for subscription in &bundle.subscriptions {
            if subscription.client_id != id {
                flag(
                    Rule::Replay,
                    format!(
                        "its subscription to fund {} names client {}",
                        subscription.fund_id, subscription.client_id
                    ),
                );
            }
            if stored.insert(subscription.fund_id, subscription).is_some() {
                flag(
                    Rule::UniqueIds,
                    format!("two active subscriptions to fund {}", subscription.fund_id),
                );
            }
        }

        // 3. The replay, oldest first (ids are time-ordered).
        let mut entries: Vec<_> = bundle.entries.iter().collect();
        entries.sort_by_key(|entry| entry.transaction.id);
        let mut replayed = self.initial_balance;
        let mut active: BTreeMap<FundId, Subscription> = BTreeMap::new();
        let mut balance_after_checked = true;
        for entry in &entries {
            let tx = &entry.transaction;
            if tx.client_id != id {
                flag(
                    Rule::Replay,
                    format!("transaction {} names client {}", tx.id, tx.client_id),
                );
            }
            if tx.amount <= Decimal::ZERO {
                flag(
                    Rule::Replay,
                    format!(
                        "transaction {} moves {}, not a positive amount",
                        tx.id, tx.amount
                    ),
                );
            }
            if !self.funds.contains(&tx.fund_id) {
                // A fund created since the catalogue was read (on a shared database) is known
                // after reading it again.
                self.funds = store.funds()?.iter().map(|fund| fund.id).collect();
                if !self.funds.contains(&tx.fund_id) {
                    flag(
                        Rule::Reference,
                        format!(
                            "transaction {} names fund {}, which the catalogue lacks",
                            tx.id, tx.fund_id
                        ),
                    );
                }
            }
            match tx.kind {
                TransactionKind::Subscription => {
                    if let Some(open) = active.get(&tx.fund_id) {
                        flag(
                            Rule::Replay,
                            format!(
                                "transaction {} subscribes to fund {} while subscription {} is \
                                 active",
                                tx.id, tx.fund_id, open.transaction_id
                            ),
                        );
                    }
                    replayed -= tx.amount;
                    active.insert(tx.fund_id, opened_by(tx));
                }
                TransactionKind::Cancellation => {
                    match active.remove(&tx.fund_id) {
                        None => flag(
                            Rule::Replay,
                            format!(
                                "transaction {} cancels fund {} with no active subscription",
                                tx.id, tx.fund_id
                            ),
                        ),
                        Some(open) if open.amount != tx.amount => flag(
                            Rule::Replay,
                            format!(
                                "transaction {} refunds {} but subscription {} was for {}",
                                tx.id, tx.amount, open.transaction_id, open.amount
                            ),
                        ),
                        Some(_) => {}
                    }
                    replayed += tx.amount;
                }
            }
            if replayed < Decimal::ZERO {
                flag(
                    Rule::NegativeBalance,
                    format!("the replay goes to {replayed} at transaction {}", tx.id),
                );
            }
            // After the first difference every later balance differs too: one is enough.
            if balance_after_checked && tx.balance_after != replayed {
                balance_after_checked = false;
                flag(
                    Rule::Replay,
                    format!(
                        "transaction {} has balance_after {}, the replay gives {replayed}",
                        tx.id, tx.balance_after
                    ),
                );
            }
        }
        if replayed != balance {
            flag(
                Rule::Replay,
                format!(
                    "replaying the history gives balance {replayed}, the store holds {balance}"
                ),
            );
        }
        let funds: std::collections::BTreeSet<FundId> =
            active.keys().chain(stored.keys()).copied().collect();
        for fund in funds {
            match (active.get(&fund), stored.get(&fund)) {
                (Some(replay), None) => flag(
                    Rule::Replay,
                    format!(
                        "the replay leaves subscription {} to fund {fund} active, the store holds \
                         none",
                        replay.transaction_id
                    ),
                ),
                (None, Some(held)) => flag(
                    Rule::Replay,
                    format!(
                        "the store holds a subscription to fund {fund} (transaction {}) that the \
                         history does not leave active",
                        held.transaction_id
                    ),
                ),
                (Some(replay), Some(held)) if replay != *held => flag(
                    Rule::Replay,
                    format!(
                        "subscription to fund {fund}: the store holds {} from transaction {}, \
                         the replay gives {} from transaction {}",
                        held.amount, held.transaction_id, replay.amount, replay.transaction_id
                    ),
                ),
                _ => {}
            }
        }

        // 4. Ids unique in the whole store, and 5. the outbox.
        for entry in &entries {
            let tx = &entry.transaction;
            if !self.transaction_ids.insert(tx.id) {
                flag(
                    Rule::UniqueIds,
                    format!(
                        "transaction id {} is used more than once in the store",
                        tx.id
                    ),
                );
            }
            let Some(notice) = &entry.notice else {
                if tx.kind == TransactionKind::Subscription {
                    flag(
                        Rule::Outbox,
                        format!("subscription {} has no outbox entry", tx.id),
                    );
                }
                continue;
            };
            if !self.notification_ids.insert(notice.id) {
                flag(
                    Rule::UniqueIds,
                    format!(
                        "notification id {} is used more than once in the store",
                        notice.id
                    ),
                );
            }
            let outbox = &mut self.report.outbox;
            match notice.status {
                NotificationStatus::Pending => outbox.pending += 1,
                NotificationStatus::Delivered => outbox.delivered += 1,
                NotificationStatus::Failed => outbox.failed += 1,
            }
            let pending = notice.status == NotificationStatus::Pending;
            if pending != notice.next_attempt_at.is_some() {
                flag(
                    Rule::Outbox,
                    format!(
                        "the outbox entry of transaction {} is {} with next attempt {:?}",
                        tx.id,
                        notice.status,
                        notice.next_attempt_at.map(|at| at.to_string())
                    ),
                );
            }
            if (notice.status == NotificationStatus::Delivered) != notice.delivered_at.is_some() {
                flag(
                    Rule::Outbox,
                    format!(
                        "the outbox entry of transaction {} is {} with delivery time {:?}",
                        tx.id,
                        notice.status,
                        notice.delivered_at.map(|at| at.to_string())
                    ),
                );
            }
        }

        // 6. Idempotency records and the keys transactions carry.
        let by_id: HashMap<TransactionId, &Transaction> = entries
            .iter()
            .map(|entry| (entry.transaction.id, &entry.transaction))
            .collect();
        let mut records: HashMap<&str, TransactionId> = HashMap::new();
        for (key, record) in &bundle.idempotency {
            records.insert(key.as_str(), record.transaction_id);
            let Some(tx) = by_id.get(&record.transaction_id) else {
                flag(
                    Rule::Idempotency,
                    format!(
                        "key {key:?} names transaction {}, which this client does not have",
                        record.transaction_id
                    ),
                );
                continue;
            };
            if tx.idempotency_key.as_deref() != Some(key.as_str()) {
                flag(
                    Rule::Idempotency,
                    format!(
                        "key {key:?} names transaction {}, which carries key {:?}",
                        tx.id, tx.idempotency_key
                    ),
                );
            }
            let matches = match &record.request {
                Request::Subscribe { fund_id, amount } => {
                    tx.kind == TransactionKind::Subscription
                        && tx.fund_id == *fund_id
                        && amount.is_none_or(|amount| amount == tx.amount)
                }
                Request::Cancel { fund_id } => {
                    tx.kind == TransactionKind::Cancellation && tx.fund_id == *fund_id
                }
            };
            if !matches {
                flag(
                    Rule::Idempotency,
                    format!(
                        "key {key:?} records {}, but transaction {} is a {} of {} on fund {}",
                        describe(&record.request),
                        tx.id,
                        tx.kind,
                        tx.amount,
                        tx.fund_id
                    ),
                );
            }
        }
        for entry in &entries {
            let tx = &entry.transaction;
            if let Some(key) = &tx.idempotency_key
                && records.get(key.as_str()) != Some(&tx.id)
            {
                flag(
                    Rule::Idempotency,
                    format!(
                        "transaction {} carries key {key:?}, but no record of the key names it (a \
                         retried request would move money again)",
                        tx.id
                    ),
                );
            }
        }

        for (rule, detail) in found {
            self.report.add(Violation {
                client: Some(id),
                rule,
                detail,
            });
        }
        Ok(())
    }
}

/// The subscription a subscribing transaction opens.
fn opened_by(tx: &Transaction) -> Subscription {
    Subscription {
        client_id: tx.client_id,
        fund_id: tx.fund_id,
        fund_name: tx.fund_name.clone(),
        amount: tx.amount,
        transaction_id: tx.id,
        subscribed_at: tx.created_at,
    }
}

/// A recorded request in words.
fn describe(request: &Request) -> String {
    match request {
        Request::Subscribe {
            fund_id,
            amount: Some(amount),
        } => format!("a subscribe to fund {fund_id} for {amount}"),
        Request::Subscribe {
            fund_id,
            amount: None,
        } => format!("a subscribe to fund {fund_id} for its minimum"),
        Request::Cancel { fund_id } => format!("a cancel of fund {fund_id}"),
    }
}
