//! `FundEngine`: the core's engine behind the FFI.

use std::str::FromStr;
use std::sync::Arc;

use crate::config::{EngineConfig, core_config};
use crate::error::FundError;
use crate::money::Amount;
use crate::notifier::{Notifier, NotifierPort};
use crate::types::{
    AuditEventId, AuditEventPage, Category, Channel, Client, ClientId, ClientPage, DispatchReport,
    Fund, LedgerReport, Locale, Notification, NotificationId, NotificationPage, Statement,
    Subscription, Timestamp, Transaction, TransactionId, TransactionKind, TransactionPage,
    saturating_i32,
};

/// The fund-subscription engine over a sled store in a directory the app owns.
///
/// Safe to call from several threads at once. One engine per directory per process: close it
/// (`close()` in Kotlin, dropping the last reference in Swift) before opening it again.
#[derive(uniffi::Object)]
pub struct FundEngine {
    engine: fundcore::Engine,
}

#[uniffi::export]
impl FundEngine {
    /// Opens (creating and seeding on first use) the store in directory `path`, with the
    /// default settings.
    #[uniffi::constructor]
    pub fn new(path: String) -> Result<Arc<Self>, FundError> {
        Self::with_config(Some(path), None)
    }

    /// Opens a fresh store in a temporary directory, removed when the engine is closed.
    #[uniffi::constructor]
    pub fn temporary() -> Result<Arc<Self>, FundError> {
        Self::with_config(None, None)
    }

    /// Opens the store in `path` (a temporary store when `path` is null/nil) with `config`.
    #[uniffi::constructor(default(path = None, config = None))]
    pub fn with_config(
        path: Option<String>,
        config: Option<EngineConfig>,
    ) -> Result<Arc<Self>, FundError> {
        let config = config.unwrap_or_default();
        let locale = config.locale.unwrap_or_default();
        let core_config = core_config(config).map_err(|err| FundError::from_core(err, locale))?;
        let engine = match path {
            Some(path) => fundcore::Engine::open(path, core_config),
            None => fundcore::Engine::open_temporary(core_config),
        }
        .map_err(|err| FundError::from_core(err, locale))?;
        Ok(Arc::new(FundEngine { engine }))
    }

    /// Language of the engine's messages.
    pub fn locale(&self) -> Locale {
        self.engine.locale()
    }

    /// The fund catalogue, by id: the store's, which administration changes (the configured
    /// catalogue only seeds a new store).
    pub fn funds(&self) -> Result<Vec<Fund>, FundError> {
        self.engine
            .funds()
            .map(|list| list.into_iter().map(Into::into).collect())
            .map_err(self.err())
    }

    /// One fund.
    pub fn fund(&self, id: i64) -> Result<Fund, FundError> {
        let id = self.fund_id(id)?;
        self.engine.fund(id).map(Into::into).map_err(self.err())
    }

    /// Registers a client with the initial balance.
    pub fn register_client(
        &self,
        name: String,
        email: String,
        phone: String,
        channel: Channel,
    ) -> Result<Client, FundError> {
        self.engine
            .register_client(&name, &email, &phone, channel)
            .map(Into::into)
            .map_err(self.err())
    }

    /// One client, with its current balance.
    pub fn client(&self, id: String) -> Result<Client, FundError> {
        let id = self.client_id(&id)?;
        self.engine.client(id).map(Into::into).map_err(self.err())
    }

    /// Subscribes a client to a fund for `amount` (the fund's minimum when null/nil).
    ///
    /// Repeating a call with the same `idempotency_key` returns the original transaction.
    #[uniffi::method(default(amount = None, idempotency_key = None))]
    pub fn subscribe(
        &self,
        client_id: String,
        fund_id: i64,
        amount: Option<Amount>,
        idempotency_key: Option<String>,
    ) -> Result<Transaction, FundError> {
        let amount = amount
            .map(|amount| amount.to_decimal())
            .transpose()
            .map_err(self.err())?;
        let client_id = self.client_id(&client_id)?;
        let fund_id = self.fund_id(fund_id)?;
        self.engine
            .subscribe(client_id, fund_id, amount, idempotency_key.as_deref())
            .map(Into::into)
            .map_err(self.err())
    }

    /// Cancels a client's active subscription to a fund, refunding the subscribed amount.
    #[uniffi::method(default(idempotency_key = None))]
    pub fn cancel(
        &self,
        client_id: String,
        fund_id: i64,
        idempotency_key: Option<String>,
    ) -> Result<Transaction, FundError> {
        let client_id = self.client_id(&client_id)?;
        let fund_id = self.fund_id(fund_id)?;
        self.engine
            .cancel(client_id, fund_id, idempotency_key.as_deref())
            .map(Into::into)
            .map_err(self.err())
    }

    /// A client's active subscriptions, by fund id.
    pub fn subscriptions(&self, client_id: String) -> Result<Vec<Subscription>, FundError> {
        let client_id = self.client_id(&client_id)?;
        self.engine
            .subscriptions(client_id)
            .map(|list| list.into_iter().map(Into::into).collect())
            .map_err(self.err())
    }

    /// A client's transactions, newest first: at most `limit` (1 to 200), older than the
    /// transaction `before` when given (an exclusive cursor: pass the last id of a page; any
    /// other text is a validation error on `before`). A limit outside 1 to 200, negative
    /// included, is the core's validation error on `limit`.
    #[uniffi::method(default(before = None))]
    pub fn history(
        &self,
        client_id: String,
        limit: i32,
        before: Option<String>,
    ) -> Result<Vec<Transaction>, FundError> {
        let client_id = self.client_id(&client_id)?;
        let before = before
            .map(|id| TransactionId::parse_cursor(&id))
            .transpose()
            .map_err(self.err())?;
        self.engine
            .history(client_id, count(limit), before)
            .map(|list| list.into_iter().map(Into::into).collect())
            .map_err(self.err())
    }

    /// A page of a client's history, as `history`, with the cursor of the following page
    /// (`next`, null on the last page), listing only the transactions of `kind` and on fund
    /// `fund_id` when given (paged by the same cursor). A fund id that names no fund is
    /// `FUND_NOT_FOUND`.
    #[uniffi::method(default(before = None, kind = None, fund_id = None))]
    pub fn history_page(
        &self,
        client_id: String,
        limit: i32,
        before: Option<String>,
        kind: Option<TransactionKind>,
        fund_id: Option<i64>,
    ) -> Result<TransactionPage, FundError> {
        let client_id = self.client_id(&client_id)?;
        let before = before
            .map(|id| TransactionId::parse_cursor(&id))
            .transpose()
            .map_err(self.err())?;
        let fund_id = fund_id.map(|id| self.fund_id(id)).transpose()?;
        let filter = fundcore::HistoryFilter { kind, fund_id };
        self.engine
            .history_page_filtered(client_id, count(limit), before, &filter)
            .map(Into::into)
            .map_err(self.err())
    }

    /// A client's statement for `start <= createdAt < end`: the balance and the invested amount
    /// (active subscriptions) at `start`, after each transaction of the range (oldest first)
    /// and at `end`. From the client's `createdAt` to now it charts both over time. `start`
    /// after `end` is `VALIDATION_ERROR`.
    pub fn statement(
        &self,
        client_id: String,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Statement, FundError> {
        let client_id = self.client_id(&client_id)?;
        self.engine
            .statement(client_id, start, end)
            .map(Into::into)
            .map_err(self.err())
    }

    /// A page of the failed notifications of every client, newest first, each with its last
    /// error: at most `limit` (1 to 200), older than the notification `before` when given
    /// (pass the page's `next`), with the errors of `clients`.
    #[uniffi::method(default(before = None))]
    pub fn failed_notifications(
        &self,
        limit: i32,
        before: Option<String>,
    ) -> Result<NotificationPage, FundError> {
        let before = before
            .map(|text| NotificationId::from_str(&text).map_err(cursor_error))
            .transpose()
            .map_err(self.err())?;
        self.engine
            .failed_notifications(count(limit), before)
            .map(Into::into)
            .map_err(self.err())
    }

    /// Checks the ledger of the open store (every client's balance, history replay,
    /// subscriptions, outbox entries and idempotency records) while the engine serves calls.
    /// The store's outbox queues are not cross-checked: that needs the store closed.
    pub fn verify_ledger(&self) -> Result<LedgerReport, FundError> {
        self.engine
            .verify_ledger()
            .map(Into::into)
            .map_err(self.err())
    }

    /// One transaction by id.
    pub fn transaction(&self, id: String) -> Result<Transaction, FundError> {
        let id = TransactionId::from_str(&id).map_err(|err| self.err()(err.into_lookup_error()))?;
        self.engine
            .transaction(id)
            .map(Into::into)
            .map_err(self.err())
    }

    /// A client's outbox entries, newest first, whatever their status.
    pub fn notifications(&self, client_id: String) -> Result<Vec<Notification>, FundError> {
        let client_id = self.client_id(&client_id)?;
        self.engine
            .notifications(client_id)
            .map(|list| list.into_iter().map(Into::into).collect())
            .map_err(self.err())
    }

    /// Delivers up to `limit` due pending notifications through the app's `notifier`, on the
    /// calling thread. Retryable failures are retried on a later call, after a backoff. A
    /// limit of 0 or less delivers nothing (as in the core and the Python binding).
    pub fn dispatch_notifications(
        &self,
        notifier: Arc<dyn Notifier>,
        limit: i32,
    ) -> Result<DispatchReport, FundError> {
        self.engine
            .dispatch_notifications(&NotifierPort(notifier), count(limit))
            .map(Into::into)
            .map_err(self.err())
    }

    /// Puts up to `limit` failed notifications back in the queue; returns how many. A limit of
    /// 0 or less requeues nothing.
    pub fn retry_failed_notifications(&self, limit: i32) -> Result<i32, FundError> {
        self.engine
            .retry_failed_notifications(count(limit))
            .map(saturating_i32)
            .map_err(self.err())
    }

    /// Adds an active fund to the catalogue, recorded in the audit trail with `actor` (who
    /// asks) and `request_id` (when known). A taken id is `FUND_ALREADY_EXISTS`; the name and
    /// the minimum follow the rules of client names and of amounts (`VALIDATION_ERROR` on
    /// `name` or `minimum`), and so does `actor`.
    #[uniffi::method(default(request_id = None))]
    pub fn create_fund(
        &self,
        id: i64,
        name: String,
        minimum: Amount,
        category: Category,
        actor: String,
        request_id: Option<String>,
    ) -> Result<Fund, FundError> {
        let minimum = minimum
            .to_decimal()
            .map_err(|err| self.minimum_error(err))?;
        let id = self.fund_id(id)?;
        self.engine
            .create_fund(id, &name, minimum, category, &actor_of(actor, request_id))
            .map(Into::into)
            .map_err(self.err())
    }

    /// Changes a fund's `name`, `minimum` or `active` flag (those given; at least one),
    /// recorded in the audit trail. A new minimum applies to later subscriptions: an existing
    /// one is refunded exactly its stored amount. An inactive fund refuses new subscriptions
    /// (`FUND_INACTIVE`) and still allows cancellations. Transactions keep the fund name they
    /// were recorded with. A change that changes nothing is accepted and writes no audit event.
    #[uniffi::method(default(name = None, minimum = None, active = None, request_id = None))]
    pub fn update_fund(
        &self,
        id: i64,
        name: Option<String>,
        minimum: Option<Amount>,
        active: Option<bool>,
        actor: String,
        request_id: Option<String>,
    ) -> Result<Fund, FundError> {
        let minimum = minimum
            .map(|minimum| minimum.to_decimal())
            .transpose()
            .map_err(|err| self.minimum_error(err))?;
        let id = self.fund_id(id)?;
        let changes = fundcore::FundChanges {
            name,
            minimum,
            active,
        };
        self.engine
            .update_fund(id, &changes, &actor_of(actor, request_id))
            .map(Into::into)
            .map_err(self.err())
    }

    /// Changes a client's `name`, `email`, `phone` or `channel` (those given; at least one),
    /// validated as in `registerClient` and recorded in the audit trail. Notifications created
    /// afterwards use the new channel and recipient; those already queued keep theirs. A
    /// malformed or unknown client id is `CLIENT_NOT_FOUND`.
    #[uniffi::method(default(
        name = None,
        email = None,
        phone = None,
        channel = None,
        request_id = None
    ))]
    #[allow(clippy::too_many_arguments)]
    pub fn update_client(
        &self,
        client_id: String,
        name: Option<String>,
        email: Option<String>,
        phone: Option<String>,
        channel: Option<Channel>,
        actor: String,
        request_id: Option<String>,
    ) -> Result<Client, FundError> {
        let client_id = self.client_id(&client_id)?;
        let changes = fundcore::ContactChanges {
            name,
            email,
            phone,
            channel,
        };
        self.engine
            .update_client(client_id, &changes, &actor_of(actor, request_id))
            .map(Into::into)
            .map_err(self.err())
    }

    /// A page of clients, newest first: at most `limit` (1 to 200; outside that range, negative
    /// included, the core's `VALIDATION_ERROR` on `limit`), older than the client `before`
    /// when given (pass the page's `next`; text that is not a client id is a
    /// `VALIDATION_ERROR` on `before`).
    #[uniffi::method(default(before = None))]
    pub fn clients(&self, limit: i32, before: Option<String>) -> Result<ClientPage, FundError> {
        let before = before
            .map(|text| ClientId::from_str(&text).map_err(cursor_error))
            .transpose()
            .map_err(self.err())?;
        self.engine
            .clients(count(limit), before)
            .map(Into::into)
            .map_err(self.err())
    }

    /// A page of the audit trail, newest first: at most `limit` (1 to 200), older than the
    /// event `before` when given (pass the page's `next`), with the errors of `clients`.
    #[uniffi::method(default(before = None))]
    pub fn audit_events(
        &self,
        limit: i32,
        before: Option<String>,
    ) -> Result<AuditEventPage, FundError> {
        let before = before
            .map(|text| AuditEventId::from_str(&text).map_err(cursor_error))
            .transpose()
            .map_err(self.err())?;
        self.engine
            .audit_events(count(limit), before)
            .map(Into::into)
            .map_err(self.err())
    }

    /// Makes everything acknowledged so far durable.
    pub fn flush(&self) -> Result<(), FundError> {
        self.engine.flush().map_err(self.err())
    }

    /// Writes a consistent copy of the store into the new directory `dest` while the engine
    /// serves calls (from other threads): every change acknowledged before the call is in the
    /// copy, every change wholly in or out, and the copy opens as a store of its own
    /// (`FundEngine(dest)`). A subscribe or cancel waits at most for one client's copy;
    /// administrative changes wait for the backup. `ValidationError` (field `dest`) when `dest`
    /// exists (nothing is overwritten); `StorageError` naming the path when it cannot be
    /// written.
    pub fn backup(&self, dest: String) -> Result<(), FundError> {
        self.engine.backup(dest).map_err(self.err())
    }
}

impl FundEngine {
    fn err(&self) -> impl Fn(fundcore::Error) -> FundError + use<> {
        let locale = self.engine.locale();
        move |err| FundError::from_core(err, locale)
    }

    /// A client id to look up: malformed text names no client (`CLIENT_NOT_FOUND`).
    fn client_id(&self, id: &str) -> Result<ClientId, FundError> {
        ClientId::from_str(id).map_err(|err| self.err()(err.into_lookup_error()))
    }

    /// A fund's minimum the engine cannot read: the core's amount error, on `minimum`.
    fn minimum_error(&self, err: fundcore::Error) -> FundError {
        self.err()(err.on_field("minimum"))
    }

    /// The core's fund id; one outside its range names no fund (the core says so).
    fn fund_id(&self, id: i64) -> Result<u32, FundError> {
        fundcore::fund_id_from_integer(id.into()).map_err(self.err())
    }
}

/// Who makes an administrative change, as the core records it.
fn actor_of(name: String, request_id: Option<String>) -> fundcore::Actor {
    fundcore::Actor { name, request_id }
}

/// A page cursor that is not an id of its kind: the core's `VALIDATION_ERROR`, on `before`.
fn cursor_error(err: fundcore::ParseIdError) -> fundcore::Error {
    fundcore::Error::from(err).on_field("before")
}

/// A count (`limit`) for the core: a negative one becomes 0, which the core answers as it
/// answers 0 (the history's `VALIDATION_ERROR` on `limit`; nothing to dispatch or requeue).
fn count(limit: i32) -> usize {
    usize::try_from(limit).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifier::DeliveryError;
    use crate::types::TransactionKind;

    /// An amount read where it is used, not while it crosses the FFI: its error is in the
    /// engine's locale.
    #[test]
    fn amounts_no_decimal_holds_are_refused_in_the_engines_locale() {
        let english = EngineConfig {
            locale: Some(Locale::En),
            ..EngineConfig::default()
        };
        let engine = FundEngine::with_config(None, Some(english)).unwrap();
        let ana = engine
            .register_client(
                "Ana".into(),
                "ana@example.com".into(),
                "+573001234567".into(),
                Channel::Email,
            )
            .unwrap();
        let too_many_digits = Amount::from_text(format!("1{}", "0".repeat(40)));
        let core_error = too_many_digits.to_decimal().unwrap_err();
        let err = engine
            .subscribe(ana.id.to_string(), 1, Some(too_many_digits), None)
            .unwrap_err();
        assert_eq!(
            err,
            FundError::from_core(core_error.clone(), fundcore::Locale::En)
        );
        assert_ne!(err, FundError::from_core(core_error, fundcore::Locale::Es));
    }

    #[test]
    fn reports_cross_the_ffi_with_the_cores_numbers() {
        let engine = FundEngine::temporary().unwrap();
        let ana = engine
            .register_client(
                "Ana".into(),
                "ana@example.com".into(),
                "+573001234567".into(),
                Channel::Email,
            )
            .unwrap();
        let id = ana.id.to_string();
        let first = engine.subscribe(id.clone(), 1, None, None).unwrap();
        engine.subscribe(id.clone(), 3, None, None).unwrap();
        let refund = engine.cancel(id.clone(), 1, None).unwrap();

        let page = engine
            .history_page(
                id.clone(),
                10,
                None,
                Some(TransactionKind::Cancellation),
                Some(1),
            )
            .unwrap();
        assert_eq!((page.items, page.next), (vec![refund.clone()], None));
        let err = engine
            .history_page(id.clone(), 10, None, None, Some(99))
            .unwrap_err();
        assert_eq!(err.code(), "FUND_NOT_FOUND");

        let statement = engine
            .statement(id.clone(), first.created_at, refund.created_at)
            .unwrap();
        assert_eq!(statement.lines.len(), 2);
        for line in &statement.lines {
            let sum = line.transaction.balance_after.to_decimal().unwrap()
                + line.invested_after.to_decimal().unwrap();
            assert_eq!(sum.to_string(), "500000.00");
        }
        assert_eq!(statement.closing_invested.to_string(), "125000.00");
        let err = engine
            .statement(id.clone(), refund.created_at, first.created_at)
            .unwrap_err();
        assert_eq!(err.code(), "VALIDATION_ERROR");

        struct Refusing;
        impl Notifier for Refusing {
            fn send(&self, _: Notification) -> Result<(), DeliveryError> {
                Err(DeliveryError::Permanent {
                    reason: "refused".into(),
                })
            }
        }
        engine
            .dispatch_notifications(Arc::new(Refusing), 1)
            .unwrap();
        let failed = engine.failed_notifications(10, None).unwrap();
        assert_eq!(failed.items.len(), 1);
        assert_eq!(failed.items[0].last_error.as_deref(), Some("refused"));
        assert_eq!(engine.retry_failed_notifications(10).unwrap(), 1);
        assert!(
            engine
                .failed_notifications(10, None)
                .unwrap()
                .items
                .is_empty()
        );

        let report = engine.verify_ledger().unwrap();
        assert!(report.clean, "{:?}", report.violations);
        assert_eq!((report.clients, report.transactions), (1, 3));
    }

    #[test]
    fn engine_round_trip_through_the_binding_types() {
        let engine = FundEngine::temporary().unwrap();
        let ana = engine
            .register_client(
                "Ana".into(),
                "ana@example.com".into(),
                "+573001234567".into(),
                Channel::Sms,
            )
            .unwrap();
        assert_eq!(ana.balance.to_string(), "500000.00");
        let tx = engine
            .subscribe(
                ana.id.to_string(),
                1,
                Some(fundcore::Decimal::from(80000).into()),
                None,
            )
            .unwrap();
        assert_eq!(tx.kind, TransactionKind::Subscription);
        assert_eq!(tx.amount.to_string(), "80000.00");
        assert_eq!(engine.transaction(tx.id.to_string()).unwrap(), tx);
        let err = engine.client("not-an-id".into()).unwrap_err();
        assert_eq!(err.code(), "CLIENT_NOT_FOUND");
    }

    /// A fund id the core's `u32` cannot hold names no fund: the core's FUND_NOT_FOUND text,
    /// with the id as given, in the engine's locale.
    #[test]
    fn fund_ids_outside_u32_are_fund_not_found_with_the_id_as_given() {
        let engine = FundEngine::temporary().unwrap();
        let ana = engine
            .register_client(
                "Ana".into(),
                "ana@example.com".into(),
                "+573001234567".into(),
                Channel::Email,
            )
            .unwrap();
        let negative = engine
            .subscribe(ana.id.to_string(), -3, None, None)
            .unwrap_err();
        assert_eq!(
            negative,
            FundError::FundNotFound {
                code: "FUND_NOT_FOUND".into(),
                reason: "No existe el fondo -3".into(),
                reason_es: "No existe el fondo -3".into(),
                reason_en: "Fund -3 not found".into(),
            }
        );
        let too_large = engine
            .cancel(ana.id.to_string(), 1 << 32, None)
            .unwrap_err();
        assert_eq!(too_large.reason(), "No existe el fondo 4294967296");
        assert_eq!(engine.fund(i64::MIN).unwrap_err().code(), "FUND_NOT_FOUND");
        // The largest u32 is a valid (unknown) id: the core answers for it.
        let largest = engine.fund(u32::MAX.into()).unwrap_err();
        assert_eq!(largest.reason(), "No existe el fondo 4294967295");
        // Nothing was spent.
        assert_eq!(
            engine
                .client(ana.id.to_string())
                .unwrap()
                .balance
                .to_string(),
            "500000.00"
        );
    }

    /// The administrative operations through the binding's types: ids as Long and text, the
    /// audit event's fields as text, pages with their cursor.
    #[test]
    fn administration_round_trip_through_the_binding_types() {
        let engine = FundEngine::temporary().unwrap();
        let ana = engine
            .register_client(
                "Ana".into(),
                "ana@example.com".into(),
                "+573001234567".into(),
                Channel::Email,
            )
            .unwrap();
        let fund = engine
            .create_fund(
                6,
                "RENTA-FIJA".into(),
                fundcore::Decimal::from(10000).into(),
                Category::Fic,
                "ops".into(),
                Some("req-1".into()),
            )
            .unwrap();
        assert_eq!((fund.id, fund.minimum.to_string()), (6, "10000.00".into()));
        let taken = engine
            .create_fund(
                6,
                "OTRO".into(),
                fundcore::Decimal::from(5000).into(),
                Category::Fpv,
                "ops".into(),
                None,
            )
            .unwrap_err();
        assert_eq!(
            taken,
            FundError::FundAlreadyExists {
                code: "FUND_ALREADY_EXISTS".into(),
                reason: "Ya existe el fondo 6".into(),
                reason_es: "Ya existe el fondo 6".into(),
                reason_en: "Fund 6 already exists".into(),
            }
        );
        let closed = engine
            .update_fund(6, None, None, Some(false), "ops".into(), None)
            .unwrap();
        assert!(!closed.active);
        let moved = engine
            .update_client(
                ana.id.to_string(),
                None,
                None,
                None,
                Some(Channel::Sms),
                ana.id.to_string(),
                None,
            )
            .unwrap();
        assert_eq!(moved.channel, Channel::Sms);

        let page = engine.audit_events(2, None).unwrap();
        let actions: Vec<_> = page.items.iter().map(|event| event.action).collect();
        assert_eq!(
            actions,
            [
                fundcore::AuditAction::ClientUpdated,
                fundcore::AuditAction::FundUpdated
            ]
        );
        let fund_update = &page.items[1];
        assert_eq!(fund_update.before["active"], "true");
        assert_eq!(fund_update.after["active"], "false");
        assert_eq!(page.items[0].after["channel"], "sms");
        let next = page.next.expect("a third event");
        let rest = engine.audit_events(2, Some(next.to_string())).unwrap();
        let created = &rest.items[0];
        assert_eq!(created.action, fundcore::AuditAction::FundCreated);
        assert_eq!(created.after["minimum"], "10000.00");
        assert_eq!(created.request_id.as_deref(), Some("req-1"));
        assert!(created.before.is_empty());
        assert_eq!(rest.next, None);

        let clients = engine.clients(10, None).unwrap();
        assert_eq!(clients.items, [moved]);
        assert_eq!(clients.next, None);
    }

    /// Ids and cursors given as text, and a minimum given as a BigDecimal, get the core's
    /// answers: a malformed client id names no client, a malformed cursor is invalid input on
    /// `before`, a minimum the engine cannot hold is invalid input on `minimum`.
    #[test]
    fn administration_reads_text_and_money_with_the_cores_errors() {
        let engine = FundEngine::temporary().unwrap();
        let unknown = engine
            .update_client(
                "not-an-id".into(),
                Some("X".into()),
                None,
                None,
                None,
                "ops".into(),
                None,
            )
            .unwrap_err();
        assert_eq!(unknown.code(), "CLIENT_NOT_FOUND");
        assert_eq!(unknown.reason(), "No existe el cliente not-an-id");
        let before_error = |err: FundError| match err {
            FundError::ValidationError { field, .. } => field,
            other => panic!("expected VALIDATION_ERROR, got {other:?}"),
        };
        assert_eq!(
            before_error(engine.clients(10, Some("nope".into())).unwrap_err()),
            "before"
        );
        assert_eq!(
            before_error(engine.audit_events(10, Some("nope".into())).unwrap_err()),
            "before"
        );
        let too_many_digits = || Amount::from_text(format!("1{}", "0".repeat(40)));
        let create = engine
            .create_fund(
                7,
                "F".into(),
                too_many_digits(),
                Category::Fic,
                "ops".into(),
                None,
            )
            .unwrap_err();
        assert_eq!(before_error(create), "minimum");
        let update = engine
            .update_fund(1, None, Some(too_many_digits()), None, "ops".into(), None)
            .unwrap_err();
        assert_eq!(before_error(update), "minimum");
        let out_of_range = engine
            .update_fund(-1, Some("X".into()), None, None, "ops".into(), None)
            .unwrap_err();
        assert_eq!(out_of_range.reason(), "No existe el fondo -1");
        for limit in [-1, 0, 201] {
            assert_eq!(
                before_error(engine.clients(limit, None).unwrap_err()),
                "limit"
            );
            assert_eq!(
                before_error(engine.audit_events(limit, None).unwrap_err()),
                "limit"
            );
        }
        assert!(engine.audit_events(10, None).unwrap().items.is_empty());
    }

    #[test]
    fn negative_limits_get_the_cores_answer() {
        let engine = FundEngine::temporary().unwrap();
        let ana = engine
            .register_client(
                "Ana".into(),
                "ana@example.com".into(),
                "+573001234567".into(),
                Channel::Email,
            )
            .unwrap();
        let core_error = FundError::from_core(
            fundcore::Error::Validation {
                field: "limit",
                problem: fundcore::Invalid::Limit,
            },
            fundcore::Locale::Es,
        );
        for limit in [-1, i32::MIN, 0, 201] {
            let err = engine.history(ana.id.to_string(), limit, None).unwrap_err();
            assert_eq!(err, core_error, "limit {limit}");
        }
        engine.subscribe(ana.id.to_string(), 1, None, None).unwrap();
        struct Refuse;
        impl Notifier for Refuse {
            fn send(&self, _: Notification) -> Result<(), DeliveryError> {
                Err(DeliveryError::Permanent {
                    reason: "not called".into(),
                })
            }
        }
        let none = DispatchReport {
            delivered: 0,
            retried: 0,
            failed: 0,
        };
        assert_eq!(
            engine.dispatch_notifications(Arc::new(Refuse), -1).unwrap(),
            none
        );
        assert_eq!(engine.retry_failed_notifications(-5).unwrap(), 0);
    }
}
