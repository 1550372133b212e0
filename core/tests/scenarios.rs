//! Runs the shared conformance scenarios in `tests/scenarios/*.json` against the Rust engine.
//! The Python and Kotlin bindings run the same files through their own APIs.

use std::collections::HashMap;
use std::path::Path;

use fundcore::{
    Actor, Channel, ClientId, Config, ContactChanges, Decimal, Engine, Fund, FundChanges,
    ParseIdError, RecordingNotifier, TransactionId,
};
use serde_json::{Value, json};

mod common;
use common::stores::{StoreKind, TestStore, kinds};

type Outcome = Result<Value, fundcore::Error>;

fn text<'a>(args: &'a Value, key: &str) -> &'a str {
    args[key]
        .as_str()
        .unwrap_or_else(|| panic!("argument {key} must be a string"))
}

fn config_from(spec: &Value) -> Config {
    let mut config = Config::default();
    if let Some(initial) = spec["initial_balance"].as_str() {
        config.initial_balance = fundcore::parse_amount(initial).unwrap();
    }
    if let Some(locale) = spec["locale"].as_str() {
        config.locale = locale.parse().unwrap();
    }
    if let Some(notify) = spec["notify_on_cancel"].as_bool() {
        config.notify_on_cancel = notify;
    }
    if let Some(funds) = spec.get("funds") {
        config.funds = serde_json::from_value::<Vec<Fund>>(funds.clone()).unwrap();
    }
    config
}

fn run_op(engine: &Engine, op: &str, args: &Value) -> Outcome {
    let client = || {
        text(args, "client")
            .parse::<ClientId>()
            .map_err(ParseIdError::into_lookup_error)
    };
    let fund_id =
        || fundcore::fund_id_from_integer(args["fund_id"].as_i64().expect("fund_id").into());
    let key = args["idempotency_key"].as_str();
    let json = |value: &dyn erased::Json| value.to_json();
    Ok(match op {
        "funds" => json(&engine.funds()?),
        "fund" => json(&engine.fund(fund_id()?)?),
        "register_client" => {
            let channel: Channel = text(args, "channel").parse()?;
            json(&engine.register_client(
                text(args, "name"),
                text(args, "email"),
                text(args, "phone"),
                channel,
            )?)
        }
        "client" => json(&engine.client(client()?)?),
        "subscribe" => {
            let amount: Option<Decimal> = args["amount"]
                .as_str()
                .map(fundcore::parse_amount)
                .transpose()?;
            json(&engine.subscribe(client()?, fund_id()?, amount, key)?)
        }
        "cancel" => json(&engine.cancel(client()?, fund_id()?, key)?),
        "subscriptions" => json(&engine.subscriptions(client()?)?),
        "history" => {
            let before = args["before"]
                .as_str()
                .map(TransactionId::parse_cursor)
                .transpose()?;
            let limit = args["limit"].as_u64().expect("limit") as usize;
            json(&engine.history(client()?, limit, before)?)
        }
        "transaction" => {
            let id = text(args, "id")
                .parse()
                .map_err(ParseIdError::into_lookup_error)?;
            json(&engine.transaction(id)?)
        }
        "notifications" => json(&engine.notifications(client()?)?),
        "dispatch" => {
            let limit = args["limit"].as_u64().expect("limit") as usize;
            json(&engine.dispatch_notifications(&RecordingNotifier::new(), limit)?)
        }
        "create_fund" => {
            let minimum = fundcore::parse_amount(text(args, "minimum"))?;
            let category = text(args, "category").parse()?;
            json(&engine.create_fund(
                fund_id()?,
                text(args, "name"),
                minimum,
                category,
                &actor(args),
            )?)
        }
        "update_fund" => {
            let changes = FundChanges {
                name: args["name"].as_str().map(str::to_owned),
                minimum: args["minimum"]
                    .as_str()
                    .map(fundcore::parse_amount)
                    .transpose()?,
                active: args["active"].as_bool(),
            };
            json(&engine.update_fund(fund_id()?, &changes, &actor(args))?)
        }
        "update_client" => {
            let changes = ContactChanges {
                name: args["name"].as_str().map(str::to_owned),
                email: args["email"].as_str().map(str::to_owned),
                phone: args["phone"].as_str().map(str::to_owned),
                channel: args["channel"].as_str().map(str::parse).transpose()?,
            };
            json(&engine.update_client(client()?, &changes, &actor(args))?)
        }
        "clients" => {
            let limit = args["limit"].as_u64().expect("limit") as usize;
            let before = args["before"]
                .as_str()
                .map(|text| text.parse::<ClientId>())
                .transpose()?;
            page(engine.clients(limit, before)?)
        }
        "audit_events" => {
            let limit = args["limit"].as_u64().expect("limit") as usize;
            let before = args["before"]
                .as_str()
                .map(|text| text.parse::<fundcore::AuditEventId>())
                .transpose()?;
            page(engine.audit_events(limit, before)?)
        }
        other => panic!("unknown op {other}"),
    })
}

/// Who makes an administrative change: `actor` and, when given, `request_id`.
fn actor(args: &Value) -> Actor {
    let actor = Actor::new(text(args, "actor"));
    match args["request_id"].as_str() {
        Some(request_id) => actor.with_request_id(request_id),
        None => actor,
    }
}

/// A page as the REST API shows it: `{"items": [...], "next": cursor or null}`.
fn page<T: serde::Serialize, C: std::fmt::Display>(page: fundcore::Page<T, C>) -> Value {
    json!({"items": page.items, "next": page.next.map(|cursor| cursor.to_string())})
}

/// Serialization through a trait object, so `run_op` stays one flat match.
mod erased {
    pub trait Json {
        fn to_json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).expect("records serialize")
        }
    }
}

fn substitute(value: &Value, saved: &HashMap<String, String>) -> Value {
    match value {
        Value::String(s) => match s.strip_prefix('$').and_then(|name| saved.get(name)) {
            Some(id) => Value::String(id.clone()),
            None => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, saved)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, saved)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn matches(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(fields), Value::Object(got)) => fields.iter().try_for_each(|(k, v)| {
            matches(
                v,
                got.get(k).unwrap_or(&Value::Null),
                &format!("{path}.{k}"),
            )
        }),
        (Value::Array(items), Value::Array(got)) => {
            if items.len() != got.len() {
                return Err(format!(
                    "{path}: expected {} items, got {}: {actual}",
                    items.len(),
                    got.len()
                ));
            }
            items
                .iter()
                .zip(got)
                .enumerate()
                .try_for_each(|(i, (e, a))| matches(e, a, &format!("{path}[{i}]")))
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("{path}: expected {expected}, got {actual}")),
    }
}

fn run_scenario(path: &Path, kind: StoreKind) -> Result<usize, String> {
    let scenario: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let store = TestStore::new(kind);
    let engine = store
        .open(config_from(&scenario["config"]))
        .map_err(|e| e.to_string())?;
    let mut saved = HashMap::new();
    let steps = scenario["steps"].as_array().expect("steps");
    for (i, step) in steps.iter().enumerate() {
        let op = step["op"].as_str().expect("op");
        let args = substitute(&step["args"], &saved);
        let at = format!("step {i} ({op})");
        match (run_op(&engine, op, &args), step.get("expect_error")) {
            (Ok(result), None) => {
                if let Some(expect) = step.get("expect") {
                    matches(&substitute(expect, &saved), &result, "result")
                        .map_err(|e| format!("{at}: {e}"))?;
                }
                if let Some(name) = step["save_as"].as_str() {
                    saved.insert(
                        name.to_owned(),
                        result["id"]
                            .as_str()
                            .expect("saved result has an id")
                            .to_owned(),
                    );
                }
            }
            (Ok(result), Some(expected)) => {
                return Err(format!("{at}: expected error {expected}, got {result}"));
            }
            (Err(err), Some(expected)) => {
                let got = json!({"code": err.code(), "message": err.message(engine.locale())});
                matches(expected, &got, "error").map_err(|e| format!("{at}: {e}"))?;
            }
            (Err(err), None) => {
                return Err(format!("{at}: unexpected error {}: {err}", err.code()));
            }
        }
    }
    Ok(steps.len())
}

/// The suites that run on both stores need a PostgreSQL server: its absence fails here, once,
/// instead of silently testing one store.
#[test]
fn a_postgres_test_server_is_configured() {
    if let Err(why) = common::stores::postgres_configured() {
        panic!("{why}");
    }
}

/// Every scenario on every store.
#[test]
fn shared_scenarios_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 12,
        "expected at least 12 scenarios, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for kind in kinds() {
        for file in &files {
            if let Err(e) = run_scenario(file, kind) {
                failures.push(format!("{kind:?} {}: {e}", file.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "failing scenarios:\n{}",
        failures.join("\n")
    );
}
