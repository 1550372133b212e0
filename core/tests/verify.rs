//! The ledger check (`fundcore verify`) and the outbox state (`Engine::outbox_state`,
//! `fundcore outbox`), on both stores: the check passes on stores built by random operations
//! (administration included) and while other processes write, and it names every client of a
//! store damaged behind the engine's back.
//!
//! Tests that run the `fundcore` binary need the `postgres` feature, as the binary does.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::SplitMix;
use common::stores::{StoreKind, TestStore};
use fundcore::{
    Actor, Category, Channel, ClientId, Config, ContactChanges, Decimal, DeliveryError, Engine,
    FundChanges, LedgerReport, ManualClock, OutboxState, RecordingNotifier, Rule, StoreLocation,
    Timestamp, Transaction, TransactionKind, verify_store,
};

const START: Timestamp = Timestamp::from_unix_micros(1_795_000_000_000_000);

fn config(notify_on_cancel: bool) -> Config {
    Config::builder()
        .notify_on_cancel(notify_on_cancel)
        .max_attempts(2)
        .retry_base_delay(Duration::ZERO)
        .build()
        .unwrap()
}

fn verified(store: &TestStore) -> LedgerReport {
    verify_store(&StoreLocation::parse(&store.location())).unwrap()
}

fn assert_clean(report: &LedgerReport, what: &str) {
    assert!(
        report.is_clean(),
        "{what}: {report}\n{}",
        report
            .violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Drives `engine` through `steps` seeded operations: registrations, subscriptions and
/// cancellations (some with idempotency keys, some repeated), deliveries that succeed, fail for
/// now or for good, requeues of failed ones, and administration (funds created, repriced,
/// closed and reopened; clients changing channel). Refusals are part of it.
fn random_operations(engine: &Engine, rng: &mut SplitMix, clients: &mut Vec<ClientId>, steps: u32) {
    let ops = Actor::new("ops");
    for _ in 0..steps {
        match rng.below(100) {
            0..6 => {
                let channel = if rng.below(2) == 0 {
                    Channel::Email
                } else {
                    Channel::Sms
                };
                let client = engine
                    .register_client("Cliente", "c@example.com", "+573001234567", channel)
                    .unwrap();
                clients.push(client.id);
            }
            _ if clients.is_empty() => {}
            6..50 => {
                let client = clients[rng.below(clients.len() as u64) as usize];
                let fund = 1 + rng.below(7) as u32;
                let amount = (rng.below(2) == 0)
                    .then(|| Decimal::new(5_000_000 + rng.below(20_000_000) as i64, 2));
                let key = (rng.below(3) == 0).then(|| format!("s-{}", rng.below(4)));
                let _ = engine.subscribe(client, fund, amount, key.as_deref());
            }
            50..80 => {
                let client = clients[rng.below(clients.len() as u64) as usize];
                let fund = 1 + rng.below(7) as u32;
                let key = (rng.below(3) == 0).then(|| format!("c-{}", rng.below(4)));
                let _ = engine.cancel(client, fund, key.as_deref());
            }
            80..88 => {
                let notifier = RecordingNotifier::new();
                notifier.script((0..rng.below(6)).map(|i| match i % 3 {
                    0 => Err(DeliveryError::Permanent("mailbox unknown".into())),
                    1 => Err(DeliveryError::Retryable("smtp down".into())),
                    _ => Ok(()),
                }));
                engine
                    .dispatch_notifications(&notifier, 1 + rng.below(8) as usize)
                    .unwrap();
            }
            88..90 => {
                engine
                    .retry_failed_notifications(1 + rng.below(3) as usize)
                    .unwrap();
            }
            90..93 => {
                let fund = 6 + rng.below(2) as u32;
                let minimum = Decimal::new(1_000_000 + rng.below(10_000_000) as i64, 2);
                let _ = engine.create_fund(fund, "NUEVO", minimum, Category::Fic, &ops);
            }
            93..97 => {
                let changes = FundChanges {
                    minimum: (rng.below(2) == 0)
                        .then(|| Decimal::new(2_000_000 + rng.below(20_000_000) as i64, 2)),
                    active: (rng.below(2) == 0).then(|| rng.below(3) != 0),
                    name: (rng.below(4) == 0).then(|| format!("FONDO-{}", rng.below(100))),
                };
                let _ = engine.update_fund(1 + rng.below(7) as u32, &changes, &ops);
            }
            _ => {
                let client = clients[rng.below(clients.len() as u64) as usize];
                let changes = ContactChanges {
                    channel: Some(if rng.below(2) == 0 {
                        Channel::Email
                    } else {
                        Channel::Sms
                    }),
                    ..ContactChanges::default()
                };
                engine
                    .update_client(client, &changes, &Actor::new(client.to_string()))
                    .unwrap();
            }
        }
    }
}

/// Every transaction of every client.
fn all_transactions(engine: &Engine, clients: &[ClientId]) -> Vec<Transaction> {
    clients
        .iter()
        .flat_map(|&client| common::full_history(engine, client))
        .collect()
}

fn audit_event_count(engine: &Engine) -> u64 {
    let (mut count, mut before) = (0, None);
    loop {
        let page = engine.audit_events(fundcore::MAX_PAGE, before).unwrap();
        count += page.items.len() as u64;
        match page.next {
            Some(next) => before = Some(next),
            None => return count,
        }
    }
}

#[test]
fn verify_passes_on_stores_built_by_random_operations_and_counts_what_they_hold() {
    for seed in [1u64, 2, 3] {
        for store in TestStore::each() {
            let mut rng = SplitMix(seed);
            let mut clients = Vec::new();
            // Cancellations notified, then not: both kinds of history in one ledger.
            let engine = store.open(config(true)).unwrap();
            random_operations(&engine, &mut rng, &mut clients, 250);
            drop(engine);
            let engine = store.open(config(false)).unwrap();
            random_operations(&engine, &mut rng, &mut clients, 250);
            let transactions = all_transactions(&engine, &clients);
            let state = engine.outbox_state().unwrap();
            let audit_events = audit_event_count(&engine);
            let active: u64 = clients
                .iter()
                .map(|&c| engine.subscriptions(c).unwrap().len() as u64)
                .sum();
            assert!(
                transactions
                    .iter()
                    .any(|tx| tx.kind == TransactionKind::Cancellation)
                    && audit_events > 0,
                "seed {seed} on {store}: the sequence should cancel and administer"
            );
            if store.kind == StoreKind::Sled {
                drop(engine); // verify opens the embedded store itself
            }
            let report = verified(&store);
            assert_clean(&report, &format!("seed {seed} on {store}"));
            assert_eq!(report.clients, clients.len() as u64);
            assert_eq!(report.transactions, transactions.len() as u64);
            assert_eq!(report.active_subscriptions, active);
            assert_eq!(
                report.idempotency_keys,
                transactions
                    .iter()
                    .filter(|tx| tx.idempotency_key.is_some())
                    .count() as u64
            );
            assert_eq!(
                (
                    report.outbox.pending,
                    report.outbox.failed,
                    report.outbox.delivered
                ),
                (state.pending, state.failed, state.delivered),
                "seed {seed} on {store}: the ledger's outbox and the outbox state agree"
            );
            assert_eq!(report.audit_events, audit_events);
        }
    }
}

#[test]
fn outbox_state_counts_entries_by_status_and_ages_the_oldest_pending_one() {
    for store in TestStore::each() {
        let clock = Arc::new(ManualClock::new(START));
        let open = || {
            let config = Config::builder()
                .clock(clock.clone() as Arc<dyn fundcore::Clock>)
                .build()
                .unwrap();
            store.open(config).unwrap()
        };
        let engine = open();
        assert_eq!(engine.outbox_state().unwrap(), OutboxState::default());
        let ana = engine
            .register_client("Ana", "ana@example.com", "+573001234567", Channel::Email)
            .unwrap();
        let first = engine.subscribe(ana.id, 1, None, None).unwrap();
        clock.advance(Duration::from_secs(10));
        engine.subscribe(ana.id, 2, None, None).unwrap();
        let state = engine.outbox_state().unwrap();
        assert_eq!(
            state,
            OutboxState {
                pending: 2,
                failed: 0,
                delivered: 0,
                oldest_pending_at: Some(first.created_at),
                oldest_pending_age: Some(Duration::from_secs(10)),
            },
            "{store}"
        );
        assert_eq!(first.created_at, START);

        // The first entry (due first) fails for good, the second is delivered.
        let notifier = RecordingNotifier::new();
        notifier.script([Err(DeliveryError::Permanent("no such mailbox".into()))]);
        engine.dispatch_notifications(&notifier, 10).unwrap();
        let state = engine.outbox_state().unwrap();
        assert_eq!(
            (state.pending, state.failed, state.delivered),
            (0, 1, 1),
            "{store}"
        );
        assert_eq!(
            (state.oldest_pending_at, state.oldest_pending_age),
            (None, None)
        );

        clock.advance(Duration::from_secs(5));
        let cancel = engine.cancel(ana.id, 2, None).unwrap();
        assert_eq!(
            engine.outbox_state().unwrap().oldest_pending_at,
            Some(cancel.created_at)
        );
        assert_eq!(engine.retry_failed_notifications(10).unwrap(), 1);
        let state = engine.outbox_state().unwrap();
        assert_eq!(
            (state.pending, state.failed, state.delivered),
            (2, 0, 1),
            "{store}"
        );
        assert_eq!(
            state.oldest_pending_at,
            Some(START),
            "the requeued entry is the oldest"
        );
        assert_eq!(state.oldest_pending_age, Some(Duration::from_secs(15)));

        engine.dispatch_notifications(&notifier, 10).unwrap();
        let state = engine.outbox_state().unwrap();
        assert_eq!((state.pending, state.failed, state.delivered), (0, 0, 3));
        // A clock behind the oldest entry gives an age of zero, not a panic or a wrap.
        engine.subscribe(ana.id, 3, None, None).unwrap();
        clock.set(Timestamp::from_unix_micros(START.unix_micros() - 1_000_000));
        assert_eq!(
            engine.outbox_state().unwrap().oldest_pending_age,
            Some(Duration::ZERO)
        );
        drop(engine);
        // Counted again from the store, by a new engine.
        clock.set(START.plus(Duration::from_secs(20)));
        let state = open().outbox_state().unwrap();
        assert_eq!(
            (state.pending, state.failed, state.delivered),
            (1, 0, 3),
            "{store}: after reopening"
        );
        assert_eq!(state.oldest_pending_age, Some(Duration::from_secs(5)));
    }
}

#[test]
fn the_outbox_state_is_json_with_the_age_as_an_iso_8601_duration() {
    let state = OutboxState {
        pending: 2,
        failed: 1,
        delivered: 7,
        oldest_pending_at: Some(START),
        oldest_pending_age: Some(Duration::from_micros(12_500_000)),
    };
    let json = serde_json::to_value(state).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "pending": 2, "failed": 1, "delivered": 7,
            "oldest_pending_at": START.to_rfc3339(),
            "oldest_pending_age": "PT12.5S",
        })
    );
    assert_eq!(serde_json::from_value::<OutboxState>(json).unwrap(), state);
    let empty = serde_json::to_value(OutboxState::default()).unwrap();
    assert_eq!(empty["oldest_pending_age"], serde_json::Value::Null);
}

#[test]
fn verify_refuses_a_location_without_a_store_and_creates_none() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let err = verify_store(&StoreLocation::Embedded(missing.clone())).unwrap_err();
    assert_eq!(err.code(), "STORAGE_ERROR");
    assert!(err.to_string().contains("holds no fundcore store"), "{err}");
    assert!(!missing.exists(), "nothing created");
    let err = verify_store(&StoreLocation::Embedded(dir.path().to_owned())).unwrap_err();
    assert_eq!(err.code(), "STORAGE_ERROR");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
    let err = Engine::open_existing(&StoreLocation::Embedded(missing.clone()), Config::default())
        .unwrap_err();
    assert_eq!(err.code(), "STORAGE_ERROR");
    assert!(!missing.exists(), "nothing created");
}

#[test]
fn verify_refuses_an_embedded_store_another_engine_holds() {
    let store = TestStore::new(StoreKind::Sled);
    let engine = store.open(Config::default()).unwrap();
    let err = verify_store(&StoreLocation::parse(&store.location())).unwrap_err();
    assert!(matches!(err, fundcore::Error::StoreInUse { .. }), "{err}");
    drop(engine);
    assert_clean(&verified(&store), "once the engine is closed");
}

// ------------------------------------------------------------------ a damaged store

/// The clients of a small store: one left alone and three damaged afterwards.
struct Damage {
    untouched: ClientId,
    balance: ClientId,
    outbox: (ClientId, Transaction),
    idempotency: ClientId,
    /// The transaction the planted idempotency record names (none has this id).
    ghost: uuid::Uuid,
}

/// Builds a store whose every client subscribed (with an idempotency key) and cancelled once;
/// checks it is clean; returns the clients to damage.
fn store_to_damage(store: &TestStore) -> Damage {
    let engine = store.open(Config::default()).unwrap();
    let mut clients = Vec::new();
    let mut subscriptions = Vec::new();
    for name in ["Ana", "Beto", "Carla", "Dario"] {
        let client = engine
            .register_client(name, "c@example.com", "+573001234567", Channel::Email)
            .unwrap();
        subscriptions.push(engine.subscribe(client.id, 1, None, Some("k-1")).unwrap());
        engine.subscribe(client.id, 3, None, None).unwrap();
        engine.cancel(client.id, 3, None).unwrap();
        clients.push(client.id);
    }
    drop(engine);
    assert_clean(&verified(store), "before the damage");
    Damage {
        untouched: clients[0],
        balance: clients[1],
        outbox: (clients[2], subscriptions[2].clone()),
        idempotency: clients[3],
        ghost: uuid::Uuid::now_v7(),
    }
}

/// The idempotency record as the embedded store encodes it (the crate's own types are private;
/// this mirrors them, and a change of the encoding makes the damage unreadable, failing the
/// test loudly rather than passing it).
#[derive(serde::Serialize)]
enum StoredRequest {
    Subscribe {
        fund_id: u32,
        amount: Option<Decimal>,
    },
}

#[derive(serde::Serialize)]
struct StoredIdempotencyRecord {
    request: StoredRequest,
    transaction_id: uuid::Uuid,
}

/// Damages the embedded store through sled itself, as a disk fault or a hand with a tool would,
/// bypassing every write path of the crate: a balance changed, a subscription's outbox entry
/// removed, an idempotency record that names no transaction.
fn damage_embedded(dir: &std::path::Path, damage: &Damage) {
    let db = sled::open(dir).unwrap();
    let clients = db.open_tree("clients").unwrap();
    let key = damage.balance.as_bytes();
    let mut client: fundcore::Client = postcard::from_bytes(&clients.get(key).unwrap().unwrap())
        .expect("the embedded store's client encoding");
    client.balance += Decimal::new(1000, 0);
    clients
        .insert(key, postcard::to_stdvec(&client).unwrap())
        .unwrap();

    let transactions = db.open_tree("transactions").unwrap();
    let (owner, tx) = &damage.outbox;
    let mut entry_key = owner.as_bytes().to_vec();
    entry_key.extend_from_slice(tx.id.as_bytes());
    let stored: Transaction =
        postcard::take_from_bytes(&transactions.get(&entry_key).unwrap().unwrap())
            .expect("the embedded store's ledger entry starts with its transaction")
            .0;
    assert_eq!(&stored, tx);
    // The entry without its notification: the transaction, then `None`.
    let bare = postcard::to_stdvec(&(stored, None::<()>)).unwrap();
    transactions.insert(&entry_key, bare).unwrap();

    let idempotency = db.open_tree("idempotency").unwrap();
    let mut record_key = damage.idempotency.as_bytes().to_vec();
    record_key.extend_from_slice(b"ghost");
    let record = StoredIdempotencyRecord {
        request: StoredRequest::Subscribe {
            fund_id: 1,
            amount: None,
        },
        transaction_id: damage.ghost,
    };
    idempotency
        .insert(record_key, postcard::to_stdvec(&record).unwrap())
        .unwrap();
    db.flush().unwrap();
}

/// The same damage in SQL.
fn damage_postgres(url: &str, damage: &Damage) {
    let mut db = postgres::Client::connect(url, postgres::NoTls).unwrap();
    db.execute(
        "UPDATE fundcore_clients SET balance = balance + 1000 WHERE id = $1",
        &[&damage.balance.0],
    )
    .unwrap();
    let (owner, tx) = &damage.outbox;
    let removed = db
        .execute(
            "DELETE FROM fundcore_outbox WHERE client_id = $1 AND transaction_id = $2",
            &[&owner.0, &tx.id.0],
        )
        .unwrap();
    assert_eq!(removed, 1);
    db.execute(
        "INSERT INTO fundcore_idempotency_keys
             (client_id, key, request_kind, request_fund_id, request_amount, transaction_id)
         VALUES ($1, 'ghost', 'subscribe', 1, NULL, $2)",
        &[&damage.idempotency.0, &damage.ghost],
    )
    .unwrap();
}

fn damaged(store: &TestStore) -> Damage {
    let damage = store_to_damage(store);
    match store.kind {
        StoreKind::Sled => damage_embedded(std::path::Path::new(&store.location()), &damage),
        StoreKind::Postgres => damage_postgres(&store.location(), &damage),
    }
    damage
}

#[test]
fn verify_names_each_damaged_client_and_what_is_wrong() {
    for store in TestStore::each() {
        let damage = damaged(&store);
        let report = verified(&store);
        let found: Vec<(ClientId, Rule)> = report
            .violations
            .iter()
            .map(|v| (v.client.expect("a client's violation"), v.rule))
            .collect();
        assert_eq!(
            found,
            vec![
                (damage.balance, Rule::Reconciliation),
                (damage.balance, Rule::Replay),
                (damage.outbox.0, Rule::Outbox),
                (damage.idempotency, Rule::Idempotency),
            ],
            "{store}: {:#?}",
            report.violations
        );
        assert_eq!(report.violation_count, 4);
        let details: Vec<&str> = report
            .violations
            .iter()
            .map(|v| v.detail.as_str())
            .collect();
        assert_eq!(
            details[0],
            "balance 426000.00 + active subscriptions 75000.00 = 501000.00, not the initial \
             balance 500000.00"
        );
        assert_eq!(
            details[1],
            "replaying the history gives balance 425000.00, the store holds 426000.00"
        );
        assert_eq!(
            details[2],
            format!("subscription {} has no outbox entry", damage.outbox.1.id)
        );
        assert!(
            details[3].contains(&damage.ghost.to_string()) && details[3].contains("\"ghost\""),
            "{details:?}"
        );
        assert!(!found.iter().any(|(client, _)| *client == damage.untouched));
    }
}

#[test]
fn verify_finds_a_pending_notification_missing_from_the_embedded_due_queue() {
    let store = TestStore::new(StoreKind::Sled);
    let damage = store_to_damage(&store);
    // The queue's key: due time (8 bytes), client id, transaction id.
    let db = sled::open(store.location()).unwrap();
    let due = db.open_tree("outbox_due").unwrap();
    let (owner, tx) = &damage.outbox;
    let key = due
        .iter()
        .keys()
        .map(Result::unwrap)
        .find(|key| &key[8..24] == owner.as_bytes() && &key[24..] == tx.id.as_bytes())
        .expect("the subscription's entry is queued");
    due.remove(key).unwrap();
    db.flush().unwrap();
    drop((due, db));

    let report = verified(&store);
    let violations: Vec<String> = report.violations.iter().map(ToString::to_string).collect();
    assert_eq!(
        violations,
        ["store: [store_index] the outbox queues count 11 pending entries, the ledger holds 12"]
    );
}

// ------------------------------------------------------------------ the command

#[cfg(feature = "postgres")]
mod command {
    use std::process::{Command, Output};

    use super::*;

    fn fundcore(args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_fundcore"))
            .args(args)
            .output()
            .unwrap()
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[test]
    fn verify_exits_non_zero_naming_each_damaged_client() {
        for store in TestStore::each() {
            let damage = damaged(&store);
            let out = fundcore(&["verify", &store.location()]);
            let stdout = text(&out.stdout);
            assert_eq!(out.status.code(), Some(1), "{store}: {stdout}");
            assert!(stdout.contains("clients: 4, transactions: 12"), "{stdout}");
            assert!(stdout.contains("violations: 4"), "{stdout}");
            for (client, rule) in [
                (damage.balance, "reconciliation"),
                (damage.balance, "replay"),
                (damage.outbox.0, "outbox"),
                (damage.idempotency, "idempotency"),
            ] {
                let line = format!("client {client}: [{rule}] ");
                assert!(
                    stdout.contains(&line),
                    "{store}: no line {line:?} in\n{stdout}"
                );
            }
            assert!(!stdout.contains(&damage.untouched.to_string()), "{stdout}");
        }
    }

    #[test]
    fn verify_and_outbox_report_a_healthy_store_and_requeue_its_failed_notifications() {
        for store in TestStore::each() {
            let mut rng = SplitMix(7);
            let mut clients = Vec::new();
            let engine = store.open(config(true)).unwrap();
            random_operations(&engine, &mut rng, &mut clients, 300);
            // Some entries failed for good, some are pending (on funds open again).
            let reopened = FundChanges {
                active: Some(true),
                minimum: Some(Decimal::new(50_000, 0)),
                ..FundChanges::default()
            };
            for fund in 1..=3 {
                engine
                    .update_fund(fund, &reopened, &Actor::new("ops"))
                    .unwrap();
            }
            let ana = engine
                .register_client("Ana", "ana@example.com", "+573001234567", Channel::Email)
                .unwrap();
            engine.subscribe(ana.id, 1, None, None).unwrap();
            engine.subscribe(ana.id, 3, None, None).unwrap();
            let notifier = RecordingNotifier::new();
            notifier.script([Err(DeliveryError::Permanent("gone".into()))]);
            engine.dispatch_notifications(&notifier, 10_000).unwrap();
            engine.subscribe(ana.id, 2, None, None).unwrap();
            let state = engine.outbox_state().unwrap();
            assert!(state.failed > 0 && state.pending > 0, "{store}: {state:?}");
            drop(engine);

            let out = fundcore(&["verify", &store.location()]);
            let stdout = text(&out.stdout);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{store}: {stdout}{}",
                text(&out.stderr)
            );
            assert!(stdout.contains("violations: none"), "{stdout}");
            assert!(
                stdout.contains(&format!("clients: {}, ", clients.len() + 1)),
                "{stdout}"
            );

            let out = fundcore(&["outbox", &store.location()]);
            let stdout = text(&out.stdout);
            assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
            for line in [
                format!("pending: {}\n", state.pending),
                format!("failed: {}\n", state.failed),
                format!("delivered: {}\n", state.delivered),
            ] {
                assert!(stdout.contains(&line), "{store}: no {line:?} in\n{stdout}");
            }
            assert!(stdout.contains("oldest pending: 20"), "{stdout}");

            let out = fundcore(&["outbox", "retry-failed", &store.location()]);
            let stdout = text(&out.stdout);
            assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
            assert!(
                stdout.contains(&format!(": {} failed notifications requeued", state.failed)),
                "{stdout}"
            );
            let after =
                Engine::open_existing(&StoreLocation::parse(&store.location()), config(true))
                    .unwrap()
                    .outbox_state()
                    .unwrap();
            assert_eq!(
                (after.pending, after.failed, after.delivered),
                (state.pending + state.failed, 0, state.delivered),
                "{store}"
            );
        }
    }

    #[test]
    fn verify_passes_while_other_threads_and_processes_write_to_postgres() {
        if !common::stores::kinds().contains(&StoreKind::Postgres) {
            return common::stores::postgres_configured().unwrap();
        }
        let store = TestStore::new(StoreKind::Postgres);
        let engine = store.open(config(true)).unwrap();
        let clients: Vec<ClientId> = (0..6)
            .map(|i| {
                engine
                    .register_client(
                        &format!("C{i}"),
                        "c@example.com",
                        "+573001234567",
                        Channel::Sms,
                    )
                    .unwrap()
                    .id
            })
            .collect();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let runs = std::thread::scope(|scope| {
            for thread in 0..4u64 {
                let (engine, clients, stop) = (&engine, &clients, &stop);
                scope.spawn(move || {
                    let mut rng = SplitMix(thread);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let client = clients[rng.below(clients.len() as u64) as usize];
                        let fund = 1 + rng.below(5) as u32;
                        let key = (rng.below(3) == 0).then(|| format!("k-{}", rng.below(5)));
                        let _ = if rng.below(2) == 0 {
                            engine.subscribe(client, fund, None, key.as_deref())
                        } else {
                            engine.cancel(client, fund, key.as_deref())
                        };
                        if rng.below(20) == 0 {
                            let _ = engine.dispatch_notifications(&RecordingNotifier::new(), 5);
                        }
                    }
                });
            }
            let mut runs = Vec::new();
            for _ in 0..4 {
                runs.push(fundcore(&["verify", &store.location()]));
                runs.push(fundcore(&["outbox", &store.location()]));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            runs
        });
        for out in runs {
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}{}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        let report = verified(&store);
        assert_clean(&report, "after the writers stopped");
        assert!(report.transactions > 20, "the writers wrote: {report}");
    }

    /// The shell block of docs/stores.md that this file is named by (`run-by`).
    fn documented_commands() -> String {
        let block = common::documented_block("docs/stores.md", "verify.rs");
        assert!(block.len() >= 4, "{block:?}");
        block.join("\n")
    }

    #[test]
    fn the_commands_of_the_stores_page_run_as_written() {
        if !common::stores::kinds().contains(&StoreKind::Postgres) {
            return common::stores::postgres_configured().unwrap();
        }
        // The page's embedded store, `data/fundcore` in the working directory, and its database.
        let work = tempfile::tempdir().unwrap();
        let embedded = work.path().join("data/fundcore");
        let database = TestStore::new(StoreKind::Postgres);
        for engine in [
            Engine::open(&embedded, Config::default()).unwrap(),
            database.open(Config::default()).unwrap(),
        ] {
            let ana = engine
                .register_client("Ana", "ana@example.com", "+573001234567", Channel::Email)
                .unwrap();
            engine.subscribe(ana.id, 1, None, Some("k-1")).unwrap();
            engine.subscribe(ana.id, 3, None, None).unwrap();
            let notifier = RecordingNotifier::new();
            notifier.script([Err(DeliveryError::Permanent("gone".into()))]);
            engine.dispatch_notifications(&notifier, 10).unwrap();
        }
        let binaries = std::path::Path::new(env!("CARGO_BIN_EXE_fundcore"))
            .parent()
            .unwrap();
        let path = format!(
            "{}:{}",
            binaries.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("sh")
            .args(["-e", "-c", &documented_commands()])
            .current_dir(work.path())
            .env("PATH", path)
            .env("FUNDCORE_DATABASE_URL", database.location())
            .output()
            .unwrap();
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
        assert_eq!(stdout.matches("violations: none").count(), 2, "{stdout}");
        assert!(
            stdout.contains("fundcore verify data/fundcore\n"),
            "{stdout}"
        );
        assert!(
            stdout.contains("pending: 0\nfailed: 1\ndelivered: 1\noldest pending: none\n"),
            "{stdout}"
        );
        assert!(
            stdout.contains(": 1 failed notifications requeued"),
            "{stdout}"
        );
        assert!(
            !stdout.contains("postgres@"),
            "the database is shown without its credentials: {stdout}"
        );
    }

    #[test]
    fn usage_errors_exit_2() {
        for args in [
            &[][..],
            &["verify"],
            &["verify", "a", "b"],
            &["outbox"],
            &["outbox", "retry-failed"],
            &["outbox", "--all", "x"],
            &["audit", "x"],
        ] {
            let out = fundcore(args);
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            assert!(
                text(&out.stderr).contains("fundcore verify <directory"),
                "{args:?}"
            );
        }
        let help = fundcore(&["--help"]);
        assert!(help.status.success());
        assert!(text(&help.stdout).contains("fundcore outbox retry-failed"));
    }

    #[test]
    fn a_store_that_cannot_be_opened_is_a_storage_error_line_without_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        for command in [&["verify"][..], &["outbox"], &["outbox", "retry-failed"]] {
            let mut args = command.to_vec();
            let location = missing.to_str().unwrap();
            args.push(location);
            let out = fundcore(&args);
            assert_eq!(out.status.code(), Some(3), "{args:?}");
            let stderr = text(&out.stderr);
            assert!(
                stderr.starts_with(&format!("fundcore {}: STORAGE_ERROR: ", command.join(" "))),
                "{stderr}"
            );
            assert!(stderr.contains("holds no fundcore store"), "{stderr}");
            assert!(!missing.exists(), "{args:?} created the store");
        }
        if !common::stores::kinds().contains(&StoreKind::Postgres) {
            return common::stores::postgres_configured().unwrap();
        }
        // A database without fundcore's tables is refused, and left without them.
        let empty = common::stores::fresh_database();
        for command in [&["verify"][..], &["outbox"]] {
            let mut args = command.to_vec();
            args.push(&empty);
            let out = fundcore(&args);
            assert_eq!(out.status.code(), Some(3));
            assert!(
                text(&out.stderr).contains("STORAGE_ERROR: ")
                    && text(&out.stderr).contains("holds no fundcore store"),
                "{}",
                text(&out.stderr)
            );
        }
        let mut db = postgres::Client::connect(&empty, postgres::NoTls).unwrap();
        let tables: i64 = db
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'fundcore%'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(tables, 0, "nothing created");

        // A wrong password: the reason, the server, never the password.
        let server = common::stores::server_url();
        let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
        admin
            .batch_execute(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fundcore_password_probe')
                   THEN CREATE ROLE fundcore_password_probe LOGIN PASSWORD 'right-secret';
                   END IF;
                 END $$",
            )
            .unwrap();
        let host = server
            .trim_start_matches("postgresql://")
            .split_once('@')
            .map(|(_, rest)| rest)
            .unwrap();
        let url = format!("postgresql://fundcore_password_probe:wrong-secret@{host}");
        let out = fundcore(&["verify", &url]);
        assert_eq!(out.status.code(), Some(3));
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("fundcore verify: STORAGE_ERROR: "),
            "{stderr}"
        );
        assert!(
            stderr.contains("password authentication failed"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("wrong-secret"),
            "never the password: {stderr}"
        );
    }
}
