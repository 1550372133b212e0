//! Online backups of the embedded store (`Engine::backup`, `fundcore backup`), on real sled
//! directories.
//!
//! What they prove:
//! - backups taken while threads subscribe, cancel, dispatch notifications and change clients
//!   and funds hold every change acknowledged before each backup started, field for field, and
//!   nothing half applied: each copy opens as a store of its own, its clients keep the
//!   invariants (balance + active subscriptions = initial balance, histories replay),
//!   `fundcore verify` finds it clean (outbox queues included), each client's history is the
//!   start of the source's, and each client's name is the one its last audit event says;
//! - a destination that exists (a file, an empty or a full directory) is refused with
//!   `VALIDATION_ERROR` on `dest` and left as it was; a parent that cannot be written is a
//!   `STORAGE_ERROR` naming it; neither leaves a partial directory behind;
//! - a PostgreSQL store refuses, pointing at `pg_dump`;
//! - `fundcore backup` copies a store not in use, and refuses one in use.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::stores::{StoreKind, TestStore, kinds};
use common::{SplitMix, check_invariants, full_history};
use fundcore::{
    Actor, Channel, ClientId, Config, ContactChanges, DeliveryError, Engine, ErrorCode,
    FundChanges, Notification, Notifier, StoreLocation, Transaction, TransactionId, verify_store,
};

const CLIENTS: usize = 120;
const WRITERS: usize = 4;
const BACKUPS: usize = 4;

fn config() -> Config {
    Config::builder()
        .max_attempts(2)
        .retry_base_delay(Duration::ZERO)
        .build()
        .unwrap()
}

/// Delivers two notifications in three, fails the rest (retryable, then failed for good).
struct Flaky(AtomicU64);

impl Notifier for Flaky {
    fn send(&self, _notification: &Notification) -> Result<(), DeliveryError> {
        match self.0.fetch_add(1, Ordering::Relaxed) % 3 {
            0 => Err(DeliveryError::Retryable("mail server busy".into())),
            _ => Ok(()),
        }
    }
}

/// A change a caller was told of, and when the call returned.
struct Acknowledged {
    at: Instant,
    transaction: Transaction,
}

/// A client's name as an administrator set it, and when the call returned.
struct Renamed {
    at: Instant,
    client: ClientId,
    name: String,
}

#[test]
fn backups_under_load_hold_every_acknowledged_change_and_none_half() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("store");
    let engine = Engine::open(&source, config()).unwrap();
    let clients: Vec<ClientId> = (0..CLIENTS)
        .map(|i| {
            let channel = if i % 2 == 0 {
                Channel::Email
            } else {
                Channel::Sms
            };
            engine
                .register_client(
                    &format!("Cliente {i}"),
                    &format!("c{i}@example.com"),
                    "+573001234567",
                    channel,
                )
                .unwrap()
                .id
        })
        .collect();
    let acknowledged: Mutex<Vec<Acknowledged>> = Mutex::new(Vec::new());
    let renamed: Mutex<Vec<Renamed>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let mut backups: Vec<(Instant, PathBuf)> = Vec::new();

    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let (engine, clients, acknowledged, stop) = (&engine, &clients, &acknowledged, &stop);
            scope.spawn(move || {
                let mut rng = SplitMix(writer as u64 + 1);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let client = clients[rng.below(CLIENTS as u64) as usize];
                    let fund = 1 + rng.below(5) as u32;
                    n += 1;
                    let key = format!("w{writer}-{n}");
                    let key = n.is_multiple_of(3).then_some(key.as_str());
                    let result = if rng.below(2) == 0 {
                        engine.subscribe(client, fund, None, key)
                    } else {
                        engine.cancel(client, fund, key)
                    };
                    if let Ok(transaction) = result {
                        let at = Instant::now();
                        acknowledged
                            .lock()
                            .unwrap()
                            .push(Acknowledged { at, transaction });
                    }
                }
            });
        }
        {
            let (engine, stop) = (&engine, &stop);
            scope.spawn(move || {
                let notifier = Flaky(AtomicU64::new(0));
                while !stop.load(Ordering::Relaxed) {
                    engine.dispatch_notifications(&notifier, 50).unwrap();
                    engine.retry_failed_notifications(10).unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
        }
        {
            let (engine, clients, renamed, stop) = (&engine, &clients, &renamed, &stop);
            scope.spawn(move || {
                let mut rng = SplitMix(99);
                let ops = Actor::new("ops");
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let client = clients[rng.below(CLIENTS as u64) as usize];
                    let name = format!("Renombrado {n}");
                    let changes = ContactChanges {
                        name: Some(name.clone()),
                        ..ContactChanges::default()
                    };
                    engine.update_client(client, &changes, &ops).unwrap();
                    let at = Instant::now();
                    renamed.lock().unwrap().push(Renamed { at, client, name });
                    let minimum = fundcore::Decimal::from(50_000 + 1_000 * (n % 10));
                    let changes = FundChanges {
                        minimum: Some(minimum),
                        ..FundChanges::default()
                    };
                    engine.update_fund(3, &changes, &ops).unwrap();
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        }
        for i in 0..BACKUPS {
            std::thread::sleep(Duration::from_millis(150));
            let dest = dir.path().join(format!("backup-{i}"));
            let started = Instant::now();
            engine.backup(&dest).unwrap();
            backups.push((started, dest));
        }
        std::thread::sleep(Duration::from_millis(50));
        stop.store(true, Ordering::Relaxed);
    });

    let acknowledged = acknowledged.into_inner().unwrap();
    let renamed = renamed.into_inner().unwrap();
    let final_histories: HashMap<ClientId, Vec<Transaction>> = clients
        .iter()
        .map(|&c| (c, oldest_first(full_history(&engine, c))))
        .collect();
    let mut copied_during_load = 0;
    for (started, dest) in &backups {
        let before: Vec<&Acknowledged> = acknowledged.iter().filter(|a| a.at < *started).collect();
        let report = verify_store(&StoreLocation::Embedded(dest.clone())).unwrap();
        assert!(report.is_clean(), "{}: {report}", dest.display());
        let copy = Engine::open(dest, config()).unwrap();
        for ack in &before {
            assert_eq!(
                copy.transaction(ack.transaction.id).as_ref(),
                Ok(&ack.transaction),
                "{}: a transaction acknowledged before the backup started",
                dest.display()
            );
        }
        check_invariants(&copy, &clients).unwrap();
        let audit = every_audit_event(&copy);
        let mut copied = 0;
        for &client in &clients {
            // The copy is a moment of the source: each history the start of the final one.
            let history = oldest_first(full_history(&copy, client));
            let all = &final_histories[&client];
            assert_eq!(history[..], all[..history.len()], "{client}");
            copied += history.len();
            // Each client's name is the one its last audit event set (or the first).
            let last_rename = audit
                .iter()
                .filter(|event| event.target == client.to_string())
                .filter_map(|event| event.after.get("name")?.as_str())
                .next_back();
            let name = copy.client(client).unwrap().name;
            match last_rename {
                Some(renamed_to) => assert_eq!(name, renamed_to, "{client}"),
                None => assert!(name.starts_with("Cliente "), "{client}: {name}"),
            }
        }
        for rename in renamed.iter().filter(|r| r.at < *started) {
            let in_copy = audit.iter().any(|event| {
                event.target == rename.client.to_string()
                    && event.after.get("name").and_then(|v| v.as_str()) == Some(&rename.name)
            });
            assert!(in_copy, "an acknowledged rename to {}", rename.name);
        }
        assert!(copied >= before.len());
        copied_during_load += copied - before.len();
        // A store of its own: a change to the copy is not in the source.
        let tx = copy
            .subscribe(clients[0], 5, None, None)
            .or_else(|_| copy.cancel(clients[0], 5, None));
        let tx = tx.unwrap();
        assert_eq!(
            engine.transaction(tx.id).unwrap_err().code(),
            ErrorCode::TransactionNotFound
        );
    }
    assert!(
        acknowledged.len() > 200,
        "the load ran: {} changes",
        acknowledged.len()
    );
    // Changes committed while a backup ran were taken or not, whole; some were taken.
    eprintln!(
        "{} changes acknowledged; {copied_during_load} transactions in copies beyond those \
         acknowledged before each backup started",
        acknowledged.len()
    );
    assert_no_partial_directory(dir.path());
}

fn oldest_first(mut history: Vec<Transaction>) -> Vec<Transaction> {
    history.sort_by_key(|tx| tx.id);
    history
}

fn every_audit_event(engine: &Engine) -> Vec<fundcore::AuditEvent> {
    let mut events = Vec::new();
    let mut before = None;
    loop {
        let page = engine.audit_events(200, before).unwrap();
        events.extend(page.items);
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    events.reverse(); // oldest first
    events
}

fn assert_no_partial_directory(parent: &Path) {
    let partial: Vec<String> = std::fs::read_dir(parent)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".partial-"))
        .collect();
    assert!(partial.is_empty(), "{partial:?}");
}

fn engine_with_a_client(path: &Path) -> (Engine, TransactionId) {
    let engine = Engine::open(path, config()).unwrap();
    let client = engine
        .register_client("Ana", "ana@example.com", "+573001234567", Channel::Email)
        .unwrap();
    let tx = engine.subscribe(client.id, 1, None, None).unwrap();
    (engine, tx.id)
}

#[test]
fn a_destination_that_exists_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine_with_a_client(&dir.path().join("store"));
    let file = dir.path().join("a-file");
    std::fs::write(&file, "keep me").unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("inside"), "keep me too").unwrap();
    for dest in [&file, &empty, &full] {
        let err = engine.backup(dest).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError, "{err}");
        assert_eq!(err.field(), Some("dest"));
        let path = dest.display().to_string();
        assert!(err.to_string().contains(&path), "{err}");
        assert!(
            err.message(fundcore::Locale::En)
                .contains("already exists; a backup never overwrites anything"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_to_string(full.join("inside")).unwrap(),
        "keep me too"
    );
    assert_eq!(std::fs::read_dir(&full).unwrap().count(), 1);
    assert_no_partial_directory(dir.path());
}

#[test]
fn a_parent_that_cannot_be_written_is_a_storage_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine_with_a_client(&dir.path().join("store"));
    let mut parents: Vec<PathBuf> = vec![
        // Not even root may create a directory in /sys.
        PathBuf::from("/sys"),
        dir.path().join("missing"),
    ];
    let read_only = dir.path().join("read-only");
    std::fs::create_dir(&read_only).unwrap();
    set_mode(&read_only, 0o555);
    if std::fs::write(read_only.join("probe"), "").is_err() {
        parents.push(read_only.clone()); // root writes anyway; others may not
    }
    for parent in &parents {
        let dest = parent.join("fundcore-backup");
        let err = engine.backup(&dest).unwrap_err();
        assert_eq!(err.code(), ErrorCode::StorageError, "{err}");
        assert!(
            err.to_string().contains(&parent.display().to_string()),
            "{err}"
        );
        assert!(!dest.exists());
    }
    set_mode(&read_only, 0o755);
    assert_no_partial_directory(dir.path());
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_backup_of_an_idle_store_is_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, tx) = engine_with_a_client(&dir.path().join("store"));
    let dest = dir.path().join("copy");
    engine.backup(&dest).unwrap();
    // A backup written, then the same destination again: refused.
    assert_eq!(
        engine.backup(&dest).unwrap_err().code(),
        ErrorCode::ValidationError
    );
    drop(engine);
    let source = Engine::open(dir.path().join("store"), config()).unwrap();
    let copy = Engine::open(&dest, config()).unwrap();
    assert_eq!(copy.transaction(tx), source.transaction(tx));
    assert_eq!(copy.funds(), source.funds());
    assert_eq!(copy.initial_balance(), source.initial_balance());
    assert_eq!(copy.outbox_state().unwrap().pending, 1);
}

#[test]
fn a_postgres_store_refuses_and_points_at_pg_dump() {
    for kind in kinds() {
        if kind != StoreKind::Postgres {
            continue;
        }
        let store = TestStore::new(kind);
        let engine = store.open(common::stores::engine_config()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("copy");
        let err = engine.backup(&dest).unwrap_err();
        assert_eq!(err.code(), ErrorCode::StorageError, "{err}");
        assert!(err.to_string().contains("pg_dump"), "{err}");
        assert!(!dest.exists());
    }
}

// ------------------------------------------------------------------ the command

#[cfg(feature = "postgres")]
mod command {
    use std::process::{Command, Output};

    use super::*;

    fn fundcore(args: &[&Path]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_fundcore"))
            .arg("backup")
            .args(args)
            .output()
            .unwrap()
    }

    #[test]
    fn the_command_backs_up_a_store_not_in_use_and_refuses_one_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let (engine, tx) = engine_with_a_client(&store);

        let dest = dir.path().join("while-open");
        let out = fundcore(&[&store, &dest]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(
            stderr.contains("already open in another process"),
            "{stderr}"
        );
        assert!(!dest.exists());

        drop(engine);
        let dest = dir.path().join("closed");
        let out = fundcore(&[&store, &dest]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("fundcore verify"), "{stdout}");
        let report = verify_store(&StoreLocation::Embedded(dest.clone())).unwrap();
        assert!(report.is_clean() && report.transactions == 1, "{report}");
        let copy = Engine::open(&dest, config()).unwrap();
        assert_eq!(copy.transaction(tx).unwrap().id, tx);

        // Once more to the same destination: refused, the copy untouched.
        let out = fundcore(&[&store, &dest]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("VALIDATION_ERROR"), "{stderr}");
        assert!(stderr.contains(&dest.display().to_string()), "{stderr}");
        assert_eq!(copy.transaction(tx).unwrap().id, tx);
    }
}
