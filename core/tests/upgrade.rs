//! Upgrades (SPEC §10.2): stores written by a release open in the next ones.
//!
//! `core/tests/fixtures/<version>/` holds, for each release whose format is kept, an embedded
//! store (`embedded.tar.gz`, the sled directory) and a PostgreSQL database (`postgres.sql`,
//! `pg_dump` plain format) that the release's code filled with the same small story (three
//! clients; subscriptions, a cancellation, keyed and unkeyed; a fund created, repriced and
//! closed; a client's channel changed; notifications delivered, failed and pending; four audit
//! events), with `embedded.txt` and `postgres.txt`: every record an engine of that release read
//! back, ids and times included. `scripts/make-upgrade-fixtures.sh` writes the current
//! version's directory (the ignored test `write_the_fixtures`); a released version's directory
//! is never rewritten.
//!
//! What the tests prove, for every version directory:
//! - the embedded store, unpacked into a temporary directory (the committed one is never opened:
//!   opening may write), opens with this code and reads back exactly what the release wrote
//!   (clients, balances, subscriptions, histories, notifications, funds, audit trail, every id
//!   and time), and the story's numbers hold; `fundcore verify` finds it clean; each stored
//!   idempotency key repeated gives its first answer and changes nothing; it takes new changes,
//!   whose ids sort after every stored one;
//! - the PostgreSQL dump, restored with `psql` into a new database, is opened by
//!   `Engine::connect`, which migrates an older release's schema forward (v0.1.0's is today's;
//!   core/tests/postgres.rs upgrades a database of schema 1), then reads and verifies the same
//!   way;
//! - both stores hold the same story (their texts differ only in the ids the engine drew).

#![cfg(feature = "postgres")]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::stores::{StoreKind, fresh_database, kinds, postgres_configured};
use fundcore::{
    Actor, Category, Channel, ClientId, Config, ContactChanges, Decimal, DeliveryError, Engine,
    FundChanges, MAX_PAGE, ManualClock, NotificationStatus, RecordingNotifier, Timestamp,
    TransactionKind,
};

/// When the story starts: 2026-12-01T12:00:00Z.
const START: Timestamp = Timestamp::from_unix_micros(1_796_126_400_000_000);

const ANA: &str = "0193a000-0000-7000-8000-000000000001";
const LUIS: &str = "0193a000-0000-7000-8000-000000000002";
const MARTA: &str = "0193a000-0000-7000-8000-000000000003";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixture directories, one per release format, oldest first.
fn versions() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("embedded.tar.gz").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no fixtures in {}", fixtures().display());
    dirs
}

fn id(text: &str) -> ClientId {
    text.parse().unwrap()
}

fn amount(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// The story every fixture holds, told to `engine` (whose clock is `clock`), one minute apart.
fn tell_the_story(engine: &Engine, clock: &ManualClock) {
    let step = || clock.advance(Duration::from_secs(60));
    let ops = Actor::new("ops@example.com").with_request_id("req-fixture-1");
    for (client, name, email, phone, channel) in [
        (
            ANA,
            "Ana Gómez",
            "ana@example.com",
            "+573001234567",
            Channel::Email,
        ),
        (
            LUIS,
            "Luis Pérez",
            "luis@example.com",
            "+573009876543",
            Channel::Sms,
        ),
        (
            MARTA,
            "Marta Ruiz",
            "marta@example.com",
            "+573005551234",
            Channel::Email,
        ),
    ] {
        step();
        engine
            .register_client_with_id(id(client), name, email, phone, channel)
            .unwrap();
    }
    step();
    engine.subscribe(id(ANA), 1, None, Some("ana-s1")).unwrap();
    step();
    engine
        .subscribe(id(ANA), 3, Some(amount("60000.50")), None)
        .unwrap();
    step();
    engine.subscribe(id(LUIS), 2, None, None).unwrap();
    step();
    engine
        .subscribe(id(LUIS), 4, Some(amount("250000")), None)
        .unwrap();
    step();
    engine.cancel(id(ANA), 1, Some("ana-c1")).unwrap();
    step();
    engine
        .create_fund(6, "FIC-AHORRO", amount("20000"), Category::Fic, &ops)
        .unwrap();
    step();
    let repriced = FundChanges {
        minimum: Some(amount("80000")),
        ..FundChanges::default()
    };
    engine.update_fund(1, &repriced, &ops).unwrap();
    step();
    let closed = FundChanges {
        active: Some(false),
        ..FundChanges::default()
    };
    engine.update_fund(5, &closed, &ops).unwrap();
    step();
    let email = ContactChanges {
        channel: Some(Channel::Email),
        ..ContactChanges::default()
    };
    engine
        .update_client(id(LUIS), &email, &Actor::new(LUIS))
        .unwrap();
    step();
    engine
        .subscribe(id(LUIS), 6, Some(amount("20000")), Some("luis-s6"))
        .unwrap();
    step();
    // The three oldest entries: one delivered, one failed for good, one to be tried again.
    let notifier = RecordingNotifier::new();
    notifier.script([
        Ok(()),
        Err(DeliveryError::Permanent("mailbox unknown".into())),
        Err(DeliveryError::Retryable("smtp timeout".into())),
    ]);
    let report = engine.dispatch_notifications(&notifier, 3).unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
}

fn story_config(clock: &Arc<ManualClock>) -> Config {
    Config::builder()
        .clock(Some(clock.clone() as Arc<dyn fundcore::Clock>))
        .build()
        .unwrap()
}

fn optional<T: std::fmt::Display>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}

/// Every record of the store as an engine reads it, one line each, in a fixed order: the text
/// a fixture's `.txt` file holds.
fn describe(engine: &Engine) -> String {
    let mut out = vec![format!("initial balance {}", engine.initial_balance())];
    for fund in engine.funds().unwrap() {
        out.push(format!(
            "fund {} {:?} minimum {} {} active {}",
            fund.id,
            fund.name,
            fund.minimum,
            fund.category.as_str(),
            fund.active
        ));
    }
    let mut clients = Vec::new();
    let mut before = None;
    loop {
        let page = engine.clients(MAX_PAGE, before).unwrap();
        clients.extend(page.items);
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    for client in clients {
        out.push(format!(
            "client {} {:?} {} {} {} balance {} created {}",
            client.id,
            client.name,
            client.email,
            client.phone,
            client.channel.as_str(),
            client.balance,
            client.created_at
        ));
        for s in engine.subscriptions(client.id).unwrap() {
            out.push(format!(
                "  subscription fund {} {:?} amount {} by {} at {}",
                s.fund_id, s.fund_name, s.amount, s.transaction_id, s.subscribed_at
            ));
        }
        for tx in common::full_history(engine, client.id) {
            assert_eq!(tx.client_id, client.id);
            out.push(format!(
                "  transaction {} {} fund {} {:?} amount {} balance_after {} at {} key {}",
                tx.id,
                tx.kind.as_str(),
                tx.fund_id,
                tx.fund_name,
                tx.amount,
                tx.balance_after,
                tx.created_at,
                optional(&tx.idempotency_key)
            ));
        }
        for n in engine.notifications(client.id).unwrap() {
            assert_eq!(n.client_id, client.id);
            out.push(format!(
                "  notification {} of {} {} to {} {} attempts {} error {} created {} \
                 delivered {} next {} subject {:?} body {:?}",
                n.id,
                n.transaction_id,
                n.channel.as_str(),
                n.recipient,
                n.status.as_str(),
                n.attempts,
                optional(&n.last_error),
                n.created_at,
                optional(&n.delivered_at),
                optional(&n.next_attempt_at),
                n.subject,
                n.body
            ));
        }
    }
    let mut before = None;
    loop {
        let page = engine.audit_events(MAX_PAGE, before).unwrap();
        for event in &page.items {
            out.push(format!(
                "audit {} at {} by {:?} {} {} before {} after {} request {}",
                event.id,
                event.at,
                event.actor,
                event.action.as_str(),
                event.target,
                serde_json::Value::Object(event.before.clone()),
                serde_json::Value::Object(event.after.clone()),
                optional(&event.request_id)
            ));
        }
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    out.push(String::new());
    out.join("\n")
}

/// The story's numbers, read through the engine: what any release must still show.
fn check_the_story(engine: &Engine, what: &str) {
    let balance = |client: &str| engine.client(id(client)).unwrap().balance.to_string();
    assert_eq!(balance(ANA), "439999.50", "{what}");
    assert_eq!(balance(LUIS), "105000.00", "{what}");
    assert_eq!(balance(MARTA), "500000.00", "{what}");
    let history = |client: &str| -> Vec<(TransactionKind, u32, String, String, Option<String>)> {
        common::full_history(engine, id(client))
            .into_iter()
            .rev()
            .map(|tx| {
                (
                    tx.kind,
                    tx.fund_id,
                    tx.amount.to_string(),
                    tx.balance_after.to_string(),
                    tx.idempotency_key,
                )
            })
            .collect()
    };
    use TransactionKind::{Cancellation as C, Subscription as S};
    let row = |kind, fund, amount: &str, after: &str, key: Option<&str>| {
        (
            kind,
            fund,
            amount.to_owned(),
            after.to_owned(),
            key.map(str::to_owned),
        )
    };
    assert_eq!(
        history(ANA),
        [
            row(S, 1, "75000.00", "425000.00", Some("ana-s1")),
            row(S, 3, "60000.50", "364999.50", None),
            row(C, 1, "75000.00", "439999.50", Some("ana-c1")),
        ],
        "{what}"
    );
    assert_eq!(
        history(LUIS),
        [
            row(S, 2, "125000.00", "375000.00", None),
            row(S, 4, "250000.00", "125000.00", None),
            row(S, 6, "20000.00", "105000.00", Some("luis-s6")),
        ],
        "{what}"
    );
    assert!(history(MARTA).is_empty(), "{what}");
    let active: Vec<(u32, String)> = engine
        .subscriptions(id(LUIS))
        .unwrap()
        .into_iter()
        .map(|s| (s.fund_id, s.amount.to_string()))
        .collect();
    assert_eq!(active.len(), 3, "{what}: {active:?}");

    let funds: HashMap<u32, (String, String, bool)> = engine
        .funds()
        .unwrap()
        .into_iter()
        .map(|f| (f.id, (f.name, f.minimum.to_string(), f.active)))
        .collect();
    assert_eq!(funds.len(), 6, "{what}");
    assert_eq!(
        funds[&1],
        (
            "FPV_BTG_PACTUAL_RECAUDADORA".into(),
            "80000.00".into(),
            true
        )
    );
    assert!(!funds[&5].2, "{what}: fund 5 closed");
    assert_eq!(funds[&6], ("FIC-AHORRO".into(), "20000.00".into(), true));

    let mut statuses: Vec<(NotificationStatus, u32)> = [ANA, LUIS, MARTA]
        .iter()
        .flat_map(|c| engine.notifications(id(c)).unwrap())
        .map(|n| (n.status, n.attempts))
        .collect();
    statuses.sort_by_key(|(status, attempts)| (status.as_str(), *attempts));
    use NotificationStatus::{Delivered, Failed, Pending};
    assert_eq!(
        statuses,
        [
            (Delivered, 1),
            (Failed, 1),
            (Pending, 0),
            (Pending, 0),
            (Pending, 0),
            (Pending, 1),
        ],
        "{what}"
    );
    let trail: Vec<(String, String, String)> = engine
        .audit_events(MAX_PAGE, None)
        .unwrap()
        .items
        .into_iter()
        .rev()
        .map(|e| (e.action.as_str().to_owned(), e.target, e.actor))
        .collect();
    let event = |action: &str, target: &str, actor: &str| {
        (action.to_owned(), target.to_owned(), actor.to_owned())
    };
    assert_eq!(
        trail,
        [
            event("fund_created", "6", "ops@example.com"),
            event("fund_updated", "1", "ops@example.com"),
            event("fund_updated", "5", "ops@example.com"),
            event("client_updated", LUIS, LUIS),
        ],
        "{what}"
    );
}

/// The stored idempotency keys answer as before, and a new change on the upgraded store is
/// accepted, with an id above every stored one.
fn write_after_upgrade(engine: &Engine, what: &str) {
    let newest = [ANA, LUIS]
        .iter()
        .map(|c| common::full_history(engine, id(c))[0].id)
        .max()
        .unwrap();
    // The idempotency records came along: each key repeated gives its first answer.
    let history = |client: &str| common::full_history(engine, id(client));
    let (ana, luis) = (history(ANA), history(LUIS));
    let keyed = |key: &str| {
        ana.iter()
            .chain(&luis)
            .find(|tx| tx.idempotency_key.as_deref() == Some(key))
            .cloned()
            .unwrap()
    };
    assert_eq!(
        engine.subscribe(id(ANA), 1, None, Some("ana-s1")).unwrap(),
        keyed("ana-s1"),
        "{what}"
    );
    assert_eq!(
        engine.cancel(id(ANA), 1, Some("ana-c1")).unwrap(),
        keyed("ana-c1"),
        "{what}"
    );
    assert_eq!(
        engine
            .subscribe(id(LUIS), 6, Some(amount("20000")), Some("luis-s6"))
            .unwrap(),
        keyed("luis-s6"),
        "{what}"
    );
    assert_eq!(history(ANA), ana, "{what}: a repeat changes nothing");
    let tx = engine.subscribe(id(MARTA), 3, None, Some("after")).unwrap();
    assert!(tx.id > newest, "{what}: new ids sort after the stored ones");
    assert_eq!(tx.balance_after.to_string(), "450000.00", "{what}");
}

fn run(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The ids of a description (wherever they stand, message bodies included) replaced by their
/// order of first appearance; the story's fixed client ids are kept.
fn without_ids(text: &str) -> String {
    let is_id = |bytes: &[u8]| {
        bytes.len() == 36
            && bytes.iter().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => b.is_ascii_hexdigit(),
            })
    };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let (bytes, mut out, mut at) = (text.as_bytes(), String::new(), 0);
    while at < bytes.len() {
        if at + 36 <= bytes.len() && is_id(&bytes[at..at + 36]) {
            let found = &text[at..at + 36];
            if [ANA, LUIS, MARTA].contains(&found) {
                out.push_str(found);
            } else {
                let next = seen.len();
                out.push_str(&format!("<id {}>", *seen.entry(found).or_insert(next)));
            }
            at += 36;
        } else {
            let c = text[at..].chars().next().unwrap();
            out.push(c);
            at += c.len_utf8();
        }
    }
    out
}

#[test]
fn embedded_stores_of_every_release_open_read_back_exactly_and_verify_clean() {
    for version in versions() {
        let started = Instant::now();
        let what = format!("embedded store of {}", version.display());
        let work = tempfile::tempdir().unwrap();
        run(Command::new("tar")
            .arg("-xzf")
            .arg(version.join("embedded.tar.gz"))
            .arg("-C")
            .arg(work.path()));
        let store = work.path().join("embedded");
        let engine = Engine::open(&store, Config::default()).unwrap();
        let expected = std::fs::read_to_string(version.join("embedded.txt")).unwrap();
        assert_eq!(describe(&engine), expected, "{what}");
        check_the_story(&engine, &what);
        drop(engine);
        common::verify_command_passes(store.to_str().unwrap());
        let engine = Engine::open(&store, Config::default()).unwrap();
        write_after_upgrade(&engine, &what);
        drop(engine);
        common::verify_command_passes(store.to_str().unwrap());
        eprintln!("{what}: {:.2} s", started.elapsed().as_secs_f64());
    }
}

#[test]
fn postgres_dumps_of_every_release_restore_migrate_read_back_exactly_and_verify_clean() {
    if !kinds().contains(&StoreKind::Postgres) {
        return postgres_configured().unwrap();
    }
    for version in versions() {
        let started = Instant::now();
        let what = format!("PostgreSQL dump of {}", version.display());
        let url = fresh_database();
        run(Command::new(common::stores::pg_program("psql"))
            .args(["--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--file"])
            .arg(version.join("postgres.sql"))
            .arg(&url));
        let engine = Engine::connect(&url, Config::default()).unwrap();
        let expected = std::fs::read_to_string(version.join("postgres.txt")).unwrap();
        assert_eq!(describe(&engine), expected, "{what}");
        check_the_story(&engine, &what);
        common::verify_command_passes(&url);
        write_after_upgrade(&engine, &what);
        common::verify_command_passes(&url);
        eprintln!("{what}: {:.2} s", started.elapsed().as_secs_f64());
    }
}

#[test]
fn both_stores_of_a_release_hold_the_same_story() {
    for version in versions() {
        let embedded = std::fs::read_to_string(version.join("embedded.txt")).unwrap();
        let postgres = std::fs::read_to_string(version.join("postgres.txt")).unwrap();
        assert_eq!(
            without_ids(&embedded),
            without_ids(&postgres),
            "{}",
            version.display()
        );
    }
}

/// Writes `core/tests/fixtures/v<this version>/` (run by scripts/make-upgrade-fixtures.sh, with
/// a PostgreSQL server): never run on a released version's directory.
#[test]
#[ignore = "writes the fixtures; run by scripts/make-upgrade-fixtures.sh"]
fn write_the_fixtures() {
    let dir = fixtures().join(format!("v{}", env!("CARGO_PKG_VERSION")));
    std::fs::create_dir_all(&dir).unwrap();

    // The embedded store, packed with fixed names, owners and times.
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("embedded");
    let clock = Arc::new(ManualClock::new(START));
    let engine = Engine::open(&store, story_config(&clock)).unwrap();
    tell_the_story(&engine, &clock);
    drop(engine);
    let engine = Engine::open(&store, Config::default()).unwrap();
    let text = describe(&engine);
    check_the_story(&engine, "the embedded store written");
    drop(engine);
    std::fs::write(dir.join("embedded.txt"), text).unwrap();
    let tar = dir.join("embedded.tar");
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-cf",
        ])
        .arg(&tar)
        .arg("-C")
        .arg(work.path())
        .arg("embedded"));
    run(Command::new("gzip").args(["-n", "-9", "-f"]).arg(&tar));

    // The database, dumped as plain SQL without owners or privileges.
    let url = fresh_database();
    let clock = Arc::new(ManualClock::new(START));
    let engine = Engine::connect(&url, story_config(&clock)).unwrap();
    tell_the_story(&engine, &clock);
    drop(engine);
    let engine = Engine::connect(&url, Config::default()).unwrap();
    let text = describe(&engine);
    check_the_story(&engine, "the database written");
    drop(engine);
    std::fs::write(dir.join("postgres.txt"), text).unwrap();
    run(Command::new(common::stores::pg_program("pg_dump"))
        .args(["--format=plain", "--no-owner", "--no-privileges", "--file"])
        .arg(dir.join("postgres.sql"))
        .arg(&url));
}
