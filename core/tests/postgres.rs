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
use std::sync::{Arc, Barrier, RwLock};
use std::time::{Duration, Instant};

use common::SplitMix;
use common::stores::{fresh_database, server_url};
use fundcore::{
    Channel, ClientId, Config, Decimal, DeliveryError, Engine, Notification, NotificationStatus,
    Notifier, Transaction,
};

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
    let engine = Engine::connect(&url, Config::default()).expect("worker connects");
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
        ("dispatch", _) => {
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
    let engine = Engine::connect(&url, Config::default()).unwrap();
    let clients = register(&engine, 3);
    let mut workers: Vec<Child> = (0..4)
        .map(|seed| spawn_worker("hammer:80", &url, &clients, seed + 1))
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
    let engine = Engine::connect(&url, Config::default()).unwrap();
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
    let mut dispatchers: Vec<Child> = (0..3)
        .map(|i| spawn_worker("dispatch", &url, &[], i))
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
    let engine = Engine::connect(&url, Config::default()).unwrap();
    let clients = register(&engine, 4);
    let mut acked = Vec::new();
    for round in 0..5u64 {
        let mut worker = spawn_worker("forever", &url, &clients, round + 100);
        let reader = collect_lines(&mut worker);
        std::thread::sleep(Duration::from_millis(400 + round * 100));
        worker.kill().unwrap();
        worker.wait().unwrap();
        acked.extend(acknowledged(&reader.join().unwrap()));
        common::check_invariants(&engine, &clients)
            .unwrap_or_else(|broken| panic!("round {round}: {broken}"));
        assert_all_stored(&engine, &acked);
    }
    assert!(
        acked.len() >= 10,
        "too little committed to prove anything: {}",
        acked.len()
    );
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
    pg_ctl(&["start", "-l", "/dev/null"]);
    // The same engine works again, without being reopened.
    let started = Instant::now();
    let mut recovered = 0;
    while recovered < 30 {
        match random_op(&engine, &clients, &mut rng) {
            Ok(tx) => {
                acked.push(tx);
                recovered += 1;
            }
            Err(err) if err.code() == "STORAGE_ERROR" => {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "no recovery: {err}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => recovered += 1,
        }
    }
    common::check_invariants(&engine, &clients).unwrap();
    assert_all_stored(&engine, &acked);
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
fn a_subscribe_or_cancel_takes_two_round_trips() {
    if is_worker() {
        return;
    }
    let _server = shared_server();
    let engine = Engine::connect(&fresh_database(), Config::default()).unwrap();
    let client = register(&engine, 1)[0];
    let before = engine.store_stats().round_trips;
    engine.subscribe(client, 1, None, Some("k-1")).unwrap();
    assert_eq!(engine.store_stats().round_trips - before, 2, "subscribe");
    let before = engine.store_stats().round_trips;
    engine.cancel(client, 1, None).unwrap();
    assert_eq!(engine.store_stats().round_trips - before, 2, "cancel");
    let before = engine.store_stats().round_trips;
    engine.subscribe(client, 1, None, Some("k-1")).unwrap();
    assert_eq!(
        engine.store_stats().round_trips - before,
        1,
        "a replay only reads"
    );
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
    assert_eq!(migrations, 2, "each known migration applied once");
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
