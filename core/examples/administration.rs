//! An operator changes the catalogue and a client changes its preference; every change is in
//! the audit trail. Run with `cargo run --example administration`; `make test` runs it too.

use fundcore::{
    Actor, AuditAction, Category, Channel, Config, ContactChanges, Engine, FundChanges,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::open_temporary(Config::default())?;
    let ana = engine.register_client("Ana", "ana@example.com", "+573001234567", Channel::Email)?;
    let opened = engine.subscribe(ana.id, 3, None, None)?; // DEUDAPRIVADA, minimum COP $50.000

    // The operator raises the minimum and adds a fund; who asked is recorded with each change.
    let ops = Actor::new("ops@asset-manager").with_request_id("req-42");
    let raise = FundChanges {
        minimum: Some("90000".parse()?),
        ..FundChanges::default()
    };
    engine.update_fund(3, &raise, &ops)?;
    engine.create_fund(6, "RENTA-FIJA", "10000".parse()?, Category::Fic, &ops)?;

    // A cancellation refunds exactly what was stored, not the new minimum.
    let refund = engine.cancel(ana.id, 3, None)?;
    assert_eq!(refund.amount, opened.amount);

    // The client moves to SMS: notifications created from now on go to the phone.
    let to_sms = ContactChanges {
        channel: Some(Channel::Sms),
        ..ContactChanges::default()
    };
    engine.update_client(ana.id, &to_sms, &Actor::new(ana.id.to_string()))?;
    engine.subscribe(ana.id, 6, None, None)?;
    let newest = &engine.notifications(ana.id)?[0];
    assert_eq!(
        (newest.channel, newest.recipient.as_str()),
        (Channel::Sms, "+573001234567")
    );

    // The audit trail, newest first: who changed what, before and after.
    let trail = engine.audit_events(10, None)?;
    assert_eq!(trail.items[0].action, AuditAction::ClientUpdated);
    for event in &trail.items {
        let (before, after) = (
            serde_json::to_string(&event.before)?,
            serde_json::to_string(&event.after)?,
        );
        println!(
            "{} {} {} {before} -> {after}",
            event.actor, event.action, event.target
        );
    }
    Ok(())
}
