//! The invariants of docs/invariants.md, checked against a real engine and store.
#![allow(dead_code)]

pub mod proxy;
pub mod stores;

use std::collections::{BTreeMap, HashMap, HashSet};

use fundcore::{
    Channel, ClientId, Decimal, Engine, FundId, Notification, Subscription, Transaction,
    TransactionId, TransactionKind,
};

/// `fundcore verify <location>` as an operator runs it: exit status 0 and no violation. The
/// command needs the `postgres` feature; without it the callers' own library checks stand.
#[cfg(feature = "postgres")]
pub fn verify_command_passes(location: impl AsRef<std::ffi::OsStr>) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fundcore"))
        .arg("verify")
        .arg(location)
        .output()
        .expect("run fundcore verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("violations: none"), "{stdout}");
}

/// Without the `postgres` feature there is no `fundcore` command to run.
#[cfg(not(feature = "postgres"))]
pub fn verify_command_passes(_location: impl AsRef<std::ffi::OsStr>) {}

/// The shell block of the docs page `page` (from the repository root) that names `test` as the
/// one that runs it (`<!-- run-by: core/tests/<test> -->` on the line before the fence).
pub fn documented_block(page: &str, test: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(page);
    let text = std::fs::read_to_string(&path).expect("read the docs page");
    let lines: Vec<&str> = text.lines().collect();
    let marker = format!("<!-- run-by: core/tests/{test} -->");
    let at = lines
        .iter()
        .position(|line| line.trim() == marker)
        .unwrap_or_else(|| panic!("{page} names no block run by {test}"));
    assert_eq!(lines[at + 1], "```sh", "{page}: the block after {marker}");
    lines[at + 2..]
        .iter()
        .take_while(|line| !line.starts_with("```"))
        .map(|line| (*line).to_owned())
        .collect()
}

/// Every transaction of a client, newest first, read page by page through the cursor.
pub fn full_history(engine: &Engine, client: ClientId) -> Vec<Transaction> {
    let mut all: Vec<Transaction> = Vec::new();
    loop {
        let before = all.last().map(|tx| tx.id);
        let page = engine.history(client, 7, before).expect("history");
        let done = page.len() < 7;
        all.extend(page);
        if done {
            return all;
        }
    }
}

/// Everything observable about a set of clients, for before/after comparisons.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub clients: Vec<fundcore::Client>,
    pub subscriptions: Vec<Vec<Subscription>>,
    pub histories: Vec<Vec<Transaction>>,
    pub notifications: Vec<Vec<Notification>>,
}

pub fn snapshot(engine: &Engine, clients: &[ClientId]) -> Snapshot {
    Snapshot {
        clients: clients
            .iter()
            .map(|&c| engine.client(c).expect("client"))
            .collect(),
        subscriptions: clients
            .iter()
            .map(|&c| engine.subscriptions(c).expect("subscriptions"))
            .collect(),
        histories: clients.iter().map(|&c| full_history(engine, c)).collect(),
        notifications: clients
            .iter()
            .map(|&c| engine.notifications(c).expect("notifications"))
            .collect(),
    }
}

/// Checks invariants 1–5 of docs/invariants.md for `clients`; returns what broke.
pub fn check_invariants(engine: &Engine, clients: &[ClientId]) -> Result<(), String> {
    let initial = engine.initial_balance();
    let notify_on_cancel = engine.config().notify_on_cancel;
    let mut all_ids: HashSet<TransactionId> = HashSet::new();
    for &client_id in clients {
        let client = engine.client(client_id).map_err(|e| e.to_string())?;
        let subscriptions = engine.subscriptions(client_id).map_err(|e| e.to_string())?;
        let history = full_history(engine, client_id);
        let notifications = engine.notifications(client_id).map_err(|e| e.to_string())?;

        // 1. balance >= 0
        if client.balance < Decimal::ZERO {
            return Err(format!("{client_id}: negative balance {}", client.balance));
        }
        // 2. balance + active subscriptions = initial balance
        let invested: Decimal = subscriptions.iter().map(|s| s.amount).sum();
        if client.balance + invested != initial {
            return Err(format!(
                "{client_id}: balance {} + invested {invested} != {initial}",
                client.balance
            ));
        }
        // 4. at most one active subscription per fund
        let funds: HashSet<FundId> = subscriptions.iter().map(|s| s.fund_id).collect();
        if funds.len() != subscriptions.len() {
            return Err(format!("{client_id}: two active subscriptions to one fund"));
        }
        // 3. replaying the history from the initial balance gives balance and subscriptions
        let mut balance = initial;
        let mut active: BTreeMap<FundId, (Decimal, TransactionId)> = BTreeMap::new();
        for tx in history.iter().rev() {
            if tx.client_id != client_id {
                return Err(format!(
                    "{}: transaction of another client in history",
                    tx.id
                ));
            }
            match tx.kind {
                TransactionKind::Subscription => {
                    if active.insert(tx.fund_id, (tx.amount, tx.id)).is_some() {
                        return Err(format!("{}: subscription while already subscribed", tx.id));
                    }
                    balance -= tx.amount;
                }
                TransactionKind::Cancellation => match active.remove(&tx.fund_id) {
                    Some((amount, _)) if amount == tx.amount => balance += tx.amount,
                    other => {
                        return Err(format!(
                            "{}: cancellation refunds {} but subscription was {other:?}",
                            tx.id, tx.amount
                        ));
                    }
                },
            }
            if balance != tx.balance_after || balance < Decimal::ZERO {
                return Err(format!(
                    "{}: replayed balance {balance} != balance_after {}",
                    tx.id, tx.balance_after
                ));
            }
        }
        if balance != client.balance {
            return Err(format!(
                "{client_id}: replayed balance {balance} != stored {}",
                client.balance
            ));
        }
        let stored: BTreeMap<FundId, (Decimal, TransactionId)> = subscriptions
            .iter()
            .map(|s| (s.fund_id, (s.amount, s.transaction_id)))
            .collect();
        if stored != active {
            return Err(format!(
                "{client_id}: replayed subscriptions {active:?} != stored {stored:?}"
            ));
        }
        // history is newest first with unique, time-ordered ids
        if history.windows(2).any(|w| w[0].id <= w[1].id) {
            return Err(format!("{client_id}: history not strictly newest first"));
        }
        // 4. transaction ids are unique across clients, and each is found by id
        for tx in &history {
            if !all_ids.insert(tx.id) {
                return Err(format!("{}: duplicate transaction id", tx.id));
            }
            if engine.transaction(tx.id).map_err(|e| e.to_string())? != *tx {
                return Err(format!("{}: lookup by id differs from history", tx.id));
            }
        }
        // 5. exactly one outbox entry per notified transaction, to the client, addressed as its
        // channel says (the channel of the transaction's time: a contact change since leaves
        // queued entries as they were; run_sequence checks new entries against the model)
        let mut per_tx: HashMap<TransactionId, usize> = HashMap::new();
        for n in &notifications {
            *per_tx.entry(n.transaction_id).or_default() += 1;
            let addressed = match n.channel {
                Channel::Email => n.recipient.contains('@'),
                Channel::Sms => n.recipient.starts_with('+'),
            };
            if !addressed || n.client_id != client_id {
                return Err(format!(
                    "{}: notification on the wrong channel or client",
                    n.id
                ));
            }
        }
        for tx in &history {
            let expected =
                usize::from(tx.kind == TransactionKind::Subscription || notify_on_cancel);
            let got = per_tx.remove(&tx.id).unwrap_or(0);
            if got != expected {
                return Err(format!(
                    "{}: {got} outbox entries, expected {expected}",
                    tx.id
                ));
            }
        }
        if !per_tx.is_empty() {
            return Err(format!(
                "{client_id}: notifications for unknown transactions {per_tx:?}"
            ));
        }
    }
    Ok(())
}

/// A small deterministic generator, so a failing round can be replayed from its seed.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
