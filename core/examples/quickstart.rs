//! The fundcore story in one run: open a store, register a client, subscribe, be refused for
//! lack of balance, cancel, read the history and send the notifications.
//!
//! Run with `cargo run --example quickstart`; `make test` runs it too, and the root README's
//! Rust quickstart is a verbatim copy of the program below.

use fundcore::{Channel, Config, Engine, LoggingNotifier, format_cop};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A store in a temporary directory; Engine::open("data/fundcore", Config::default()) keeps it.
    let engine = Engine::open_temporary(Config::default())?;
    let ana = engine.register_client("Ana", "ana@example.com", "+573001234567", Channel::Email)?;
    assert_eq!(format_cop(ana.balance), "COP $500.000");

    // No amount: the fund's minimum (COP $75.000). The key makes a retried call safe.
    let tx = engine.subscribe(ana.id, 1, None, Some("order-1"))?;
    assert_eq!(tx.balance_after.to_string(), "425000.00");
    assert_eq!(engine.subscribe(ana.id, 1, None, Some("order-1"))?, tx);

    // Not enough balance left: refused with the exact message, and nothing changes.
    let refusal = match engine.subscribe(ana.id, 4, Some("450000".parse()?), None) {
        Err(refusal) => refusal,
        Ok(unexpected) => return Err(format!("subscribed: {unexpected:?}").into()),
    };
    println!("{} {}", refusal.code(), refusal.message(engine.locale()));
    // INSUFFICIENT_BALANCE No tiene saldo disponible para vincularse al fondo FDO-ACCIONES
    assert_eq!(refusal.code(), "INSUFFICIENT_BALANCE");

    // Cancelling refunds the stored amount.
    let refund = engine.cancel(ana.id, 1, None)?;
    assert_eq!(refund.amount.to_string(), "75000.00");
    assert_eq!(engine.client(ana.id)?.balance.to_string(), "500000.00");

    let history = engine.history(ana.id, 50, None)?; // newest first
    assert_eq!(history.first().map(|tx| tx.id), Some(refund.id));
    for tx in &history {
        println!("{} {} {}", tx.id, tx.kind, format_cop(tx.amount));
    }

    // After commit, from the outbox: one email per subscription and per cancellation.
    let report = engine.dispatch_notifications(&LoggingNotifier::stdout(), 100)?;
    assert_eq!((report.delivered, report.failed), (2, 0));
    Ok(())
}
