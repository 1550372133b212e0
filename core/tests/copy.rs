//! `fundcore copy`: embedded → PostgreSQL → embedded gives the identical state, record by record
//! and id by id, and the copies keep working (idempotency keys, the outbox).
#![cfg(feature = "postgres")]

mod common;

use std::process::Command;

use common::stores::fresh_database;
use fundcore::{
    Channel, ClientId, Config, DeliveryError, Engine, RecordingNotifier, StoreLocation, copy_store,
};

/// A store with every kind of record: subscriptions, cancellations, idempotency keys, and
/// notifications delivered, pending (retrying) and failed.
fn populated(dir: &std::path::Path) -> Vec<ClientId> {
    let engine = Engine::open(dir, Config::default()).unwrap();
    let mut clients = Vec::new();
    for i in 0..5 {
        let channel = if i % 2 == 0 {
            Channel::Email
        } else {
            Channel::Sms
        };
        let client = engine
            .register_client(
                &format!("Cliente {i}"),
                "c@example.com",
                "+573001234567",
                channel,
            )
            .unwrap();
        engine
            .subscribe(client.id, 1, None, Some(&format!("k-{i}")))
            .unwrap();
        engine
            .subscribe(client.id, 3, Some("60000.50".parse().unwrap()), None)
            .unwrap();
        if i % 2 == 1 {
            engine.cancel(client.id, 1, Some("cancel-1")).unwrap();
        }
        clients.push(client.id);
    }
    let notifier = RecordingNotifier::new();
    notifier.script([
        Ok(()),
        Err(DeliveryError::Retryable("timeout".into())),
        Err(DeliveryError::Permanent("550 no such user".into())),
    ]);
    engine.dispatch_notifications(&notifier, 3).unwrap();
    clients
}

fn snapshot_of(location: &str, clients: &[ClientId]) -> common::Snapshot {
    let engine = match StoreLocation::parse(location) {
        StoreLocation::Postgres(url) => Engine::connect(&url, Config::default()).unwrap(),
        StoreLocation::Embedded(path) => Engine::open(path, Config::default()).unwrap(),
    };
    let snapshot = common::snapshot(&engine, clients);
    common::check_invariants(&engine, clients).unwrap();
    snapshot
}

#[test]
fn embedded_to_postgres_to_embedded_gives_identical_state() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let back = dir.path().join("back");
    let clients = populated(&source);
    let original = snapshot_of(source.to_str().unwrap(), &clients);
    let statuses: Vec<_> = original
        .notifications
        .iter()
        .flatten()
        .map(|n| n.status)
        .collect();
    assert!(
        statuses.len() >= 10
            && statuses
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len()
                == 3
    );

    let url = fresh_database();
    let report = copy_store(
        &StoreLocation::Embedded(source.clone()),
        &StoreLocation::parse(&url),
    )
    .unwrap();
    assert_eq!((report.clients, report.funds), (5, 5));
    assert_eq!(report.transactions, 12);
    assert_eq!(snapshot_of(&url, &clients), original);

    copy_store(
        &StoreLocation::parse(&url),
        &StoreLocation::Embedded(back.clone()),
    )
    .unwrap();
    assert_eq!(snapshot_of(back.to_str().unwrap(), &clients), original);

    // The copy keeps working: a replayed key returns the original, the outbox goes on.
    let engine = Engine::connect(&url, Config::default()).unwrap();
    let replay = engine.subscribe(clients[0], 1, None, Some("k-0")).unwrap();
    assert_eq!(replay, original.histories[0].last().unwrap().clone());
    let report = engine
        .dispatch_notifications(&RecordingNotifier::new(), 100)
        .unwrap();
    assert!(
        report.delivered >= 1,
        "pending entries were copied as pending"
    );
}

#[test]
fn a_target_that_holds_clients_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    populated(&source);
    let url = fresh_database();
    let engine = Engine::connect(&url, Config::default()).unwrap();
    let existing = engine
        .register_client("Ana", "ana@example.com", "+573001234567", Channel::Email)
        .unwrap();
    drop(engine);
    let err = copy_store(
        &StoreLocation::Embedded(source),
        &StoreLocation::parse(&url),
    )
    .unwrap_err();
    assert_eq!(err.code(), "STORAGE_ERROR");
    assert!(err.to_string().contains("empty"), "{err}");
    let engine = Engine::connect(&url, Config::default()).unwrap();
    assert_eq!(engine.client(existing.id).unwrap(), existing);
}

#[test]
fn the_command_copies_and_says_what_it_copied() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let clients = populated(&source);
    let original = snapshot_of(source.to_str().unwrap(), &clients);
    let url = fresh_database();
    let out = Command::new(env!("CARGO_BIN_EXE_fundcore"))
        .args(["copy", "--from", source.to_str().unwrap(), "--to", &url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("5 clients, 12 transactions"), "{stdout}");
    assert_eq!(snapshot_of(&url, &clients), original);

    let again = Command::new(env!("CARGO_BIN_EXE_fundcore"))
        .args(["copy", "--from", source.to_str().unwrap(), "--to", &url])
        .output()
        .unwrap();
    assert!(!again.status.success(), "a non-empty target is refused");
    let usage = Command::new(env!("CARGO_BIN_EXE_fundcore"))
        .arg("copy")
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
}
