//! What the portal and the console read, on both stores: the history filtered by kind and
//! fund, a statement for a date range, the failed notifications of every client and the ledger
//! check on a live engine.

mod common;

use common::stores::TestStore;

use std::sync::Arc;
use std::time::Duration;

use fundcore::{
    Channel, Client, Config, DeliveryError, Engine, ErrorCode, HistoryFilter, ManualClock,
    NotificationStatus, RecordingNotifier, Timestamp, Transaction, TransactionKind,
};

const START: Timestamp = Timestamp::from_unix_micros(1_795_000_000_000_000);

fn engine_with_clock(store: &TestStore) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(START));
    let config = Config::builder()
        .clock(clock.clone() as Arc<dyn fundcore::Clock>)
        .build()
        .unwrap();
    (store.open(config).unwrap(), clock)
}

fn client(engine: &Engine, name: &str) -> Client {
    engine
        .register_client(name, "ana@example.com", "+573001234567", Channel::Email)
        .unwrap()
}

/// Every transaction of a client, newest first, read with the unfiltered pages.
fn whole_history(engine: &Engine, client: &Client) -> Vec<Transaction> {
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = engine.history_page(client.id, 200, before).unwrap();
        all.extend(page.items);
        match page.next {
            Some(next) => before = Some(next),
            None => return all,
        }
    }
}

/// Every transaction `filter` lists, read in pages of `limit`.
fn filtered(
    engine: &Engine,
    client: &Client,
    limit: usize,
    filter: HistoryFilter,
) -> Vec<Transaction> {
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = engine
            .history_page_filtered(client.id, limit, before, &filter)
            .unwrap();
        assert!(page.items.len() <= limit);
        all.extend(page.items);
        match page.next {
            Some(next) => {
                assert_eq!(
                    Some(next),
                    all.last().map(|tx| tx.id),
                    "the cursor is the last id"
                );
                before = Some(next);
            }
            None => return all,
        }
    }
}

#[test]
fn a_filtered_history_lists_exactly_the_matching_transactions_across_pages() {
    for store in TestStore::each() {
        let (engine, _) = engine_with_clock(&store);
        let ana = client(&engine, "Ana");
        // One subscription to fund 2 at the start, then 240 transactions on funds 1 and 3: a
        // filter on fund 2 has to read past more than one page of the store's history.
        engine.subscribe(ana.id, 2, None, None).unwrap();
        for _ in 0..60 {
            engine.subscribe(ana.id, 1, None, None).unwrap();
            engine.subscribe(ana.id, 3, None, None).unwrap();
            engine.cancel(ana.id, 1, None).unwrap();
            engine.cancel(ana.id, 3, None).unwrap();
        }
        let all = whole_history(&engine, &ana);
        assert_eq!(all.len(), 241);
        for filter in [
            HistoryFilter::default(),
            HistoryFilter {
                kind: Some(TransactionKind::Cancellation),
                fund_id: None,
            },
            HistoryFilter {
                kind: Some(TransactionKind::Subscription),
                fund_id: Some(1),
            },
            HistoryFilter {
                kind: None,
                fund_id: Some(2),
            },
            HistoryFilter {
                kind: Some(TransactionKind::Cancellation),
                fund_id: Some(2),
            },
        ] {
            let expected: Vec<_> = all
                .iter()
                .filter(|tx| filter.matches(tx))
                .cloned()
                .collect();
            for limit in [1, 7, 60, 200] {
                assert_eq!(
                    filtered(&engine, &ana, limit, filter),
                    expected,
                    "{store}: {filter:?}, pages of {limit}"
                );
            }
        }
        // A page exactly full of the last matches has no cursor.
        let page = engine
            .history_page_filtered(
                ana.id,
                60,
                None,
                &HistoryFilter {
                    kind: Some(TransactionKind::Cancellation),
                    fund_id: Some(3),
                },
            )
            .unwrap();
        assert_eq!((page.items.len(), page.next), (60, None));

        // A cursor is any transaction of the client, matching or not.
        let cursor = all[1].id; // a cancellation of fund 3
        let page = engine
            .history_page_filtered(
                ana.id,
                2,
                Some(cursor),
                &HistoryFilter {
                    kind: Some(TransactionKind::Subscription),
                    fund_id: Some(3),
                },
            )
            .unwrap();
        assert!(
            page.items
                .iter()
                .all(|tx| tx.id < cursor && tx.fund_id == 3)
        );
        assert_eq!(page.items.len(), 2);
    }
}

#[test]
fn a_filtered_history_validates_as_the_history_does() {
    for store in TestStore::each() {
        let (engine, _) = engine_with_clock(&store);
        let ana = client(&engine, "Ana");
        let by_fund = |fund| HistoryFilter {
            kind: None,
            fund_id: Some(fund),
        };
        let code = |result: fundcore::Result<_>| {
            result.map(|_: fundcore::Page<_, _>| ()).unwrap_err().code()
        };
        assert_eq!(
            code(engine.history_page_filtered(ana.id, 10, None, &by_fund(99))),
            ErrorCode::FundNotFound
        );
        let nobody = fundcore::ClientId::generate();
        assert_eq!(
            code(engine.history_page_filtered(nobody, 10, None, &by_fund(99))),
            ErrorCode::ClientNotFound,
            "the client is named first"
        );
        for limit in [0, fundcore::MAX_PAGE + 1] {
            assert_eq!(
                code(engine.history_page_filtered(ana.id, limit, None, &by_fund(1))),
                ErrorCode::ValidationError
            );
        }
        // A fund with no transactions of the client is an empty page.
        let page = engine
            .history_page_filtered(ana.id, 10, None, &by_fund(1))
            .unwrap();
        assert_eq!((page.items.len(), page.next), (0, None));
    }
}

#[test]
fn a_statement_opens_and_closes_where_the_ledger_stood_and_every_line_adds_up() {
    for store in TestStore::each() {
        let (engine, clock) = engine_with_clock(&store);
        let ana = client(&engine, "Ana");
        let initial = engine.initial_balance();
        let amount = |text: &str| fundcore::parse_amount(text).ok();
        let hour = Duration::from_secs(3600);
        // One transaction an hour.
        let mut txs = Vec::new();
        for step in 0..6 {
            clock.advance(hour);
            txs.push(
                match step {
                    0 => engine.subscribe(ana.id, 1, amount("80000"), None),
                    1 => engine.subscribe(ana.id, 3, amount("60000"), None),
                    2 => engine.cancel(ana.id, 1, None),
                    3 => engine.subscribe(ana.id, 2, None, None),
                    4 => engine.cancel(ana.id, 3, None),
                    _ => engine.subscribe(ana.id, 1, None, None),
                }
                .unwrap(),
            );
        }

        // From the second transaction (included) to the fifth (excluded).
        let from = txs[1].created_at;
        let to = txs[4].created_at;
        let statement = engine.statement(ana.id, from, to).unwrap();
        assert_eq!(
            (statement.client_id, statement.from, statement.to),
            (ana.id, from, to)
        );
        assert_eq!(
            statement
                .lines
                .iter()
                .map(|line| &line.transaction)
                .collect::<Vec<_>>(),
            txs[1..4].iter().collect::<Vec<_>>(),
            "{store}: the range's transactions, oldest first"
        );
        assert_eq!(statement.opening_balance, txs[0].balance_after);
        assert_eq!(statement.opening_invested, amount("80000").unwrap());
        let invested: Vec<String> = statement
            .lines
            .iter()
            .map(|line| line.invested_after.to_string())
            .collect();
        assert_eq!(invested, ["140000.00", "60000.00", "185000.00"]);
        for line in &statement.lines {
            assert_eq!(
                line.transaction.balance_after + line.invested_after,
                initial
            );
        }
        assert_eq!(statement.closing_balance, txs[3].balance_after);
        assert_eq!(statement.closing_invested, amount("185000").unwrap());

        // From the client's creation to now: the chart; it closes where the client stands.
        let now = START.plus(hour * 7);
        let chart = engine.statement(ana.id, ana.created_at, now).unwrap();
        assert_eq!(chart.lines.len(), 6);
        assert_eq!(
            (chart.opening_balance, chart.opening_invested),
            (initial, 0.into())
        );
        let subscriptions = engine.subscriptions(ana.id).unwrap();
        assert_eq!(
            chart.closing_balance,
            engine.client(ana.id).unwrap().balance
        );
        assert_eq!(
            chart.closing_invested,
            subscriptions
                .iter()
                .map(|s| s.amount)
                .sum::<fundcore::Decimal>()
        );

        // An empty range stands where the ledger stood then.
        let quiet = txs[2].created_at.plus(Duration::from_secs(1));
        let empty = engine.statement(ana.id, quiet, quiet).unwrap();
        assert!(empty.lines.is_empty());
        assert_eq!(
            (empty.opening_balance, empty.closing_balance),
            (txs[2].balance_after, txs[2].balance_after)
        );
        assert_eq!(empty.opening_invested, amount("60000").unwrap());

        let err = engine.statement(ana.id, to, from).unwrap_err();
        assert_eq!(
            (err.code(), err.field()),
            (ErrorCode::ValidationError, Some("from"))
        );
        let err = engine
            .statement(fundcore::ClientId::generate(), from, to)
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ClientNotFound);
    }
}

#[test]
fn failed_notifications_are_listed_newest_first_with_their_error_until_retried() {
    for store in TestStore::each() {
        let (engine, clock) = engine_with_clock(&store);
        let clients: Vec<Client> = ["Ana", "Beto", "Carla"]
            .iter()
            .map(|name| client(&engine, name))
            .collect();
        let notifier = RecordingNotifier::new();
        for (i, c) in clients.iter().enumerate() {
            clock.advance(Duration::from_secs(1));
            engine.subscribe(c.id, 1, None, None).unwrap();
            notifier.script([Err(DeliveryError::Permanent(format!(
                "mailbox {i} refused"
            )))]);
            engine.dispatch_notifications(&notifier, 10).unwrap();
        }
        // One that is delivered is not listed.
        engine.subscribe(clients[0].id, 3, None, None).unwrap();
        engine.dispatch_notifications(&notifier, 10).unwrap();

        let first = engine.failed_notifications(2, None).unwrap();
        let names: Vec<_> = first.items.iter().map(|n| n.client_id).collect();
        assert_eq!(
            names,
            [clients[2].id, clients[1].id],
            "{store}: newest first"
        );
        let n = &first.items[0];
        assert_eq!(
            (
                n.status,
                n.attempts,
                n.last_error.as_deref(),
                n.recipient.as_str()
            ),
            (
                NotificationStatus::Failed,
                1,
                Some("mailbox 2 refused"),
                "ana@example.com"
            )
        );
        assert_eq!(n.channel, Channel::Email);
        assert_eq!(first.next, Some(first.items[1].id));
        let second = engine.failed_notifications(2, first.next).unwrap();
        assert_eq!(second.items.len(), 1);
        assert_eq!(second.items[0].client_id, clients[0].id);
        assert_eq!(second.next, None);

        assert_eq!(engine.retry_failed_notifications(200).unwrap(), 3);
        let after = engine.failed_notifications(10, None).unwrap();
        assert!(after.items.is_empty());
        assert_eq!(after.next, None);
        assert_eq!(
            engine.failed_notifications(0, None).unwrap_err().code(),
            ErrorCode::ValidationError
        );
    }
}

#[test]
fn the_ledger_check_runs_on_a_live_engine() {
    for store in TestStore::each() {
        let (engine, _) = engine_with_clock(&store);
        let ana = client(&engine, "Ana");
        let beto = client(&engine, "Beto");
        engine.subscribe(ana.id, 1, None, Some("k-1")).unwrap();
        engine.subscribe(beto.id, 2, None, None).unwrap();
        engine.cancel(beto.id, 2, None).unwrap();
        let notifier = RecordingNotifier::new();
        notifier.script([Err(DeliveryError::Permanent("refused".into()))]);
        engine.dispatch_notifications(&notifier, 1).unwrap();

        let report = engine.verify_ledger().unwrap();
        assert!(report.is_clean(), "{store}: {:?}", report.violations);
        assert_eq!(
            (
                report.clients,
                report.transactions,
                report.active_subscriptions,
                report.idempotency_keys
            ),
            (2, 3, 1, 1)
        );
        assert_eq!(
            (
                report.outbox.pending,
                report.outbox.delivered,
                report.outbox.failed
            ),
            (2, 0, 1)
        );

        // While other threads subscribe and cancel, every client is still seen whole.
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                for _ in 0..20 {
                    engine.subscribe(ana.id, 3, None, None).unwrap();
                    engine.cancel(ana.id, 3, None).unwrap();
                }
            });
            for _ in 0..5 {
                let report = engine.verify_ledger().unwrap();
                assert!(report.is_clean(), "{store}: {:?}", report.violations);
            }
            writer.join().unwrap();
        });
    }
}
