//! Disk faults under an embedded store, caused for real in a child process: a full disk (a small
//! tmpfs, mounted by the test) and I/O errors on write and on sync (libfiu's `fiu-run`, Debian's
//! fiu-utils, whose LD_PRELOAD applies to the child only).
//!
//! The child is this same test binary started with `FUNDCORE_DISK_WORKER_DIR` set
//! ([`disk_worker`]). It registers clients and subscribes and cancels, printing each change only
//! after the engine acknowledged it (flushed, with the default every-commit durability). It stops
//! twice to let the parent act: `PAUSE fault` (the parent turns the fault on) and, after the first
//! error, `PAUSE healed` (the parent takes the fault away), and it goes on calling after each.
//!
//! What every test checks:
//! - the call that meets the fault fails with a message naming the cause and saying what to do:
//!   OUTCOME_UNKNOWN when its writes had begun (it may or may not be saved: repeat it with its
//!   key once reopened), STORAGE_ERROR when nothing of it was written; every later change is a
//!   STORAGE_ERROR saying it was not saved;
//! - no call after it is acknowledged, even once the fault is gone, until the store is reopened
//!   (a failed sync cannot be retried: the kernel may have dropped the pages it could not write);
//! - the child never panics or aborts (its exit status is 0 and no thread of it panicked);
//! - reopened after the fault is gone, the store holds every acknowledged change and the ledger
//!   check (`verify_store` and `fundcore verify`) is clean.
//!
//! The tests need root (mount) and `fiu-run`; without them they fail, saying what is missing
//! (`make test-rust` installs fiu-utils).

mod common;

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use common::SplitMix;
use fundcore::{
    Channel, ClientId, Config, Decimal, Engine, ErrorCode, Locale, StoreLocation, Transaction,
    verify_store,
};

const WORKER_DIR: &str = "FUNDCORE_DISK_WORKER_DIR";
const WORKER_SEED: &str = "FUNDCORE_DISK_WORKER_SEED";
/// Acknowledged changes before the worker stops for the fault to be turned on (0: no stop).
const WORKER_PAUSE_AT: &str = "FUNDCORE_DISK_WORKER_PAUSE_AT";
/// Calls the worker makes after its first error, before and after the fault is taken away.
const CALLS_AFTER_ERROR: usize = 40;
/// Changes acknowledged with the fault on and no error, after which the worker gives up.
const UNNOTICED_FAULT_CALLS: usize = 500;

/// The child: changes until its first error, then `CALLS_AFTER_ERROR` more calls with the fault
/// on and as many with it gone, printing `CLIENT <id>`, `ACK <transaction json>` (both only
/// after the engine returned) and `ERR <code> <English message>` lines.
#[test]
fn disk_worker() {
    let Ok(dir) = std::env::var(WORKER_DIR) else {
        return;
    };
    let seed: u64 = env_number(WORKER_SEED).unwrap_or(1);
    let pause_at = env_number(WORKER_PAUSE_AT).unwrap_or(0) as usize;
    let mut rng = SplitMix(seed);
    let engine = match Engine::open(&dir, Config::default()) {
        Ok(engine) => engine,
        Err(err) => {
            say(&format!(
                "OPEN_ERR {} {}",
                err.code(),
                err.message(Locale::En)
            ));
            return;
        }
    };
    let mut clients: Vec<ClientId> = Vec::new();
    let mut acknowledged = 0;
    let mut after_error: Option<usize> = None;
    let mut paused = false;
    loop {
        if pause_at > 0 && acknowledged >= pause_at && !paused {
            pause("fault");
            paused = true;
        }
        match after_error {
            Some(n) if n == CALLS_AFTER_ERROR => pause("healed"),
            Some(n) if n == 2 * CALLS_AFTER_ERROR => break,
            // The fault failed nothing: the parent sees no error.
            None if paused && acknowledged >= pause_at + UNNOTICED_FAULT_CALLS => break,
            _ => {}
        }
        let outcome = if clients.len() < 3 || rng.below(20) == 0 {
            let channel = if rng.below(2) == 0 {
                Channel::Email
            } else {
                Channel::Sms
            };
            engine
                .register_client("Disk", "disk@example.com", "+573001234567", channel)
                .map(|client| {
                    clients.push(client.id);
                    format!("CLIENT {}", client.id)
                })
        } else {
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
            match result {
                Ok(tx) => Ok(format!("ACK {}", serde_json::to_string(&tx).unwrap())),
                Err(err)
                    if !matches!(
                        err.code(),
                        ErrorCode::StorageError | ErrorCode::OutcomeUnknown
                    ) =>
                {
                    Ok(String::new())
                }
                Err(err) => Err(err),
            }
        };
        match outcome {
            Ok(line) if line.is_empty() => {}
            Ok(line) => {
                acknowledged += 1;
                say(&line);
            }
            Err(err) => {
                say(&format!("ERR {} {}", err.code(), err.message(Locale::En)));
                after_error.get_or_insert(0);
            }
        }
        if let Some(n) = after_error.as_mut() {
            *n += 1;
        }
    }
    say("DONE");
}

fn say(line: &str) {
    println!("{line}");
}

/// Tells the parent and waits for its go-ahead on stdin.
fn pause(what: &str) {
    say(&format!("PAUSE {what}"));
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

/// What a worker printed, read as it runs.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
    seen: Vec<String>,
}

impl Worker {
    /// Starts the worker on `dir`, under `fiu-run -x` when `fiu` is set (with remote control,
    /// so faults can be turned on and off while it runs).
    fn start(dir: &Path, fiu: bool, pause_at: usize) -> Worker {
        let exe = std::env::current_exe().unwrap();
        let mut command = if fiu {
            let mut command = Command::new(fiu_run());
            command.arg("-x").arg("-f").arg(fifo_prefix()).arg(&exe);
            command
        } else {
            Command::new(&exe)
        };
        let mut child = command
            .args(["--exact", "disk_worker", "--nocapture", "--test-threads=1"])
            .env(WORKER_DIR, dir)
            .env(WORKER_SEED, seed().to_string())
            .env(WORKER_PAUSE_AT, pause_at.to_string())
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the worker");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        Worker {
            child,
            stdin,
            lines,
            stderr,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one starts with `prefix` (returned), or the worker ends (None).
    fn until(&mut self, prefix: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return Some(line);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
        panic!(
            "the worker printed no {prefix:?} within 60 s; it printed: {:?}",
            self.tail()
        );
    }

    fn resume(&mut self) {
        // A worker that ended meanwhile is judged by `finish`.
        let _ = self.stdin.write_all(b"go\n");
        let _ = self.stdin.flush();
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the worker's end and checks that it ended normally: exit status 0, no thread
    /// panicked, no abort. Returns everything it printed.
    fn finish(self) -> Outcome {
        self.finish_allowing(None)
    }

    /// As [`Worker::finish`], allowing one panic whose message starts with `caught` (a panic
    /// the store catches: it prints but ends nothing).
    fn finish_allowing(mut self, caught: Option<&str>) -> Outcome {
        while self.until("DONE").is_some() {}
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.join().unwrap();
        let panics = stderr.matches("panicked").count();
        let allowed = caught.map_or(0, |caught| stderr.matches(caught).count().min(1));
        assert!(
            status.success() && panics == allowed,
            "the worker did not end normally ({status}):\n{stderr}\nlast lines: {:?}",
            &self.seen[self.seen.len().saturating_sub(5)..]
        );
        Outcome::read(&self.seen)
    }

    fn tail(&self) -> &[String] {
        &self.seen[self.seen.len().saturating_sub(5)..]
    }
}

/// What a worker's lines say.
#[derive(Debug, Default)]
struct Outcome {
    clients: Vec<ClientId>,
    /// Changes acknowledged before the first error.
    acknowledged: Vec<Transaction>,
    /// Changes (or registrations) acknowledged after the first error.
    acknowledged_after_error: Vec<String>,
    /// The errors, in order (`code message`).
    errors: Vec<String>,
    /// Errors after the fault was taken away.
    errors_after_healed: usize,
    done: bool,
}

impl Outcome {
    fn read(lines: &[String]) -> Outcome {
        let mut outcome = Outcome::default();
        let mut healed = false;
        for line in lines {
            let after_error = !outcome.errors.is_empty();
            if let Some(error) = line.strip_prefix("ERR ") {
                outcome.errors.push(error.to_owned());
                outcome.errors_after_healed += usize::from(healed);
            } else if line == "PAUSE healed" {
                healed = true;
            } else if after_error && (line.starts_with("ACK ") || line.starts_with("CLIENT ")) {
                outcome.acknowledged_after_error.push(line.clone());
            } else if let Some(id) = line.strip_prefix("CLIENT ") {
                outcome.clients.push(id.parse().unwrap());
            } else if let Some(json) = line.strip_prefix("ACK ") {
                outcome
                    .acknowledged
                    .push(serde_json::from_str(json).unwrap());
            } else if line == "DONE" {
                outcome.done = true;
            }
        }
        outcome
    }

    /// The worker met the fault: its first error names `cause`, says to reopen and, as the
    /// change that met it had begun writing, that it may or may not be saved
    /// (OUTCOME_UNKNOWN, to be repeated with its key) — or, when the fault came from a sync
    /// before the next change began, that this change was not saved (STORAGE_ERROR); every
    /// later call was refused with STORAGE_ERROR (nothing saved), and it carried on to the end.
    fn check_fault(&self, cause: &str) {
        assert!(self.done, "the worker did not finish: {self:#?}");
        let first = self
            .errors
            .first()
            .unwrap_or_else(|| panic!("the fault failed no call: {self:#?}"));
        assert!(
            first.to_lowercase().contains(&cause.to_lowercase())
                && first.contains("reopen the store"),
            "the first error does not say {cause:?} and to reopen: {first}"
        );
        assert!(
            (first.starts_with("OUTCOME_UNKNOWN ") && first.contains("may or may not be saved"))
                || (first.starts_with("STORAGE_ERROR ") && first.contains("was not saved")),
            "the first error does not say what became of its change: {first}"
        );
        // A new change after it is refused before it writes anything: STORAGE_ERROR, not saved.
        // (The repeat of an earlier key writes nothing but waits for the failed flush: its
        // original may not be on disk, so it is OUTCOME_UNKNOWN, to be repeated once reopened.)
        for later in self.errors.iter().skip(1) {
            assert!(
                (later.starts_with("STORAGE_ERROR ") && later.contains("was not saved"))
                    || (later.starts_with("OUTCOME_UNKNOWN ")
                        && later.contains("may or may not be saved")),
                "a refusal after the fault must say what became of its change: {later}"
            );
        }
        assert!(
            self.errors
                .iter()
                .skip(1)
                .any(|later| later.starts_with("STORAGE_ERROR ") && later.contains("was not saved")),
            "no new change was refused as not saved after the fault: {:?}",
            self.errors
        );
        assert!(
            self.acknowledged_after_error.is_empty(),
            "calls were acknowledged after the store failed: {:?}\nerrors: {:?}",
            self.acknowledged_after_error,
            self.errors
        );
        // Calls the rules refuse before writing (a cancel without a subscription) end as they
        // would anyway; every other one fails, also once the fault is gone.
        assert!(
            self.errors_after_healed > 0,
            "no change was tried after the fault was gone: {self:#?}"
        );
        for error in &self.errors {
            assert!(error.contains("reopen"), "{error}");
        }
        assert!(
            self.acknowledged.len() >= 20,
            "too little was acknowledged before the fault to prove anything: {self:#?}"
        );
    }

    /// Reopens the store and checks that every acknowledged change is there and the ledger check
    /// is clean.
    fn check_store(&self, dir: &Path) {
        let report = verify_store(&StoreLocation::Embedded(dir.to_owned()))
            .unwrap_or_else(|e| panic!("verify after the fault: {e}"));
        assert!(
            report.is_clean() && report.clients >= self.clients.len() as u64,
            "verify after the fault: {report}\n{:#?}",
            report.violations
        );
        let engine = Engine::open(dir, Config::default())
            .unwrap_or_else(|e| panic!("reopen after the fault: {e}"));
        for &client in &self.clients {
            engine
                .client(client)
                .unwrap_or_else(|e| panic!("acknowledged client {client} lost: {e}"));
        }
        if let Err(broken) = common::check_invariants(&engine, &self.clients) {
            panic!("invariant broken after the fault: {broken}");
        }
        for tx in &self.acknowledged {
            assert_eq!(
                engine.transaction(tx.id).as_ref(),
                Ok(tx),
                "an acknowledged transaction was lost or changed"
            );
        }
        // The store takes changes again.
        engine
            .register_client(
                "After",
                "after@example.com",
                "+573001234567",
                Channel::Email,
            )
            .unwrap_or_else(|e| panic!("the reopened store refuses a change: {e}"));
        drop(engine);
        common::verify_command_passes(dir);
    }
}

fn seed() -> u64 {
    env_number("FUNDCORE_DISK_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            ^ u64::from(std::process::id())
    })
}

/// A tmpfs of `size` mounted on a new directory, unmounted (lazily, if busy) and removed on drop
/// whatever happens.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a tmpfs (root in a container that allows mount): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn fiu_run() -> PathBuf {
    let path = PathBuf::from("/usr/bin/fiu-run");
    assert!(
        path.exists(),
        "this test needs fiu-run (Debian's fiu-utils: scripts/apt-install.sh fiu-utils)"
    );
    path
}

fn fifo_prefix() -> PathBuf {
    std::env::temp_dir().join("fundcore-fiu")
}

/// The remote-control FIFOs fiu-run makes for a worker (`<prefix>-<pid>.in` and `.out`),
/// removed when the test ends, whatever happens (libfiu leaves them behind).
struct FiuFifos(u32);

impl Drop for FiuFifos {
    fn drop(&mut self) {
        for end in ["in", "out"] {
            let prefix = fifo_prefix();
            let _ = std::fs::remove_file(format!("{}-{}.{end}", prefix.display(), self.0));
        }
    }
}

/// Turns a libfiu failure point on (`enable name=...`) or off in the worker.
fn fiu_ctrl(pid: u32, command: &str) {
    let out = Command::new("fiu-ctrl")
        .arg("-f")
        .arg(fifo_prefix())
        .args(["-c", command])
        .arg(pid.to_string())
        .output()
        .expect("run fiu-ctrl");
    assert!(
        out.status.success(),
        "fiu-ctrl {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A disk that fills up: the call that finds it full fails (OUTCOME_UNKNOWN or STORAGE_ERROR, as
/// far as it got) saying "disk full"
/// and to free space and reopen; no later call is acknowledged, even after the disk has room
/// again; after reopening, every acknowledged change is there and verify is clean.
#[test]
fn a_full_disk_fails_the_call_and_loses_nothing_acknowledged() {
    if std::env::var(WORKER_DIR).is_ok() {
        return;
    }
    let disk = Tmpfs::mount("3m");
    let dir = disk.path().join("store");
    let started = Instant::now();
    let mut worker = Worker::start(&dir, false, 0);
    worker.until("PAUSE healed");
    disk.resize("64m");
    worker.resume();
    let outcome = worker.finish();
    eprintln!(
        "full disk: {} changes acknowledged before the first error in {:?}; first error: {}",
        outcome.acknowledged.len(),
        started.elapsed(),
        outcome.errors.first().map_or("none", String::as_str)
    );
    outcome.check_fault("disk full");
    outcome.check_store(&dir);
}

/// Runs the worker under fiu-run, turns `failpoint` on (errno `errno`) after some acknowledged
/// changes and off again after the first error, then checks the outcome (`cause` in the message).
fn io_fault(failpoint: &str, errno: i32, cause: &str) {
    io_fault_healed_or_not(failpoint, errno, cause, true, None)
}

fn io_fault_healed_or_not(
    failpoint: &str,
    errno: i32,
    cause: &str,
    heal: bool,
    caught: Option<&str>,
) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    let mut worker = Worker::start(&dir, true, 200);
    let _fifos = FiuFifos(worker.pid());
    worker.until("PAUSE fault");
    fiu_ctrl(
        worker.pid(),
        &format!("enable name={failpoint},failinfo={errno}"),
    );
    worker.resume();
    if worker.until("PAUSE healed").is_some() {
        if heal {
            fiu_ctrl(worker.pid(), &format!("disable name={failpoint}"));
        }
        worker.resume();
    }
    let outcome = worker.finish_allowing(caught);
    eprintln!(
        "{failpoint}: {} changes acknowledged before the first error; first error: {}",
        outcome.acknowledged.len(),
        outcome.errors.first().map_or("none", String::as_str)
    );
    outcome.check_fault(cause);
    outcome.check_store(&dir);
}

const EIO: i32 = 5;

/// EIO on the writes of the store's log (`pwrite`, as sled writes it): the call fails (as far as
/// it got: OUTCOME_UNKNOWN or STORAGE_ERROR) saying "I/O error" and to reopen; nothing later is acknowledged, also once the
/// disk works again; reopened, the store holds every acknowledged change and verify is clean.
#[test]
fn an_io_error_on_write_fails_the_call_and_loses_nothing_acknowledged() {
    if std::env::var(WORKER_DIR).is_ok() {
        return;
    }
    io_fault("posix/io/rw/pwrite", EIO, "I/O error");
}

/// EIO on `fsync`: a failed fsync cannot be retried (the kernel may have dropped the pages it
/// could not write and a later fsync would succeed), so the store refuses every later change
/// until it is reopened, even once fsync works again; reopened, it holds every acknowledged
/// change and verify is clean.
#[test]
fn an_io_error_on_fsync_fails_the_call_and_no_later_call_is_acknowledged() {
    if std::env::var(WORKER_DIR).is_ok() {
        return;
    }
    io_fault("posix/io/sync/fsync", EIO, "I/O error");
}

/// EIO on `sync_file_range`, which sled calls to make its log durable: as for fsync.
#[test]
fn an_io_error_on_sync_file_range_fails_the_call_and_no_later_call_is_acknowledged() {
    if std::env::var(WORKER_DIR).is_ok() {
        return;
    }
    io_fault("linux/io/sync_file_range", EIO, "I/O error");
}

/// EIO on `fsync` that lasts until the worker closes its store: sled 0.34 unwraps its last
/// fsync when closing (`Log::drop`) and panics; the store catches that panic, so the process
/// goes on and ends normally (Rust's default hook still prints the caught panic, the one line
/// allowed on stderr); reopened without the fault, the store holds every acknowledged change.
#[test]
fn an_fsync_error_that_lasts_through_closing_does_not_end_the_process() {
    if std::env::var(WORKER_DIR).is_ok() {
        return;
    }
    io_fault_healed_or_not(
        "posix/io/sync/fsync",
        EIO,
        "I/O error",
        false,
        Some("sled-0.34.7/src/pagecache/logger.rs"),
    );
}
