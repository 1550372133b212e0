//! The PostgreSQL store behind PgBouncer in transaction pooling mode (SPEC §10.1 "Poolers"):
//! with `prepared_statements(false)` every operation works, engines in several threads sharing
//! idempotency keys make each change once; with prepared statements on, the STORAGE_ERROR
//! names the setting to change. The multi-process suites of tests/postgres.rs run behind the
//! pooler too (`make test-pooler`).
//!
//! These tests need FUNDCORE_TEST_POOLER_URL (scripts/with-pgbouncer.sh sets it; its PgBouncer
//! discards every server connection's state after each transaction, so a prepared statement
//! is never found in the next one), so they are ignored by a plain `cargo test` and run by
//! `make test-pooler` (`--include-ignored`); run without a pooler they fail and say why.
#![cfg(feature = "postgres")]

mod common;

use std::sync::{Arc, Barrier};

use common::stores::{fresh_database, pooler_url, through_pooler};
use fundcore::{Actor, Category, Channel, Config, Engine, FundChanges, RecordingNotifier};

/// A fresh database, reached through the pooler.
fn pooled_database() -> String {
    assert!(
        pooler_url().is_some(),
        "FUNDCORE_TEST_POOLER_URL is not set: run `make test-pooler` (or \
         `scripts/with-pgbouncer.sh cargo test ... --test pooler -- --include-ignored`)"
    );
    through_pooler(&fresh_database())
}

fn unnamed() -> Config {
    Config::builder()
        .prepared_statements(false)
        .build()
        .unwrap()
}

/// With prepared statements on (the default) behind a pooler in transaction mode, connecting
/// or the first calls fail, and every failure is a STORAGE_ERROR whose message names the
/// `prepared_statements` setting, so an operator knows what to change.
#[test]
#[ignore = "needs PgBouncer: make test-pooler"]
fn prepared_statements_behind_a_transaction_pooler_fail_naming_the_setting() {
    let url = pooled_database();
    let mut failures = Vec::new();
    match Engine::connect(&url, Config::default()) {
        Err(err) => failures.push(err),
        Ok(engine) => {
            for _ in 0..3 {
                match engine.register_client(
                    "Ana",
                    "ana@example.com",
                    "+573001234567",
                    Channel::Email,
                ) {
                    Ok(client) => {
                        if let Err(err) = engine.subscribe(client.id, 1, None, Some("k")) {
                            failures.push(err);
                        }
                        if let Err(err) = engine.client(client.id) {
                            failures.push(err);
                        }
                    }
                    Err(err) => failures.push(err),
                }
            }
        }
    }
    assert!(
        !failures.is_empty(),
        "prepared statements worked behind the pooler"
    );
    for err in &failures {
        println!("{}: {err}", err.code());
        assert_eq!(err.code(), "STORAGE_ERROR", "{err}");
        assert!(
            err.to_string().contains("prepared_statements"),
            "the message does not name the setting: {err}"
        );
    }
}

/// With `prepared_statements(false)` every kind of operation works behind the pooler:
/// register, subscribe, cancel (keyed and replayed), reads, administration, dispatch; the
/// ledger adds up.
#[test]
#[ignore = "needs PgBouncer: make test-pooler"]
fn every_operation_works_behind_a_transaction_pooler_with_unnamed_statements() {
    let url = pooled_database();
    let engine = Engine::connect(&url, unnamed()).expect("connect through the pooler");
    let ana = engine
        .register_client("Ana", "ana@example.com", "+573001234567", Channel::Email)
        .unwrap()
        .id;
    let tx = engine.subscribe(ana, 1, None, Some("k-1")).unwrap();
    assert_eq!(
        engine.subscribe(ana, 1, None, Some("k-1")).unwrap(),
        tx,
        "a replay"
    );
    engine.subscribe(ana, 3, None, None).unwrap();
    engine.cancel(ana, 1, Some("k-2")).unwrap();
    assert_eq!(engine.history(ana, 10, None).unwrap().len(), 3);
    assert_eq!(engine.subscriptions(ana).unwrap().len(), 1);
    let actor = Actor::new("ops@example.com");
    engine
        .create_fund(
            42,
            "New fund",
            fundcore::Decimal::new(10_000, 0),
            Category::Fic,
            &actor,
        )
        .unwrap();
    let changes = FundChanges {
        active: Some(false),
        ..FundChanges::default()
    };
    assert!(!engine.update_fund(42, &changes, &actor).unwrap().active);
    let notifier = RecordingNotifier::new();
    let report = engine.dispatch_notifications(&notifier, 10).unwrap();
    assert_eq!(report.delivered, 3, "{report:?}");
    assert_eq!(engine.outbox_state().unwrap().pending, 0);
    common::check_invariants(&engine, &[ana]).unwrap();
}

/// Engines with their own pools (as separate processes would have) behind the pooler, all
/// sending the same keyed subscribe, then the same keyed cancel, at once, round after round:
/// each round makes one change, and every engine is answered with it.
#[test]
#[ignore = "needs PgBouncer: make test-pooler"]
fn one_key_sent_by_several_engines_at_once_behind_the_pooler_makes_one_change() {
    let url = pooled_database();
    let engines: Vec<Engine> = (0..4)
        .map(|_| Engine::connect(&url, unnamed()).unwrap())
        .collect();
    let client = engines[0]
        .register_client("Ana", "ana@example.com", "+573001234567", Channel::Sms)
        .unwrap()
        .id;
    let barrier = Arc::new(Barrier::new(engines.len()));
    for round in 0..5 {
        for subscribe in [true, false] {
            let key = format!("{}-{round}", if subscribe { "sub" } else { "cancel" });
            let answers: Vec<_> = std::thread::scope(|scope| {
                let handles: Vec<_> = engines
                    .iter()
                    .map(|engine| {
                        let (barrier, key) = (Arc::clone(&barrier), key.clone());
                        scope.spawn(move || {
                            barrier.wait();
                            if subscribe {
                                engine.subscribe(client, 2, None, Some(&key))
                            } else {
                                engine.cancel(client, 2, Some(&key))
                            }
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let first = answers[0]
                .clone()
                .unwrap_or_else(|err| panic!("{key}: {err}"));
            for answer in &answers {
                assert_eq!(
                    answer.as_ref(),
                    Ok(&first),
                    "{key}: every engine gets the one change"
                );
            }
        }
    }
    assert_eq!(common::full_history(&engines[1], client).len(), 10);
    common::check_invariants(&engines[2], &[client]).unwrap();
}
