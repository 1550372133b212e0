//! The PostgreSQL store shared by several processes, and its failure modes: processes racing
//! on the same clients, dispatchers in several processes, a process killed mid-load, the
//! database restarted mid-load, serialization failures, schema migrations and bad URLs.
//!
//! Worker processes are this same test binary, started with `FUNDCORE_PG_WORKER` set.
#![cfg(feature = "postgres")]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::SplitMix;
use common::stores::{engine_config, fresh_database, server_url, through_pooler};
use fundcore::{
    Actor, AuditAction, AuditEvent, Category, Channel, ClientId, Clock, Config, ContactChanges,
    Decimal, DeliveryError, Engine, Fund, FundChanges, Notification, NotificationStatus, Notifier,
    SystemClock, Timestamp, Transaction, TransactionKind,
};
use serde_json::{Map, Value, json};

const WORKER: &str = "FUNDCORE_PG_WORKER";
const WORKER_URL: &str = "FUNDCORE_PG_WORKER_URL";
const WORKER_CLIENTS: &str = "FUNDCORE_PG_WORKER_CLIENTS";
const WORKER_SEED: &str = "FUNDCORE_PG_WORKER_SEED";

/// Tests share the server; the restart test must have it alone.
static SERVER: RwLock<()> = RwLock::new(());

fn shared_server() -> std::sync::RwLockReadGuard<'static, ()> {
    SERVER.read().unwrap_or_else(|e| e.into_inner())
}

fn is_worker() -> bool {
    std::env::var(WORKER).is_ok()
}

/// One random subscribe or cancel on one of `clients`.
fn random_op(
    engine: &Engine,
    clients: &[ClientId],
    rng: &mut SplitMix,
) -> fundcore::Result<Transaction> {
    let client = clients[rng.below(clients.len() as u64) as usize];
    let fund = 1 + rng.below(5) as u32;
    let key = (rng.below(4) == 0).then(|| format!("k-{}", rng.below(3)));
    if rng.below(2) == 0 {
        let amount =
            (rng.below(2) == 0).then(|| Decimal::new(5_000_000 + rng.below(25_000_000) as i64, 2));
        engine.subscribe(client, fund, amount, key.as_deref())
    } else {
        engine.cancel(client, fund, key.as_deref())
    }
}

/// Notes every notification it is given on stdout, as `SENT <id>`.
struct PrintingNotifier;

impl Notifier for PrintingNotifier {
    fn send(&self, notification: &Notification) -> Result<(), DeliveryError> {
        println!("SENT {}", notification.id);
        Ok(())
    }
}

/// The worker: `hammer:<ops>` runs that many random operations, `forever` runs until killed,
/// `dispatch` delivers until the outbox stays empty; each prints what it was acknowledged.
#[test]
fn pg_worker() {
    let Ok(role) = std::env::var(WORKER) else {
        return;
    };
    let url = std::env::var(WORKER_URL).expect("worker URL");
    let clients: Vec<ClientId> = std::env::var(WORKER_CLIENTS)
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("client id"))
        .collect();
    let seed = std::env::var(WORKER_SEED)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rng = SplitMix(seed);
    // Behind the pooler when the tests run behind one (the URL is the pooler's then).
    let engine = Engine::connect(&url, engine_config()).expect("worker connects");
    println!("READY");
    match role.split_once(':').unwrap_or((&role, "")) {
        ("hammer", ops) => {
            for _ in 0..ops.parse::<u32>().expect("op count") {
                if let Ok(tx) = random_op(&engine, &clients, &mut rng) {
                    println!("ACK {}", serde_json::to_string(&tx).unwrap());
                }
            }
        }
        ("forever", _) => loop {
            if let Ok(tx) = random_op(&engine, &clients, &mut rng) {
                println!("ACK {}", serde_json::to_string(&tx).unwrap());
            }
        },
        ("dispatch", start_at) => {
            // Every dispatcher starts at the same moment, once all are connected, so the work
            // is shared by design and not by how fast each process happened to connect.
            let start_at = UNIX_EPOCH + Duration::from_millis(start_at.parse().expect("start"));
            if let Ok(wait) = start_at.duration_since(SystemTime::now()) {
                std::thread::sleep(wait);
            }
            let mut idle = 0;
            while idle < 20 {
                let report = engine.dispatch_notifications(&PrintingNotifier, 3).unwrap();
                if report.delivered == 0 {
                    idle += 1;
                    std::thread::sleep(Duration::from_millis(20));
                } else {
                    idle = 0;
                }
            }
        }
        (other, _) => panic!("unknown worker role {other}"),
    }
}

fn spawn_worker(role: &str, url: &str, clients: &[ClientId], seed: u64) -> Child {
    let ids: Vec<String> = clients.iter().map(ToString::to_string).collect();
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "pg_worker", "--nocapture", "--test-threads=1"])
        .env(WORKER, role)
        .env(WORKER_URL, url)
        .env(WORKER_CLIENTS, ids.join(","))
        .env(WORKER_SEED, seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Reads a worker's output lines on a thread.
fn collect_lines(child: &mut Child) -> std::thread::JoinHandle<Vec<String>> {
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    })
}

fn acknowledged(lines: &[String]) -> Vec<Transaction> {
    lines
        .iter()
        .filter_map(|line| line.strip_prefix("ACK "))
        .map(|json| serde_json::from_str(json).unwrap())
        .collect()
}

fn register(engine: &Engine, count: usize) -> Vec<ClientId> {
    (0..count)
        .map(|i| {
            let channel = if i % 2 == 0 {
                Channel::Email
            } else {
                Channel::Sms
            };
            engine
                .register_client(&format!("C{i}"), "c@example.com", "+573001234567", channel)
                .unwrap()
                .id
        })
        .collect()
}

fn assert_all_stored(engine: &Engine, acked: &[Transaction]) {
    for tx in acked {
        assert_eq!(
            engine.transaction(tx.id).as_ref(),
            Ok(tx),
            "acknowledged transaction lost or changed"
        );
    }
}

#[test]
fn four_processes_on_the_same_clients_keep_every_invariant() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let url = fresh_database();
    // Every engine through PgBouncer when the tests run behind it (`make test-pooler`).
    let pooled = through_pooler(&url);
    let engine = Engine::connect(&pooled, engine_config()).unwrap();
    let clients = register(&engine, 3);
    let mut workers: Vec<Child> = (0..4)
        .map(|seed| spawn_worker("hammer:80", &pooled, &clients, seed + 1))
        .collect();
    let readers: Vec<_> = workers.iter_mut().map(collect_lines).collect();
    for worker in &mut workers {
        assert!(worker.wait().unwrap().success(), "a worker failed");
    }
    let acked: Vec<Transaction> = readers
        .into_iter()
        .flat_map(|reader| acknowledged(&reader.join().unwrap()))
        .collect();
    assert!(
        acked.len() >= 20,
        "too little committed to prove anything: {}",
        acked.len()
    );
    common::check_invariants(&engine, &clients).unwrap();
    assert_all_stored(&engine, &acked);
    let ids: HashSet<_> = acked.iter().map(|tx| tx.id).collect();
    let stored: usize = clients
        .iter()
        .map(|&c| common::full_history(&engine, c).len())
        .sum();
    assert_eq!(
        stored,
        ids.len(),
        "a transaction no process acknowledged was stored"
    );
}

#[test]
fn three_dispatchers_in_three_processes_deliver_every_entry_exactly_once() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let url = fresh_database();
    // Every engine through PgBouncer when the tests run behind it (`make test-pooler`).
    let pooled = through_pooler(&url);
    let engine = Engine::connect(&pooled, engine_config()).unwrap();
    let clients = register(&engine, 12);
    for &client in &clients {
        for fund in [1, 3, 5] {
            engine.subscribe(client, fund, None, None).unwrap();
        }
        engine.cancel(client, 3, None).unwrap();
    }
    let expected: usize = clients
        .iter()
        .map(|&c| engine.notifications(c).unwrap().len())
        .sum();
    assert_eq!(expected, 48);
    let start_at = (SystemTime::now() + Duration::from_millis(2500))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let mut dispatchers: Vec<Child> = (0..3)
        .map(|i| spawn_worker(&format!("dispatch:{start_at}"), &pooled, &[], i))
        .collect();
    let readers: Vec<_> = dispatchers.iter_mut().map(collect_lines).collect();
    for dispatcher in &mut dispatchers {
        assert!(dispatcher.wait().unwrap().success(), "a dispatcher failed");
    }
    let mut sent: HashMap<String, usize> = HashMap::new();
    let mut busy_dispatchers = 0;
    for reader in readers {
        let lines = reader.join().unwrap();
        let mine = lines.iter().filter_map(|l| l.strip_prefix("SENT ")).count();
        busy_dispatchers += usize::from(mine > 0);
        for id in lines.iter().filter_map(|l| l.strip_prefix("SENT ")) {
            *sent.entry(id.to_owned()).or_default() += 1;
        }
    }
    assert_eq!(sent.len(), expected, "every entry is sent");
    assert!(
        sent.values().all(|&n| n == 1),
        "an entry was sent twice: {sent:?}"
    );
    assert!(
        busy_dispatchers >= 2,
        "the dispatchers did not share the work"
    );
    for &client in &clients {
        for n in engine.notifications(client).unwrap() {
            assert_eq!(n.status, NotificationStatus::Delivered);
            assert_eq!(n.attempts, 1);
        }
    }
}

#[test]
fn a_process_killed_mid_load_loses_nothing_it_acknowledged() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let url = fresh_database();
    // Every engine through PgBouncer when the tests run behind it (`make test-pooler`).
    let pooled = through_pooler(&url);
    let engine = Engine::connect(&pooled, engine_config()).unwrap();
    let clients = register(&engine, 4);
    let mut acked = Vec::new();
    for round in 0..5u64 {
        let mut worker = spawn_worker("forever", &pooled, &clients, round + 100);
        let reader = collect_lines(&mut worker);
        std::thread::sleep(Duration::from_millis(400 + round * 100));
        worker.kill().unwrap();
        worker.wait().unwrap();
        acked.extend(acknowledged(&reader.join().unwrap()));
        wait_until_the_server_is_done(&url);
        common::check_invariants(&engine, &clients)
            .unwrap_or_else(|broken| panic!("round {round}: {broken}"));
        assert_all_stored(&engine, &acked);
        // The ledger check reads the database on its own, client by client, after the kill.
        let report = fundcore::verify_store(&fundcore::StoreLocation::parse(&url))
            .unwrap_or_else(|e| panic!("round {round}: verify failed: {e}"));
        assert!(
            report.is_clean() && report.clients >= clients.len() as u64,
            "round {round}: verify after SIGKILL: {report}\n{:#?}",
            report.violations
        );
    }
    assert!(
        acked.len() >= 10,
        "too little committed to prove anything: {}",
        acked.len()
    );
}

/// Waits until no statement runs in the database `url` names: a statement a killed process
/// sent may still commit after the kill, and the invariants are read in several statements.
fn wait_until_the_server_is_done(url: &str) {
    let mut db = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let running: i64 = db
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
                   AND state <> 'idle'",
                &[],
            )
            .unwrap()
            .get(0);
        if running == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{running} statements still running"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `pg_ctl` on the test server (as its owner when the tests run as root).
fn pg_ctl(args: &[&str]) {
    let bin = std::env::var("FUNDCORE_TEST_PG_BIN").expect("FUNDCORE_TEST_PG_BIN");
    let data = std::env::var("FUNDCORE_TEST_PG_DATA").expect("FUNDCORE_TEST_PG_DATA");
    let pg_ctl = format!("{bin}/pg_ctl");
    let mut command = if unsafe_is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &pg_ctl]);
        c
    } else {
        Command::new(&pg_ctl)
    };
    let status = command
        .args(["-D", &data, "-w"])
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctl {args:?} failed");
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

#[test]
fn a_database_restart_fails_calls_then_the_same_engine_recovers() {
    if is_worker() {
        return;
    }
    let _alone = SERVER.write().unwrap_or_else(|e| e.into_inner());
    let url = fresh_database();
    let engine = Engine::connect(&url, Config::default()).unwrap();
    let clients = register(&engine, 3);
    let mut rng = SplitMix(7);
    let mut acked = Vec::new();
    for _ in 0..30 {
        acked.extend(random_op(&engine, &clients, &mut rng).ok());
    }
    several_callers(&engine, &clients, &mut acked);
    pg_ctl(&["-m", "fast", "stop"]);
    // During the outage every call fails, as a storage error, and commits nothing.
    for _ in 0..3 {
        let err = random_op(&engine, &clients, &mut rng).expect_err("no database, no transaction");
        assert_eq!(err.code(), "STORAGE_ERROR", "{err}");
        let err = engine.client(clients[0]).unwrap_err();
        assert_eq!(err.code(), "STORAGE_ERROR");
        assert!(
            err.to_string().contains("127.0.0.1"),
            "names the server: {err}"
        );
    }
    pg_ctl(&["start", "-w", "-l", "/dev/null"]);
    // The same engine works again at once, without being reopened.
    let mut after_restart = |acked: &mut Vec<Transaction>| {
        for _ in 0..30 {
            match random_op(&engine, &clients, &mut rng) {
                Ok(tx) => acked.push(tx),
                Err(err) => assert_ne!(err.code(), "STORAGE_ERROR", "not recovered: {err}"),
            }
        }
    };
    after_restart(&mut acked);
    // A restart between two calls: every pooled connection died with the server, unnoticed.
    // They are replaced before anything is sent on them, on the two-trip path and on the
    // one-trip path of the clients seen before the restart alike.
    several_callers(&engine, &clients, &mut acked);
    let seen = register(&engine, 1)[0];
    acked.push(engine.subscribe(seen, 1, None, None).unwrap());
    pg_ctl(&["-m", "fast", "restart", "-w", "-l", "/dev/null"]);
    let refund = engine
        .cancel(seen, 1, None)
        .expect("a change on the one-trip path right after the restart");
    acked.push(refund);
    after_restart(&mut acked);
    let clients = [clients, vec![seen]].concat();
    common::check_invariants(&engine, &clients).unwrap();
    assert_all_stored(&engine, &acked);
}

/// Four callers at once, so the pool holds several connections.
fn several_callers(engine: &Engine, clients: &[ClientId], acked: &mut Vec<Transaction>) {
    std::thread::scope(|scope| {
        let callers: Vec<_> = (0..4u64)
            .map(|caller| {
                scope.spawn(move || {
                    let mut rng = SplitMix(100 + caller);
                    (0..10)
                        .filter_map(|_| random_op(engine, clients, &mut rng).ok())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for caller in callers {
            acked.extend(caller.join().unwrap());
        }
    });
}

#[test]
fn serialization_failures_are_retried_and_give_one_correct_result() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let url = fresh_database();
    let serializable = format!("{url}?options=-c%20default_transaction_isolation%3Dserializable");
    let engine = Engine::connect(&serializable, Config::default()).unwrap();
    let clients = register(&engine, 1);
    let barrier = Arc::new(Barrier::new(8));
    let acked: Vec<Transaction> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8u64)
            .map(|seed| {
                let (engine, clients, barrier) = (engine.clone(), clients.clone(), barrier.clone());
                scope.spawn(move || {
                    let mut rng = SplitMix(seed);
                    barrier.wait();
                    (0..40)
                        .filter_map(|_| random_op(&engine, &clients, &mut rng).ok())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let stats = engine.store_stats();
    assert!(
        stats.serialization_retries > 0,
        "no serialization failure happened, so nothing was proven: {stats:?}"
    );
    common::check_invariants(&engine, &clients).unwrap();
    assert_all_stored(&engine, &acked);
    assert_eq!(
        common::full_history(&engine, clients[0]).len(),
        acked.iter().map(|tx| tx.id).collect::<HashSet<_>>().len()
    );
}

/// Many callers on one client lose races often, so changes fall back to locking the client's
/// row first; the balance must still add up.
#[test]
fn callers_crowding_one_client_keep_every_invariant() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    // A few rounds: each one's interleaving is up to the scheduler.
    for round in 0..3u64 {
        crowd_one_client(round);
    }
}

fn crowd_one_client(round: u64) {
    let engine = Engine::connect(&fresh_database(), Config::default()).unwrap();
    let clients = register(&engine, 1);
    let barrier = Arc::new(Barrier::new(8));
    let acked: Vec<Transaction> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8u64)
            .map(|seed| {
                let (engine, clients, barrier) = (engine.clone(), clients.clone(), barrier.clone());
                scope.spawn(move || {
                    let mut rng = SplitMix(seed + 40 + round * 8);
                    barrier.wait();
                    (0..60)
                        .filter_map(|_| {
                            // Two funds only, so most operations touch the same subscriptions.
                            let fund = 1 + rng.below(2) as u32;
                            match rng.below(2) {
                                0 => engine.subscribe(clients[0], fund, None, None),
                                _ => engine.cancel(clients[0], fund, None),
                            }
                            .ok()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let stats = engine.store_stats();
    assert!(
        stats.lost_races >= 3,
        "no contention, nothing proven: {stats:?}"
    );
    common::check_invariants(&engine, &clients).unwrap();
    assert_all_stored(&engine, &acked);
}

#[test]
fn a_subscribe_or_cancel_takes_two_round_trips_and_one_once_its_client_is_seen() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let engine = Engine::connect(&fresh_database(), Config::default()).unwrap();
    let client = register(&engine, 1)[0];
    let trips = |what: &str, expected: u64, op: &dyn Fn() -> fundcore::Result<Transaction>| {
        let before = engine.store_stats().round_trips;
        let outcome = op();
        assert_eq!(
            engine.store_stats().round_trips - before,
            expected,
            "{what}"
        );
        outcome
    };
    let first = trips("a first subscribe: a read and a write", 2, &|| {
        engine.subscribe(client, 1, None, Some("k-1"))
    })
    .unwrap();
    trips("a cancel once seen: the guarded write alone", 1, &|| {
        engine.cancel(client, 1, None)
    })
    .unwrap();
    trips(
        "a fund whose subscription was never read for this client",
        2,
        &|| engine.subscribe(client, 2, None, None),
    )
    .unwrap();
    let replay = trips(
        "a replay: the write stops on the key's index, then a read finds the original",
        2,
        &|| engine.subscribe(client, 1, None, Some("k-1")),
    )
    .unwrap();
    assert_eq!(replay, first);
    let err = trips(
        "a key used for another request: the same two trips",
        2,
        &|| engine.subscribe(client, 1, Some(cop(80_000)), Some("k-1")),
    )
    .unwrap_err();
    assert_eq!(err.code(), "IDEMPOTENCY_KEY_REUSED", "{err}");
    let err = trips("a refusal is given on a fresh read only", 1, &|| {
        engine.cancel(client, 1, None)
    })
    .unwrap_err();
    assert_eq!(err.code(), "NOT_SUBSCRIBED", "{err}");
    assert_eq!(engine.store_stats().lost_races, 0);
    common::check_invariants(&engine, &[client]).unwrap();
}

#[test]
fn what_one_process_saw_never_overrides_a_change_made_by_another() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let url = fresh_database();
    let (seer, other) = two_processes(&url);
    let client = register(&seer, 1)[0];
    // The first process sees the client with its whole balance and no subscription to fund 4.
    seer.subscribe(client, 4, None, None).unwrap();
    seer.cancel(client, 4, None).unwrap();
    assert_eq!(seer.client(client).unwrap().balance, cop(500_000));

    // The other process spends most of it: what the first saw would allow 250.000 more.
    for fund in [1, 2, 3, 5] {
        other.subscribe(client, fund, None, None).unwrap();
    }
    let trail = common::full_history(&seer, client);
    let before = seer.store_stats();
    let err = seer.subscribe(client, 4, None, None).unwrap_err();
    assert_eq!(err.code(), "INSUFFICIENT_BALANCE", "{err}");
    assert_eq!(
        seer.store_stats().round_trips - before.round_trips,
        2,
        "a write decided on what it saw, stopped by the guard, then the read that refuses"
    );
    assert_eq!(
        seer.store_stats().lost_races - before.lost_races,
        1,
        "counted as a lost race"
    );
    assert_eq!(
        common::full_history(&seer, client),
        trail,
        "nothing written"
    );

    // The other process refunds 125.000: what the first saw (150.000) would refuse, the
    // database allows.
    other.cancel(client, 2, None).unwrap();
    let tx = seer.subscribe(client, 4, None, None).unwrap();
    assert_eq!(tx.balance_after, cop(25_000));
    assert_eq!(other.client(client).unwrap().balance, cop(25_000));

    // The other process replaces that subscription with one of 260.000: the first refunds
    // what is stored now, not the 250.000 it saw.
    other.cancel(client, 4, None).unwrap();
    other
        .subscribe(client, 4, Some(cop(260_000)), None)
        .unwrap();
    let refund = seer.cancel(client, 4, None).unwrap();
    assert_eq!(refund.amount, cop(260_000));
    assert_eq!(refund.balance_after, cop(275_000));

    // The other process subscribes to the fund the first saw free: refused, not doubled.
    other.subscribe(client, 4, None, None).unwrap();
    let err = seer.subscribe(client, 4, None, None).unwrap_err();
    assert_eq!(err.code(), "ALREADY_SUBSCRIBED", "{err}");
    common::check_invariants(&seer, &[client]).unwrap();
    common::check_invariants(&other, &[client]).unwrap();
}

#[test]
fn a_row_changed_behind_its_version_is_read_again_before_a_one_trip_write() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let url = fresh_database();
    let engine = Engine::connect(&url, Config::default()).unwrap();
    let client = register(&engine, 1)[0];
    engine.subscribe(client, 1, None, None).unwrap();
    engine.cancel(client, 1, None).unwrap();
    // As a database restored or failed over under a running engine may show it: rows whose
    // versions are the ones the engine saw, with other contents.
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let one_trip = |what: &str, op: &dyn Fn() -> fundcore::Result<Transaction>| {
        let before = engine.store_stats().round_trips;
        let tx = op().unwrap();
        assert_eq!(
            engine.store_stats().round_trips - before,
            3,
            "{what}: read again"
        );
        tx
    };
    db.execute(
        "UPDATE fundcore_clients SET email = 'moved@example.com' WHERE id = $1",
        &[&client.0],
    )
    .unwrap();
    let tx = one_trip("contact data", &|| engine.subscribe(client, 1, None, None));
    let notification = engine
        .notifications(client)
        .unwrap()
        .into_iter()
        .find(|n| n.transaction_id == tx.id)
        .unwrap();
    assert_eq!(notification.recipient, "moved@example.com");

    // A guard that fails makes the engine forget the client: see it again for the next fund.
    engine.subscribe(client, 3, None, None).unwrap();
    engine.cancel(client, 3, None).unwrap();
    db.execute(
        "UPDATE fundcore_funds SET minimum = 80000 WHERE id = 3",
        &[],
    )
    .unwrap();
    let tx = one_trip("the fund's minimum", &|| {
        engine.subscribe(client, 3, None, None)
    });
    assert_eq!(tx.amount, cop(80_000));

    engine.cancel(client, 1, None).unwrap();
    engine.subscribe(client, 1, None, None).unwrap();
    let newest = uuid::Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001);
    db.execute(
        "UPDATE fundcore_clients SET newest_transaction_id = $2 WHERE id = $1",
        &[&client.0, &newest],
    )
    .unwrap();
    one_trip("the newest transaction", &|| engine.cancel(client, 1, None));
    common::check_invariants(&engine, &[client]).unwrap();
}

#[test]
fn processes_connecting_at_once_create_the_schema_once() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let url = fresh_database();
    let barrier = Arc::new(Barrier::new(8));
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let (url, barrier) = (url.clone(), barrier.clone());
            scope.spawn(move || {
                barrier.wait();
                Engine::connect(&url, Config::default()).expect("concurrent connect");
            });
        }
    });
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let migrations: i64 = db
        .query_one("SELECT count(*) FROM fundcore_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(migrations, 3, "each known migration applied once");
    let funds: i64 = db
        .query_one("SELECT count(*) FROM fundcore_funds", &[])
        .unwrap()
        .get(0);
    assert_eq!(funds, 5, "seeded once");
}

#[test]
fn a_schema_newer_than_the_library_is_refused() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let url = fresh_database();
    drop(Engine::connect(&url, Config::default()).unwrap());
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    db.execute(
        "INSERT INTO fundcore_migrations (version, name) VALUES (999, 'from the future')",
        &[],
    )
    .unwrap();
    let err = Engine::connect(&url, Config::default()).unwrap_err();
    assert_eq!(err.code(), "STORAGE_ERROR");
    assert!(err.to_string().contains("999"), "{err}");
}

#[test]
fn bad_urls_wrong_passwords_and_unreachable_hosts_are_clear_storage_errors() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let err = Engine::connect("postgresql://[::1", Config::default()).unwrap_err();
    assert_eq!(err.code(), "STORAGE_ERROR");
    assert!(err.to_string().contains("URL"), "{err}");

    let err = Engine::connect("postgresql://nobody@127.0.0.1:1/db", Config::default()).unwrap_err();
    assert_eq!(err.code(), "STORAGE_ERROR");
    assert!(
        err.to_string().contains("127.0.0.1:1"),
        "names the host: {err}"
    );

    // The test server asks this role for a password (scheme scram-sha-256).
    let server = server_url();
    let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS fundcore_password_probe;
             CREATE ROLE fundcore_password_probe LOGIN PASSWORD 'right-secret'",
        )
        .unwrap();
    let host = server
        .trim_start_matches("postgresql://")
        .split_once('@')
        .map(|(_, rest)| rest)
        .unwrap();
    let wrong = format!("postgresql://fundcore_password_probe:wrong-secret@{host}");
    let err = Engine::connect(&wrong, Config::default()).unwrap_err();
    assert_eq!(err.code(), "STORAGE_ERROR");
    let text = err.to_string();
    assert!(text.contains("127.0.0.1"), "names the host: {text}");
    assert!(text.contains("password"), "says what is wrong: {text}");
    assert!(!text.contains("wrong-secret"), "never the password: {text}");
}

// ------------------------------------------------------------------ administration

fn cop(amount: i64) -> Decimal {
    Decimal::new(amount, 0)
}

fn admin_actor() -> Actor {
    Actor::new("ops@example.com").with_request_id("req-7")
}

fn minimum_change(minimum: Decimal) -> FundChanges {
    FundChanges {
        minimum: Some(minimum),
        ..FundChanges::default()
    }
}

fn active_change(active: bool) -> FundChanges {
    FundChanges {
        active: Some(active),
        ..FundChanges::default()
    }
}

/// The whole audit trail, newest first, read page by page through the cursor.
fn full_audit_trail(engine: &Engine) -> Vec<AuditEvent> {
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = engine.audit_events(3, before).unwrap();
        all.extend(page.items);
        match page.next {
            Some(next) => before = Some(next),
            None => return all,
        }
    }
}

/// A fund's fields as its audit events record them.
fn recorded_fields(fund: &Fund) -> Map<String, Value> {
    match json!({
        "name": fund.name,
        "minimum": fund.minimum.to_string(),
        "category": fund.category.as_str(),
        "active": fund.active,
    }) {
        Value::Object(fields) => fields,
        _ => unreachable!("an object"),
    }
}

/// Two engines with their own pools on one database, as two processes would have.
fn two_processes(url: &str) -> (Engine, Engine) {
    (
        Engine::connect(url, Config::default()).unwrap(),
        Engine::connect(url, Config::default()).unwrap(),
    )
}

#[test]
fn a_change_made_by_one_process_is_seen_by_another_at_once() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let url = fresh_database();
    let (admin, other) = two_processes(&url);
    let actor = admin_actor();
    let client = register(&other, 1)[0];

    // A fund created by one process is served and used by the other.
    let created = admin
        .create_fund(6, "FONDO_NUEVO", cop(80_000), Category::Fic, &actor)
        .unwrap();
    assert_eq!(other.fund(6).unwrap(), created);
    assert!(other.funds().unwrap().contains(&created));
    assert_eq!(
        other.subscribe(client, 6, None, None).unwrap().amount,
        cop(80_000)
    );

    // A new minimum set by one process applies to the other's next subscription; the
    // subscription made before it is refunded exactly its stored amount.
    let seeded_minimum = other.fund(1).unwrap().minimum;
    assert_eq!(
        other.subscribe(client, 1, None, None).unwrap().amount,
        cop(75_000)
    );
    admin
        .update_fund(1, &minimum_change(cop(90_000)), &actor)
        .unwrap();
    let refund = other.cancel(client, 1, None).unwrap();
    assert_eq!(
        refund.amount,
        cop(75_000),
        "the stored amount, not the minimum"
    );
    assert_eq!(
        other.subscribe(client, 1, None, None).unwrap().amount,
        cop(90_000)
    );
    let err = other
        .subscribe(client, 6, None, None)
        .expect_err("already subscribed");
    assert_eq!(err.code(), "ALREADY_SUBSCRIBED");

    // A fund closed by one process is refused by the other, which may still cancel.
    other.subscribe(client, 3, None, None).unwrap();
    admin.update_fund(2, &active_change(false), &actor).unwrap();
    admin.update_fund(3, &active_change(false), &actor).unwrap();
    let err = other.subscribe(client, 2, None, None).unwrap_err();
    assert_eq!(err.code(), "FUND_INACTIVE", "{err}");
    assert_eq!(
        other.cancel(client, 3, None).unwrap().amount,
        cop(50_000),
        "cancelling in a closed fund is allowed"
    );

    // A contact change made by one process: the other's next notification uses it, the
    // entries already queued keep theirs.
    let changed = admin
        .update_client(
            client,
            &ContactChanges {
                channel: Some(Channel::Sms),
                phone: Some("+573009998877".into()),
                ..ContactChanges::default()
            },
            &actor,
        )
        .unwrap();
    assert_eq!(other.client(client).unwrap(), changed);
    admin.update_fund(2, &active_change(true), &actor).unwrap();
    let tx = other.subscribe(client, 2, None, None).unwrap();
    for notification in other.notifications(client).unwrap() {
        let expected = if notification.transaction_id == tx.id {
            (Channel::Sms, "+573009998877")
        } else {
            (Channel::Email, "c@example.com")
        };
        assert_eq!(
            (notification.channel, notification.recipient.as_str()),
            expected
        );
    }

    // A taken id is refused from either process, with nothing written.
    let trail = full_audit_trail(&other);
    let err = other
        .create_fund(6, "OTRO", cop(1_000), Category::Fpv, &actor)
        .unwrap_err();
    assert_eq!(err.code(), "FUND_ALREADY_EXISTS");
    assert_eq!(admin.fund(6).unwrap(), created);
    assert_eq!(
        full_audit_trail(&admin),
        trail,
        "a refused change leaves no event"
    );

    // Either process lists the trail newest first, who and which request made each change.
    let summary: Vec<(AuditAction, &str)> = trail
        .iter()
        .map(|event| (event.action, event.target.as_str()))
        .collect();
    let client_text = client.to_string();
    assert_eq!(
        summary,
        [
            (AuditAction::FundUpdated, "2"),
            (AuditAction::ClientUpdated, client_text.as_str()),
            (AuditAction::FundUpdated, "3"),
            (AuditAction::FundUpdated, "2"),
            (AuditAction::FundUpdated, "1"),
            (AuditAction::FundCreated, "6"),
        ]
    );
    assert!(
        trail.iter().all(|event| event.actor == "ops@example.com"
            && event.request_id.as_deref() == Some("req-7"))
    );
    assert_eq!(
        Value::Object(trail[5].after.clone()),
        Value::Object(recorded_fields(&created))
    );
    assert!(trail[5].before.is_empty());
    assert_eq!(
        (&trail[4].before, &trail[4].after),
        (
            &json_object(json!({"minimum": seeded_minimum.to_string()})),
            &json_object(json!({"minimum": admin.fund(1).unwrap().minimum.to_string()}))
        )
    );
    assert_eq!(
        trail[1].after,
        json_object(json!({"channel": "sms", "phone": "+573009998877"}))
    );
    common::check_invariants(&other, &[client]).unwrap();
}

fn json_object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(fields) => fields,
        _ => unreachable!("an object"),
    }
}

#[test]
fn clients_and_audit_events_are_listed_newest_first_page_by_page() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let (admin, other) = two_processes(&fresh_database());
    let mut registered = register(&admin, 4);
    registered.extend(register(&other, 3));
    // Newest first is id order: UUIDv7 from two processes' clocks agree to the millisecond, so
    // clients registered by two engines in the same millisecond list in their ids' order.
    registered.sort();
    registered.reverse();
    let mut listed = Vec::new();
    let mut before = None;
    loop {
        let page = other.clients(2, before).unwrap();
        assert!(page.items.len() <= 2);
        listed.extend(page.items.iter().map(|client| client.id));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, registered);

    let actor = admin_actor();
    for minimum in 1..=7 {
        let engine = if minimum % 2 == 0 { &admin } else { &other };
        engine
            .update_fund(4, &minimum_change(cop(100_000 + minimum)), &actor)
            .unwrap();
    }
    let trail = full_audit_trail(&admin);
    assert_eq!(trail.len(), 7);
    assert!(trail.windows(2).all(|pair| pair[0].id > pair[1].id));
    let afters: Vec<_> = trail.iter().map(|e| e.after["minimum"].clone()).collect();
    let expected: Vec<_> = (1..=7)
        .rev()
        .map(|m| json!(format!("{}.00", 100_000 + m)))
        .collect();
    assert_eq!(afters, expected);
}

#[test]
fn concurrent_updates_of_one_fund_keep_one_audit_event_per_effective_change() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let url = fresh_database();
    let (first, second) = two_processes(&url);
    // The order the events were written in, from the database: ids come from two processes'
    // clocks, which agree only to the millisecond.
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    db.batch_execute("ALTER TABLE fundcore_audit_events ADD COLUMN test_written bigserial")
        .unwrap();
    let initial = first.fund(1).unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let minimums = [cop(75_000), cop(80_000), cop(85_000)];
    let answered: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8u64)
            .map(|seed| {
                let engine = if seed % 2 == 0 { &first } else { &second }.clone();
                let barrier = barrier.clone();
                scope.spawn(move || {
                    let mut rng = SplitMix(seed + 500);
                    let actor = Actor::new(format!("admin-{seed}"));
                    barrier.wait();
                    (0..30)
                        .filter(|_| {
                            let changes = match rng.below(3) {
                                0 => active_change(rng.below(2) == 0),
                                1 => minimum_change(minimums[rng.below(3) as usize]),
                                _ => FundChanges {
                                    minimum: Some(minimums[rng.below(3) as usize]),
                                    active: Some(rng.below(2) == 0),
                                    ..FundChanges::default()
                                },
                            };
                            engine.update_fund(1, &changes, &actor).is_ok()
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(answered, 240, "every update was answered");

    // Replaying the events, oldest first, from the fund as it was: each starts from the state
    // the previous one left (no update was lost or recorded twice) and changes something.
    let trail: HashMap<_, _> = full_audit_trail(&first)
        .into_iter()
        .map(|event| (event.id.0, event))
        .collect();
    let events: Vec<AuditEvent> = db
        .query(
            "SELECT id FROM fundcore_audit_events ORDER BY test_written",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| trail[&row.get::<_, uuid::Uuid>(0)].clone())
        .collect();
    assert_eq!(events.len(), trail.len());
    assert!(
        events
            .iter()
            .all(|e| e.action == AuditAction::FundUpdated && e.target == "1")
    );
    let mut state = recorded_fields(&initial);
    for event in &events {
        assert!(!event.after.is_empty(), "an event that changes nothing");
        assert_eq!(
            event.before.keys().collect::<Vec<_>>(),
            event.after.keys().collect::<Vec<_>>()
        );
        for (field, old) in &event.before {
            assert_eq!(
                &state[field], old,
                "event {} starts from a stale state",
                event.id
            );
            assert_ne!(
                &event.after[field], old,
                "event {} changes nothing",
                event.id
            );
        }
        state.extend(event.after.clone());
    }
    assert_eq!(state, recorded_fields(&second.fund(1).unwrap()));
    assert!(
        events.len() >= 40,
        "too few effective changes to prove anything: {}",
        events.len()
    );
    // The fund's version moved once per effective change, and only then.
    let version: i64 = db
        .query_one("SELECT version FROM fundcore_funds WHERE id = 1", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, events.len() as i64);
}

/// The system clock, with a hook run (once) the next time it is read: inside an engine's
/// decision, between the store's read and its write.
#[derive(Default)]
struct HookClock {
    hook: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl std::fmt::Debug for HookClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookClock")
    }
}

impl HookClock {
    fn arm(&self, hook: impl FnOnce() + Send + 'static) {
        *self.hook.lock().unwrap() = Some(Box::new(hook));
    }
}

impl Clock for HookClock {
    fn now(&self) -> Timestamp {
        let hook = self.hook.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        SystemClock.now()
    }
}

/// An engine whose clock runs a hook, and an engine of another "process" for the hook to use.
fn engine_with_hook(url: &str) -> (Engine, Arc<HookClock>, Engine) {
    let clock = Arc::new(HookClock::default());
    let shared: Arc<dyn Clock> = clock.clone();
    let config = Config::builder().clock(shared).build().unwrap();
    let engine = Engine::connect(url, config).unwrap();
    (
        engine,
        clock,
        Engine::connect(url, Config::default()).unwrap(),
    )
}

#[test]
fn a_subscribe_whose_fund_changes_before_its_write_reads_again() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let url = fresh_database();
    let (engine, clock, admin) = engine_with_hook(&url);
    let client = register(&engine, 1)[0];

    // The minimum is raised after the subscribe read 75.000 and before it writes.
    let raiser = admin.clone();
    clock.arm(move || {
        raiser
            .update_fund(1, &minimum_change(cop(95_000)), &admin_actor())
            .unwrap();
    });
    let races = engine.store_stats().lost_races;
    let tx = engine.subscribe(client, 1, None, None).unwrap();
    assert_eq!(
        tx.amount,
        cop(95_000),
        "committed with a minimum already replaced"
    );
    assert_eq!(engine.store_stats().lost_races, races + 1);

    // The fund is closed between the read and the write: refused, nothing written.
    let closer = admin.clone();
    clock.arm(move || {
        closer
            .update_fund(3, &active_change(false), &admin_actor())
            .unwrap();
    });
    let err = engine.subscribe(client, 3, None, None).unwrap_err();
    assert_eq!(err.code(), "FUND_INACTIVE", "{err}");
    assert_eq!(common::full_history(&engine, client), vec![tx.clone()]);

    // The fund is renamed between the read and the write: the transaction has the new name.
    let renamer = admin.clone();
    clock.arm(move || {
        let rename = FundChanges {
            name: Some("DEUDAPRIVADA_PLUS".into()),
            ..FundChanges::default()
        };
        renamer.update_fund(5, &rename, &admin_actor()).unwrap();
    });
    let renamed = engine.subscribe(client, 5, None, None).unwrap();
    assert_eq!(renamed.fund_name, "DEUDAPRIVADA_PLUS");

    // The client's channel changes between the read and the write: the notification of the
    // subscription, created after the change, goes on the new channel.
    let contact = admin.clone();
    clock.arm(move || {
        let to_sms = ContactChanges {
            channel: Some(Channel::Sms),
            ..ContactChanges::default()
        };
        contact
            .update_client(client, &to_sms, &admin_actor())
            .unwrap();
    });
    let tx = engine.subscribe(client, 4, None, None).unwrap();
    let notification = engine
        .notifications(client)
        .unwrap()
        .into_iter()
        .find(|n| n.transaction_id == tx.id)
        .unwrap();
    assert_eq!(
        (notification.channel, notification.recipient.as_str()),
        (Channel::Sms, "+573001234567")
    );
    common::check_invariants(&engine, &[client]).unwrap();
}

#[test]
fn subscribes_racing_new_minimums_never_commit_a_replaced_minimum() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let url = fresh_database();
    let (admin, subscriber) = two_processes(&url);
    // A check in the database itself, on the snapshot the write sees (a STABLE function reads
    // the statement's snapshot): no subscription at the fund's minimum is stored below the
    // minimum in force when it is written.
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    db.batch_execute(
        "CREATE FUNCTION test_refuse_replaced_minimum() RETURNS trigger
         LANGUAGE plpgsql STABLE AS $$
         DECLARE current numeric;
         BEGIN
             SELECT minimum INTO current FROM fundcore_funds WHERE id = NEW.fund_id;
             IF NEW.kind = 'subscription' AND NEW.amount < current THEN
                 RAISE EXCEPTION 'replaced minimum: % written while % was in force',
                     NEW.amount, current;
             END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER test_refuse_replaced_minimum BEFORE INSERT ON fundcore_transactions
         FOR EACH ROW EXECUTE FUNCTION test_refuse_replaced_minimum();",
    )
    .unwrap();
    let clients = register(&subscriber, 8);
    let raising = AtomicBool::new(true);
    let (subscribed, failures) = std::thread::scope(|scope| {
        let workers: Vec<_> = clients
            .chunks(2)
            .map(|mine| {
                let (subscriber, raising) = (&subscriber, &raising);
                scope.spawn(move || {
                    let mut subscribed = Vec::new();
                    let mut failures = Vec::new();
                    while raising.load(Ordering::Relaxed) {
                        for &client in mine {
                            match subscriber.subscribe(client, 1, None, None) {
                                Ok(tx) => subscribed.push(tx),
                                Err(err) => failures.push(err.to_string()),
                            }
                            if let Err(err) = subscriber.cancel(client, 1, None) {
                                failures.push(err.to_string());
                            }
                        }
                    }
                    (subscribed, failures)
                })
            })
            .collect();
        // Many iterations: each raise is a chance to land between a subscribe's read and its
        // write.
        for step in 1..=400 {
            admin
                .update_fund(1, &minimum_change(cop(75_000 + 10 * step)), &admin_actor())
                .unwrap();
        }
        raising.store(false, Ordering::Relaxed);
        workers.into_iter().map(|w| w.join().unwrap()).fold(
            (Vec::new(), Vec::new()),
            |(mut all, mut failed), (s, f)| {
                all.extend(s);
                failed.extend(f);
                (all, failed)
            },
        )
    });
    assert!(
        failures.is_empty(),
        "{} calls failed, the first: {:?}",
        failures.len(),
        &failures[..failures.len().min(2)]
    );
    let minimums: HashSet<Decimal> = (0..=400).map(|step| cop(75_000 + 10 * step)).collect();
    assert!(
        subscribed
            .iter()
            .all(|tx| tx.kind == TransactionKind::Subscription && minimums.contains(&tx.amount))
    );
    let stats = subscriber.store_stats();
    // Each client has one caller, so every lost race was a fund changed under a subscribe.
    assert!(
        stats.lost_races >= 5 && subscribed.len() >= 200,
        "too few races to prove anything: {stats:?}, {} subscriptions",
        subscribed.len()
    );
    common::check_invariants(&subscriber, &clients).unwrap();
}

/// Creates, in an empty database, the schema of version 1 exactly as that library left it,
/// with a store's settings, its catalogue and a client with a subscription.
fn database_at_schema_1(url: &str) -> ClientId {
    let mut db = postgres::Client::connect(url, postgres::NoTls).unwrap();
    db.batch_execute(
        "CREATE TABLE fundcore_schema_lock (id integer PRIMARY KEY);
         CREATE TABLE fundcore_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO fundcore_schema_lock (id) VALUES (1);",
    )
    .unwrap();
    db.batch_execute(include_str!(
        "../src/store/postgres/migrations/0001_initial.sql"
    ))
    .unwrap();
    let client = ClientId(uuid::Uuid::now_v7());
    let subscription = uuid::Uuid::now_v7();
    let notification = uuid::Uuid::now_v7();
    db.execute(
        "INSERT INTO fundcore_migrations (version, name) VALUES (1, 'initial')",
        &[],
    )
    .unwrap();
    db.batch_execute(&format!(
        "INSERT INTO fundcore_settings (initial_balance) VALUES (500000.00);
         INSERT INTO fundcore_funds (id, name, minimum, category, active) VALUES
             (1, 'FPV_BTG_PACTUAL_RECAUDADORA', 75000.00, 'FPV', true),
             (3, 'DEUDAPRIVADA', 50000.00, 'FIC', true);
         INSERT INTO fundcore_clients
             (id, name, email, phone, channel, balance, created_at, version,
              newest_transaction_id)
         VALUES ('{client}', 'Ana', 'ana@example.com', '+573001234567', 'email', 425000.00,
                 now(), 1, '{subscription}');
         INSERT INTO fundcore_transactions
             (client_id, id, fund_id, fund_name, kind, amount, balance_after, created_at)
         VALUES ('{client}', '{subscription}', 1, 'FPV_BTG_PACTUAL_RECAUDADORA',
                 'subscription', 75000.00, 425000.00, now());
         INSERT INTO fundcore_subscriptions
             (client_id, fund_id, fund_name, amount, transaction_id, subscribed_at)
         VALUES ('{client}', 1, 'FPV_BTG_PACTUAL_RECAUDADORA', 75000.00, '{subscription}',
                 now());
         INSERT INTO fundcore_outbox
             (client_id, transaction_id, id, channel, recipient, client_name, locale, status,
              attempts, delivered_at)
         VALUES ('{client}', '{subscription}', '{notification}', 'email', 'ana@example.com',
                 'Ana', 'es', 'delivered', 1, now());"
    ))
    .unwrap();
    client
}

#[test]
fn a_database_at_schema_1_is_upgraded_by_processes_connecting_at_once() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let url = fresh_database();
    let client = database_at_schema_1(&url);
    let barrier = Arc::new(Barrier::new(8));
    let engines: Vec<Engine> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (url, barrier) = (url.clone(), barrier.clone());
                scope.spawn(move || {
                    barrier.wait();
                    Engine::connect(&url, Config::default()).expect("connect and upgrade")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let versions: Vec<i32> = db
        .query(
            "SELECT version FROM fundcore_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3], "migrations 2 and 3 applied once");

    // What version 1 stored is intact and works with what version 2 adds.
    let engine = &engines[3];
    assert_eq!(
        engine
            .funds()
            .unwrap()
            .iter()
            .map(|f| f.id)
            .collect::<Vec<_>>(),
        [1, 3],
        "the stored catalogue counts, not the configured one"
    );
    assert_eq!(engine.client(client).unwrap().balance, cop(425_000));
    engines[0]
        .update_fund(1, &minimum_change(cop(80_000)), &admin_actor())
        .unwrap();
    assert_eq!(
        engines[5].cancel(client, 1, None).unwrap().amount,
        cop(75_000)
    );
    assert_eq!(
        engines[6].subscribe(client, 1, None, None).unwrap().amount,
        cop(80_000)
    );
    assert_eq!(full_audit_trail(&engines[7]).len(), 1);
    common::check_invariants(engine, &[client]).unwrap();
}

#[test]
fn administrative_changes_take_few_round_trips() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let engine = Engine::connect(&fresh_database(), Config::default()).unwrap();
    let client = register(&engine, 1)[0];
    let actor = admin_actor();
    let trips = |f: &dyn Fn()| {
        let before = engine.store_stats().round_trips;
        f();
        engine.store_stats().round_trips - before
    };
    assert_eq!(
        trips(&|| {
            engine
                .create_fund(9, "FONDO_NUEVE", cop(60_000), Category::Fpv, &actor)
                .unwrap();
        }),
        1,
        "create_fund is one statement"
    );
    assert_eq!(
        trips(&|| {
            engine
                .update_fund(9, &minimum_change(cop(70_000)), &actor)
                .unwrap();
        }),
        4,
        "begin, lock, write with its event, commit"
    );
    assert_eq!(
        trips(&|| {
            engine.subscribe(client, 9, None, None).unwrap();
        }),
        2,
        "the fund comes with the money read"
    );
    assert_eq!(
        trips(&|| {
            engine.cancel(client, 9, None).unwrap();
        }),
        1,
        "the client and the fund were seen: the guarded write alone"
    );
    engine
        .update_fund(9, &minimum_change(cop(65_000)), &actor)
        .unwrap();
    let tx = engine.subscribe(client, 9, None, None).unwrap();
    assert_eq!(tx.amount, cop(65_000), "the new minimum");
    assert_eq!(
        engine.store_stats().lost_races,
        0,
        "a changed fund is read again, not raced"
    );
}

/// An engine called from inside a tokio runtime (an async web framework calling it directly)
/// answers STORAGE_ERROR saying to call it from a blocking thread, instead of a panic that
/// takes the process down (the store blocks on a runtime of its own, which tokio forbids there).
#[test]
fn a_call_from_inside_an_async_runtime_is_a_clear_error_not_a_panic() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let url = fresh_database();
    let engine = Engine::connect(&url, Config::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let err = engine.funds().unwrap_err();
        assert_eq!(err.code(), "STORAGE_ERROR");
        assert!(err.to_string().contains("spawn_blocking"), "{err}");
        let err = Engine::connect(&url, Config::default()).unwrap_err();
        assert!(err.to_string().contains("spawn_blocking"), "{err}");
    });
    assert_eq!(
        engine.funds().unwrap().len(),
        5,
        "and works from a blocking thread"
    );
}

/// A server that takes no writes (a standby reached before a promotion, a primary turned
/// read-only): a change answers STORAGE_ERROR at its deadline with nothing committed (each try
/// is refused with SQLSTATE 25006 and tried again on a new connection, which a multi-host URL
/// would take to the new primary); the same engine writes again once the server takes writes.
#[test]
fn a_read_only_server_refuses_changes_until_it_takes_writes_again() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let url = fresh_database();
    let config = || {
        Config::builder()
            .operation_timeout(Duration::from_secs(2))
            .build()
            .unwrap()
    };
    let engine = Engine::connect(&url, config()).unwrap();
    let client = register(&engine, 1)[0];
    let database = url.rsplit('/').next().unwrap().to_owned();
    let mut admin = postgres::Client::connect(&server_url(), postgres::NoTls).unwrap();
    // New sessions are read-only and the engine's are ended: the sessions it opens from now on,
    // its pool's included, take no writes.
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{database}\" SET default_transaction_read_only = on"
        ))
        .unwrap();
    // A session started before the ALTER committed (one the pool was opening at that moment
    // included: its backend_start is earlier) may take writes: end every such session, and
    // wait until none is left, so the engine holds only sessions that read the new setting.
    let altered: std::time::SystemTime = admin
        .query_one("SELECT clock_timestamp()", &[])
        .unwrap()
        .get(0);
    let waited = Instant::now();
    loop {
        let left: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_start <= $2",
                &[&database, &altered],
            )
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "{left} sessions stay"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Reads go on, and refill the pool with read-only sessions.
    for _ in 0..20 {
        assert!(engine.history(client, 10, None).unwrap().is_empty());
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let err = engine
        .subscribe(client, 1, None, Some("ro-1"))
        .expect_err("a read-only server takes no change");
    assert_eq!(err.code(), "STORAGE_ERROR", "{err}");
    assert!(err.to_string().contains("25006"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(engine.history(client, 10, None).unwrap().is_empty());
    // Only new sessions take writes again: a pooled read-only session refuses the next change,
    // is dropped, and the change goes through on a new one.
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{database}\" RESET default_transaction_read_only"
        ))
        .unwrap();
    let tx = engine
        .subscribe(client, 1, None, Some("ro-1"))
        .expect("writes again, same engine");
    assert_eq!(engine.history(client, 10, None).unwrap(), [tx]);
}
