//! The fundcore story in one run: open a store, register a client, subscribe until the money
//! runs out, cancel one, read the history and send the notifications.
//!
//! Run with `cargo run --example quickstart`.

use fundcore::{Channel, Config, Engine, LoggingNotifier, money::format_cop};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(dir.path().join("fundcore"), Config::default())?;
    println!("store: {}", dir.path().join("fundcore").display());

    let ana = engine.register_client(
        "Ana Gómez",
        "ana@example.com",
        "+573001234567",
        Channel::Email,
    )?;
    println!("client {} starts with {}", ana.id, format_cop(ana.balance));

    // Subscribe to every fund at its minimum until the balance runs out.
    for fund in engine.funds() {
        match engine.subscribe(ana.id, fund.id, None, None) {
            Ok(tx) => println!(
                "subscribed to {:<28} {:>16}  balance {}",
                fund.name,
                format_cop(tx.amount),
                format_cop(tx.balance_after)
            ),
            Err(refusal) => println!(
                "refused  [{}] {}",
                refusal.code(),
                refusal.message(engine.locale())
            ),
        }
    }

    let refund = engine.cancel(ana.id, 4, Some("cancel-fdo-acciones"))?;
    println!(
        "cancelled {}: refunded {}, balance {}",
        refund.fund_name,
        format_cop(refund.amount),
        format_cop(refund.balance_after)
    );

    println!("\nhistory, newest first:");
    for tx in engine.history(ana.id, 50, None)? {
        println!(
            "  {}  {:<12} {:<28} {:>16}",
            tx.id,
            tx.kind,
            tx.fund_name,
            format_cop(tx.amount)
        );
    }

    println!("\nnotifications:");
    let report = engine.dispatch_notifications(&LoggingNotifier::stdout(), 100)?;
    println!(
        "\ndelivered {}, retried {}, failed {}",
        report.delivered, report.retried, report.failed
    );
    Ok(())
}
