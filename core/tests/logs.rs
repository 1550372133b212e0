//! Logs and spans: no span or event carries contact data. This test has its own binary, so that
//! no other test's thread races it for the callsites' interest (tracing caches it globally).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::stores::TestStore;
use fundcore::{Actor, Channel, Config, ContactChanges, RecordingNotifier};

/// Everything a subscriber writes, for the calling thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_span_or_event_carries_contact_data() {
    for store in TestStore::each() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let ana_id = tracing::subscriber::with_default(subscriber, || {
            let engine = store.open(Config::default()).unwrap();
            let ana = engine
                .register_client(
                    "Ana Secreta",
                    "ana.secreta@example.com",
                    "+573001234567",
                    Channel::Sms,
                )
                .unwrap();
            engine.subscribe(ana.id, 1, None, Some("order-1")).unwrap();
            let changes = ContactChanges {
                email: Some("nueva.direccion@example.org".into()),
                phone: Some("+573009998877".into()),
                ..Default::default()
            };
            engine
                .update_client(ana.id, &changes, &Actor::new("support"))
                .unwrap();
            engine
                .register_client("Bad", "not-an-email", "+573001234567", Channel::Email)
                .unwrap_err();
            engine
                .dispatch_notifications(&RecordingNotifier::new(), 10)
                .unwrap();
            ana.id
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("operation=\"subscribe\""), "{store}: {text}");
        assert!(
            text.contains(&ana_id.to_string()),
            "{store}: client ids are logged"
        );
        for secret in [
            "Ana Secreta",
            "ana.secreta",
            "example.com",
            "nueva.direccion",
            "3001234567",
            "3009998877",
            "not-an-email",
        ] {
            assert!(
                !text.contains(secret),
                "{store}: {secret:?} in the logs:\n{text}"
            );
        }
    }
}
