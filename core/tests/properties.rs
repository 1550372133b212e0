//! Property tests of docs/invariants.md: random operation sequences against a reference model,
//! with the invariants checked after every step, reopening of the store, and concurrent callers;
//! each store is then read by the ledger check (`fundcore verify`), which must find no violation.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Barrier};

use common::stores::{StoreKind, TestStore, kinds};
use common::{check_invariants, snapshot};
use fundcore::{
    Actor, AuditAction, AuditEvent, Channel, ClientId, Config, ContactChanges, Decimal,
    DeliveryError, Durability, Engine, FundChanges, FundId, RecordingNotifier, Transaction,
    TransactionId, TransactionKind,
};
use proptest::prelude::*;
use serde_json::json;

#[derive(Clone, Debug)]
enum Amount {
    Default,
    Minimum,
    JustBelowMinimum,
    Cents(u64),
    Invalid(&'static str),
}

#[derive(Clone, Debug)]
enum Op {
    Register {
        sms: bool,
    },
    Subscribe {
        client: usize,
        fund: FundId,
        amount: Amount,
        key: Option<u8>,
    },
    Cancel {
        client: usize,
        fund: FundId,
        key: Option<u8>,
    },
    OnUnknownClient {
        fund: FundId,
    },
    Dispatch {
        outcome: u8,
    },
    Reopen,
    /// An administrator changes a fund's minimum and/or active flag (fund 6 or 7 may not exist).
    UpdateFund {
        fund: FundId,
        minimum_cents: Option<u64>,
        active: Option<bool>,
    },
    /// An administrator adds fund 6 or 7 (taken once created).
    CreateFund {
        fund: FundId,
        minimum_cents: u64,
    },
    /// A client changes its channel.
    UpdateContact {
        client: usize,
        sms: bool,
    },
}

fn amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        2 => Just(Amount::Default),
        1 => Just(Amount::Minimum),
        1 => Just(Amount::JustBelowMinimum),
        4 => (1u64..=40_000_000).prop_map(Amount::Cents),
        1 => prop::sample::select(vec!["0", "-5", "1.005", "1000000000000.01", "abc"]).prop_map(Amount::Invalid),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    // Funds 6 and 7 exist only once an administrator creates them.
    let fund = 1u32..=7;
    let key = prop::option::weighted(0.4, 0u8..4);
    prop_oneof![
        2 => any::<bool>().prop_map(|sms| Op::Register { sms }),
        6 => (0usize..4, fund.clone(), amount(), key.clone())
            .prop_map(|(client, fund, amount, key)| Op::Subscribe { client, fund, amount, key }),
        4 => (0usize..4, fund.clone(), key).prop_map(|(client, fund, key)| Op::Cancel { client, fund, key }),
        1 => fund.clone().prop_map(|fund| Op::OnUnknownClient { fund }),
        1 => (0u8..3).prop_map(|outcome| Op::Dispatch { outcome }),
        1 => Just(Op::Reopen),
        2 => (fund, prop::option::of(1_000u64..=30_000_000), prop::option::of(any::<bool>()))
            .prop_map(|(fund, minimum_cents, active)| Op::UpdateFund { fund, minimum_cents, active }),
        1 => (6u32..=7, 1_000u64..=30_000_000).prop_map(|(fund, minimum_cents)| Op::CreateFund { fund, minimum_cents }),
        1 => (0usize..4, any::<bool>()).prop_map(|(client, sms)| Op::UpdateContact { client, sms }),
    ]
}

/// The catalogue as the model knows it: minimum and active flag by fund id.
type Catalogue = BTreeMap<FundId, (Decimal, bool)>;

fn default_catalogue() -> Catalogue {
    fundcore::default_catalogue()
        .into_iter()
        .map(|f| (f.id, (f.minimum, f.active)))
        .collect()
}

#[derive(Clone, Debug, PartialEq)]
enum Request {
    Subscribe(FundId, Option<Decimal>),
    Cancel(FundId),
}

#[derive(Default)]
struct ClientModel {
    balance: Decimal,
    active: BTreeMap<FundId, Decimal>,
    keys: HashMap<String, (Request, Transaction)>,
}

fn minimum(catalogue: &Catalogue, fund: FundId) -> Option<Decimal> {
    catalogue.get(&fund).map(|(minimum, _)| *minimum)
}

fn config() -> Config {
    Config::builder()
        .durability(Durability::Periodic { interval_ms: 1000 })
        .build()
        .unwrap()
}

/// What the model says an operation must return: Ok(None) a new transaction,
/// Ok(Some(tx)) a replay of `tx`, Err(code) a refusal.
type Predicted = Result<Option<Transaction>, &'static str>;

fn predict(
    catalogue: &Catalogue,
    model: &ClientModel,
    fund: FundId,
    request: &Request,
    key: Option<&str>,
) -> Predicted {
    let Some(&(minimum, active)) = catalogue.get(&fund) else {
        return Err("FUND_NOT_FOUND");
    };
    if let Some((first_request, first_tx)) = key.and_then(|k| model.keys.get(k)) {
        return if first_request == request {
            Ok(Some(first_tx.clone()))
        } else {
            Err("IDEMPOTENCY_KEY_REUSED")
        };
    }
    match request {
        Request::Subscribe(_, amount) => {
            let amount = amount.unwrap_or(minimum);
            if !active {
                Err("FUND_INACTIVE")
            } else if amount < minimum {
                Err("BELOW_MINIMUM")
            } else if model.active.contains_key(&fund) {
                Err("ALREADY_SUBSCRIBED")
            } else if model.balance < amount {
                Err("INSUFFICIENT_BALANCE")
            } else {
                Ok(None)
            }
        }
        Request::Cancel(_) if !model.active.contains_key(&fund) => Err("NOT_SUBSCRIBED"),
        Request::Cancel(_) => Ok(None),
    }
}

fn reopen(engine: Engine, store: &TestStore, clients: &[ClientId]) -> Engine {
    engine.flush().unwrap();
    let before = snapshot(&engine, clients);
    drop(engine);
    let engine = store.open(config()).unwrap();
    assert_eq!(
        snapshot(&engine, clients),
        before,
        "state changed across reopen"
    );
    engine
}

fn run_sequence(ops: Vec<Op>, kind: StoreKind) {
    let store = TestStore::new(kind);
    let mut engine = store.open(config()).unwrap();
    let initial = engine.initial_balance();
    let mut ids: Vec<ClientId> = Vec::new();
    let mut models: Vec<ClientModel> = Vec::new();
    let mut catalogue = default_catalogue();
    let mut audited = 0usize;
    let mut recorded: HashMap<TransactionId, Transaction> = HashMap::new();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Register { sms } => {
                let channel = if sms { Channel::Sms } else { Channel::Email };
                let client = engine
                    .register_client("Cliente", "c@example.com", "+573001234567", channel)
                    .unwrap();
                assert_eq!(client.balance, initial);
                ids.push(client.id);
                models.push(ClientModel {
                    balance: initial,
                    ..ClientModel::default()
                });
            }
            Op::Subscribe { fund, .. } | Op::Cancel { fund, .. } if ids.is_empty() => {
                let err = engine
                    .cancel(ClientId(uuid_v7_unknown()), fund, None)
                    .unwrap_err();
                let expected = if minimum(&catalogue, fund).is_some() {
                    "CLIENT_NOT_FOUND"
                } else {
                    "FUND_NOT_FOUND"
                };
                assert_eq!(err.code(), expected);
            }
            Op::Subscribe {
                client,
                fund,
                ref amount,
                key,
            } => {
                let index = client % ids.len();
                let key = key.map(|k| format!("k-{k}"));
                let minimum_of_fund = minimum(&catalogue, fund).unwrap_or(Decimal::ONE);
                let parsed = match amount {
                    Amount::Default => Ok(None),
                    Amount::Minimum => Ok(Some(minimum_of_fund)),
                    Amount::JustBelowMinimum => Ok(Some(minimum_of_fund - Decimal::new(1, 2))),
                    Amount::Cents(cents) => Ok(Some(Decimal::new(*cents as i64, 2))),
                    Amount::Invalid(text) => fundcore::parse_amount(text)
                        .and_then(fundcore::validate_amount)
                        .map(Some),
                };
                let result = parsed
                    .clone()
                    .and_then(|a| engine.subscribe(ids[index], fund, a, key.as_deref()));
                let predicted = match &parsed {
                    Err(_) => Err("VALIDATION_ERROR"),
                    Ok(a) => {
                        let request = Request::Subscribe(
                            fund,
                            a.map(|a| fundcore::validate_amount(a).unwrap()),
                        );
                        predict(&catalogue, &models[index], fund, &request, key.as_deref())
                    }
                };
                apply(
                    &mut models[index],
                    &catalogue,
                    step,
                    predicted,
                    result,
                    parsed.ok().flatten(),
                    fund,
                    key,
                );
            }
            Op::Cancel { client, fund, key } => {
                let index = client % ids.len();
                let key = key.map(|k| format!("k-{k}"));
                let result = engine.cancel(ids[index], fund, key.as_deref());
                let predicted = predict(
                    &catalogue,
                    &models[index],
                    fund,
                    &Request::Cancel(fund),
                    key.as_deref(),
                );
                apply(
                    &mut models[index],
                    &catalogue,
                    step,
                    predicted,
                    result,
                    None,
                    fund,
                    key,
                );
            }
            Op::OnUnknownClient { fund } => {
                let unknown = ClientId(uuid_v7_unknown());
                let err = engine.subscribe(unknown, fund, None, None).unwrap_err();
                let expected = if minimum(&catalogue, fund).is_some() {
                    "CLIENT_NOT_FOUND"
                } else {
                    "FUND_NOT_FOUND"
                };
                assert_eq!(err.code(), expected);
            }
            Op::Dispatch { outcome } => {
                let notifier = RecordingNotifier::new();
                let pending: u32 = ids
                    .iter()
                    .flat_map(|&c| engine.notifications(c).unwrap())
                    .filter(|n| {
                        n.status == fundcore::NotificationStatus::Pending && n.attempts == 0
                    })
                    .count() as u32;
                let failure = match outcome {
                    0 => None,
                    1 => Some(DeliveryError::Retryable("smtp down".into())),
                    _ => Some(DeliveryError::Permanent("mailbox unknown".into())),
                };
                notifier.script(std::iter::repeat_n(
                    failure.map_or(Ok(()), Err),
                    pending as usize,
                ));
                let report = engine.dispatch_notifications(&notifier, 10_000).unwrap();
                assert_eq!(report.delivered + report.retried + report.failed, pending);
                assert_eq!(notifier.attempts(), pending);
            }
            Op::Reopen => engine = reopen(engine, &store, &ids),
            Op::UpdateFund {
                fund,
                minimum_cents,
                active,
            } => {
                let changes = FundChanges {
                    minimum: minimum_cents.map(|cents| Decimal::new(cents as i64, 2)),
                    active,
                    ..FundChanges::default()
                };
                let result = engine.update_fund(fund, &changes, &Actor::new("ops"));
                match (catalogue.get_mut(&fund), result) {
                    (_, Err(err)) if changes == FundChanges::default() => {
                        assert_eq!(err.code(), "VALIDATION_ERROR", "step {step}")
                    }
                    (None, Err(err)) => assert_eq!(err.code(), "FUND_NOT_FOUND", "step {step}"),
                    (Some(entry), Ok(updated)) => {
                        let before = *entry;
                        let after = (
                            changes.minimum.unwrap_or(before.0),
                            active.unwrap_or(before.1),
                        );
                        *entry = after;
                        assert_eq!((updated.minimum, updated.active), after, "step {step}");
                        if after != before {
                            audited += 1;
                            let event = newest_event(&engine);
                            assert_eq!(event.action, AuditAction::FundUpdated, "step {step}");
                            assert_eq!(event.target, fund.to_string());
                            let expected =
                                (after.0 != before.0).then(|| json!(after.0.to_string()));
                            assert_eq!(
                                event.after.get("minimum").cloned(),
                                expected,
                                "step {step}: the event records the new minimum only when it changed"
                            );
                        }
                    }
                    (entry, result) => {
                        panic!("step {step}: fund {entry:?}, update gave {result:?}")
                    }
                }
            }
            Op::CreateFund {
                fund,
                minimum_cents,
            } => {
                let minimum = Decimal::new(minimum_cents as i64, 2);
                let result = engine.create_fund(
                    fund,
                    "NUEVO",
                    minimum,
                    fundcore::Category::Fic,
                    &Actor::new("ops").with_request_id(format!("step-{step}")),
                );
                match (catalogue.contains_key(&fund), result) {
                    (true, Err(err)) => {
                        assert_eq!(err.code(), "FUND_ALREADY_EXISTS", "step {step}")
                    }
                    (false, Ok(created)) => {
                        assert_eq!((created.minimum, created.active), (minimum, true));
                        catalogue.insert(fund, (minimum, true));
                        audited += 1;
                        let event = newest_event(&engine);
                        assert_eq!(event.action, AuditAction::FundCreated, "step {step}");
                        assert_eq!(
                            event.request_id.as_deref(),
                            Some(format!("step-{step}").as_str())
                        );
                        assert_eq!(event.after["minimum"], json!(minimum.to_string()));
                    }
                    (exists, result) => {
                        panic!("step {step}: exists {exists}, create gave {result:?}")
                    }
                }
            }
            Op::UpdateContact { client, sms } if !ids.is_empty() => {
                let id = ids[client % ids.len()];
                let before = engine.client(id).unwrap();
                let channel = if sms { Channel::Sms } else { Channel::Email };
                let changes = ContactChanges {
                    channel: Some(channel),
                    ..ContactChanges::default()
                };
                let updated = engine
                    .update_client(id, &changes, &Actor::new(id.to_string()))
                    .unwrap();
                assert_eq!(updated.channel, channel);
                assert_eq!(
                    updated.balance, before.balance,
                    "step {step}: a contact change moves no money"
                );
                if before.channel != channel {
                    audited += 1;
                    let event = newest_event(&engine);
                    assert_eq!(event.action, AuditAction::ClientUpdated);
                    assert_eq!(event.target, id.to_string());
                    assert_eq!(event.before["channel"], json!(before.channel.as_str()));
                    assert_eq!(event.after["channel"], json!(channel.as_str()));
                }
            }
            Op::UpdateContact { .. } => {}
        }
        let events = all_events(&engine);
        assert_eq!(
            events.len(),
            audited,
            "step {step}: one audit event per effective change"
        );
        for id in &ids {
            let channel = engine.client(*id).unwrap().channel;
            let notifications = engine.notifications(*id).unwrap();
            for tx in engine.history(*id, fundcore::MAX_PAGE, None).unwrap() {
                if !recorded.contains_key(&tx.id) {
                    // Made in this step: notified on the client's channel of now.
                    for n in notifications.iter().filter(|n| n.transaction_id == tx.id) {
                        assert_eq!(
                            n.channel, channel,
                            "step {step}: new notification's channel"
                        );
                    }
                }
                let first = recorded.entry(tx.id).or_insert_with(|| tx.clone());
                assert_eq!(&tx, first, "step {step}: a recorded transaction changed");
            }
        }
        if let Err(broken) = check_invariants(&engine, &ids) {
            panic!("step {step}: invariant broken: {broken}");
        }
        for (id, model) in ids.iter().zip(&models) {
            let client = engine.client(*id).unwrap();
            assert_eq!(
                client.balance, model.balance,
                "step {step}: balance differs from the model"
            );
            let active: BTreeMap<FundId, Decimal> = engine
                .subscriptions(*id)
                .unwrap()
                .into_iter()
                .map(|s| (s.fund_id, s.amount))
                .collect();
            assert_eq!(
                active, model.active,
                "step {step}: subscriptions differ from the model"
            );
        }
    }
    drop(reopen(engine, &store, &ids));
    assert_verified(&store, ids.len());
}

/// The ledger check (`fundcore verify`), reading the store on its own, finds every client and
/// no violation.
fn assert_verified(store: &TestStore, clients: usize) {
    let location = fundcore::StoreLocation::parse(&store.location());
    let report = fundcore::verify_store(&location).unwrap();
    assert!(
        report.is_clean() && report.clients == clients as u64,
        "verify on {store}: {report}\n{:#?}",
        report.violations
    );
}

/// The newest audit event.
fn newest_event(engine: &Engine) -> AuditEvent {
    engine.audit_events(1, None).unwrap().items.remove(0)
}

/// Every audit event, newest first, through the pages.
fn all_events(engine: &Engine) -> Vec<AuditEvent> {
    let mut events = Vec::new();
    let mut before = None;
    loop {
        let page = engine.audit_events(7, before).unwrap();
        events.extend(page.items);
        match page.next {
            Some(next) => before = Some(next),
            None => return events,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn apply(
    model: &mut ClientModel,
    catalogue: &Catalogue,
    step: usize,
    predicted: Predicted,
    result: fundcore::Result<Transaction>,
    amount: Option<Decimal>,
    fund: FundId,
    key: Option<String>,
) {
    match (predicted, result) {
        (Err(code), Err(err)) => assert_eq!(err.code(), code, "step {step}: wrong error"),
        (Ok(Some(first)), Ok(tx)) => assert_eq!(
            tx, first,
            "step {step}: replay differs from the first result"
        ),
        (Ok(None), Ok(tx)) => {
            let request = match tx.kind {
                TransactionKind::Subscription => {
                    let amount_given = amount.map(|a| fundcore::validate_amount(a).unwrap());
                    assert_eq!(
                        tx.amount,
                        amount_given.unwrap_or_else(|| minimum(catalogue, fund).unwrap())
                    );
                    model.balance -= tx.amount;
                    model.active.insert(fund, tx.amount);
                    Request::Subscribe(fund, amount_given)
                }
                TransactionKind::Cancellation => {
                    let refunded = model.active.remove(&fund).unwrap();
                    assert_eq!(
                        tx.amount, refunded,
                        "step {step}: refund is not the stored amount"
                    );
                    model.balance += refunded;
                    Request::Cancel(fund)
                }
            };
            assert_eq!(
                tx.balance_after, model.balance,
                "step {step}: balance_after"
            );
            assert_eq!(tx.idempotency_key, key);
            if let Some(key) = key {
                model.keys.insert(key, (request, tx));
            }
        }
        (predicted, result) => {
            panic!("step {step}: model predicted {predicted:?}, engine returned {result:?}")
        }
    }
}

fn uuid_v7_unknown() -> uuid::Uuid {
    uuid::Uuid::from_str("01934b5e-0000-7000-8000-000000000000").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Invariants 1–7 after every step of a random sequence, and agreement with the model.
    #[test]
    fn random_sequences_keep_every_invariant(ops in prop::collection::vec(op(), 1..60)) {
        for kind in kinds() {
            run_sequence(ops.clone(), kind);
        }
    }
}

#[derive(Clone, Debug)]
struct ConcurrentOp {
    client: usize,
    fund: FundId,
    cancel: bool,
    cents: Option<u64>,
    key: Option<u8>,
}

fn concurrent_op() -> impl Strategy<Value = ConcurrentOp> {
    (
        0usize..3,
        1u32..=5,
        any::<bool>(),
        prop::option::of(7_500_000u64..=30_000_000),
        prop::option::weighted(0.3, 0u8..3),
    )
        .prop_map(|(client, fund, cancel, cents, key)| ConcurrentOp {
            client,
            fund,
            cancel,
            cents,
            key,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Threads racing on the same clients: no overdraft, no double refund, no lost update,
    /// exactly one outbox entry per transaction, and every acknowledged transaction stored.
    #[test]
    fn concurrent_callers_keep_every_invariant(
        per_thread in prop::collection::vec(prop::collection::vec(concurrent_op(), 1..40), 4)
    ) {
        for kind in kinds() {
            race(per_thread.clone(), kind)?;
        }
    }
}

/// Runs each thread's operations at once on a fresh store of `kind`, then checks everything.
fn race(per_thread: Vec<Vec<ConcurrentOp>>, kind: StoreKind) -> Result<(), TestCaseError> {
    {
        let store = TestStore::new(kind);
        let engine = store.open(config()).unwrap();
        let ids: Vec<ClientId> = (0..3)
            .map(|i| {
                engine
                    .register_client(
                        &format!("C{i}"),
                        "c@example.com",
                        "+573001234567",
                        Channel::Email,
                    )
                    .unwrap()
                    .id
            })
            .collect();
        let barrier = Arc::new(Barrier::new(per_thread.len()));
        let results: Vec<Vec<(ConcurrentOp, fundcore::Result<Transaction>)>> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = per_thread
                    .into_iter()
                    .map(|ops| {
                        let (engine, ids, barrier) = (engine.clone(), ids.clone(), barrier.clone());
                        scope.spawn(move || {
                            barrier.wait();
                            ops.into_iter()
                                .map(|op| {
                                    let client = ids[op.client];
                                    let key = op.key.map(|k| {
                                        format!("{}-{k}", if op.cancel { "c" } else { "s" })
                                    });
                                    let result = if op.cancel {
                                        engine.cancel(client, op.fund, key.as_deref())
                                    } else {
                                        engine.subscribe(
                                            client,
                                            op.fund,
                                            op.cents.map(|c| Decimal::new(c as i64, 2)),
                                            key.as_deref(),
                                        )
                                    };
                                    (op, result)
                                })
                                .collect()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
        check_invariants(&engine, &ids).map_err(TestCaseError::fail)?;
        let mut committed = std::collections::HashSet::new();
        let mut by_key: HashMap<(usize, String), Transaction> = HashMap::new();
        for (op, result) in results.into_iter().flatten() {
            match result {
                Ok(tx) => {
                    prop_assert_eq!(&engine.transaction(tx.id).unwrap(), &tx);
                    committed.insert(tx.id);
                    if let Some(key) = &tx.idempotency_key
                        && let Some(first) = by_key.insert((op.client, key.clone()), tx.clone())
                    {
                        prop_assert_eq!(first.id, tx.id, "one key, two transactions");
                    }
                }
                Err(err) => prop_assert!(
                    [
                        "BELOW_MINIMUM",
                        "ALREADY_SUBSCRIBED",
                        "NOT_SUBSCRIBED",
                        "INSUFFICIENT_BALANCE",
                        "IDEMPOTENCY_KEY_REUSED"
                    ]
                    .contains(&err.code().as_str()),
                    "unexpected error {}: {err}",
                    err.code()
                ),
            }
        }
        let stored: usize = ids
            .iter()
            .map(|&c| common::full_history(&engine, c).len())
            .sum();
        prop_assert_eq!(
            stored,
            committed.len(),
            "acknowledged and stored transactions differ"
        );
        drop(engine);
        let reopened = store.open(config()).unwrap();
        check_invariants(&reopened, &ids).map_err(TestCaseError::fail)?;
        drop(reopened);
        assert_verified(&store, ids.len());
    }
    Ok(())
}
