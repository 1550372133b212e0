//! An embedded store belongs to one process: a store held by another process is refused with a
//! plain message, and an engine inherited through `fork()` fails fast instead of hanging.
//!
//! Each test starts this same test binary as a helper process (selected by an environment
//! variable), so that the store is really held, or the fork really happens, in a process of
//! its own with few threads.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fundcore::{Channel, Config, Durability, Engine, Error, Locale};

const HOLDER_DIR: &str = "FUNDCORE_TEST_HOLD_STORE";
const FORK_WORKER_DIR: &str = "FUNDCORE_TEST_FORK_WORKER";
const FORK_BEFORE_OPEN_DIR: &str = "FUNDCORE_TEST_FORK_BEFORE_OPEN";

/// This test binary running only `test_name`, with `env_var` set to `value`.
fn helper(test_name: &str, env_var: &str, value: &std::path::Path) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(env_var, value);
    command
}

/// Helper process: holds the store in `$FUNDCORE_TEST_HOLD_STORE` until its stdin closes.
#[test]
fn store_holder() {
    let Some(dir) = std::env::var_os(HOLDER_DIR) else {
        return;
    };
    let engine = Engine::open(&dir, Config::default()).unwrap();
    println!("HOLDING");
    std::io::stdout().flush().unwrap();
    let mut rest = String::new();
    let _ = std::io::stdin().read_line(&mut rest);
    drop(engine);
}

#[test]
fn a_store_held_by_another_process_is_refused_with_a_plain_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut holder = helper("store_holder", HOLDER_DIR, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The harness may print "test store_holder ... " on the same line: look for the marker.
    let stdout = BufReader::new(holder.stdout.take().unwrap());
    let (holding_tx, holding_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Reads to the end, so the helper never writes into a closed pipe.
        for line in stdout.lines().map_while(Result::ok) {
            if line.ends_with("HOLDING") {
                let _ = holding_tx.send(true);
            }
        }
        let _ = holding_tx.send(false);
    });
    let holding = holding_rx.recv_timeout(Duration::from_secs(60));
    if holding != Ok(true) {
        let _ = holder.kill();
        panic!("the helper process did not open the store: {holding:?}");
    }

    let started = Instant::now();
    let err = Engine::open(&path, Config::default()).unwrap_err();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "a held lock is waited for first (a closing store releases it late)"
    );
    assert_eq!(
        err,
        Error::StoreInUse {
            path: path.display().to_string()
        }
    );
    assert_eq!(err.code(), "STORAGE_ERROR");
    let (es, en) = (err.message(Locale::Es), err.message(Locale::En));
    assert!(es.contains(&path.display().to_string()) && es.contains("otro proceso"));
    assert!(en.contains(&path.display().to_string()) && en.contains("another process"));
    assert!(es.contains("PostgreSQL") && en.contains("PostgreSQL"));
    for text in [&es, &en] {
        for internal in ["WouldBlock", "IO error", "acquire", "os error"] {
            assert!(!text.contains(internal), "{internal:?} in {text:?}");
        }
    }

    // Once the other process lets go, the store opens.
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    let engine = Engine::open(&path, Config::default()).unwrap();
    assert_eq!(engine.funds().unwrap().len(), 5);
}

#[cfg(unix)]
mod forked {
    //! The few POSIX calls the fork test needs (std has no `fork`).
    unsafe extern "C" {
        pub fn fork() -> i32;
        pub fn _exit(status: i32) -> !;
        pub fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
        pub fn kill(pid: i32, signal: i32) -> i32;
    }
    pub const WNOHANG: i32 = 1;
    pub const SIGKILL: i32 = 9;

    /// Waits up to `limit` for child `pid`; kills it and returns `None` if it is still running.
    pub fn wait_for(pid: i32, limit: std::time::Duration) -> Option<i32> {
        let started = std::time::Instant::now();
        let mut status = 0;
        loop {
            // SAFETY: plain system call on our own child with a valid out pointer.
            let done = unsafe { waitpid(pid, &mut status, WNOHANG) };
            if done == pid {
                // The exit code, for a normal exit (WIFEXITED / WEXITSTATUS).
                return Some(if status & 0x7f == 0 {
                    (status >> 8) & 0xff
                } else {
                    -1
                });
            }
            if started.elapsed() > limit {
                // SAFETY: as above.
                unsafe {
                    kill(pid, SIGKILL);
                    waitpid(pid, &mut status, 0);
                }
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// What the forked child checks: every operation fails with the process error, quickly, and
/// dropping the engine returns. Returns the exit code (0 when everything held).
#[cfg(unix)]
fn check_inherited_engine(engine: Engine, client: fundcore::ClientId) -> i32 {
    let started = Instant::now();
    let outcomes: Vec<fundcore::Result<()>> = vec![
        engine
            .register_client("Bo", "bo@example.com", "+573001234567", Channel::Sms)
            .map(drop),
        engine.client(client).map(drop),
        engine.subscribe(client, 1, None, None).map(drop),
        engine.cancel(client, 1, None).map(drop),
        engine.subscriptions(client).map(drop),
        engine.history(client, 10, None).map(drop),
        engine.notifications(client).map(drop),
        engine
            .dispatch_notifications(&fundcore::RecordingNotifier::new(), 10)
            .map(drop),
        engine.retry_failed_notifications(10).map(drop),
        engine.fund(1).map(drop),
        engine.flush(),
        engine.check_process(),
    ];
    for (index, outcome) in outcomes.into_iter().enumerate() {
        let expected = matches!(
            &outcome,
            Err(err @ Error::OpenedInAnotherProcess { .. })
                if err.code() == "STORAGE_ERROR"
                    && err.message(Locale::En).contains("open the engine after the fork")
                    && err.message(Locale::Es).contains("abra el motor después del fork")
        );
        if !expected {
            return 10 + index as i32;
        }
    }
    drop(engine);
    // sled's worker threads stayed in the parent: a new embedded store cannot work here
    // either, so opening one fails at once too.
    let fresh = tempfile::tempdir().map(|dir| Engine::open(dir.path(), Config::default()));
    let refused = matches!(
        &fresh,
        Ok(Err(err @ Error::EmbeddedStoreForked { .. }))
            if err.code() == "STORAGE_ERROR"
                && err.message(Locale::En).contains("none in the parent before forking")
    );
    if !refused
        || !matches!(
            Engine::open_temporary(Config::default()),
            Err(Error::EmbeddedStoreForked { .. })
        )
    {
        return 3;
    }
    if started.elapsed() > Duration::from_millis(500) {
        return 2;
    }
    0
}

/// Helper process: opens a durable engine, forks, checks the child, then checks that the
/// parent's engine and store are intact. Prints `FORK CHECKED` when all held.
#[cfg(unix)]
#[test]
fn fork_worker() {
    let Some(dir) = std::env::var_os(FORK_WORKER_DIR) else {
        return;
    };
    let config = || {
        let mut c = Config::default();
        c.durability = Durability::EveryCommit;
        c
    };
    let engine = Engine::open(&dir, config()).unwrap();
    let ana = engine
        .register_client("Ana", "ana@example.com", "+573001234567", Channel::Email)
        .unwrap();
    engine.subscribe(ana.id, 1, None, None).unwrap();

    // SAFETY: the child only runs engine calls that return at once and `_exit`s; it never
    // returns into the test harness.
    let pid = unsafe { forked::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // The child drops the last handle it has, as a child that closes its copy would.
        let code = check_inherited_engine(engine, ana.id);
        // SAFETY: ends the forked child without running the parent's atexit handlers.
        unsafe { forked::_exit(code) }
    }
    let code = forked::wait_for(pid, Duration::from_secs(10));
    assert_eq!(
        code,
        Some(0),
        "the forked child hung (None) or an operation misbehaved"
    );

    // The parent's engine still works, and its store reopens with everything in it.
    let bo = engine
        .register_client("Bo", "bo@example.com", "+573009876543", Channel::Sms)
        .unwrap();
    engine.subscribe(bo.id, 3, None, None).unwrap();
    engine.check_process().unwrap();
    drop(engine);
    let reopened = Engine::open(&dir, config()).unwrap();
    assert_eq!(reopened.subscriptions(ana.id).unwrap().len(), 1);
    assert_eq!(reopened.subscriptions(bo.id).unwrap().len(), 1);
    assert_eq!(reopened.history(bo.id, 10, None).unwrap().len(), 1);
    println!("FORK CHECKED");
}

#[cfg(unix)]
#[test]
fn an_engine_used_in_a_forked_child_fails_fast_and_the_parent_keeps_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let output = helper("fork_worker", FORK_WORKER_DIR, &dir.path().join("store"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("FORK CHECKED"),
        "fork worker failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Where the forked child of `fork_before_open_worker` writes the id of the client it made.
#[cfg(unix)]
fn client_file(store: &std::ffi::OsStr) -> std::path::PathBuf {
    std::path::Path::new(store).with_extension("client")
}

/// Helper process: forks before any store was opened; the child opens its own engine.
#[cfg(unix)]
#[test]
fn fork_before_open_worker() {
    let Some(dir) = std::env::var_os(FORK_BEFORE_OPEN_DIR) else {
        return;
    };
    // SAFETY: the child only opens and uses its own engine, then `_exit`s.
    let pid = unsafe { forked::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let worked = Engine::open(&dir, Config::default()).and_then(|engine| {
            let ana = engine.register_client(
                "Ana",
                "ana@example.com",
                "+573001234567",
                Channel::Email,
            )?;
            engine.subscribe(ana.id, 1, None, None)?;
            engine.flush()?;
            Ok(ana.id)
        });
        let reported = worked.map(|id| std::fs::write(client_file(&dir), id.to_string()));
        // SAFETY: ends the forked child without returning into the test harness.
        unsafe { forked::_exit(if matches!(reported, Ok(Ok(()))) { 0 } else { 1 }) }
    }
    assert_eq!(forked::wait_for(pid, Duration::from_secs(30)), Some(0));
    let engine = Engine::open(&dir, Config::default()).unwrap();
    let client = std::fs::read_to_string(client_file(&dir)).unwrap();
    let client = client.parse().unwrap();
    assert_eq!(engine.subscriptions(client).unwrap().len(), 1);
    println!("CHILD OPENED ITS OWN");
}

/// The documented pattern: fork first, open the engine in the child.
#[cfg(unix)]
#[test]
fn an_engine_opened_after_the_fork_works_in_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let output = helper(
        "fork_before_open_worker",
        FORK_BEFORE_OPEN_DIR,
        &dir.path().join("store"),
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("CHILD OPENED ITS OWN"),
        "worker failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_process_that_opened_an_engine_may_use_it() {
    let engine = Engine::open_temporary(Config::default()).unwrap();
    assert_eq!(engine.check_process(), Ok(()));
    let err = Error::OpenedInAnotherProcess {
        opened_in: 41,
        called_from: 42,
    };
    assert_eq!(err.code(), "STORAGE_ERROR");
    assert!(err.message(Locale::En).contains("pid 41"));
    assert_eq!(err.to_string(), err.message(Locale::Es));
}
