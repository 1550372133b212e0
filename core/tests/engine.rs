//! Rules of docs/rules.md, docs/operations.md and docs/errors.md that the shared scenarios do
//! not reach: the outbox's retries and backoff (on a manual clock), storage failures,
//! persistence and configuration.

mod common;

use common::stores::TestStore;

use std::sync::Arc;
use std::time::Duration;

use fundcore::{
    Channel, Client, Config, DeliveryError, Durability, Engine, Error, ErrorCode, Locale,
    ManualClock, Notification, NotificationStatus, Notifier, RecordingNotifier, Timestamp,
};

const START: Timestamp = Timestamp::from_unix_micros(1_795_000_000_000_000);

fn engine_with_clock(store: &TestStore, max_attempts: u32) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(START));
    let config = Config::builder()
        .clock(clock.clone() as Arc<dyn fundcore::Clock>)
        .max_attempts(max_attempts)
        .retry_base_delay(Duration::from_secs(5))
        .retry_max_delay(Duration::from_secs(60))
        .build()
        .unwrap();
    (store.open(config).unwrap(), clock)
}

fn ana(engine: &Engine) -> Client {
    engine
        .register_client("Ana", "ana@example.com", "+573001234567", Channel::Email)
        .unwrap()
}

fn only_notification(engine: &Engine, client: &Client) -> Notification {
    let mut all = engine.notifications(client.id).unwrap();
    assert_eq!(all.len(), 1);
    all.remove(0)
}

#[test]
fn engine_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Engine>();
}

#[test]
fn subscription_notification_names_fund_amount_transaction_and_new_balance() {
    for store in TestStore::each() {
        let (engine, _) = engine_with_clock(&store, 8);
        let client = ana(&engine);
        let tx = engine
            .subscribe(client.id, 2, fundcore::parse_amount("130000").ok(), None)
            .unwrap();
        let n = only_notification(&engine, &client);
        assert_eq!(
            (n.channel, n.recipient.as_str(), n.status),
            (
                Channel::Email,
                "ana@example.com",
                NotificationStatus::Pending
            )
        );
        assert_eq!(n.transaction_id, tx.id);
        assert_eq!(
            n.subject,
            "Suscripción confirmada: FPV_BTG_PACTUAL_ECOPETROL"
        );
        for needle in [
            "FPV_BTG_PACTUAL_ECOPETROL",
            "COP $130.000",
            "COP $370.000",
            &tx.id.to_string(),
            "Ana",
        ] {
            assert!(n.body.contains(needle), "{needle} missing from {}", n.body);
        }
    }
}

#[test]
fn retryable_failures_back_off_exponentially_then_fail_and_stay_visible() {
    for store in TestStore::each() {
        let (engine, clock) = engine_with_clock(&store, 3);
        let client = ana(&engine);
        engine.subscribe(client.id, 1, None, None).unwrap();
        let notifier = RecordingNotifier::new();
        notifier.script((0..3).map(|_| Err(DeliveryError::Retryable("connection refused".into()))));

        let report = engine.dispatch_notifications(&notifier, 10).unwrap();
        assert_eq!((report.delivered, report.retried, report.failed), (0, 1, 0));
        let n = only_notification(&engine, &client);
        assert_eq!((n.status, n.attempts), (NotificationStatus::Pending, 1));
        assert_eq!(n.last_error.as_deref(), Some("connection refused"));
        assert_eq!(n.next_attempt_at, Some(START.plus(Duration::from_secs(5))));

        // Not due yet: nothing is sent.
        clock.advance(Duration::from_secs(4));
        assert_eq!(
            engine
                .dispatch_notifications(&notifier, 10)
                .unwrap()
                .retried,
            0
        );
        assert_eq!(notifier.attempts(), 1);

        clock.advance(Duration::from_secs(1));
        assert_eq!(
            engine
                .dispatch_notifications(&notifier, 10)
                .unwrap()
                .retried,
            1
        );
        let n = only_notification(&engine, &client);
        assert_eq!(
            n.next_attempt_at,
            Some(START.plus(Duration::from_secs(5 + 10))),
            "second delay doubles"
        );

        clock.advance(Duration::from_secs(10));
        let report = engine.dispatch_notifications(&notifier, 10).unwrap();
        assert_eq!(
            (report.retried, report.failed),
            (0, 1),
            "third attempt is the last of max_attempts = 3"
        );
        let n = only_notification(&engine, &client);
        assert_eq!(
            (n.status, n.attempts, n.next_attempt_at),
            (NotificationStatus::Failed, 3, None)
        );

        clock.advance(Duration::from_secs(3600));
        assert_eq!(
            engine.dispatch_notifications(&notifier, 10).unwrap(),
            Default::default(),
            "failed entries stay put"
        );
        assert_eq!(notifier.attempts(), 3);

        // A failed entry can be put back and then delivered.
        assert_eq!(engine.retry_failed_notifications(10).unwrap(), 1);
        assert_eq!(
            engine
                .dispatch_notifications(&notifier, 10)
                .unwrap()
                .delivered,
            1
        );
        let n = only_notification(&engine, &client);
        assert_eq!(n.status, NotificationStatus::Delivered);
        assert_eq!(n.delivered_at, Some(clock.now_for_test()));
        assert_eq!(notifier.delivered().len(), 1);
        assert_eq!(engine.retry_failed_notifications(10).unwrap(), 0);
    }

    trait NowForTest {
        fn now_for_test(&self) -> Timestamp;
    }
    impl NowForTest for ManualClock {
        fn now_for_test(&self) -> Timestamp {
            fundcore::Clock::now(self)
        }
    }
}

#[test]
fn permanent_failure_fails_at_once_and_the_money_stays_moved() {
    for store in TestStore::each() {
        let (engine, _) = engine_with_clock(&store, 8);
        let client = ana(&engine);
        engine.subscribe(client.id, 3, None, None).unwrap();
        let notifier = RecordingNotifier::new();
        notifier.script([Err(DeliveryError::Permanent("550 no such user".into()))]);
        let report = engine.dispatch_notifications(&notifier, 10).unwrap();
        assert_eq!((report.delivered, report.retried, report.failed), (0, 0, 1));
        let n = only_notification(&engine, &client);
        assert_eq!((n.status, n.attempts), (NotificationStatus::Failed, 1));
        assert_eq!(n.last_error.as_deref(), Some("550 no such user"));
        assert_eq!(
            engine.client(client.id).unwrap().balance.to_string(),
            "450000.00"
        );
        assert_eq!(engine.subscriptions(client.id).unwrap().len(), 1);
    }
}

struct PanickingNotifier;
impl Notifier for PanickingNotifier {
    fn send(&self, _: &Notification) -> Result<(), DeliveryError> {
        panic!("bug in a notifier");
    }
}

#[test]
fn a_panicking_notifier_is_a_retryable_failure() {
    for store in TestStore::each() {
        let (engine, _) = engine_with_clock(&store, 8);
        let client = ana(&engine);
        engine.subscribe(client.id, 1, None, None).unwrap();
        let report = engine
            .dispatch_notifications(&PanickingNotifier, 10)
            .unwrap();
        assert_eq!(report.retried, 1);
        assert_eq!(
            only_notification(&engine, &client).last_error.as_deref(),
            Some("the notifier panicked")
        );
    }
}

#[test]
fn dispatch_respects_its_limit_and_delivers_oldest_first() {
    for store in TestStore::each() {
        let (engine, _) = engine_with_clock(&store, 8);
        let client = ana(&engine);
        for fund in [3, 1, 5] {
            engine.subscribe(client.id, fund, None, None).unwrap();
        }
        let notifier = RecordingNotifier::new();
        assert_eq!(
            engine
                .dispatch_notifications(&notifier, 2)
                .unwrap()
                .delivered,
            2
        );
        assert_eq!(
            engine
                .dispatch_notifications(&notifier, 2)
                .unwrap()
                .delivered,
            1
        );
        let order: Vec<String> = notifier
            .delivered()
            .iter()
            .map(|n| n.subject.clone())
            .collect();
        assert_eq!(
            order,
            [
                "Suscripción confirmada: DEUDAPRIVADA",
                "Suscripción confirmada: FPV_BTG_PACTUAL_RECAUDADORA",
                "Suscripción confirmada: FPV_BTG_PACTUAL_DINAMICA"
            ]
        );
    }
}

#[test]
fn reopening_gives_identical_state() {
    for store in TestStore::each() {
        let engine = store.open(Config::default()).unwrap();
        let a = ana(&engine);
        let b = engine
            .register_client("Luis", "luis@example.com", "+573109876543", Channel::Sms)
            .unwrap();
        engine.subscribe(a.id, 1, None, Some("k")).unwrap();
        engine.subscribe(b.id, 4, None, None).unwrap();
        engine.cancel(a.id, 1, None).unwrap();
        engine
            .dispatch_notifications(&RecordingNotifier::new(), 1)
            .unwrap();
        let clients = [a.id, b.id];
        let before = common::snapshot(&engine, &clients);
        drop(engine);
        let engine = store.open(Config::default()).unwrap();
        assert_eq!(common::snapshot(&engine, &clients), before);
        // The idempotency record survived too.
        let replay = engine.subscribe(a.id, 1, None, Some("k")).unwrap();
        assert_eq!(replay, before.histories[0][1]);
    }
}

#[test]
fn ids_keep_increasing_across_a_reopen_even_if_the_clock_went_back() {
    for store in TestStore::each() {
        let clock = Arc::new(ManualClock::new(START));
        let config = || {
            let mut c = Config::default();
            c.clock = clock.clone();
            c
        };
        let engine = store.open(config()).unwrap();
        let client = ana(&engine);
        let first = engine.subscribe(client.id, 1, None, None).unwrap();
        drop(engine);
        clock.set(Timestamp::from_unix_micros(
            START.unix_micros() - 60_000_000,
        ));
        let engine = store.open(config()).unwrap();
        let second = engine.cancel(client.id, 1, None).unwrap();
        assert!(
            second.id > first.id,
            "a later transaction must sort after an earlier one"
        );
        let history = engine.history(client.id, 10, None).unwrap();
        assert_eq!(
            history.iter().map(|t| t.id).collect::<Vec<_>>(),
            [second.id, first.id]
        );
        common::check_invariants(&engine, &[client.id]).unwrap();
    }
}

#[test]
fn initial_balance_and_catalogue_are_fixed_when_the_store_is_created() {
    for store in TestStore::each() {
        let first = {
            let mut c = Config::default();
            c.initial_balance = fundcore::parse_amount("1000000").unwrap();
            c
        };
        drop(store.open(first).unwrap());
        let changed = {
            let mut c = Config::default();
            c.initial_balance = fundcore::parse_amount("1").unwrap();
            c.funds = vec![];
            c
        };
        let engine = store.open(changed).unwrap();
        assert_eq!(engine.initial_balance().to_string(), "1000000.00");
        assert_eq!(engine.funds().unwrap().len(), 5);
    }
}

#[test]
fn a_store_that_cannot_be_opened_is_a_storage_error() {
    let dir = tempfile::tempdir().unwrap();
    let first = Engine::open(dir.path(), Config::default()).unwrap();
    let locked = Engine::open(dir.path(), Config::default()).unwrap_err();
    assert_eq!(
        locked.code(),
        "STORAGE_ERROR",
        "a store is open in one engine at a time: {locked}"
    );
    assert!(
        matches!(&locked, Error::StoreInUse { path } if path == &dir.path().display().to_string()),
        "{locked:?}"
    );
    assert!(locked.message(Locale::En).contains("is already open"));
    drop(first);
    Engine::open(dir.path(), Config::default())
        .expect("the lock is released when the engine is dropped");

    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    assert_eq!(
        Engine::open(&file, Config::default()).unwrap_err().code(),
        "STORAGE_ERROR"
    );
}

#[test]
fn opening_waits_for_a_store_that_is_being_closed() {
    let dir = tempfile::tempdir().unwrap();
    let first = Engine::open(dir.path(), Config::default()).unwrap();
    let client = ana(&first);
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(first);
    });
    let second =
        Engine::open(dir.path(), Config::default()).expect("waits for the lock to be released");
    assert_eq!(second.client(client.id).unwrap(), client);
    closer.join().unwrap();
}

#[test]
fn invalid_configuration_is_refused() {
    let bad = [
        {
            let mut c = Config::default();
            c.max_attempts = 0;
            c
        },
        {
            let mut c = Config::default();
            c.initial_balance = fundcore::parse_amount("-1").unwrap();
            c
        },
        {
            let mut c = Config::default();
            c.funds = [fundcore::default_catalogue(), fundcore::default_catalogue()].concat();
            c
        },
        {
            let mut c = Config::default();
            c.pool_size = 0;
            c
        },
    ];
    for config in bad {
        assert_eq!(
            Engine::open_temporary(config).unwrap_err().code(),
            "VALIDATION_ERROR"
        );
    }
}

#[test]
fn periodic_durability_is_made_durable_by_flush() {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut c = Config::default();
        c.durability = Durability::Periodic {
            interval_ms: 60_000,
        };
        c
    };
    let engine = Engine::open(dir.path(), config()).unwrap();
    let client = ana(&engine);
    engine.subscribe(client.id, 1, None, None).unwrap();
    engine.flush().unwrap();
    drop(engine);
    let engine = Engine::open(dir.path(), config()).unwrap();
    assert_eq!(
        engine.client(client.id).unwrap().balance.to_string(),
        "425000.00"
    );
}

#[test]
fn transaction_ids_are_uuidv7_and_time_ordered_across_clients() {
    let engine = Engine::open_temporary(Config::default()).unwrap();
    let clients: Vec<Client> = (0..3).map(|_| ana(&engine)).collect();
    let mut ids = Vec::new();
    for fund in 1..=3 {
        for client in &clients {
            ids.push(engine.subscribe(client.id, fund, None, None).unwrap().id);
        }
    }
    assert!(ids.iter().all(|id| id.0.get_version_num() == 7));
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids follow commit order"
    );
}

#[test]
fn every_error_has_a_distinct_stable_code_and_messages_in_both_locales() {
    let errors = [
        Error::Validation {
            field: "amount",
            problem: fundcore::Invalid::AmountNotPositive,
        },
        Error::BelowMinimum {
            fund_name: "F".into(),
            minimum: fundcore::parse_amount("75000").unwrap(),
        },
        Error::InsufficientBalance {
            fund_name: "F".into(),
        },
        Error::AlreadySubscribed {
            fund_name: "F".into(),
        },
        Error::NotSubscribed {
            fund_name: "F".into(),
        },
        Error::FundInactive {
            fund_name: "F".into(),
        },
        Error::IdempotencyKeyReused { key: "k".into() },
        Error::FundAlreadyExists { id: 6 },
        Error::ClientNotFound { id: "c".into() },
        Error::FundNotFound { id: "9".into() },
        Error::TransactionNotFound { id: "t".into() },
        Error::Storage {
            detail: "disk".into(),
        },
        Error::OutcomeUnknown {
            detail: "connection reset".into(),
        },
    ];
    let codes: std::collections::HashSet<ErrorCode> = errors.iter().map(Error::code).collect();
    assert_eq!(codes.len(), errors.len());
    assert_eq!(codes.len(), ErrorCode::ALL.len(), "one error of every code");
    for code in ErrorCode::ALL {
        assert_eq!(
            code.as_str().parse::<ErrorCode>(),
            Ok(*code),
            "{code} reads back"
        );
        assert_eq!(code.http_status(), code.kind().http_status());
    }
    for err in &errors {
        let (es, en) = (err.message(Locale::Es), err.message(Locale::En));
        assert!(
            !es.is_empty() && !en.is_empty() && es != en,
            "{}",
            err.code()
        );
        assert_eq!(err.to_string(), es, "Display is the Spanish message");
    }
}

#[test]
fn a_history_cursor_is_a_transaction_id_and_malformed_text_is_a_validation_error() {
    for store in TestStore::each() {
        let (engine, _) = engine_with_clock(&store, 8);
        let client = ana(&engine);
        let first = engine.subscribe(client.id, 1, None, None).unwrap();
        let second = engine.cancel(client.id, 1, None).unwrap();
        let cursor = fundcore::TransactionId::parse_cursor(&format!(" {} ", second.id)).unwrap();
        assert_eq!(
            engine.history(client.id, 10, Some(cursor)).unwrap(),
            [first]
        );
        let err = fundcore::TransactionId::parse_cursor("not-a-cursor").unwrap_err();
        assert_eq!(err.code(), "VALIDATION_ERROR");
        assert_eq!(err.field(), Some("before"));
    }
}

#[test]
fn a_history_page_has_a_cursor_only_when_a_following_page_exists() {
    for store in TestStore::each() {
        let (engine, _) = engine_with_clock(&store, 8);
        let client = ana(&engine);
        for _ in 0..2 {
            engine.subscribe(client.id, 1, None, None).unwrap();
            engine.cancel(client.id, 1, None).unwrap();
        }
        let all = engine.history(client.id, 10, None).unwrap();
        assert_eq!(all.len(), 4);

        let first = engine.history_page(client.id, 3, None).unwrap();
        assert_eq!(first.items, all[..3]);
        assert_eq!(
            first.next,
            Some(all[2].id),
            "{store}: the cursor is the page's last id"
        );
        let last = engine.history_page(client.id, 3, first.next).unwrap();
        assert_eq!(last.items, all[3..]);
        assert_eq!(last.next, None, "{store}: the last page has no cursor");

        let exactly_full = engine.history_page(client.id, 4, None).unwrap();
        assert_eq!(exactly_full.items, all);
        assert_eq!(
            exactly_full.next, None,
            "{store}: an exactly full last page has no cursor"
        );
        let two_and_two = engine.history_page(client.id, 2, Some(all[1].id)).unwrap();
        assert_eq!((two_and_two.items.len(), two_and_two.next), (2, None));
    }
}

/// A registration under an id the caller chose is idempotent by that id: repeated (a lost reply,
/// a crash, a second process) it returns the client as stored, its balance after later changes
/// included, never a second client nor a reset balance; a concurrent repeat makes one client.
#[test]
fn a_registration_under_a_chosen_id_is_made_once_however_often_it_is_sent() {
    for store in TestStore::each() {
        let engine = store.open(Config::default()).unwrap();
        let id = fundcore::ClientId::generate();
        let first = engine
            .register_client_with_id(
                id,
                "Ana",
                "ana@example.com",
                "+573001234567",
                Channel::Email,
            )
            .unwrap();
        assert_eq!(first.id, id, "{store}");
        assert_eq!(engine.client(id).unwrap(), first, "{store}");
        engine.subscribe(id, 1, None, None).unwrap();
        let after_subscribe = engine.client(id).unwrap();
        // The same registration again, and one with other data: the stored client, unchanged.
        for (name, email) in [("Ana", "ana@example.com"), ("Otra", "otra@example.com")] {
            let again = engine
                .register_client_with_id(id, name, email, "+573001234567", Channel::Sms)
                .unwrap();
            assert_eq!(again, after_subscribe, "{store}");
        }
        assert_eq!(engine.clients(200, None).unwrap().items.len(), 1, "{store}");

        // Eight threads race one new id: one client, every caller gets it.
        let raced = fundcore::ClientId::generate();
        let start = std::sync::Barrier::new(8);
        let results: Vec<Client> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let engine = engine.clone();
                    let start = &start;
                    scope.spawn(move || {
                        start.wait();
                        engine
                            .register_client_with_id(
                                raced,
                                &format!("Cliente {i}"),
                                "c@example.com",
                                "+573001234568",
                                Channel::Email,
                            )
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(
            results.iter().all(|c| *c == results[0]),
            "{store}: {results:?}"
        );
        assert_eq!(engine.clients(200, None).unwrap().items.len(), 2, "{store}");
        drop(engine);
        let engine = store.open(Config::default()).unwrap();
        assert_eq!(engine.client(raced).unwrap(), results[0], "{store}: kept");
    }
}

/// The chosen id must be a UUIDv7 (ids sort in creation order); bad contact data is refused as
/// for register_client. Either way nothing is stored.
#[test]
fn a_chosen_client_id_that_is_not_a_uuid_v7_or_bad_contact_data_is_refused() {
    for store in TestStore::each() {
        let engine = store.open(Config::default()).unwrap();
        let v4 = fundcore::ClientId(uuid::Uuid::from_u128(
            0x0190_f0c2_0000_4000_8000_0000_0000_0001,
        ));
        let err = engine
            .register_client_with_id(
                v4,
                "Ana",
                "ana@example.com",
                "+573001234567",
                Channel::Email,
            )
            .unwrap_err();
        assert_eq!(err.code(), "VALIDATION_ERROR", "{store}");
        assert!(err.to_string().contains("client_id"), "{store}: {err}");
        let id = fundcore::ClientId::generate();
        let err = engine
            .register_client_with_id(id, "", "ana@example.com", "+573001234567", Channel::Email)
            .unwrap_err();
        assert_eq!(err.code(), "VALIDATION_ERROR", "{store}");
        assert_eq!(
            engine.client(id).unwrap_err().code(),
            "CLIENT_NOT_FOUND",
            "{store}"
        );
        assert!(
            engine.clients(200, None).unwrap().items.is_empty(),
            "{store}"
        );
    }
}
