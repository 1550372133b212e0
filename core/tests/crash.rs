//! Crash test: a child process runs random operations with flush-every-commit durability and
//! reports each acknowledged one; the parent kills it with SIGKILL at a random moment, reopens
//! the store and checks the invariants and that every acknowledged operation survived, then runs
//! the ledger check (`verify_store`, and `fundcore verify` at the end) on what the rounds left.
//!
//! The child is this same test binary, started with `FUNDCORE_CRASH_WORKER_DIR` set.
//! `FUNDCORE_CRASH_ROUNDS` sets the number of rounds (default 20).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::SplitMix;
use fundcore::{
    Channel, ClientId, Config, Decimal, Engine, StoreLocation, Transaction, verify_store,
};

const WORKER_DIR: &str = "FUNDCORE_CRASH_WORKER_DIR";
const WORKER_SEED: &str = "FUNDCORE_CRASH_WORKER_SEED";

/// The child: operates until killed, printing `CLIENT <id>` and `ACK <transaction json>` lines
/// only after the engine returned (and therefore flushed).
#[test]
fn crash_worker() {
    let Ok(dir) = std::env::var(WORKER_DIR) else {
        return;
    };
    let seed: u64 = std::env::var(WORKER_SEED)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rng = SplitMix(seed);
    let engine = Engine::open(&dir, Config::default()).expect("worker opens the store");
    let mut clients: Vec<ClientId> = Vec::new();
    loop {
        if clients.len() < 3 || rng.below(20) == 0 {
            let channel = if rng.below(2) == 0 {
                Channel::Email
            } else {
                Channel::Sms
            };
            let client = engine
                .register_client("Crash", "crash@example.com", "+573001234567", channel)
                .unwrap();
            println!("CLIENT {}", client.id);
            clients.push(client.id);
            continue;
        }
        let client = clients[rng.below(clients.len() as u64) as usize];
        let fund = 1 + rng.below(5) as u32;
        let key = (rng.below(4) == 0).then(|| format!("k-{}", rng.below(3)));
        let result = if rng.below(2) == 0 {
            let amount = (rng.below(2) == 0)
                .then(|| Decimal::new(5_000_000 + rng.below(25_000_000) as i64, 2));
            engine.subscribe(client, fund, amount, key.as_deref())
        } else {
            engine.cancel(client, fund, key.as_deref())
        };
        if let Ok(tx) = result {
            println!("ACK {}", serde_json::to_string(&tx).unwrap());
        }
    }
}

#[test]
fn killed_process_loses_nothing_it_acknowledged() {
    if std::env::var(WORKER_DIR).is_ok() {
        return;
    }
    let rounds: u64 = std::env::var("FUNDCORE_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = SplitMix(Instant::now().elapsed().as_nanos() as u64 ^ std::process::id() as u64);
    let mut clients: Vec<ClientId> = Vec::new();
    let mut acknowledged: Vec<Transaction> = Vec::new();
    for round in 0..rounds {
        let seed = rng.next();
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_worker", "--nocapture", "--test-threads=1"])
            .env(WORKER_DIR, dir.path())
            .env(WORKER_SEED, seed.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        // Let it run long enough to open the store and commit some work, then kill it.
        std::thread::sleep(Duration::from_millis(150 + rng.below(350)));
        child.kill().unwrap();
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        let before = acknowledged.len();
        for line in lines {
            if let Some(id) = line.strip_prefix("CLIENT ") {
                clients.push(id.parse().unwrap());
            } else if let Some(json) = line.strip_prefix("ACK ") {
                acknowledged.push(serde_json::from_str(json).unwrap());
            }
        }
        // The ledger check is the first to open the store after the kill (completing any change
        // the kill interrupted, as an engine would), and reads it on its own, client by client.
        let report = verify_store(&StoreLocation::Embedded(dir.path().to_owned()))
            .unwrap_or_else(|e| panic!("round {round} (seed {seed}): verify failed: {e}"));
        assert!(
            // A client registered just before the kill may be stored but never announced.
            report.is_clean() && report.clients >= clients.len() as u64,
            "round {round} (seed {seed}): verify after SIGKILL: {report}\n{:#?}",
            report.violations
        );
        let engine = Engine::open(dir.path(), Config::default())
            .unwrap_or_else(|e| panic!("round {round} (seed {seed}): reopen failed: {e}"));
        if let Err(broken) = common::check_invariants(&engine, &clients) {
            panic!("round {round} (seed {seed}): invariant broken after SIGKILL: {broken}");
        }
        for tx in &acknowledged {
            let stored = engine.transaction(tx.id);
            assert_eq!(
                stored.as_ref(),
                Ok(tx),
                "round {round} (seed {seed}): acknowledged transaction lost or changed"
            );
        }
        eprintln!(
            "round {round}: {} new acknowledged, {} total",
            acknowledged.len() - before,
            acknowledged.len()
        );
    }
    assert!(
        acknowledged.len() as u64 >= rounds,
        "the worker acknowledged too little to prove anything"
    );
    common::verify_command_passes(dir.path());
}
