//! Damage on disk: bytes flipped and files cut short at random places of an embedded store, each
//! copy opened in a child process (this same test binary, started with
//! `FUNDCORE_DAMAGE_WORKER_DIR` set: a panic or an abort there is its exit status).
//!
//! The store is built once (clients with histories of subscriptions and cancellations, some with
//! idempotency keys, notifications delivered) and closed; the child reads the pristine copy first,
//! which gives each client's state (balance, active subscriptions, whole history). Then, for each
//! seed, a copy is damaged in one random file of the store directory at a random offset, and the
//! child runs the ledger check (`verify_store`) and reads every client through an engine. Each
//! damaged copy must end in one of these ways:
//! - **refused**: opening fails with STORAGE_ERROR saying the store is damaged and naming its path;
//! - **clean**: it opens, verify finds nothing, and every client reads as in the original;
//! - **named**: it opens and verify's violations name every client that does not read as in the
//!   original (or whose records cannot be read).
//!
//! Anything else fails the test: a panic or abort, a hang, a refusal that does not say the store
//! is damaged, and above all a client read differently from the original with no violation
//! naming it. The outcomes per class are printed (`--nocapture`).
//!
//! `FUNDCORE_DAMAGE_FLIPS` and `FUNDCORE_DAMAGE_TRUNCATIONS` set the number of seeds (default
//! 200 and 100); `FUNDCORE_DAMAGE_SEED` the first seed (default: from the clock, printed).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::SplitMix;
use fundcore::{
    Channel, ClientId, Config, Decimal, Engine, Locale, RecordingNotifier, StoreLocation,
    TransactionId, verify_store,
};

const WORKER_DIR: &str = "FUNDCORE_DAMAGE_WORKER_DIR";
const WORKER_CLIENTS: &str = "FUNDCORE_DAMAGE_WORKER_CLIENTS";

/// The child: the ledger check, then every client read through an engine. Prints
/// `VERIFY_ERR <code> <message>` or `VIOLATIONS <count> <client ids with a violation, or
/// "store">`, then `OPEN_ERR <code> <message>` or one `CLIENT <id> <state>` line per client.
#[test]
fn damage_worker() {
    let Ok(dir) = std::env::var(WORKER_DIR) else {
        return;
    };
    let clients: Vec<ClientId> = std::env::var(WORKER_CLIENTS)
        .unwrap_or_default()
        .split(',')
        .filter(|id| !id.is_empty())
        .map(|id| id.parse().unwrap())
        .collect();
    // The test harness has printed the test's name on this line.
    println!();
    match verify_store(&StoreLocation::Embedded(PathBuf::from(&dir))) {
        Err(err) => println!("VERIFY_ERR {} {}", err.code(), err.message(Locale::En)),
        Ok(report) => {
            let named: Vec<String> = report
                .violations
                .iter()
                .map(|v| v.client.map_or("store".to_owned(), |c| c.to_string()))
                .collect();
            println!("VIOLATIONS {} {}", report.violation_count, named.join(","));
        }
    }
    let engine = match Engine::open(&dir, Config::default()) {
        Ok(engine) => engine,
        Err(err) => {
            println!("OPEN_ERR {} {}", err.code(), err.message(Locale::En));
            return;
        }
    };
    for client in clients {
        println!("CLIENT {client} {}", state(&engine, client));
    }
}

/// What a reader sees of a client: balance, active subscriptions and whole history, or the
/// error that reading it gave.
fn state(engine: &Engine, client: ClientId) -> String {
    let read = || -> fundcore::Result<String> {
        let balance = engine.client(client)?.balance;
        let subscriptions = engine.subscriptions(client)?;
        let mut history = Vec::new();
        let mut before: Option<TransactionId> = None;
        loop {
            let page = engine.history(client, 50, before)?;
            let done = page.len() < 50;
            before = page.last().map(|tx| tx.id);
            history.extend(page);
            if done {
                break;
            }
        }
        Ok(format!(
            "balance={balance} subscriptions={} history={}",
            serde_json::to_string(&subscriptions).unwrap(),
            serde_json::to_string(&history).unwrap()
        ))
    };
    read().unwrap_or_else(|err| format!("ERROR {} {}", err.code(), err.message(Locale::En)))
}

/// Builds the store the damage is done to: `CLIENTS` clients, each with a history.
fn build_store(dir: &Path) -> Vec<ClientId> {
    const CLIENTS: usize = 8;
    let notifier = RecordingNotifier::new();
    let engine = Engine::open(dir, Config::default()).unwrap();
    let mut rng = SplitMix(7);
    let clients: Vec<ClientId> = (0..CLIENTS)
        .map(|i| {
            let channel = if i % 2 == 0 {
                Channel::Email
            } else {
                Channel::Sms
            };
            engine
                .register_client("Damage", "damage@example.com", "+573001234567", channel)
                .unwrap()
                .id
        })
        .collect();
    for round in 0..300 {
        let client = clients[rng.below(CLIENTS as u64) as usize];
        let fund = 1 + rng.below(5) as u32;
        let key = (rng.below(3) == 0).then(|| format!("k-{round}"));
        let _ = if rng.below(2) == 0 {
            let amount = (rng.below(2) == 0)
                .then(|| Decimal::new(5_000_000 + rng.below(25_000_000) as i64, 2));
            engine.subscribe(client, fund, amount, key.as_deref())
        } else {
            engine.cancel(client, fund, key.as_deref())
        };
        if round % 50 == 0 {
            engine.dispatch_notifications(&notifier, 1000).unwrap();
        }
    }
    drop(engine);
    clients
}

/// One run of the child on `dir`, with a deadline.
struct Run {
    status: Option<std::process::ExitStatus>,
    stdout: String,
    stderr: String,
}

fn run_worker(dir: &Path, clients: &[ClientId]) -> Run {
    let ids: Vec<String> = clients.iter().map(ToString::to_string).collect();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "damage_worker",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WORKER_DIR, dir)
        .env(WORKER_CLIENTS, ids.join(","))
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// How one damaged copy ended.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ending {
    Refused,
    Clean,
    Named,
    /// Failures of the test:
    Panicked(String),
    Hung,
    RefusedWithoutSayingDamaged(String),
    Silent(String),
}

impl Ending {
    fn is_failure(&self) -> bool {
        !matches!(self, Ending::Refused | Ending::Clean | Ending::Named)
    }

    fn label(&self) -> &'static str {
        match self {
            Ending::Refused => "refused: damaged, path named",
            Ending::Clean => "opened: verify clean, every client as before",
            Ending::Named => "opened: verify names every client that differs",
            Ending::Panicked(_) => "FAILURE: panic or abort",
            Ending::Hung => "FAILURE: no answer in 30 s",
            Ending::RefusedWithoutSayingDamaged(_) => "FAILURE: refused without saying damaged",
            Ending::Silent(_) => "FAILURE: a client differs and no violation names it",
        }
    }
}

/// Reads a child's run against the original clients' states.
fn judge(run: &Run, dir: &Path, original: &BTreeMap<String, String>) -> Ending {
    let Some(status) = run.status else {
        return Ending::Hung;
    };
    if !status.success() || run.stderr.contains("panicked") {
        return Ending::Panicked(format!("{status}: {}", last_lines(&run.stderr)));
    }
    let refusal_ok = |message: &str| {
        message.starts_with("STORAGE_ERROR ")
            && message.contains("is damaged")
            && message.contains(&dir.display().to_string())
    };
    let mut named: BTreeSet<String> = BTreeSet::new();
    let mut violations = 0;
    let mut states: BTreeMap<String, String> = BTreeMap::new();
    for line in run.stdout.lines() {
        if let Some(message) = line.strip_prefix("VERIFY_ERR ") {
            if refusal_ok(message) {
                return Ending::Refused;
            }
            return Ending::RefusedWithoutSayingDamaged(message.to_owned());
        } else if let Some(rest) = line.strip_prefix("VIOLATIONS ") {
            let (count, ids) = rest.split_once(' ').unwrap_or((rest, ""));
            violations = count.parse().unwrap();
            named.extend(
                ids.split(',')
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned),
            );
        } else if let Some(message) = line.strip_prefix("OPEN_ERR ") {
            // verify opened it, the engine did not.
            if refusal_ok(message) {
                return Ending::Refused;
            }
            return Ending::RefusedWithoutSayingDamaged(message.to_owned());
        } else if let Some(rest) = line.strip_prefix("CLIENT ") {
            let (id, state) = rest.split_once(' ').unwrap();
            states.insert(id.to_owned(), state.to_owned());
        }
    }
    let differing: Vec<&String> = original
        .iter()
        .filter(|(id, state)| states.get(*id) != Some(*state))
        .map(|(id, _)| id)
        .collect();
    let unnamed: Vec<&&String> = differing
        .iter()
        .filter(|id| !named.contains(**id))
        .collect();
    if !unnamed.is_empty() {
        let id = unnamed[0];
        return Ending::Silent(format!(
            "{} of {} differing clients unnamed ({violations} violations); {id}: {}",
            unnamed.len(),
            differing.len(),
            states
                .get(*id)
                .map_or("not read", |s| &s[..s.len().min(300)])
        ));
    }
    if violations == 0 {
        Ending::Clean
    } else {
        Ending::Named
    }
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(4)..].join(" | ")
}

/// Every file of the store directory, with its length, in a stable order.
fn store_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.len() > 0 {
                files.push((entry.path(), meta.len()));
            }
        }
    }
    files.sort();
    files
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.metadata().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Damage {
    Flip,
    Truncate,
}

/// Damages one random file of `dir`: a byte flipped (one to eight of its bits) or the file cut
/// short, at a random offset. Returns the file's name and what was done.
fn damage(dir: &Path, damage: Damage, rng: &mut SplitMix) -> (String, String) {
    let files = store_files(dir);
    let (file, len) = &files[rng.below(files.len() as u64) as usize];
    let name = file.strip_prefix(dir).unwrap().display().to_string();
    match damage {
        Damage::Flip => {
            let mut bytes = std::fs::read(file).unwrap();
            let at = rng.below(*len) as usize;
            let mask = (1 + rng.below(255)) as u8;
            bytes[at] ^= mask;
            std::fs::write(file, bytes).unwrap();
            let what = format!("{name}: byte {at} of {len} ^= {mask:#04x}");
            (name, what)
        }
        Damage::Truncate => {
            let at = rng.below(*len);
            std::fs::OpenOptions::new()
                .write(true)
                .open(file)
                .unwrap()
                .set_len(at)
                .unwrap();
            let what = format!("{name}: cut to {at} of {len} bytes");
            (name, what)
        }
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

/// Flipped bytes and cut files at random places: every damaged copy is refused as damaged (with
/// its path), or opens with every client as before, or opens and verify names every client that
/// reads differently. Never a panic, a hang, or a changed client without a violation.
#[test]
fn a_damaged_store_is_refused_or_verify_names_every_client_it_changed() {
    if std::env::var(WORKER_DIR).is_ok() {
        return;
    }
    let started = Instant::now();
    let flips = env_number("FUNDCORE_DAMAGE_FLIPS").unwrap_or(200);
    let truncations = env_number("FUNDCORE_DAMAGE_TRUNCATIONS").unwrap_or(100);
    let first_seed = env_number("FUNDCORE_DAMAGE_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    });
    let scratch = tempfile::tempdir().unwrap();
    let pristine = scratch.path().join("pristine");
    let clients = build_store(&pristine);

    // The original states, as the child reads them from an undamaged copy.
    let baseline_dir = scratch.path().join("baseline");
    copy_dir(&pristine, &baseline_dir);
    let baseline = run_worker(&baseline_dir, &clients);
    let mut original: BTreeMap<String, String> = BTreeMap::new();
    for line in baseline.stdout.lines() {
        if let Some(rest) = line.strip_prefix("CLIENT ") {
            let (id, state) = rest.split_once(' ').unwrap();
            assert!(!state.starts_with("ERROR"), "the undamaged store: {line}");
            original.insert(id.to_owned(), state.to_owned());
        }
    }
    assert!(
        baseline.stdout.contains("VIOLATIONS 0 ") && original.len() == clients.len(),
        "the undamaged store reads clean: {}{}",
        baseline.stdout,
        baseline.stderr
    );
    eprintln!(
        "store files: {:?}",
        store_files(&pristine)
            .iter()
            .map(|(path, len)| format!(
                "{} ({len} B)",
                path.strip_prefix(&pristine).unwrap().display()
            ))
            .collect::<Vec<_>>()
    );

    let cases: Vec<(Damage, u64)> = (0..flips)
        .map(|i| (Damage::Flip, first_seed + i))
        .chain((0..truncations).map(|i| (Damage::Truncate, first_seed + flips + i)))
        .collect();
    let mut table: BTreeMap<(Damage, String, &'static str), u64> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    for (kind, seed) in cases {
        let dir = scratch.path().join(format!("copy-{seed}"));
        copy_dir(&pristine, &dir);
        let (file, what) = damage(&dir, kind, &mut SplitMix(seed));
        let run = run_worker(&dir, &clients);
        let ending = judge(&run, &dir, &original);
        *table.entry((kind, file, ending.label())).or_default() += 1;
        if ending.is_failure() {
            failures.push(format!("{kind:?} seed {seed} ({what}): {ending:?}"));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    eprintln!(
        "damage: {flips} flips and {truncations} truncations from seed {first_seed} in {:?}",
        started.elapsed()
    );
    for ((kind, file, label), count) in &table {
        eprintln!("  {kind:?}\t{file}\t{count}\t{label}");
    }
    assert!(
        failures.is_empty(),
        "{} damaged copies ended wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
