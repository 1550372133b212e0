//! The network between the engine and PostgreSQL misbehaving (SPEC §10.1, issue 18): a reply
//! lost after a write reached the server, a silent (half-open) network, resets and delays,
//! made by the project's own fault proxy (tests/common/proxy.rs) on loopback, for every kind
//! of write: subscribe and cancel (on the one-trip and the two-trip path, with and without an
//! idempotency key), register_client, the administrative writes and the outbox settle.
//!
//! What must hold: a call answers with what the database holds (the committed result, or
//! STORAGE_ERROR only when nothing committed, or OUTCOME_UNKNOWN when the outcome could not be
//! learned in time); no call waits longer than `operation_timeout` and a little slack; a change
//! that did not commit has no outbox entry; when the network is back the same engine works.
//! The database is always read directly, never through the proxy.
#![cfg(feature = "postgres")]

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::proxy::{Fault, Others, Proxy, Then};
use common::stores::fresh_database;
use fundcore::{
    Actor, Category, Channel, ClientId, Config, ContactChanges, Decimal, Engine, Error,
    FundChanges, RecordingNotifier, Transaction,
};

/// The operation deadline of every engine here: short, to keep the suite fast.
const TIMEOUT: Duration = Duration::from_millis(1000);
/// What a call may take past its deadline (scheduling on a busy 2-core machine).
const SLACK: Duration = Duration::from_millis(1000);
/// How long a call is waited for before the test calls it hung (then the proxy resets every
/// connection, so the call returns and the test can fail with a message).
const HANG: Duration = Duration::from_secs(8);

fn config() -> Config {
    Config::builder()
        .operation_timeout(TIMEOUT)
        .build()
        .expect("config")
}

fn cop(amount: i64) -> Decimal {
    Decimal::new(amount, 0)
}

fn actor() -> Actor {
    Actor::new("ops@example.com")
}

/// A fresh database, an engine on it through a proxy, and the database's direct URL.
struct Rig {
    proxy: Proxy,
    direct: String,
    /// The database's URL through the proxy.
    through: String,
    engine: Engine,
}

impl Rig {
    fn new() -> Rig {
        let direct = fresh_database();
        let (proxy, through) = Proxy::in_front_of(&direct);
        let engine = Engine::connect(&through, config()).expect("engine through the proxy");
        // Lets the pool open its connections first, so "the next request" is a caller's.
        for _ in 0..3 {
            engine.funds().expect("funds");
            proxy.wait_quiet(Duration::from_millis(300));
        }
        Rig {
            proxy,
            direct,
            through,
            engine,
        }
    }

    /// A connection that does not go through the proxy.
    fn db(&self) -> postgres::Client {
        postgres::Client::connect(&self.direct, postgres::NoTls).expect("direct connection")
    }

    fn count(&self, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) -> i64 {
        self.db().query_one(sql, params).expect(sql).get(0)
    }

    /// An engine on the same database, not through the proxy (another process's view).
    fn direct_engine(&self) -> Engine {
        Engine::connect(&self.direct, config()).expect("direct engine")
    }

    fn register(&self, engine: &Engine, name: &str) -> ClientId {
        engine
            .register_client(name, "c@example.com", "+573001234567", Channel::Email)
            .expect("register")
            .id
    }

    /// Transactions of `client` in the database.
    fn transactions(&self, client: ClientId) -> i64 {
        self.count(
            "SELECT count(*) FROM fundcore_transactions WHERE client_id = $1",
            &[&client.0],
        )
    }

    /// Whether every transaction in the database has exactly one outbox entry and every outbox
    /// entry a transaction (`notify_on_cancel` is on).
    fn assert_outbox_matches_ledger(&self) {
        let orphans = self.count(
            "SELECT count(*) FROM fundcore_outbox o WHERE NOT EXISTS
               (SELECT 1 FROM fundcore_transactions t WHERE t.id = o.transaction_id)",
            &[],
        );
        assert_eq!(
            orphans, 0,
            "an outbox entry for a change that did not commit"
        );
        let wrong = self.count(
            "SELECT count(*) FROM fundcore_transactions t WHERE
               (SELECT count(*) FROM fundcore_outbox o WHERE o.transaction_id = t.id) <> 1",
            &[],
        );
        assert_eq!(
            wrong, 0,
            "a committed change without exactly one outbox entry"
        );
    }

    /// Runs `f` on a thread and times it; a call still waiting after [`HANG`] fails the test.
    fn timed<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce(Engine) -> T + Send + 'static,
    ) -> (T, Duration) {
        self.timed_on(&self.engine, HANG, what, f)
    }

    /// [`Rig::timed`] on `engine`, called hung after `hang`.
    fn timed_on<T: Send + 'static>(
        &self,
        engine: &Engine,
        hang: Duration,
        what: &str,
        f: impl FnOnce(Engine) -> T + Send + 'static,
    ) -> (T, Duration) {
        let engine = engine.clone();
        let (tx, rx) = mpsc::channel();
        let started = Instant::now();
        std::thread::spawn(move || {
            let value = f(engine);
            let _ = tx.send((value, started.elapsed()));
        });
        match rx.recv_timeout(hang) {
            Ok(done) => done,
            Err(_) => {
                // Lets the call end, so the test process can go on.
                self.proxy.pass();
                self.proxy.reset_all();
                panic!("{what}: the call was still waiting after {hang:?} (no deadline)");
            }
        }
    }
}

/// Asserts a call failed within its deadline; prints the time (the issue records it).
fn assert_within_deadline(what: &str, elapsed: Duration) {
    println!("{what}: returned after {} ms", elapsed.as_millis());
    assert!(
        elapsed <= TIMEOUT + SLACK,
        "{what}: took {elapsed:?}, more than operation_timeout {TIMEOUT:?} + {SLACK:?}"
    );
}

fn code<T: std::fmt::Debug>(result: &Result<T, Error>) -> String {
    match result {
        Ok(value) => format!("Ok({value:?})"),
        Err(err) => format!("{}: {err}", err.code()),
    }
}

/// Calibrates, on a twin call of the same shape, how many replies the call gets before its
/// last one (the write, or its COMMIT), then arms the proxy to drop that last reply.
fn arm_drop_of_the_last_reply<T: std::fmt::Debug>(
    rig: &Rig,
    twin: impl FnOnce() -> Result<T, Error>,
    then: Then,
    others: Others,
) {
    let (result, replies) = rig.proxy.replies_during(twin);
    result.unwrap_or_else(|err| panic!("the twin call fails without a fault: {err}"));
    let replies = replies.expect("the twin call used a connection the engine already had");
    assert!(replies >= 1, "the twin call got no reply");
    rig.proxy.arm_quietly(Fault::DropReply {
        after: replies - 1,
        then,
        others,
    });
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Move {
    Subscribe,
    Cancel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// The engine has seen the client and the fund: the write is the only round trip.
    OneTrip,
    /// The engine has not seen the client: a read, then the write.
    TwoTrips,
}

/// Prepares a client for `op` on fund 1 along `path`: for the one-trip path the rig's engine
/// reads it (and for a cancel subscribes it); for the two-trip path another engine does.
fn prepare(rig: &Rig, other: &Engine, op: Move, path: Path, name: &str) -> ClientId {
    let by = match path {
        Path::OneTrip => &rig.engine,
        Path::TwoTrips => other,
    };
    let client = rig.register(by, name);
    by.subscribe(client, 1, None, None).expect("subscribe");
    if op == Move::Subscribe {
        by.cancel(client, 1, None).expect("cancel");
    }
    client
}

fn run_move(
    engine: &Engine,
    op: Move,
    client: ClientId,
    key: Option<&str>,
) -> fundcore::Result<Transaction> {
    match op {
        Move::Subscribe => engine.subscribe(client, 1, None, key),
        Move::Cancel => engine.cancel(client, 1, key),
    }
}

/// The round trips `f` takes on the rig's engine.
fn trips<T>(rig: &Rig, f: impl FnOnce() -> T) -> (T, u64) {
    let before = rig.engine.store_stats().round_trips;
    let value = f();
    (value, rig.engine.store_stats().round_trips - before)
}

/// One lost reply to a subscribe or cancel: the write reached the server and committed, its
/// reply was dropped, then the connection was reset or closed, or kept open and silent.
fn lost_reply_to_a_move(rig: &Rig, other: &Engine, op: Move, path: Path, key: bool, then: Then) {
    let case = format!("{op:?} on the {path:?} path, key {key}, then {then:?}");
    let n = uuid::Uuid::now_v7().simple().to_string();
    let twin = prepare(rig, other, op, path, &format!("Twin {n}"));
    let client = prepare(rig, other, op, path, &format!("Lost {n}"));
    let twin_key = key.then(|| format!("twin-{n}"));
    let the_key = key.then(|| format!("lost-{n}"));
    let expected_trips = match path {
        Path::OneTrip => 1,
        Path::TwoTrips => 2,
    };
    arm_drop_of_the_last_reply(
        rig,
        || {
            let (result, taken) =
                trips(rig, || run_move(&rig.engine, op, twin, twin_key.as_deref()));
            assert_eq!(taken, expected_trips, "{case}: the twin call's round trips");
            result
        },
        then,
        Others::Pass,
    );
    let before = rig.transactions(client);
    let key_sent = the_key.clone();
    let (result, elapsed) = rig.timed(&case, move |engine| {
        run_move(&engine, op, client, key_sent.as_deref())
    });
    println!("{case}: {} after {} ms", code(&result), elapsed.as_millis());
    assert!(rig.proxy.dropped(), "{case}: the proxy dropped no reply");
    rig.proxy.pass();
    let committed = rig.transactions(client) - before;
    assert_eq!(
        committed, 1,
        "{case}: the write reached the server and committed"
    );
    match &result {
        Ok(tx) => {
            let stored = rig.direct_engine().transaction(tx.id);
            assert_eq!(
                stored.as_ref(),
                Ok(tx),
                "{case}: the answer is the committed change"
            );
        }
        Err(err) if err.code() == "OUTCOME_UNKNOWN" && then == Then::KeepOpen => {
            assert_within_deadline(&case, elapsed);
            if let Some(key) = &the_key {
                let again = run_move(&rig.engine, op, client, Some(key)).expect("the retry");
                assert_eq!(
                    rig.transactions(client) - before,
                    1,
                    "{case}: the retry changed nothing"
                );
                assert_eq!(
                    rig.direct_engine().transaction(again.id),
                    Ok(again),
                    "{case}"
                );
            }
        }
        Err(err) => panic!(
            "{case}: the change committed, yet the call answered {}: {err}",
            err.code()
        ),
    }
    if then == Then::KeepOpen {
        assert_within_deadline(&case, elapsed);
    }
    // The same engine goes on working.
    let balance = rig.engine.client(client).expect("the next call").balance;
    let direct = rig.direct_engine().client(client).unwrap().balance;
    assert_eq!(balance, direct, "{case}");
    rig.assert_outbox_matches_ledger();
    common::check_invariants(&rig.direct_engine(), &[client, twin]).expect("invariants");
}

fn lost_replies_to_moves(op: Move, path: Path) {
    let rig = Rig::new();
    let other = rig.direct_engine();
    for key in [false, true] {
        for then in [
            Then::Reset(Duration::from_millis(20)),
            Then::Close(Duration::from_millis(20)),
            Then::KeepOpen,
        ] {
            lost_reply_to_a_move(&rig, &other, op, path, key, then);
        }
    }
}

/// A subscribe decided on what the engine saw (its one round trip is the write) whose reply is
/// lost after it committed answers with the committed transaction, with and without a key,
/// whether the connection is then reset, closed or left silent; the database holds exactly one
/// such change with one outbox entry.
#[test]
fn a_lost_reply_to_a_one_trip_subscribe_answers_the_committed_change() {
    lost_replies_to_moves(Move::Subscribe, Path::OneTrip);
}

/// The same for a subscribe on a client the engine has not seen (a read, then the write).
#[test]
fn a_lost_reply_to_a_two_trip_subscribe_answers_the_committed_change() {
    lost_replies_to_moves(Move::Subscribe, Path::TwoTrips);
}

/// The same for a one-trip cancel.
#[test]
fn a_lost_reply_to_a_one_trip_cancel_answers_the_committed_change() {
    lost_replies_to_moves(Move::Cancel, Path::OneTrip);
}

/// The same for a two-trip cancel.
#[test]
fn a_lost_reply_to_a_two_trip_cancel_answers_the_committed_change() {
    lost_replies_to_moves(Move::Cancel, Path::TwoTrips);
}

/// A lost reply to a write that committed, while no fresh connection can reach the server
/// either: the outcome cannot be learned, so the answer is OUTCOME_UNKNOWN within the deadline
/// (never STORAGE_ERROR, which would say nothing was saved); once the network is back, the
/// same call with the same key answers the change that committed, and there is one change.
#[test]
fn a_lost_reply_that_cannot_be_looked_up_is_outcome_unknown_and_a_retry_with_its_key_gives_one_change()
 {
    let rig = Rig::new();
    let other = rig.direct_engine();
    for (op, path) in [
        (Move::Subscribe, Path::OneTrip),
        (Move::Cancel, Path::TwoTrips),
    ] {
        let case = format!("{op:?} on the {path:?} path, nothing reachable after the write");
        let n = uuid::Uuid::now_v7().simple().to_string();
        let twin = prepare(&rig, &other, op, path, &format!("Twin {n}"));
        let client = prepare(&rig, &other, op, path, &format!("Unknown {n}"));
        arm_drop_of_the_last_reply(
            &rig,
            || run_move(&rig.engine, op, twin, Some("twin")),
            Then::Reset(Duration::from_millis(20)),
            Others::Silent,
        );
        let before = rig.transactions(client);
        let (result, elapsed) = rig.timed(&case, move |engine| {
            run_move(&engine, op, client, Some("the-key"))
        });
        println!("{case}: {} after {} ms", code(&result), elapsed.as_millis());
        assert!(rig.proxy.dropped(), "{case}: the proxy dropped no reply");
        assert_eq!(
            rig.transactions(client) - before,
            1,
            "{case}: the write committed"
        );
        let err = result.expect_err(&case);
        assert_eq!(err.code(), "OUTCOME_UNKNOWN", "{case}: {err}");
        assert_within_deadline(&case, elapsed);
        rig.proxy.pass();
        let again = run_move(&rig.engine, op, client, Some("the-key")).expect("the retry");
        assert_eq!(
            rig.transactions(client) - before,
            1,
            "{case}: one change after the retry"
        );
        assert_eq!(
            rig.direct_engine().transaction(again.id),
            Ok(again),
            "{case}"
        );
        rig.assert_outbox_matches_ledger();
    }
}

/// The reply to the read of a two-trip subscribe or cancel lost (the write was never sent),
/// then the connection reset: the call either makes its change once on another connection or
/// answers STORAGE_ERROR with nothing committed; never a change without its outbox entry.
#[test]
fn a_lost_reply_to_the_read_before_a_write_never_misreports() {
    let rig = Rig::new();
    let other = rig.direct_engine();
    for (op, key) in [
        (Move::Subscribe, false),
        (Move::Subscribe, true),
        (Move::Cancel, false),
        (Move::Cancel, true),
    ] {
        let case = format!("{op:?}, key {key}, the read's reply lost");
        let client = prepare(&rig, &other, op, Path::TwoTrips, &format!("{op:?} {key}"));
        let before = rig.transactions(client);
        rig.proxy.arm_quietly(Fault::DropReply {
            after: 0,
            then: Then::Reset(Duration::from_millis(20)),
            others: Others::Pass,
        });
        let (result, elapsed) = rig.timed(&case, move |engine| {
            run_move(&engine, op, client, key.then_some("the-key"))
        });
        println!("{case}: {} after {} ms", code(&result), elapsed.as_millis());
        assert!(rig.proxy.dropped(), "{case}: the proxy dropped no reply");
        rig.proxy.pass();
        let committed = rig.transactions(client) - before;
        match &result {
            Ok(tx) => {
                assert_eq!(committed, 1, "{case}");
                assert_eq!(other.transaction(tx.id).as_ref(), Ok(tx), "{case}");
            }
            Err(err) if err.code() == "STORAGE_ERROR" => {
                assert_eq!(
                    committed, 0,
                    "{case}: STORAGE_ERROR, yet it committed: {err}"
                )
            }
            Err(err) => panic!("{case}: {}: {err}", err.code()),
        }
        assert_within_deadline(&case, elapsed);
        rig.assert_outbox_matches_ledger();
        assert!(rig.engine.client(client).is_ok(), "{case}: the next call");
    }
}

/// A one-trip write stopped by its guard (another process changed the client since this engine
/// saw it), so the change is read again and written on the longer path, whose last reply (the
/// write's, or its COMMIT's) is lost after it committed: the call answers the committed change.
#[test]
fn a_lost_reply_after_a_lost_race_answers_the_committed_change() {
    let rig = Rig::new();
    let other = rig.direct_engine();
    let stale = |name: &str| {
        let client = prepare(&rig, &other, Move::Cancel, Path::OneTrip, name);
        // Another process changes the client: what the rig's engine saw is out of date.
        other.subscribe(client, 2, None, None).unwrap();
        client
    };
    let twin = stale("Twin");
    let client = stale("Raced");
    arm_drop_of_the_last_reply(
        &rig,
        || {
            let races = rig.engine.store_stats().lost_races;
            let result = rig.engine.cancel(twin, 1, Some("twin"));
            assert_eq!(
                rig.engine.store_stats().lost_races,
                races + 1,
                "the guard stopped the write"
            );
            result
        },
        Then::Reset(Duration::from_millis(20)),
        Others::Pass,
    );
    let before = rig.transactions(client);
    let (result, elapsed) = rig.timed("after a lost race", move |engine| {
        engine.cancel(client, 1, Some("raced"))
    });
    println!(
        "a lost reply after a lost race: {} after {} ms",
        code(&result),
        elapsed.as_millis()
    );
    assert!(rig.proxy.dropped(), "the proxy dropped no reply");
    rig.proxy.pass();
    assert_eq!(rig.transactions(client) - before, 1, "the write committed");
    let tx = result.unwrap_or_else(|err| panic!("committed, yet {}: {err}", err.code()));
    assert_eq!(other.transaction(tx.id), Ok(tx));
    rig.assert_outbox_matches_ledger();
    common::check_invariants(&other, &[client, twin]).expect("invariants");
}

/// A reply lost to a register_client that committed: the call answers the registered client
/// (the one row in the database), not STORAGE_ERROR.
#[test]
fn a_lost_reply_to_register_client_answers_the_registered_client() {
    let rig = Rig::new();
    for then in [
        Then::Reset(Duration::from_millis(20)),
        Then::Close(Duration::ZERO),
    ] {
        let n = uuid::Uuid::now_v7().simple().to_string();
        let case = format!("register_client, then {then:?}");
        let twin = format!("Twin {n}");
        arm_drop_of_the_last_reply(
            &rig,
            || {
                rig.engine
                    .register_client(&twin, "t@example.com", "+573001234567", Channel::Sms)
            },
            then,
            Others::Pass,
        );
        let name = format!("Lost {n}");
        let sent = name.clone();
        let (result, elapsed) = rig.timed(&case, move |engine| {
            engine.register_client(&sent, "l@example.com", "+573001234567", Channel::Email)
        });
        println!("{case}: {} after {} ms", code(&result), elapsed.as_millis());
        assert!(rig.proxy.dropped(), "{case}: the proxy dropped no reply");
        rig.proxy.pass();
        let stored: Vec<uuid::Uuid> = rig
            .db()
            .query("SELECT id FROM fundcore_clients WHERE name = $1", &[&name])
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(stored.len(), 1, "{case}: the insert committed once");
        let client =
            result.unwrap_or_else(|err| panic!("{case}: committed, yet {}: {err}", err.code()));
        assert_eq!(client.id.0, stored[0], "{case}");
        assert_eq!(rig.engine.client(client.id).expect("the next call"), client);
    }
}

/// Lost replies to the administrative writes (create_fund, update_fund, update_client) that
/// committed: each call answers what it committed, with exactly one audit event, never
/// STORAGE_ERROR nor (for create_fund) FUND_ALREADY_EXISTS for its own change.
#[test]
fn lost_replies_to_administrative_writes_answer_what_committed() {
    let rig = Rig::new();
    let then = Then::Reset(Duration::from_millis(20));
    let events = |target: &str| {
        rig.count(
            "SELECT count(*) FROM fundcore_audit_events WHERE target = $1",
            &[&target],
        )
    };

    // create_fund
    arm_drop_of_the_last_reply(
        &rig,
        || {
            rig.engine
                .create_fund(900, "Twin fund", cop(10_000), Category::Fic, &actor())
        },
        then,
        Others::Pass,
    );
    let (result, elapsed) = rig.timed("create_fund", |engine| {
        engine.create_fund(901, "Lost fund", cop(20_000), Category::Fpv, &actor())
    });
    println!(
        "create_fund: {} after {} ms",
        code(&result),
        elapsed.as_millis()
    );
    assert!(
        rig.proxy.dropped(),
        "create_fund: the proxy dropped no reply"
    );
    rig.proxy.pass();
    assert_eq!(
        rig.count("SELECT count(*) FROM fundcore_funds WHERE id = 901", &[]),
        1
    );
    assert_eq!(events("901"), 1, "create_fund: one audit event");
    let fund =
        result.unwrap_or_else(|err| panic!("create_fund committed, yet {}: {err}", err.code()));
    assert_eq!(rig.direct_engine().fund(901), Ok(fund));

    // update_fund
    let change = |minimum| FundChanges {
        minimum: Some(cop(minimum)),
        ..FundChanges::default()
    };
    arm_drop_of_the_last_reply(
        &rig,
        || rig.engine.update_fund(900, &change(11_000), &actor()),
        then,
        Others::Pass,
    );
    let (result, elapsed) = rig.timed("update_fund", move |engine| {
        engine.update_fund(901, &change(25_000), &actor())
    });
    println!(
        "update_fund: {} after {} ms",
        code(&result),
        elapsed.as_millis()
    );
    assert!(
        rig.proxy.dropped(),
        "update_fund: the proxy dropped no reply"
    );
    rig.proxy.pass();
    assert_eq!(events("901"), 2, "update_fund: one more audit event");
    let fund =
        result.unwrap_or_else(|err| panic!("update_fund committed, yet {}: {err}", err.code()));
    assert_eq!(fund.minimum, cop(25_000));
    assert_eq!(rig.direct_engine().fund(901), Ok(fund));

    // update_client
    let twin = rig.register(&rig.engine, "Twin");
    let client = rig.register(&rig.engine, "Target");
    let rename = |name: &str| ContactChanges {
        name: Some(name.to_owned()),
        ..ContactChanges::default()
    };
    arm_drop_of_the_last_reply(
        &rig,
        || {
            rig.engine
                .update_client(twin, &rename("Twin renamed"), &actor())
        },
        then,
        Others::Pass,
    );
    let (result, elapsed) = rig.timed("update_client", move |engine| {
        engine.update_client(client, &rename("Target renamed"), &actor())
    });
    println!(
        "update_client: {} after {} ms",
        code(&result),
        elapsed.as_millis()
    );
    assert!(
        rig.proxy.dropped(),
        "update_client: the proxy dropped no reply"
    );
    rig.proxy.pass();
    assert_eq!(
        events(&client.to_string()),
        1,
        "update_client: one audit event"
    );
    let updated =
        result.unwrap_or_else(|err| panic!("update_client committed, yet {}: {err}", err.code()));
    assert_eq!(updated.name, "Target renamed");
    assert_eq!(rig.direct_engine().client(client), Ok(updated));
}

/// A lost reply to the settle of a delivered notification (the entry is marked delivered in
/// the database): the dispatch answers that it delivered it, the entry is delivered after one
/// attempt, and nothing is sent twice. A lost reply to the claim that took an entry: the
/// dispatch sends what it claimed, once.
#[test]
fn a_lost_reply_to_an_outbox_settle_answers_the_delivery() {
    let rig = Rig::new();
    let other = rig.direct_engine();
    for name in ["A", "B"] {
        let client = rig.register(&other, name);
        other.subscribe(client, 1, None, None).unwrap();
    }
    let notifier = std::sync::Arc::new(RecordingNotifier::new());
    arm_drop_of_the_last_reply(
        &rig,
        || rig.engine.dispatch_notifications(notifier.as_ref(), 1),
        Then::Reset(Duration::from_millis(20)),
        Others::Pass,
    );
    let sending = std::sync::Arc::clone(&notifier);
    let (result, elapsed) = rig.timed("settle", move |engine| {
        engine.dispatch_notifications(sending.as_ref(), 1)
    });
    println!("settle: {} after {} ms", code(&result), elapsed.as_millis());
    assert!(rig.proxy.dropped(), "settle: the proxy dropped no reply");
    rig.proxy.pass();
    let delivered = rig.count(
        "SELECT count(*) FROM fundcore_outbox WHERE status = 'delivered' AND attempts = 1",
        &[],
    );
    assert_eq!(delivered, 2, "both entries delivered once, as recorded");
    let report =
        result.unwrap_or_else(|err| panic!("the settle committed, yet {}: {err}", err.code()));
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(notifier.delivered().len(), 2, "each entry sent once");
    let report = rig
        .engine
        .dispatch_notifications(notifier.as_ref(), 10)
        .unwrap();
    assert_eq!(report.delivered, 0, "nothing left to send: {report:?}");
    assert_eq!(notifier.delivered().len(), 2, "nothing sent twice");

    // The claim's reply lost (it committed: the entry is leased to this dispatcher): the
    // dispatch finds what it claimed by the claim's id and sends it now, once.
    let client = rig.register(&other, "C");
    other.subscribe(client, 1, None, None).unwrap();
    rig.proxy.arm_quietly(Fault::DropReply {
        after: 0,
        then: Then::Reset(Duration::from_millis(20)),
        others: Others::Pass,
    });
    let sending = std::sync::Arc::clone(&notifier);
    let (result, elapsed) = rig.timed("claim", move |engine| {
        engine.dispatch_notifications(sending.as_ref(), 1)
    });
    println!("claim: {} after {} ms", code(&result), elapsed.as_millis());
    assert!(rig.proxy.dropped(), "claim: the proxy dropped no reply");
    rig.proxy.pass();
    let report =
        result.unwrap_or_else(|err| panic!("the claim committed, yet {}: {err}", err.code()));
    assert_eq!(report.delivered, 1, "what was claimed is sent: {report:?}");
    assert_eq!(notifier.delivered().len(), 3, "each entry sent once");
    assert_eq!(
        rig.count(
            "SELECT count(*) FROM fundcore_outbox WHERE status = 'delivered' AND attempts = 1",
            &[]
        ),
        3
    );
}

/// Over a silent network (every connection, open or new, swallows everything and stays open),
/// a one-trip write (sent, outcome unknowable) answers OUTCOME_UNKNOWN and a two-trip write
/// (its read never answered, so the write was never sent) and a read answer STORAGE_ERROR,
/// each within the deadline; nothing committed; when the network is back the very next calls
/// on the same engine succeed, and the same call with the same key makes exactly one change.
#[test]
fn a_silent_network_fails_calls_within_the_deadline_and_the_engine_recovers() {
    let rig = Rig::new();
    let other = rig.direct_engine();
    let seen = prepare(&rig, &other, Move::Subscribe, Path::OneTrip, "Seen");
    let unseen = prepare(&rig, &other, Move::Subscribe, Path::TwoTrips, "Unseen");

    rig.proxy.arm_quietly(Fault::SilentAll);
    let (result, elapsed) = rig.timed("one-trip subscribe, silent network", move |engine| {
        engine.subscribe(seen, 1, None, Some("k-silent"))
    });
    println!(
        "one-trip subscribe over a silent network: {}",
        code(&result)
    );
    assert_within_deadline("one-trip subscribe over a silent network", elapsed);
    assert_eq!(
        result.as_ref().map_err(Error::code).unwrap_err(),
        "OUTCOME_UNKNOWN"
    );

    let (result, elapsed) = rig.timed("two-trip subscribe, silent network", move |engine| {
        engine.subscribe(unseen, 1, None, Some("k-silent"))
    });
    println!(
        "two-trip subscribe over a silent network: {}",
        code(&result)
    );
    assert_within_deadline("two-trip subscribe over a silent network", elapsed);
    assert_eq!(
        result.as_ref().map_err(Error::code).unwrap_err(),
        "STORAGE_ERROR"
    );

    let (result, elapsed) = rig.timed("read, silent network", move |engine| engine.client(seen));
    println!("a read over a silent network: {}", code(&result));
    assert_within_deadline("a read over a silent network", elapsed);
    assert_eq!(
        result.as_ref().map_err(Error::code).unwrap_err(),
        "STORAGE_ERROR"
    );
    assert!(
        rig.proxy.discarded_requests() > 0,
        "the proxy swallowed nothing"
    );

    assert_eq!(
        rig.transactions(seen) + rig.transactions(unseen),
        4,
        "nothing new committed"
    );
    rig.proxy.pass();
    let started = Instant::now();
    assert!(rig.engine.client(seen).is_ok(), "the next read");
    let tx = rig
        .engine
        .subscribe(seen, 1, None, Some("k-silent"))
        .expect("the retry");
    let again = rig
        .engine
        .subscribe(seen, 1, None, Some("k-silent"))
        .expect("a replay");
    assert_eq!(tx, again);
    rig.engine
        .subscribe(unseen, 1, None, Some("k-silent"))
        .expect("the other retry");
    println!(
        "recovered: three calls in {} ms",
        started.elapsed().as_millis()
    );
    assert_eq!(rig.transactions(seen), 3, "exactly one change for the key");
    assert_eq!(
        rig.transactions(unseen),
        3,
        "exactly one change for the key"
    );
    rig.assert_outbox_matches_ledger();
}

/// With the default deadline (`Config::DEFAULT_OPERATION_TIMEOUT`, 10 s), a keyed write over a
/// silent network answers OUTCOME_UNKNOWN within it (the time is printed: the issue records how
/// long a call takes to fail over a silent network), and the engine works again at once after.
#[test]
fn a_silent_network_fails_a_call_within_the_default_deadline() {
    let rig = Rig::new();
    let engine = Engine::connect(&rig.through, Config::default())
        .expect("an engine with the default deadline");
    let client = rig.register(&engine, "Default");
    engine.subscribe(client, 1, None, None).unwrap();
    engine.cancel(client, 1, None).unwrap();
    let deadline = Config::DEFAULT_OPERATION_TIMEOUT;
    rig.proxy.arm_quietly(Fault::SilentAll);
    let (result, elapsed) =
        rig.timed_on(&engine, deadline * 2, "default deadline", move |engine| {
            engine.subscribe(client, 1, None, Some("k"))
        });
    println!(
        "a one-trip subscribe over a silent network, default deadline {deadline:?}: {} after {} ms",
        code(&result),
        elapsed.as_millis()
    );
    assert!(
        elapsed <= deadline + SLACK,
        "took {elapsed:?}, past the default deadline {deadline:?}"
    );
    assert_eq!(
        result.as_ref().map_err(Error::code).unwrap_err(),
        "OUTCOME_UNKNOWN"
    );
    rig.proxy.pass();
    let tx = engine
        .subscribe(client, 1, None, Some("k"))
        .expect("the retry");
    assert_eq!(rig.direct_engine().transaction(tx.id), Ok(tx));
    assert_eq!(
        rig.transactions(client),
        3,
        "exactly one change for the key"
    );
}

/// A silent network during every other kind of write (register, create_fund, update_fund,
/// update_client, a cancel without a key, a dispatch): each call returns within the deadline
/// with OUTCOME_UNKNOWN or STORAGE_ERROR and nothing committed (nothing could reach the
/// server); after the network is back the same call succeeds on the same engine, and each
/// notification is sent once.
#[test]
fn a_silent_network_bounds_every_kind_of_write() {
    let rig = Rig::new();
    let client = rig.register(&rig.engine, "Client");
    rig.engine.subscribe(client, 2, None, None).unwrap();
    rig.engine
        .create_fund(700, "Fund", cop(10_000), Category::Fic, &actor())
        .unwrap();
    let notifier = std::sync::Arc::new(RecordingNotifier::new());
    type Call = Box<dyn Fn(&Engine) -> Result<String, Error> + Send + Sync>;
    let calls: Vec<(&str, Call)> = vec![
        (
            "register_client",
            Box::new(|e: &Engine| {
                e.register_client("New", "n@example.com", "+573001234567", Channel::Email)
                    .map(|c| c.id.to_string())
            }),
        ),
        (
            "create_fund",
            Box::new(|e: &Engine| {
                e.create_fund(701, "New fund", cop(10_000), Category::Fpv, &actor())
                    .map(|f| f.id.to_string())
            }),
        ),
        (
            "update_fund",
            Box::new(|e: &Engine| {
                let changes = FundChanges {
                    active: Some(false),
                    ..FundChanges::default()
                };
                e.update_fund(700, &changes, &actor())
                    .map(|f| f.active.to_string())
            }),
        ),
        (
            "update_client",
            Box::new(move |e: &Engine| {
                let changes = ContactChanges {
                    name: Some("Renamed".into()),
                    ..ContactChanges::default()
                };
                e.update_client(client, &changes, &actor()).map(|c| c.name)
            }),
        ),
        (
            "cancel",
            Box::new(move |e: &Engine| e.cancel(client, 2, None).map(|t| t.id.to_string())),
        ),
        ("dispatch", {
            let notifier = std::sync::Arc::clone(&notifier);
            Box::new(move |e: &Engine| {
                e.dispatch_notifications(notifier.as_ref(), 10)
                    .map(|r| format!("{r:?}"))
            })
        }),
    ];
    let state = |rig: &Rig| {
        rig.count(
            "SELECT (SELECT count(*) FROM fundcore_clients) * 1000000
                  + (SELECT count(*) FROM fundcore_funds WHERE active) * 10000
                  + (SELECT count(*) FROM fundcore_transactions) * 100
                  + (SELECT count(*) FROM fundcore_audit_events) * 10
                  + (SELECT count(*) FROM fundcore_outbox WHERE status = 'delivered')",
            &[],
        )
    };
    let calls = std::sync::Arc::new(calls);
    for i in 0..calls.len() {
        let what = calls[i].0;
        let before = state(&rig);
        rig.proxy.arm_quietly(Fault::SilentAll);
        let shared = std::sync::Arc::clone(&calls);
        let (result, elapsed) = rig.timed(what, move |engine| (shared[i].1)(&engine));
        println!("{what} over a silent network: {}", code(&result));
        assert_within_deadline(&format!("{what} over a silent network"), elapsed);
        let err = result.expect_err(what);
        assert!(
            ["OUTCOME_UNKNOWN", "STORAGE_ERROR"].contains(&err.code().as_str()),
            "{what}: {err}"
        );
        assert_eq!(
            state(&rig),
            before,
            "{what}: nothing could reach the server"
        );
        rig.proxy.pass();
        let result = (calls[i].1)(&rig.engine);
        assert!(
            result.is_ok(),
            "{what} once the network is back: {}",
            code(&result)
        );
    }
    // The dispatch once the network is back sent both: a claim that went out on a connection
    // the outage killed is looked up, found not committed, and made again.
    assert_eq!(
        notifier.delivered().len(),
        2,
        "subscribe and cancel notified once each"
    );
    rig.assert_outbox_matches_ledger();
}

/// Connections reset while idle (a server or a middlebox dropped them): the next calls, a
/// one-trip write first, succeed at once on fresh connections, without waiting for a deadline
/// and without a second change.
#[test]
fn connections_reset_while_idle_are_replaced_at_once() {
    let rig = Rig::new();
    let other = rig.direct_engine();
    let client = prepare(&rig, &other, Move::Cancel, Path::OneTrip, "Reset");
    for round in 0..3 {
        // Reads until the engine holds pooled connections again (after a reset its pool
        // refills in the background; calls meanwhile use connections of their own).
        for _ in 0..40 {
            rig.engine.client(client).expect("a read");
            rig.proxy.wait_quiet(Duration::from_millis(100));
            if rig.proxy.open_connections() > 0 {
                break;
            }
        }
        assert!(
            rig.proxy.open_connections() > 0,
            "round {round}: the engine holds no connection for the reset to break"
        );
        rig.proxy.reset_all();
        std::thread::sleep(Duration::from_millis(100));
        let before = rig.transactions(client);
        let (result, elapsed) = rig.timed("after a reset", move |engine| {
            if round % 2 == 0 {
                engine.cancel(client, 1, Some(&format!("r{round}")))
            } else {
                engine.subscribe(client, 1, None, None)
            }
        });
        println!(
            "round {round} after a reset: {} in {} ms",
            code(&result),
            elapsed.as_millis()
        );
        let tx = result.unwrap_or_else(|err| panic!("round {round}: {}: {err}", err.code()));
        assert!(elapsed < TIMEOUT, "round {round}: waited {elapsed:?}");
        assert_eq!(rig.transactions(client) - before, 1);
        assert_eq!(other.transaction(tx.id), Ok(tx));
    }
    rig.assert_outbox_matches_ledger();
}

/// A slow network (each chunk held 100 ms) slows calls down but they succeed; a network slower
/// than the deadline (each chunk held 1.5 s) fails a read with STORAGE_ERROR and a keyed write
/// with OUTCOME_UNKNOWN or its committed result, within the deadline; when it is fast again the
/// same call with the same key gives exactly one change.
#[test]
fn a_slow_network_is_waited_for_up_to_the_deadline() {
    let rig = Rig::new();
    let other = rig.direct_engine();
    let client = prepare(&rig, &other, Move::Subscribe, Path::OneTrip, "Slow");

    rig.proxy.set_delay(Duration::from_millis(100));
    let before = rig.transactions(client);
    let (result, elapsed) = rig.timed("slow read", move |engine| engine.client(client));
    assert!(result.is_ok(), "a slow read: {}", code(&result));
    assert!(
        elapsed >= Duration::from_millis(200),
        "the delay applied: {elapsed:?}"
    );
    let (result, elapsed) = rig.timed("slow write", move |engine| {
        engine.subscribe(client, 1, None, Some("slow"))
    });
    println!(
        "a write over a slow network: {} in {} ms",
        code(&result),
        elapsed.as_millis()
    );
    let tx = result.expect("a slow write");
    rig.engine.cancel(client, 1, None).expect("a slow cancel");
    assert_eq!(rig.transactions(client) - before, 2);

    rig.proxy.set_delay(Duration::from_millis(1500));
    let (result, elapsed) = rig.timed("too slow read", move |engine| engine.client(client));
    println!("a read over a too slow network: {}", code(&result));
    assert_within_deadline("a read over a too slow network", elapsed);
    assert_eq!(
        result.as_ref().map_err(Error::code).unwrap_err(),
        "STORAGE_ERROR"
    );
    let before = rig.transactions(client);
    let (result, elapsed) = rig.timed("too slow write", move |engine| {
        engine.subscribe(client, 1, None, Some("too-slow"))
    });
    println!("a write over a too slow network: {}", code(&result));
    assert_within_deadline("a write over a too slow network", elapsed);
    rig.proxy.set_delay(Duration::ZERO);
    // What the slow network still carried arrives.
    std::thread::sleep(Duration::from_millis(3500));
    rig.proxy.pass();
    let committed = rig.transactions(client) - before;
    match &result {
        Ok(tx) => assert_eq!(other.transaction(tx.id).as_ref(), Ok(tx)),
        Err(err) if err.code() == "OUTCOME_UNKNOWN" => assert!(committed <= 1),
        Err(err) if err.code() == "STORAGE_ERROR" => {
            assert_eq!(
                committed, 0,
                "STORAGE_ERROR, yet the change committed: {err}"
            )
        }
        Err(err) => panic!("{err}"),
    }
    let again = rig
        .engine
        .subscribe(client, 1, None, Some("too-slow"))
        .expect("the retry");
    assert_eq!(
        rig.transactions(client) - before,
        1,
        "exactly one change for the key"
    );
    assert_ne!(tx.id, again.id);
    assert_eq!(other.transaction(again.id), Ok(again));
    rig.assert_outbox_matches_ledger();
}

// ---------------------------------------------------------------- the proxy itself

mod proxy_itself {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A server that answers every chunk it receives with a PostgreSQL-shaped reply (a
    /// CommandComplete, then a ReadyForQuery), counting what it received.
    fn fake_server() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        counter.fetch_add(1, Ordering::SeqCst);
                        let mut reply = vec![b'C', 0, 0, 0, 9];
                        reply.extend_from_slice(b"BEGIN");
                        reply.extend_from_slice(&[b'Z', 0, 0, 0, 5, b'I']);
                        // In two writes, so a reply can arrive split.
                        let _ = stream.write_all(&reply[..3]);
                        std::thread::sleep(Duration::from_millis(5));
                        let _ = stream.write_all(&reply[3..]);
                    }
                });
            }
        });
        (addr, received)
    }

    fn ask(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        stream.write_all(b"Q")?;
        let mut reply = vec![0u8; 16];
        stream.read_exact(&mut reply)?;
        Ok(reply)
    }

    fn connect(proxy: &Proxy) -> TcpStream {
        let stream = TcpStream::connect(proxy.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(400)))
            .unwrap();
        stream
    }

    /// Pass, drop after one reply (the request still reaches the server), a reset after the
    /// drop, new connections passing meanwhile, and every connection silent.
    #[test]
    fn the_proxy_passes_drops_resets_and_goes_silent() {
        let (server, received) = fake_server();
        let proxy = Proxy::start(server);
        let mut a = connect(&proxy);
        assert_eq!(ask(&mut a).unwrap()[10], b'Z');
        assert_eq!(proxy.replies(), 1);

        proxy.drop_reply(1, Then::Reset(Duration::from_millis(600)));
        assert!(ask(&mut a).is_ok(), "one more reply passes");
        let mut b = connect(&proxy);
        assert!(ask(&mut b).is_ok(), "a new connection passes");
        let err = ask(&mut a).expect_err("the next reply is dropped");
        assert!(
            matches!(
                err.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{err}"
        );
        assert_eq!(
            received.load(Ordering::SeqCst),
            4,
            "the request reached the server"
        );
        assert!(proxy.dropped());
        std::thread::sleep(Duration::from_millis(400));
        let mut rest = [0u8; 1];
        let err = a.read(&mut rest).expect_err("then the connection is reset");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");

        proxy.set(Fault::SilentAll);
        let mut c = connect(&proxy);
        assert!(ask(&mut b).is_err(), "an open connection is silent");
        assert!(ask(&mut c).is_err(), "a new connection is silent");
        assert_eq!(
            received.load(Ordering::SeqCst),
            4,
            "nothing reached the server"
        );
        proxy.pass();
        let mut d = connect(&proxy);
        assert!(ask(&mut d).is_ok(), "passes again");
        let err = b
            .read(&mut rest)
            .expect_err("a connection that lost bytes is reset");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    }

    /// A delay holds each chunk; reset_all resets every open connection.
    #[test]
    fn the_proxy_delays_and_resets() {
        let (server, _) = fake_server();
        let proxy = Proxy::start(server);
        let mut a = connect(&proxy);
        a.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        proxy.set_delay(Duration::from_millis(150));
        let started = Instant::now();
        ask(&mut a).unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        proxy.set_delay(Duration::ZERO);
        proxy.reset_all();
        let mut rest = [0u8; 1];
        let err = a.read(&mut rest).expect_err("reset");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    }

    /// Through the proxy to the real server: the count of replies of a query, and a dropped
    /// reply to an INSERT that still committed.
    #[test]
    fn the_proxy_drops_a_real_reply_after_the_server_committed() {
        let direct = fresh_database();
        let (proxy, through) = Proxy::in_front_of(&direct);
        let mut db = postgres::Client::connect(&through, postgres::NoTls).unwrap();
        db.batch_execute("CREATE TABLE t (x int)").unwrap();
        let (_, replies) = proxy.replies_during(|| db.simple_query("SELECT 1").unwrap());
        assert_eq!(replies, Some(1));
        proxy.drop_reply(0, Then::Reset(Duration::from_millis(50)));
        assert!(db.simple_query("INSERT INTO t VALUES (1)").is_err());
        proxy.pass();
        let mut direct = postgres::Client::connect(&direct, postgres::NoTls).unwrap();
        let count: i64 = direct
            .query_one("SELECT count(*) FROM t", &[])
            .unwrap()
            .get(0);
        assert_eq!(count, 1, "the write committed; only its reply was lost");
    }
}
