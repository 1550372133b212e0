//! A PostgreSQL backup drill (SPEC §10.2): the `pg_dump` / `pg_restore` / `fundcore verify`
//! block of docs/stores.md ("Backing up and restoring a database"), run as written while
//! engines write.
//!
//! What it proves, on the project's PostgreSQL (15):
//! - a custom-format dump taken while two engines (six threads) subscribe, cancel and dispatch
//!   restores into an empty database whose books `fundcore verify` finds clean, so no change is
//!   half in the dump (balance, subscription, transaction, outbox entry and idempotency record
//!   of a change are all in it or all out);
//! - every transaction acknowledged to a caller before the dump started is in the restored
//!   database, equal in every field (`balance_after` included);
//! - each client's restored history is the start of its history in the source (oldest first):
//!   the dump is one moment of the source, and invents or reorders nothing;
//! - the database was live: changes were acknowledged while the block ran, some of them after
//!   the dump's snapshot and so not in it;
//! - the restored database serves an engine of this library as a store of its own.

#![cfg(feature = "postgres")]

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::SplitMix;
use common::stores::{StoreKind, fresh_database, kinds, postgres_configured};
use fundcore::{
    Channel, ClientId, Config, DeliveryError, Engine, RecordingNotifier, StoreLocation,
    Transaction, TransactionId, verify_store,
};

/// The shell block of docs/stores.md that names this file (`run-by`).
fn documented_block() -> String {
    let block = common::documented_block("docs/stores.md", "pg_backup.rs");
    assert!(
        block.iter().any(|l| l.starts_with("pg_dump "))
            && block.iter().any(|l| l.starts_with("pg_restore "))
            && block.iter().any(|l| l.starts_with("fundcore verify ")),
        "{block:?}"
    );
    block.join("\n")
}

/// `PATH` with the test server's own programs first (`pg_dump` and `pg_restore` of its major
/// version, as the page says) and the `fundcore` command.
fn search_path() -> String {
    let fundcore = std::path::Path::new(env!("CARGO_BIN_EXE_fundcore"))
        .parent()
        .unwrap()
        .display()
        .to_string();
    let pg =
        common::stores::pg_bin_dir().map_or_else(String::new, |dir| format!("{}:", dir.display()));
    format!(
        "{pg}{fundcore}:{}",
        std::env::var("PATH").unwrap_or_default()
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every transaction of a client, oldest first.
fn oldest_first(engine: &Engine, client: ClientId) -> Vec<Transaction> {
    let mut history = common::full_history(engine, client);
    history.reverse();
    history
}

#[test]
fn a_dump_taken_while_engines_write_restores_every_acknowledged_change_and_verifies_clean() {
    if !kinds().contains(&StoreKind::Postgres) {
        return postgres_configured().unwrap();
    }
    let started = Instant::now();
    let source = fresh_database();
    let restored = fresh_database();
    let engines = [
        Engine::connect(&source, Config::default()).unwrap(),
        Engine::connect(&source, Config::default()).unwrap(),
    ];
    let clients: Vec<ClientId> = (0..8)
        .map(|i| {
            engines[0]
                .register_client(
                    &format!("Cliente {i}"),
                    "c@example.com",
                    "+573001234567",
                    if i % 2 == 0 {
                        Channel::Email
                    } else {
                        Channel::Sms
                    },
                )
                .unwrap()
                .id
        })
        .collect();

    // Every transaction a call returned, in the order the calls returned.
    let acknowledged: Mutex<Vec<Transaction>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let work = tempfile::tempdir().unwrap();
    let (before_dump, during_block, out) = std::thread::scope(|scope| {
        for thread in 0..6u64 {
            let engine = &engines[thread as usize % 2];
            let (clients, acknowledged, stop) = (&clients, &acknowledged, &stop);
            scope.spawn(move || {
                let mut rng = SplitMix(thread + 1);
                while !stop.load(Ordering::Relaxed) {
                    let client = clients[rng.below(clients.len() as u64) as usize];
                    let fund = 1 + rng.below(5) as u32;
                    let key = (rng.below(3) == 0).then(|| format!("k-{thread}-{}", rng.next()));
                    let done = if rng.below(2) == 0 {
                        engine.subscribe(client, fund, None, key.as_deref())
                    } else {
                        engine.cancel(client, fund, key.as_deref())
                    };
                    if let Ok(tx) = done {
                        acknowledged.lock().unwrap().push(tx);
                    }
                    if rng.below(25) == 0 {
                        let notifier = RecordingNotifier::new();
                        notifier.script([
                            Ok(()),
                            Err(DeliveryError::Permanent("mailbox unknown".into())),
                        ]);
                        let _ = engine.dispatch_notifications(&notifier, 3);
                    }
                }
            });
        }
        // Let the books fill, then take what was acknowledged before the dump starts.
        while acknowledged.lock().unwrap().len() < 150 {
            std::thread::sleep(Duration::from_millis(20));
        }
        let before_dump: Vec<Transaction> = acknowledged.lock().unwrap().clone();
        let out = Command::new("sh")
            .args(["-e", "-c", &documented_block()])
            .current_dir(work.path())
            .env("PATH", search_path())
            .env("FUNDCORE_DATABASE_URL", &source)
            .env("FUNDCORE_RESTORED_URL", &restored)
            .output()
            .unwrap();
        let during_block = acknowledged.lock().unwrap().len() - before_dump.len();
        stop.store(true, Ordering::Relaxed);
        (before_dump, during_block, out)
    });
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "the documented block failed:\n{stdout}{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("violations: none"), "{stdout}");
    assert!(
        during_block > 0,
        "the engines acknowledged nothing while the dump ran"
    );

    // The restored database, checked through the library.
    let report = verify_store(&StoreLocation::parse(&restored)).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.clients, clients.len() as u64);
    let engine = Engine::connect(&restored, Config::default()).unwrap();
    for tx in &before_dump {
        assert_eq!(
            &engine.transaction(tx.id).unwrap(),
            tx,
            "acknowledged before the dump started, not in the restored database as acknowledged"
        );
    }
    // Every restored transaction was acknowledged to its caller (before, during or after the
    // dump): the dump holds no change that no caller was told of.
    let acknowledged = acknowledged.into_inner().unwrap();
    let by_id: HashMap<TransactionId, &Transaction> =
        acknowledged.iter().map(|tx| (tx.id, tx)).collect();
    assert_eq!(by_id.len(), acknowledged.len(), "ids are unique");
    let mut restored_count = 0;
    for &client in &clients {
        let (kept, now) = (
            oldest_first(&engine, client),
            oldest_first(&engines[0], client),
        );
        assert!(
            now.starts_with(&kept),
            "client {client}: the restored history is not the start of the source's"
        );
        let balance = kept
            .last()
            .map_or(engine.initial_balance(), |tx| tx.balance_after);
        assert_eq!(engine.client(client).unwrap().balance, balance);
        for tx in &kept {
            assert_eq!(by_id.get(&tx.id), Some(&tx), "restored, never acknowledged");
        }
        restored_count += kept.len();
    }
    assert_eq!(restored_count as u64, report.transactions);
    assert!(
        acknowledged.len() > restored_count,
        "changes acknowledged after the dump's snapshot are not in it: the database was live"
    );

    // The restored database is a store of its own: an engine writes to it.
    let ana = engine
        .register_client("Ana", "ana@example.com", "+573001234567", Channel::Email)
        .unwrap();
    let tx = engine
        .subscribe(ana.id, 1, None, Some("after-restore"))
        .unwrap();
    assert_eq!(tx.balance_after, engine.initial_balance() - tx.amount);
    let report = verify_store(&StoreLocation::parse(&restored)).unwrap();
    assert!(report.is_clean(), "{report}");
    eprintln!(
        "pg_backup: {} acknowledged before the dump, {during_block} while the block ran, \
         {restored_count} transactions restored, {:.1} s",
        before_dump.len(),
        started.elapsed().as_secs_f64()
    );
}
