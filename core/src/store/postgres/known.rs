//! What this process last saw of its busiest clients and of the catalogue, so a subscribe or
//! cancel can be decided without reading first and written in one round trip.
//!
//! Nothing here is trusted: a write decided on it commits only if the client's row still has
//! the version, newest transaction id and contact data it was seen with, and the fund its
//! version, name, minimum and active flag (the guard of `WRITE_MONEY`). Any other change to
//! the client or the fund, from this process or another, fails the guard; the store then
//! forgets the entry and reads afresh.

use std::collections::HashMap;
use std::num::NonZeroUsize;

use lru::LruCache;
use parking_lot::Mutex;
use rust_decimal::Decimal;

use crate::client::Client;
use crate::fund::Fund;
use crate::ids::{ClientId, FundId, TransactionId};
use crate::ledger::Subscription;
use crate::store::{MoneyMove, MoneyView};

/// Clients remembered per engine: each entry holds the contact data and at most one
/// subscription per fund of the catalogue, under 1 KiB for a catalogue of a few funds.
const CLIENTS_REMEMBERED: NonZeroUsize = match NonZeroUsize::new(16_384) {
    Some(count) => count,
    None => panic!("the cache holds at least one client"),
};

/// What a decision was made on; its write commits only if all of it still holds (the
/// client's contact data and the fund's name are checked from the change itself).
#[derive(Clone, Copy, Debug)]
pub(super) struct Versions {
    pub client: i64,
    /// The client's newest transaction id: with `client`, it tells a row that reached the same
    /// version by other changes (a database restored or failed over under a running process).
    pub newest_transaction: Option<TransactionId>,
    /// `None` when the fund does not exist (no change can then be written).
    pub fund: Option<FundGuard>,
}

/// The fund's version and the fields a decision reads, checked again by the write.
#[derive(Clone, Copy, Debug)]
pub(super) struct FundGuard {
    pub version: i64,
    pub minimum: Decimal,
    pub active: bool,
}

impl FundGuard {
    pub(super) fn of(fund: &Fund, version: i64) -> FundGuard {
        FundGuard {
            version,
            minimum: fund.minimum,
            active: fund.active,
        }
    }
}

/// One client as last seen.
#[derive(Clone, Debug)]
struct KnownClient {
    client: Client,
    version: i64,
    newest_transaction: Option<TransactionId>,
    /// The active subscription (or its absence) to each fund seen at `version`.
    subscriptions: HashMap<FundId, Option<Subscription>>,
}

/// The clients and funds this process saw last.
#[derive(Debug)]
pub(super) struct Known {
    clients: Mutex<LruCache<ClientId, KnownClient>>,
    funds: Mutex<HashMap<FundId, (Fund, i64)>>,
}

impl Known {
    pub(super) fn new() -> Known {
        Known {
            clients: Mutex::new(LruCache::new(CLIENTS_REMEMBERED)),
            funds: Mutex::new(HashMap::new()),
        }
    }

    /// What a subscribe or cancel would read, as last seen, when both the client's
    /// subscription to `fund` and the fund are known. No idempotency record is known: a key
    /// used before makes the guarded write fail on its unique index.
    pub(super) fn view(&self, client: ClientId, fund: FundId) -> Option<(MoneyView, Versions)> {
        let (fund, fund_version) = self.funds.lock().get(&fund).cloned()?;
        let fund_guard = FundGuard::of(&fund, fund_version);
        let mut clients = self.clients.lock();
        let known = clients.get(&client)?;
        let subscription = known.subscriptions.get(&fund.id)?.clone();
        let view = MoneyView {
            client: known.client.clone(),
            fund: Some(fund),
            subscription,
            replay: None,
            newest_transaction: known.newest_transaction,
        };
        let versions = Versions {
            client: known.version,
            newest_transaction: known.newest_transaction,
            fund: Some(fund_guard),
        };
        Some((view, versions))
    }

    /// Remembers what a read of the client, its subscription to the fund and the fund returned.
    /// Only funds that exist are remembered, so a client's entry stays as small as the
    /// catalogue.
    pub(super) fn saw(&self, view: &MoneyView, versions: Versions) {
        let (Some(fund_read), Some(guard)) = (&view.fund, versions.fund) else {
            return;
        };
        let fund = fund_read.id;
        self.funds
            .lock()
            .insert(fund, (fund_read.clone(), guard.version));
        let mut clients = self.clients.lock();
        match clients.get_mut(&view.client.id) {
            Some(known)
                if known.version == versions.client
                    && known.newest_transaction == versions.newest_transaction =>
            {
                known.subscriptions.insert(fund, view.subscription.clone());
            }
            // A read not newer than the entry but different from it (arriving late, or from a
            // database rolled back under this process): which one holds is unknown, so
            // neither is kept.
            Some(known) if known.version >= versions.client => {
                clients.pop(&view.client.id);
            }
            _ => {
                let known = KnownClient {
                    client: view.client.clone(),
                    version: versions.client,
                    newest_transaction: view.newest_transaction,
                    subscriptions: HashMap::from([(fund, view.subscription.clone())]),
                };
                clients.put(view.client.id, known);
            }
        }
    }

    /// Records a change committed at `versions`: the client's row is now one version on.
    pub(super) fn committed(&self, versions: Versions, change: &MoneyMove) {
        let tx = &change.entry.transaction;
        let mut clients = self.clients.lock();
        match clients.get_mut(&tx.client_id) {
            Some(known) if known.version == versions.client => {
                known.client = change.client.clone();
                known.version = versions.client + 1;
                known.newest_transaction = Some(tx.id);
                known
                    .subscriptions
                    .insert(tx.fund_id, change.opened.clone());
            }
            _ => {
                clients.pop(&tx.client_id);
            }
        }
    }

    /// Forgets the client and the fund after a guarded write found either changed.
    pub(super) fn forget(&self, client: ClientId, fund: FundId) {
        self.clients.lock().pop(&client);
        self.funds.lock().remove(&fund);
    }

    /// Forgets a client whose row this process changed outside a subscribe or cancel.
    pub(super) fn forget_client(&self, client: ClientId) {
        self.clients.lock().pop(&client);
    }

    /// Forgets a fund this process changed.
    pub(super) fn forget_fund(&self, fund: FundId) {
        self.funds.lock().remove(&fund);
    }
}
