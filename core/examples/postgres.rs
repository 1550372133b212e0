//! The same engine on PostgreSQL: several processes (or hosts) share one database.
//!
//! Run with `FUNDCORE_DATABASE_URL=postgresql://user:password@host/db cargo run --features
//! fundcore/postgres --example postgres`; `make test` runs it against its private server.

use fundcore::{Channel, Config, Engine, LoggingNotifier};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("FUNDCORE_DATABASE_URL")?;
    // Creates or upgrades fundcore's tables, then serves from a pool of connections.
    let config = Config::builder().pool_size(8).build()?;
    let engine = Engine::connect(&url, config)?;
    let ana = engine.register_client("Ana", "ana@example.com", "+573001234567", Channel::Sms)?;
    let tx = engine.subscribe(ana.id, 3, Some("60000".parse()?), Some("order-7"))?;
    assert_eq!(tx.balance_after.to_string(), "440000.00");

    // Each subscribe or cancel is one database transaction: a read and a guarded write, or
    // the write alone once this process has seen the client and the fund.
    let before = engine.store_stats().round_trips;
    engine.cancel(ana.id, 3, None)?;
    assert_eq!(engine.store_stats().round_trips - before, 1);

    // Every process may run a dispatcher: each claims different outbox entries.
    let report = engine.dispatch_notifications(&LoggingNotifier::stdout(), 100)?;
    assert_eq!(report.delivered, 2);
    println!(
        "{} on PostgreSQL: balance {}",
        ana.name,
        engine.client(ana.id)?.balance
    );
    Ok(())
}
