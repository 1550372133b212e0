//! What the portal and the console read (docs/operations.md): a client's history filtered by
//! kind and fund, a statement for a date range, the failed notifications of every client and
//! the ledger check on a live engine. Reads only; every number comes from the stored ledger.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::engine::{Engine, client_not_found, fund_not_found};
use crate::error::{Error, Invalid, Result};
use crate::ids::{ClientId, FundId, NotificationId, TransactionId};
use crate::ledger::{Transaction, TransactionKind};
use crate::limits::MAX_PAGE;
use crate::outbox::Notification;
use crate::page::{Page, check_limit};
use crate::time::Timestamp;
use crate::verify::LedgerReport;

/// Which transactions a history page lists; the default lists all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    /// Only subscriptions, or only cancellations.
    pub kind: Option<TransactionKind>,
    /// Only the transactions on this fund.
    pub fund_id: Option<FundId>,
}

impl HistoryFilter {
    /// Whether `tx` is listed.
    pub fn matches(&self, tx: &Transaction) -> bool {
        self.kind.is_none_or(|kind| tx.kind == kind)
            && self.fund_id.is_none_or(|fund| tx.fund_id == fund)
    }

    fn is_all(&self) -> bool {
        self == &HistoryFilter::default()
    }
}

/// A page of failed notifications, newest first; its cursor is a notification id.
pub type NotificationPage = Page<Notification, NotificationId>;

/// One transaction of a [`Statement`], with the client's position right after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// The transaction (its `balance_after` is the balance right after it).
    pub transaction: Transaction,
    /// The sum of the client's active subscription amounts right after it.
    pub invested_after: Decimal,
}

/// A client's account over `from <= created_at < to`: where it stood at `from`, each
/// transaction of the range oldest first, and where it stood at the end. Balance plus invested
/// is the initial balance at every line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// The client.
    pub client_id: ClientId,
    /// The range's start (included).
    pub from: Timestamp,
    /// The range's end (excluded).
    pub to: Timestamp,
    /// The available balance at `from`.
    pub opening_balance: Decimal,
    /// The sum of the active subscription amounts at `from`.
    pub opening_invested: Decimal,
    /// The range's transactions, oldest first.
    pub lines: Vec<StatementLine>,
    /// The available balance at `to` (after the last line).
    pub closing_balance: Decimal,
    /// The sum of the active subscription amounts at `to`.
    pub closing_invested: Decimal,
}

/// Transactions read from the store per round while filtering or replaying a history.
const SCAN_PAGE: usize = MAX_PAGE;

impl Engine {
    /// A page of a client's history as [`Engine::history_page`], listing only the transactions
    /// `filter` matches: at most `limit` (1..=[`MAX_PAGE`]) of them, all older than `before`
    /// (any transaction id of the client, an exclusive cursor), with the cursor of the following
    /// page (`None` on the last).
    ///
    /// A fund id that names no fund is `FUND_NOT_FOUND` (funds are never removed, so it is a
    /// mistake, not an empty filter); an unknown client is `CLIENT_NOT_FOUND` first.
    ///
    /// The filter runs here, on pages of the store's history, so it means the same on both
    /// stores with no query of its own. This is sound because a client's history only grows
    /// at its newest end (ids are chosen above the newest one under the client's lock): the
    /// rows below a cursor never change between two reads. A rare match in a long history
    /// costs reading the history down to it.
    pub fn history_page_filtered(
        &self,
        client_id: ClientId,
        limit: usize,
        before: Option<TransactionId>,
        filter: &HistoryFilter,
    ) -> Result<Page<Transaction, TransactionId>> {
        if filter.is_all() {
            return self.history_page(client_id, limit, before);
        }
        crate::observe::operation("history", Some(&client_id), filter.fund_id, || {
            self.check_process()?;
            check_limit(limit)?;
            let mut matched = Vec::with_capacity(limit + 1);
            let mut cursor = before;
            let mut first = true;
            loop {
                let rows = self
                    .inner
                    .store
                    .history(client_id, SCAN_PAGE, cursor)?
                    .ok_or_else(|| client_not_found(client_id))?;
                if first {
                    first = false;
                    if let Some(fund) = filter.fund_id
                        && self.inner.store.fund(fund)?.is_none()
                    {
                        return Err(fund_not_found(fund));
                    }
                }
                let last = rows.last().map(|tx| tx.id);
                let full = rows.len() == SCAN_PAGE;
                // One match more than asked says whether a following page exists.
                matched.extend(
                    rows.into_iter()
                        .filter(|tx| filter.matches(tx))
                        .take(limit + 1 - matched.len()),
                );
                if matched.len() > limit || !full {
                    break;
                }
                cursor = last;
            }
            Ok(Page::from_rows(matched, limit, |tx| tx.id))
        })
    }

    /// A client's statement for `from <= created_at < to` (see [`Statement`]).
    /// `VALIDATION_ERROR` on `from` when `from` is after `to`; `CLIENT_NOT_FOUND` for an
    /// unknown client. From the client's creation to now, its lines chart the balance and the
    /// invested amount over time.
    ///
    /// Balances are the transactions' own `balance_after`; invested amounts come from replaying
    /// the client's history from its first transaction (a subscription adds its amount, a
    /// cancellation removes the amount of the subscription it closes), so they hold what the
    /// store holds even if the initial balance were configured otherwise since. The history is
    /// read newest first in pages; it only grows at its newest end, so the pages fit together
    /// (transactions committed after the first page are left out).
    pub fn statement(
        &self,
        client_id: ClientId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Statement> {
        crate::observe::operation("statement", Some(&client_id), None, || {
            self.check_process()?;
            if from > to {
                return Err(Error::invalid("from", Invalid::Range));
            }
            let mut history = Vec::new();
            let mut cursor = None;
            loop {
                let rows = self
                    .inner
                    .store
                    .history(client_id, SCAN_PAGE, cursor)?
                    .ok_or_else(|| client_not_found(client_id))?;
                let full = rows.len() == SCAN_PAGE;
                cursor = rows.last().map(|tx| tx.id);
                // The whole history: what was invested at `from` needs every older line.
                history.extend(rows);
                if !full {
                    break;
                }
            }
            history.reverse();
            Ok(replay_statement(
                client_id,
                from,
                to,
                self.initial_balance(),
                history,
            ))
        })
    }

    /// Up to `limit` (1..=[`MAX_PAGE`]) failed notifications of every client, newest first,
    /// each with its last error and attempts; `before` is the exclusive cursor (the id of the
    /// last notification of the previous page, failed or not since). For an operator: see
    /// [`Engine::retry_failed_notifications`] to put them back in the queue.
    pub fn failed_notifications(
        &self,
        limit: usize,
        before: Option<NotificationId>,
    ) -> Result<NotificationPage> {
        crate::observe::operation("failed_notifications", None, None, || {
            self.check_process()?;
            check_limit(limit)?;
            let entries = self.inner.store.failed_notifications(limit + 1, before)?;
            let notifications = entries
                .iter()
                .filter_map(|entry| {
                    Some(entry.notice.as_ref()?.to_notification(&entry.transaction))
                })
                .collect();
            Ok(Page::from_rows(notifications, limit, |n: &Notification| {
                n.id
            }))
        })
    }

    /// The ledger check of [`crate::verify_store`] on this engine's open store, while it serves
    /// calls: every client is read whole (on PostgreSQL in one snapshot, on the embedded store
    /// under the client's lock), so each is seen between two of its changes and a violation
    /// found is real. The totals add up clients read at different moments.
    ///
    /// What a live check cannot see: on the embedded store, whether its outbox queues agree
    /// with the ledger (dispatches move entries between them while the clients are read, so
    /// the counts would differ without anything being wrong; `fundcore verify` on a stopped
    /// store checks them).
    pub fn verify_ledger(&self) -> Result<LedgerReport> {
        crate::observe::operation("verify_ledger", None, None, || {
            self.check_process()?;
            crate::verify::verify(self.inner.store.as_ref())
        })
    }
}

/// The statement of `history` (a client's whole history, oldest first) over `from..to`.
fn replay_statement(
    client_id: ClientId,
    from: Timestamp,
    to: Timestamp,
    initial_balance: Decimal,
    history: Vec<Transaction>,
) -> Statement {
    let mut balance = initial_balance;
    let mut active: BTreeMap<FundId, Decimal> = BTreeMap::new();
    let mut opening = None;
    let mut lines = Vec::new();
    for tx in history {
        if tx.created_at >= to {
            break;
        }
        if tx.created_at >= from && opening.is_none() {
            opening = Some((balance, invested(&active)));
        }
        match tx.kind {
            TransactionKind::Subscription => {
                active.insert(tx.fund_id, tx.amount);
            }
            TransactionKind::Cancellation => {
                active.remove(&tx.fund_id);
            }
        }
        balance = tx.balance_after;
        if tx.created_at >= from {
            lines.push(StatementLine {
                invested_after: invested(&active),
                transaction: tx,
            });
        }
    }
    let invested = invested(&active);
    let (opening_balance, opening_invested) = opening.unwrap_or((balance, invested));
    Statement {
        client_id,
        from,
        to,
        opening_balance,
        opening_invested,
        lines,
        closing_balance: balance,
        closing_invested: invested,
    }
}

/// The sum of the active subscription amounts, with the 2 decimals of money even when none is
/// active (`0.00`, not `0`).
fn invested(active: &BTreeMap<FundId, Decimal>) -> Decimal {
    active.values().fold(
        Decimal::new(0, crate::limits::MINOR_DIGITS),
        |sum, amount| sum + amount,
    )
}
