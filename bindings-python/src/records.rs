//! The core's records as immutable Python objects.
//!
//! Each class wraps the core record itself: attributes convert on access (money to
//! `decimal.Decimal`, times to UTC `datetime`, ids to `str`), and `to_dict()` is the record's
//! own serde JSON (money strings with 2 decimals, RFC 3339 times), the one wire format shared
//! with the other bindings.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use fundcore::{Category, Locale};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::convert::{ToPy, amount_arg, json_to_py};
use crate::errors::Failure;

fn to_json<T: Serialize>(record: &T) -> PyResult<String> {
    serde_json::to_string(record).map_err(|err| PyValueError::new_err(err.to_string()))
}

fn hash_json<T: Serialize>(record: &T) -> PyResult<u64> {
    let mut hasher = DefaultHasher::new();
    to_json(record)?.hash(&mut hasher);
    Ok(hasher.finish())
}

fn to_dict<'py, T: Serialize>(py: Python<'py>, record: &T) -> PyResult<Bound<'py, PyAny>> {
    let value =
        serde_json::to_value(record).map_err(|err| PyValueError::new_err(err.to_string()))?;
    json_to_py(py, &value)
}

fn from_json<T: DeserializeOwned>(json: &str) -> PyResult<T> {
    serde_json::from_str(json).map_err(|err| PyValueError::new_err(err.to_string()))
}

/// `module._record_from_json`, the reconstructor used by `__reduce__` (pickle, copy).
fn reconstructor(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.import("fundcore._fundcore")?
        .getattr("_record_from_json")
}

macro_rules! record {
    (
        $(#[doc = $doc:literal])*
        $name:ident($core:ty) {
            $( $(#[doc = $fdoc:literal])* $field:ident ),* $(,)?
        }
        $( extra { $($extra:tt)* } )?
    ) => {
        $(#[doc = $doc])*
        #[doc = ""]
        #[doc = "Immutable; compared by value, hashable and picklable."]
        #[pyclass(frozen, eq, module = "fundcore")]
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name(pub $core);

        #[pymethods]
        impl $name {
            $(
                $(#[doc = $fdoc])*
                #[getter]
                fn $field<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                    ToPy::to_py(&self.0.$field, py)
                }
            )*

            /// The record as JSON-ready plain data: money as strings with 2 decimals
            /// (`"75000.00"`), times as RFC 3339 strings, ids as strings.
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                to_dict(py, &self.0)
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                let mut fields: Vec<String> = Vec::new();
                $(
                    let value = ToPy::to_py(&self.0.$field, py)?;
                    fields.push(format!("{}={}", stringify!($field), value.repr()?));
                )*
                Ok(format!("{}({})", stringify!($name), fields.join(", ")))
            }

            fn __hash__(&self) -> PyResult<u64> {
                hash_json(&self.0)
            }

            fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
                let args = (stringify!($name), to_json(&self.0)?);
                PyTuple::new(py, [reconstructor(py)?, args.into_pyobject(py)?.into_any()])
            }

            $( $($extra)* )?
        }

        impl $name {
            /// Rebuilds the record from its JSON (see `__reduce__`).
            fn from_json_text(json: &str) -> PyResult<Self> {
                from_json(json).map($name)
            }
        }
    };
}

record! {
    /// An investment fund of the catalogue.
    ///
    /// `Fund(id, name, minimum, category, active=True)` builds one for
    /// `Engine(funds=[...])`; the engine's own records come from `Engine.funds()`.
    Fund(fundcore::Fund) {
        /// Catalogue id (`int`).
        id,
        /// Display name, used in messages.
        name,
        /// Smallest subscription amount (`Decimal`).
        minimum,
        /// `"FPV"` or `"FIC"`.
        category,
        /// Whether new subscriptions are accepted.
        active,
    }
    extra {
    #[new]
    #[pyo3(signature = (id, name, minimum, category, active = true))]
    fn py_new(
        py: Python<'_>,
        id: u32,
        name: String,
        minimum: &Bound<'_, PyAny>,
        category: &str,
        active: bool,
    ) -> PyResult<Self> {
        let build = || -> Result<Self, Failure> {
            let minimum = amount_arg(minimum, "minimum").and_then(|amount| {
                fundcore::validate_amount(amount)
                    .map_err(|err| Failure::Core(err.on_field("minimum")))
            })?;
            let category: Category = category.parse()?;
            Ok(Fund(fundcore::Fund {
                id,
                name,
                minimum,
                category,
                active,
            }))
        };
        build().map_err(|failure| failure.into_pyerr(py, Locale::default()))
    }
    }
}

record! {
    /// A registered client and their available balance.
    Client(fundcore::Client) {
        /// Client id (UUIDv7 string).
        id,
        /// Full name.
        name,
        /// Email address.
        email,
        /// Phone in E.164 form, e.g. `+573001234567`.
        phone,
        /// Notification channel: `"email"` or `"sms"`.
        channel,
        /// Available balance (`Decimal`).
        balance,
        /// Registration time (UTC `datetime`).
        created_at,
    }
}

record! {
    /// An active subscription of a client to a fund.
    Subscription(fundcore::Subscription) {
        /// The client's id.
        client_id,
        /// The fund's id.
        fund_id,
        /// The fund's name.
        fund_name,
        /// Subscribed amount (`Decimal`), refunded on cancellation.
        amount,
        /// Id of the opening transaction.
        transaction_id,
        /// When the subscription opened (UTC `datetime`).
        subscribed_at,
    }
}

record! {
    /// One entry of a client's history: a subscription or a cancellation.
    Transaction(fundcore::Transaction) {
        /// Transaction id (UUIDv7 string, time-ordered).
        id,
        /// The client's id.
        client_id,
        /// The fund's id.
        fund_id,
        /// The fund's name.
        fund_name,
        /// `"subscription"` or `"cancellation"`.
        kind,
        /// Amount moved (`Decimal`); for a cancellation, the refund.
        amount,
        /// The client's balance right after this transaction (`Decimal`).
        balance_after,
        /// When it committed (UTC `datetime`).
        created_at,
        /// The caller's idempotency key, if one was given.
        idempotency_key,
    }
}

record! {
    /// An outbox entry: the message sent to a client after a transaction committed.
    Notification(fundcore::Notification) {
        /// Notification id: receivers use it to drop duplicate deliveries.
        id,
        /// The client's id.
        client_id,
        /// The transaction it announces.
        transaction_id,
        /// `"email"` or `"sms"`.
        channel,
        /// Email address or phone number.
        recipient,
        /// Subject line (in the engine's locale).
        subject,
        /// Message body (in the engine's locale).
        body,
        /// `"pending"`, `"delivered"` or `"failed"`.
        status,
        /// Delivery attempts so far.
        attempts,
        /// The last delivery error, if any.
        last_error,
        /// When it was queued (UTC `datetime`).
        created_at,
        /// When it was delivered (UTC `datetime`), or `None`.
        delivered_at,
        /// When it is due for its next attempt (UTC `datetime`), or `None` when not pending.
        next_attempt_at,
    }
}

record! {
    /// One administrative change, as it was made (never altered).
    AuditEvent(fundcore::AuditEvent) {
        /// Event id (UUIDv7 string, in the order the changes happened).
        id,
        /// When the change committed (UTC `datetime`).
        at,
        /// Who asked for it.
        actor,
        /// `"fund_created"`, `"fund_updated"` or `"client_updated"`.
        action,
        /// The fund id or client id changed (`str`).
        target,
        /// The changed fields before the change (`dict`; empty for a fund created).
        before,
        /// The changed fields after the change (`dict`).
        after,
        /// The request that made the change, or `None`.
        request_id,
    }
}

record! {
    /// What one `Engine.dispatch_notifications` run did.
    DispatchReport(fundcore::DispatchReport) {
        /// Entries the notifier accepted.
        delivered,
        /// Entries that failed and will be tried again later.
        retried,
        /// Entries given up on in this run.
        failed,
    }
}

record! {
    /// How the outbox stands (`Engine.outbox_state()`): entries by status, and when the oldest
    /// pending one was written and how long it has waited.
    ///
    /// `to_dict()` gives the time as an RFC 3339 string and the age as an ISO 8601 duration in
    /// seconds (`"PT12.5S"`, as pydantic writes a `timedelta`).
    OutboxState(fundcore::OutboxState) {
        /// Entries waiting for a (further) delivery attempt.
        pending,
        /// Entries given up on (`Engine.retry_failed_notifications` queues them again).
        failed,
        /// Entries the notifier accepted.
        delivered,
        /// When the oldest pending entry was written (UTC `datetime`), or `None` when nothing
        /// is pending.
        oldest_pending_at,
        /// How long the oldest pending entry has waited (`datetime.timedelta`, by the engine's
        /// clock), or `None` when nothing is pending.
        oldest_pending_age,
    }
}

record! {
    /// One transaction of a `Statement`, with where the client stood right after it.
    StatementLine(fundcore::StatementLine) {
        /// The sum of the client's active subscription amounts right after the transaction
        /// (`Decimal`); plus `balance_after`, the initial balance.
        invested_after,
    }
    extra {
    /// The transaction (a `Transaction`).
    #[getter]
    fn transaction(&self) -> Transaction {
        Transaction(self.0.transaction.clone())
    }

    /// The client's available balance right after the transaction (`Decimal`, the
    /// transaction's own `balance_after`).
    #[getter]
    fn balance_after<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        ToPy::to_py(&self.0.transaction.balance_after, py)
    }
    }
}

record! {
    /// A client's account over a date range (`Engine.statement()`): where it stood at `start`,
    /// each transaction with `start <= created_at < end` oldest first, and where it stood at
    /// `end`.
    ///
    /// `to_dict()` gives `{"client_id", "from", "to", "opening_balance", "opening_invested",
    /// "lines": [{"transaction": {...}, "invested_after"}], "closing_balance",
    /// "closing_invested"}`.
    Statement(fundcore::Statement) {
        /// The client's id.
        client_id,
        /// The available balance at `start` (`Decimal`).
        opening_balance,
        /// The sum of the active subscription amounts at `start` (`Decimal`).
        opening_invested,
        /// The available balance at `end` (`Decimal`).
        closing_balance,
        /// The sum of the active subscription amounts at `end` (`Decimal`).
        closing_invested,
    }
    extra {
    /// The range's start, included (UTC `datetime`; `"from"` in `to_dict()`).
    #[getter]
    fn start<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        ToPy::to_py(&self.0.from, py)
    }

    /// The range's end, excluded (UTC `datetime`; `"to"` in `to_dict()`).
    #[getter]
    fn end<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        ToPy::to_py(&self.0.to, py)
    }

    /// The range's transactions, oldest first (a list of `StatementLine`).
    #[getter]
    fn lines(&self) -> Vec<StatementLine> {
        self.0.lines.iter().cloned().map(StatementLine).collect()
    }
    }
}

/// What the ledger check of a live engine read and found (`Engine.verify_ledger()`).
///
/// `to_dict()` gives `{"clean", "clients", "transactions", "active_subscriptions",
/// "idempotency_keys", "outbox": {"pending", "delivered", "failed"}, "audit_events",
/// "violation_count", "violations": [{"client", "rule", "detail"}], "summary"}`.
#[pyclass(frozen, module = "fundcore")]
pub struct LedgerReport(pub fundcore::LedgerReport);

#[pymethods]
impl LedgerReport {
    /// Whether no rule is broken.
    #[getter]
    fn clean(&self) -> bool {
        self.0.is_clean()
    }

    /// Clients checked.
    #[getter]
    fn clients(&self) -> u64 {
        self.0.clients
    }

    /// Their transactions.
    #[getter]
    fn transactions(&self) -> u64 {
        self.0.transactions
    }

    /// Their active subscriptions.
    #[getter]
    fn active_subscriptions(&self) -> u64 {
        self.0.active_subscriptions
    }

    /// Their idempotency records.
    #[getter]
    fn idempotency_keys(&self) -> u64 {
        self.0.idempotency_keys
    }

    /// Their outbox entries by status: `{"pending": n, "delivered": n, "failed": n}`.
    #[getter]
    fn outbox<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.0.outbox)
    }

    /// Audit events.
    #[getter]
    fn audit_events(&self) -> u64 {
        self.0.audit_events
    }

    /// Every violation found (the list holds at most the first 1000).
    #[getter]
    fn violation_count(&self) -> u64 {
        self.0.violation_count
    }

    /// The violations listed: dicts `{"client": id or None, "rule": str, "detail": str}`.
    #[getter]
    fn violations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.0.violations)
    }

    /// What was read and how many violations were found, in a few lines of English (as
    /// `fundcore verify` prints it).
    #[getter]
    fn summary(&self) -> String {
        self.0.to_string()
    }

    /// The report as JSON-ready plain data (see the class docs).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut value =
            serde_json::to_value(&self.0).map_err(|err| PyValueError::new_err(err.to_string()))?;
        if let Some(map) = value.as_object_mut() {
            map.insert("clean".into(), self.0.is_clean().into());
            map.insert("summary".into(), self.0.to_string().into());
        }
        json_to_py(py, &value)
    }

    fn __repr__(&self) -> String {
        format!(
            "LedgerReport(clean={}, clients={}, transactions={}, violation_count={})",
            if self.0.is_clean() { "True" } else { "False" },
            self.0.clients,
            self.0.transactions,
            self.0.violation_count
        )
    }
}

/// Rebuilds a record from its class name and JSON (the pickle/copy support of records).
#[pyfunction]
pub fn _record_from_json(
    py: Python<'_>,
    kind: &Bound<'_, PyString>,
    json: &str,
) -> PyResult<Py<PyAny>> {
    let kind = kind.to_cow()?;
    Ok(match kind.as_ref() {
        "Fund" => Fund::from_json_text(json)?
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        "Client" => Client::from_json_text(json)?
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        "Subscription" => Subscription::from_json_text(json)?
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        "Transaction" => Transaction::from_json_text(json)?
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        "Notification" => Notification::from_json_text(json)?
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        "AuditEvent" => AuditEvent::from_json_text(json)?
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        "DispatchReport" => DispatchReport::from_json_text(json)?
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        "OutboxState" => OutboxState::from_json_text(json)?
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        "StatementLine" => StatementLine::from_json_text(json)?
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        "Statement" => Statement::from_json_text(json)?
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown record type {other:?}"
            )));
        }
    })
}

macro_rules! page {
    ($(#[doc = $doc:literal])* $name:ident($item:ident, $core_item:ty, $cursor:ty), $noun:literal) => {
        $(#[doc = $doc])*
        #[pyclass(frozen, module = "fundcore")]
        pub struct $name(pub fundcore::Page<$core_item, $cursor>);

        #[pymethods]
        impl $name {
            /// The records of the page, newest first.
            #[getter]
            fn items(&self) -> Vec<$item> {
                self.0.items.iter().cloned().map($item).collect()
            }

            /// The `before` cursor of the following page (`str`), or `None` on the last page.
            #[getter]
            fn next(&self) -> Option<String> {
                self.0.next.map(|id| id.to_string())
            }

            /// `{"items": [record dicts], "next": cursor or None}`, the REST page.
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                let page = serde_json::json!({ "items": self.0.items, "next": self.0.next });
                json_to_py(py, &page)
            }

            fn __len__(&self) -> usize {
                self.0.items.len()
            }

            fn __repr__(&self) -> String {
                let next = self.0.next.map_or_else(|| "None".to_owned(), |id| format!("'{id}'"));
                format!(
                    "{}(items=<{} {}>, next={next})",
                    stringify!($name),
                    self.0.items.len(),
                    $noun
                )
            }
        }
    };
}

page!(
    /// A page of a client's history, newest first: `items` and `next`, the `before` cursor of
    /// the following page (`None` on the last page, also when it is exactly full).
    HistoryPage(Transaction, fundcore::Transaction, fundcore::TransactionId),
    "transactions"
);

page!(
    /// A page of clients, newest first: `items` and `next`, the `before` cursor of the
    /// following page (`None` on the last page).
    ClientPage(Client, fundcore::Client, fundcore::ClientId),
    "clients"
);

page!(
    /// A page of the audit trail, newest first: `items` and `next`, the `before` cursor of
    /// the following page (`None` on the last page).
    AuditEventPage(AuditEvent, fundcore::AuditEvent, fundcore::AuditEventId),
    "audit events"
);

page!(
    /// A page of failed notifications of every client, newest first: `items` and `next`, the
    /// `before` cursor of the following page (`None` on the last page).
    NotificationPage(Notification, fundcore::Notification, fundcore::NotificationId),
    "notifications"
);
