//! The `fundcore` command: operations on a store from the shell.
//!
//! ```text
//! fundcore copy --from <directory or postgresql:// URL> --to <directory or postgresql:// URL>
//! fundcore verify <directory or postgresql:// URL>
//! fundcore backup <directory> <new directory>
//! fundcore outbox <directory or postgresql:// URL>
//! fundcore outbox retry-failed <directory or postgresql:// URL>
//! ```
//!
//! Exit status: 0 done (and, for `verify`, no violation); 1 `verify` found a violation, or
//! `copy` or `backup` failed; 2 a usage error; 3 the store could not be opened or read.

use std::process::ExitCode;

use fundcore::{
    Config, Engine, Error, LedgerReport, Locale, OutboxState, StoreLocation, copy_store,
    verify_store,
};

const USAGE: &str = "usage:
  fundcore copy --from <directory | postgresql://URL> --to <directory | postgresql://URL>
  fundcore verify <directory | postgresql://URL>
  fundcore backup <directory> <new directory>
  fundcore outbox <directory | postgresql://URL>
  fundcore outbox retry-failed <directory | postgresql://URL>

copy          copies a store into an empty store of either kind, every record and id intact,
              and verifies the copy record by record. Stop every process that writes to the
              source first.
verify        checks every client's ledger: balance >= 0, balance + active subscriptions =
              initial balance, the history replays to the balance and subscriptions, unique
              ids, one outbox entry per notified transaction, idempotency records that name
              their transactions. Prints a summary and each violation with its client.
              PostgreSQL: runs while other processes use the database. Embedded store: the
              application must be stopped (one process holds an embedded store).
backup        writes a consistent copy of an embedded store into a new directory (one that
              does not exist: nothing is overwritten), which opens as a store of its own.
              The store must not be in use; an application backs up the store it has open
              with Engine::backup. A PostgreSQL store is backed up with pg_dump.
outbox        prints the outbox: pending, failed and delivered entries, the oldest pending one.
outbox retry-failed
              puts every failed notification back in the queue, due now.

Exit status: 0 done (verify: no violation), 1 verify found a violation (or copy or backup
failed),
2 usage error, 3 the store could not be opened or read (STORAGE_ERROR). A store is never
created: a location that holds none is an error.";

/// Exit status when the store cannot be opened or read.
const STORE_UNAVAILABLE: u8 = 3;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["copy", rest @ ..] => copy(rest),
        ["verify", location] => verify(&StoreLocation::parse(location)),
        ["backup", store, dest] if !store.starts_with('-') && !dest.starts_with('-') => {
            backup(&StoreLocation::parse(store), dest)
        }
        ["outbox", "retry-failed", location] => retry_failed(&StoreLocation::parse(location)),
        ["outbox", location] if !location.starts_with('-') && *location != "retry-failed" => {
            outbox(&StoreLocation::parse(location))
        }
        ["--help" | "-h" | "help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => usage_error(),
    }
}

fn usage_error() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

/// The line that says why a command could not work on its store (never a password: a
/// location is shown without its credentials).
fn storage_failure(command: &str, err: &Error) -> ExitCode {
    eprintln!(
        "fundcore {command}: {}: {}",
        err.code(),
        err.message(Locale::En)
    );
    ExitCode::from(STORE_UNAVAILABLE)
}

fn copy(args: &[&str]) -> ExitCode {
    let (mut from, mut to) = (None, None);
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        match (*flag, args.next()) {
            ("--from", Some(value)) => from = Some(StoreLocation::parse(value)),
            ("--to", Some(value)) => to = Some(StoreLocation::parse(value)),
            _ => return usage_error(),
        }
    }
    let (Some(from), Some(to)) = (from, to) else {
        return usage_error();
    };
    match copy_store(&from, &to) {
        Ok(report) => {
            println!(
                "copied {from} -> {to}: {} funds, {} clients, {} transactions, {} notifications, \
                 {} active subscriptions, {} idempotency keys, {} audit events; every record \
                 verified",
                report.funds,
                report.clients,
                report.transactions,
                report.notifications,
                report.subscriptions,
                report.idempotency_keys,
                report.audit_events
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!(
                "fundcore copy: {} ({})",
                err.message(Locale::En),
                err.code()
            );
            ExitCode::FAILURE
        }
    }
}

fn verify(location: &StoreLocation) -> ExitCode {
    let report = match verify_store(location) {
        Ok(report) => report,
        Err(err) => return storage_failure("verify", &err),
    };
    println!("fundcore verify {location}");
    println!("{report}");
    for violation in &report.violations {
        println!("{violation}");
    }
    let unlisted = report.violation_count - report.violations.len() as u64;
    if unlisted > 0 {
        println!(
            "… and {unlisted} more (the first {} are listed)",
            LedgerReport::MAX_LISTED
        );
    }
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn backup(location: &StoreLocation, dest: &str) -> ExitCode {
    let engine = match engine(location) {
        Ok(engine) => engine,
        Err(err) => return storage_failure("backup", &err),
    };
    let started = std::time::Instant::now();
    match engine.backup(dest) {
        Ok(()) => {
            println!(
                "fundcore backup {location} -> {dest}: done in {:.1} s; check it with \
                 fundcore verify {dest}",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!(
                "fundcore backup: {}: {}",
                err.code(),
                err.message(Locale::En)
            );
            ExitCode::FAILURE
        }
    }
}

/// An engine on the store that exists at `location`.
fn engine(location: &StoreLocation) -> fundcore::Result<Engine> {
    Engine::open_existing(location, Config::default())
}

fn outbox(location: &StoreLocation) -> ExitCode {
    let state = match engine(location).and_then(|engine| engine.outbox_state()) {
        Ok(state) => state,
        Err(err) => return storage_failure("outbox", &err),
    };
    println!("fundcore outbox {location}");
    print!("{}", describe(&state));
    ExitCode::SUCCESS
}

/// The outbox state, one fact a line.
fn describe(state: &OutboxState) -> String {
    let oldest = match (state.oldest_pending_at, state.oldest_pending_age) {
        (Some(at), Some(age)) => format!("{at} ({}s ago)", age.as_secs()),
        _ => "none".to_owned(),
    };
    format!(
        "pending: {}\nfailed: {}\ndelivered: {}\noldest pending: {oldest}\n",
        state.pending, state.failed, state.delivered
    )
}

/// Failed entries requeued per call.
const RETRY_BATCH: usize = 1000;

fn retry_failed(location: &StoreLocation) -> ExitCode {
    let requeue = || -> fundcore::Result<u64> {
        let engine = engine(location)?;
        // Those failed now: an entry that fails again meanwhile waits for the next run.
        let failed = engine.outbox_state()?.failed;
        let mut requeued = 0;
        while requeued < failed {
            let batch = (failed - requeued).min(RETRY_BATCH as u64) as usize;
            let done = engine.retry_failed_notifications(batch)?;
            requeued += done as u64;
            if done < batch {
                break;
            }
        }
        Ok(requeued)
    };
    match requeue() {
        Ok(requeued) => {
            println!(
                "fundcore outbox retry-failed {location}: {requeued} failed notifications \
                 requeued, due now"
            );
            ExitCode::SUCCESS
        }
        Err(err) => storage_failure("outbox retry-failed", &err),
    }
}
