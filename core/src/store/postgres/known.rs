//! What this process last saw of its busiest clients and of the catalogue, so a subscribe or
//! cancel can be decided without reading first and written in one round trip.
//!
//! Nothing here is trusted: a write decided on it commits only if the client's row still has
//! the version and newest transaction id it was seen with, and the fund its version (the guard
//! of `WRITE_MONEY`). Any other change to the client or the fund, from this process or
//! another, fails the guard; the store then forgets the entry and reads afresh.

use std::collections::HashMap;
use std::num::NonZeroUsize;

use lru::LruCache;
use parking_lot::Mutex;

use crate::client::Client;
use crate::fund::Fund;
use crate::ids::{ClientId, FundId, TransactionId};
use crate::ledger::Subscription;
use crate::store::{MoneyMove, MoneyView};

/// Clients remembered per engine: under 1 KiB each (contact data and a few subscriptions),
/// so at most about 16 MiB.
const CLIENTS_REMEMBERED: NonZeroUsize = match NonZeroUsize::new(16_384) {
    Some(count) => count,
    None => panic!("the cache holds at least one client"),
};

/// The row versions a decision was made at; its write commits only if they still hold.
#[derive(Clone, Copy, Debug)]
pub(super) struct Versions {
    pub client: i64,
    /// The client's newest transaction id, with `client` a guard against a row that reached
    /// the same version by other changes (a database restored under a running process).
    pub newest_transaction: Option<TransactionId>,
    /// `None` when the fund does not exist (no change can then be written).
    pub fund: Option<i64>,
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
            fund: Some(fund_version),
        };
        Some((view, versions))
    }

    /// Remembers what a read of the client, its subscription to `fund` and the fund returned.
    pub(super) fn saw(&self, view: &MoneyView, versions: Versions, fund: FundId) {
        if let (Some(fund), Some(version)) = (&view.fund, versions.fund) {
            self.funds.lock().insert(fund.id, (fund.clone(), version));
        }
        let mut clients = self.clients.lock();
        match clients.get_mut(&view.client.id) {
            Some(known) if known.version == versions.client => {
                known.subscriptions.insert(fund, view.subscription.clone());
            }
            // An older read arriving late must not replace a newer one.
            Some(known) if known.version > versions.client => {}
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
