//! The `fundcore` command: operations on a store from the shell.
//!
//! ```text
//! fundcore copy --from <directory or postgresql:// URL> --to <directory or postgresql:// URL>
//! ```

use std::process::ExitCode;

use fundcore::{StoreLocation, copy_store};

const USAGE: &str =
    "usage: fundcore copy --from <directory | postgresql://URL> --to <directory | postgresql://URL>

Copies a store into an empty store of either kind, every record and id intact, and verifies the
copy record by record. Stop every process that writes to the source first.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [command, rest @ ..] if command == "copy" => copy(rest),
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn copy(args: &[String]) -> ExitCode {
    let (mut from, mut to) = (None, None);
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--from", Some(value)) => from = Some(StoreLocation::parse(value)),
            ("--to", Some(value)) => to = Some(StoreLocation::parse(value)),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(from), Some(to)) = (from, to) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
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
                err.message(fundcore::Locale::En),
                err.code()
            );
            ExitCode::FAILURE
        }
    }
}
