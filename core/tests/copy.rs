//! `fundcore copy`: embedded → PostgreSQL → embedded gives the identical state, record by record
//! and id by id (the catalogue as administrators left it and the audit trail included), and the
//! copies keep working (idempotency keys, the outbox, the catalogue's rules).
#![cfg(feature = "postgres")]

mod common;

use std::process::Command;

use common::stores::fresh_database;
use fundcore::{
    Actor, AuditAction, AuditEvent, Category, Channel, ClientId, Config, ContactChanges, Decimal,
    DeliveryError, Engine, Fund, FundChanges, RecordingNotifier, StoreLocation, copy_store,
};

/// A store with every kind of record: subscriptions, cancellations, idempotency keys,
/// notifications delivered, pending (retrying) and failed, a fund created and funds changed
/// after the store was made, a client's contact data changed, and their audit events.
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
    let actor = Actor::new("ops@example.com").with_request_id("req-42");
    engine
        .create_fund(
            6,
            "FONDO_NUEVO",
            Decimal::new(80_000, 0),
            Category::Fic,
            &actor,
        )
        .unwrap();
    engine.subscribe(clients[0], 6, None, None).unwrap();
    let changes = [
        (1, minimum(90_000)),
        (
            2,
            FundChanges {
                active: Some(false),
                ..FundChanges::default()
            },
        ),
        (
            6,
            FundChanges {
                name: Some("FONDO_NUEVO_II".into()),
                ..minimum(85_000)
            },
        ),
    ];
    for (fund, change) in &changes {
        engine
            .update_fund(*fund, change, &Actor::new("admin"))
            .unwrap();
    }
    let to_email = ContactChanges {
        name: Some("Cliente Uno".into()),
        channel: Some(Channel::Email),
        ..ContactChanges::default()
    };
    engine.update_client(clients[1], &to_email, &actor).unwrap();
    engine.subscribe(clients[1], 1, None, None).unwrap();
    let notifier = RecordingNotifier::new();
    notifier.script([
        Ok(()),
        Err(DeliveryError::Retryable("timeout".into())),
        Err(DeliveryError::Permanent("550 no such user".into())),
    ]);
    engine.dispatch_notifications(&notifier, 3).unwrap();
    clients
}

fn minimum(amount: i64) -> FundChanges {
    FundChanges {
        minimum: Some(Decimal::new(amount, 0)),
        ..FundChanges::default()
    }
}

fn open(location: &str) -> Engine {
    match StoreLocation::parse(location) {
        StoreLocation::Postgres(url) => Engine::connect(&url, Config::default()).unwrap(),
        StoreLocation::Embedded(path) => Engine::open(path, Config::default()).unwrap(),
    }
}

fn snapshot_of(location: &str, clients: &[ClientId]) -> common::Snapshot {
    let engine = open(location);
    let snapshot = common::snapshot(&engine, clients);
    common::check_invariants(&engine, clients).unwrap();
    snapshot
}

/// The whole audit trail, newest first, page by page.
fn audit_trail(engine: &Engine) -> Vec<AuditEvent> {
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = engine.audit_events(2, before).unwrap();
        all.extend(page.items);
        match page.next {
            Some(next) => before = Some(next),
            None => return all,
        }
    }
}

/// The catalogue and the audit trail a store serves.
fn administration_of(location: &str) -> (Vec<Fund>, Vec<AuditEvent>) {
    let engine = open(location);
    (engine.funds().unwrap(), audit_trail(&engine))
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

    // The catalogue as administrators left it, not as it was seeded.
    let (catalogue, trail) = administration_of(source.to_str().unwrap());
    let described: Vec<_> = catalogue
        .iter()
        .map(|f| (f.id, f.name.as_str(), f.minimum, f.active))
        .collect();
    assert_eq!(described.len(), 6);
    assert_eq!(described[0].2, Decimal::new(90_000, 0));
    assert!(!described[1].3, "fund 2 closed");
    assert_eq!(
        described[5],
        (6, "FONDO_NUEVO_II", Decimal::new(85_000, 0), true)
    );
    let actions: Vec<_> = trail.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::ClientUpdated,
            AuditAction::FundUpdated,
            AuditAction::FundUpdated,
            AuditAction::FundUpdated,
            AuditAction::FundCreated,
        ]
    );

    let url = fresh_database();
    let report = copy_store(
        &StoreLocation::Embedded(source.clone()),
        &StoreLocation::parse(&url),
    )
    .unwrap();
    assert_eq!((report.clients, report.funds), (5, 6));
    assert_eq!((report.transactions, report.audit_events), (14, 5));
    assert_eq!(snapshot_of(&url, &clients), original);
    assert_eq!(administration_of(&url), (catalogue.clone(), trail.clone()));

    copy_store(
        &StoreLocation::parse(&url),
        &StoreLocation::Embedded(back.clone()),
    )
    .unwrap();
    assert_eq!(snapshot_of(back.to_str().unwrap(), &clients), original);
    assert_eq!(
        administration_of(back.to_str().unwrap()),
        (catalogue, trail.clone())
    );

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
    // The copied catalogue's rules hold, and the trail goes on after the copied events.
    let err = engine.subscribe(clients[2], 2, None, None).unwrap_err();
    assert_eq!(err.code(), "FUND_INACTIVE");
    let tx = engine.subscribe(clients[2], 6, None, None).unwrap();
    assert_eq!(
        (tx.fund_name.as_str(), tx.amount),
        ("FONDO_NUEVO_II", Decimal::new(85_000, 0))
    );
    engine
        .update_fund(6, &minimum(86_000), &Actor::new("admin"))
        .unwrap();
    let continued = audit_trail(&engine);
    assert_eq!(continued[1..], trail[..]);
    assert_eq!(continued[0].target, "6");
}

#[test]
fn a_target_that_holds_audit_events_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    populated(&source);
    let url = fresh_database();
    let engine = Engine::connect(&url, Config::default()).unwrap();
    engine
        .update_fund(3, &minimum(55_000), &Actor::new("admin"))
        .unwrap();
    drop(engine);
    let err = copy_store(
        &StoreLocation::Embedded(source),
        &StoreLocation::parse(&url),
    )
    .unwrap_err();
    assert_eq!(err.code(), "STORAGE_ERROR");
    assert!(err.to_string().contains("audit events"), "{err}");
    let engine = Engine::connect(&url, Config::default()).unwrap();
    assert_eq!(audit_trail(&engine).len(), 1, "left alone");
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
    assert!(
        stdout.contains("6 funds, 5 clients, 14 transactions"),
        "{stdout}"
    );
    assert!(stdout.contains("5 audit events"), "{stdout}");
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
