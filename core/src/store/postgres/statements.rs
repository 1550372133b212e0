//! Every statement the store sends, with the types of its parameters.
//!
//! The types are given, not inferred: a connection prepares each statement once with them
//! (the default), or sends it unnamed with them in the same round trip as its parameters
//! (`prepared_statements = false`, for poolers in transaction mode, where a statement prepared
//! on one server connection would be looked for on another).

use std::sync::LazyLock;

use tokio_postgres::types::{ToSql, Type};

use super::connect::Params;

pub(super) const CLIENT_COLUMNS: &str =
    "c.id, c.name, c.email, c.phone, c.channel, c.balance, c.created_at";
pub(super) const TRANSACTION_COLUMNS: &str = "t.client_id, t.id, t.fund_id, t.fund_name, t.kind, \
     t.amount, t.balance_after, t.created_at, t.idempotency_key";
pub(super) const SUBSCRIPTION_COLUMNS: &str =
    "s.client_id, s.fund_id, s.fund_name, s.amount, s.transaction_id, s.subscribed_at";
pub(super) const NOTICE_COLUMNS: &str = "o.id, o.channel, o.recipient, o.client_name, o.locale, \
     o.status, o.attempts, o.last_error, o.delivered_at, o.next_attempt_at";
pub(super) const FUND_COLUMNS: &str = "f.id, f.name, f.minimum, f.category, f.active";
const AUDIT_COLUMNS: &str = "e.id, e.at, e.actor, e.action, e.target, e.before::text, \
     e.after::text, e.request_id";

macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A statement of the store; [`Q::sql`] is its text, [`Q::types`] its parameters' types.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(super) enum Q {
            $($(#[$doc])* $name,)*
        }

        impl Q {
            /// Every statement, in the order of their discriminants.
            pub const ALL: &'static [Q] = &[$(Q::$name,)*];
        }
    };
}

statements! {
    // ---- a subscribe or cancel (money.rs)
    /// The client, the fund, the client's subscription to it and what the idempotency key
    /// names, in one snapshot. Column positions are read by `money::money_view`.
    ReadMoney,
    /// Locks the client's row (the locked path).
    LockClient,
    /// Every record of a subscribe or cancel, guarded ([`WRITE_MONEY`]).
    WriteMoney,
    // ---- clients and their records (mod.rs)
    InsertClient,
    Client,
    ClientExists,
    Subscriptions,
    History,
    Transaction,
    Notifications,
    Clients,
    ClientIds,
    // ---- the outbox (outbox.rs)
    ClaimDue,
    /// The entries a claim took (the lookup of a claim whose reply was lost).
    ClaimedBy,
    Settle,
    RequeueFailed,
    /// Failed entries of every client, newest first (through `fundcore_outbox_failed_by_id`).
    FailedNotifications,
    OutboxState,
    // ---- the catalogue and administration (admin.rs)
    Funds,
    Fund,
    CreateFund,
    LockFund,
    WriteFund,
    LockClientRow,
    WriteClient,
    AuditEvents,
    AuditEventExists,
    ImportAuditEvents,
    // ---- the store's settings (mod.rs)
    InsertSettings,
    SeedFund,
    InitialBalance,
    LargestClientId,
    LargestTransactionId,
    LargestAuditEventId,
    // ---- copying a client (copy.rs)
    BundleEntries,
    BundleKeys,
    ImportClient,
    ImportTransaction,
    ImportNotice,
    ImportSubscription,
    ImportKey,
    // ---- the schema (schema.rs)
    AppliedVersion,
    LockSchema,
    RecordMigration,
}

static TEXTS: LazyLock<Vec<String>> = LazyLock::new(|| Q::ALL.iter().map(|q| text(*q)).collect());

impl Q {
    /// The statement's text.
    pub fn sql(self) -> &'static str {
        TEXTS.get(self as usize).map_or("", String::as_str)
    }

    /// The types of its parameters, `$1` first.
    pub fn types(self) -> &'static [Type] {
        types(self)
    }

    /// Its parameters with their types, as an unnamed statement sends them.
    pub fn typed<'a>(self, params: &Params<'a>) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
        params
            .iter()
            .zip(self.types().iter().chain(std::iter::repeat(&Type::UNKNOWN)))
            .map(|(param, ty)| (*param, ty.clone()))
            .collect()
    }
}

const UUID: Type = Type::UUID;
const INT8: Type = Type::INT8;
const INT4: Type = Type::INT4;
const TEXT: Type = Type::TEXT;
const NUMERIC: Type = Type::NUMERIC;
const TIME: Type = Type::TIMESTAMPTZ;
const BOOL: Type = Type::BOOL;

/// A list of parameter types with a `'static` lifetime (types are not promoted to statics
/// on their own: they may hold an `Arc`).
macro_rules! types {
    ($($ty:expr),* $(,)?) => {{
        const TYPES: &[Type] = &[$($ty),*];
        TYPES
    }};
}

fn types(q: Q) -> &'static [Type] {
    match q {
        Q::ReadMoney => types![UUID, INT8, TEXT],
        Q::LockClient
        | Q::Client
        | Q::ClientExists
        | Q::Subscriptions
        | Q::Notifications
        | Q::Transaction
        | Q::AuditEventExists
        | Q::ClaimedBy
        | Q::LockClientRow
        | Q::BundleEntries
        | Q::BundleKeys => types![UUID],
        Q::WriteMoney => types![
            UUID, NUMERIC, UUID, INT8, INT8, TEXT, TEXT, NUMERIC, TIME, TEXT, TEXT, INT8, NUMERIC,
            UUID, TEXT, TEXT, TEXT, TEXT, INT8, UUID, NUMERIC, BOOL, TEXT, TEXT, TEXT, TEXT,
        ],
        Q::InsertClient => types![UUID, TEXT, TEXT, TEXT, TEXT, NUMERIC, TIME],
        Q::History => types![UUID, UUID, INT8],
        Q::Clients | Q::AuditEvents | Q::ClientIds => types![UUID, INT8],
        Q::ClaimDue => types![TIME, INT8, TIME, UUID],
        Q::Settle => types![UUID, UUID, TEXT, INT4, TEXT, TIME, TIME, UUID],
        Q::RequeueFailed => types![TIME, INT8],
        Q::FailedNotifications => types![UUID, INT8],
        Q::OutboxState
        | Q::Funds
        | Q::InitialBalance
        | Q::LargestClientId
        | Q::LargestTransactionId
        | Q::LargestAuditEventId
        | Q::AppliedVersion
        | Q::LockSchema => types![],
        Q::Fund | Q::LockFund => types![INT8],
        // The fund's five fields, then an audit event's eight (see `insert_audit_event`).
        Q::CreateFund | Q::WriteFund => types![
            INT8, TEXT, NUMERIC, TEXT, BOOL, UUID, TIME, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT,
        ],
        // The client's id and four contact fields, then an audit event's eight.
        Q::WriteClient => types![
            UUID, TEXT, TEXT, TEXT, TEXT, UUID, TIME, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT,
        ],
        Q::ImportAuditEvents => types![
            Type::UUID_ARRAY,
            Type::TIMESTAMPTZ_ARRAY,
            Type::TEXT_ARRAY,
            Type::TEXT_ARRAY,
            Type::TEXT_ARRAY,
            Type::TEXT_ARRAY,
            Type::TEXT_ARRAY,
            Type::TEXT_ARRAY,
        ],
        Q::InsertSettings => types![NUMERIC],
        Q::SeedFund => types![INT8, TEXT, NUMERIC, TEXT, BOOL],
        Q::ImportClient => types![UUID, TEXT, TEXT, TEXT, TEXT, NUMERIC, TIME, UUID],
        Q::ImportTransaction => {
            types![UUID, UUID, INT8, TEXT, TEXT, NUMERIC, NUMERIC, TIME, TEXT]
        }
        Q::ImportNotice => types![
            UUID, UUID, UUID, TEXT, TEXT, TEXT, TEXT, TEXT, INT4, TEXT, TIME, TIME,
        ],
        Q::ImportSubscription => types![UUID, INT8, TEXT, NUMERIC, UUID, TIME],
        Q::ImportKey => types![UUID, TEXT, TEXT, INT8, NUMERIC, UUID],
        Q::RecordMigration => types![INT4, TEXT],
    }
}

fn text(q: Q) -> String {
    match q {
        Q::ReadMoney => format!(
            "SELECT {CLIENT_COLUMNS}, c.version, c.newest_transaction_id,
                    {SUBSCRIPTION_COLUMNS},
                    k.request_kind, k.request_fund_id, k.request_amount,
                    {TRANSACTION_COLUMNS},
                    {FUND_COLUMNS}, f.version
             FROM fundcore_clients c
             LEFT JOIN fundcore_funds f ON f.id = $2
             LEFT JOIN fundcore_subscriptions s ON s.client_id = c.id AND s.fund_id = $2
             LEFT JOIN fundcore_idempotency_keys k ON k.client_id = c.id AND k.key = $3
             LEFT JOIN fundcore_transactions t ON t.client_id = c.id AND t.id = k.transaction_id
             WHERE c.id = $1"
        ),
        Q::LockClient => "SELECT version FROM fundcore_clients WHERE id = $1 FOR UPDATE".into(),
        Q::WriteMoney => WRITE_MONEY.into(),
        // An id is chosen by the engine once (UUIDv7): sending the insert again after a lost
        // reply changes nothing if the first one committed.
        Q::InsertClient => "INSERT INTO fundcore_clients
                 (id, name, email, phone, channel, balance, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING"
            .into(),
        Q::Client => format!("SELECT {CLIENT_COLUMNS} FROM fundcore_clients c WHERE c.id = $1"),
        Q::ClientExists => "SELECT 1 FROM fundcore_clients WHERE id = $1".into(),
        Q::Subscriptions => format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM fundcore_subscriptions s
             WHERE s.client_id = $1 ORDER BY s.fund_id"
        ),
        Q::History => format!(
            "SELECT {TRANSACTION_COLUMNS} FROM fundcore_transactions t
             WHERE t.client_id = $1 AND t.id < $2 ORDER BY t.id DESC LIMIT $3"
        ),
        Q::Transaction => {
            format!("SELECT {TRANSACTION_COLUMNS} FROM fundcore_transactions t WHERE t.id = $1")
        }
        Q::Notifications => format!(
            "SELECT {TRANSACTION_COLUMNS}, {NOTICE_COLUMNS}
             FROM fundcore_outbox o
             JOIN fundcore_transactions t ON t.client_id = o.client_id AND t.id = o.transaction_id
             WHERE o.client_id = $1 ORDER BY o.transaction_id DESC"
        ),
        Q::Clients => format!(
            "SELECT {CLIENT_COLUMNS} FROM fundcore_clients c
             WHERE c.id < $1 ORDER BY c.id DESC LIMIT $2"
        ),
        Q::ClientIds => "SELECT id FROM fundcore_clients WHERE id > $1 ORDER BY id LIMIT $2".into(),
        Q::ClaimDue => format!(
            "WITH due AS (
                 SELECT client_id, transaction_id FROM fundcore_outbox
                 WHERE status = 'pending' AND next_attempt_at <= $1
                 ORDER BY next_attempt_at LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             UPDATE fundcore_outbox o SET next_attempt_at = $3, claim = $4
             FROM due, fundcore_transactions t
             WHERE o.client_id = due.client_id AND o.transaction_id = due.transaction_id
               AND t.client_id = o.client_id AND t.id = o.transaction_id
             RETURNING {TRANSACTION_COLUMNS}, {NOTICE_COLUMNS}"
        ),
        Q::ClaimedBy => format!(
            "SELECT {TRANSACTION_COLUMNS}, {NOTICE_COLUMNS}
             FROM fundcore_outbox o
             JOIN fundcore_transactions t ON t.client_id = o.client_id AND t.id = o.transaction_id
             WHERE o.claim = $1 AND o.status = 'pending'"
        ),
        // Only the claim's holder settles; a second send of the same settle changes nothing.
        Q::Settle => "UPDATE fundcore_outbox
             SET status = $3, attempts = $4, last_error = $5, delivered_at = $6,
                 next_attempt_at = $7, claim = NULL
             WHERE client_id = $1 AND transaction_id = $2 AND claim = $8"
            .into(),
        Q::RequeueFailed => "WITH failed AS (
                 SELECT client_id, transaction_id FROM fundcore_outbox
                 WHERE status = 'failed' ORDER BY client_id, transaction_id LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             UPDATE fundcore_outbox o
             SET status = 'pending', attempts = 0, next_attempt_at = $1, claim = NULL
             FROM failed
             WHERE o.client_id = failed.client_id AND o.transaction_id = failed.transaction_id"
            .into(),
        Q::FailedNotifications => format!(
            "SELECT {TRANSACTION_COLUMNS}, {NOTICE_COLUMNS}
             FROM fundcore_outbox o
             JOIN fundcore_transactions t ON t.client_id = o.client_id AND t.id = o.transaction_id
             WHERE o.status = 'failed' AND o.id < $1 ORDER BY o.id DESC LIMIT $2"
        ),
        // One statement, so one snapshot. The oldest pending entry is found through the
        // partial index of pending entries and its transaction's key.
        Q::OutboxState => "SELECT count(*) FILTER (WHERE status = 'pending'),
                    count(*) FILTER (WHERE status = 'failed'),
                    count(*) FILTER (WHERE status = 'delivered'),
                    (SELECT min(t.created_at)
                     FROM fundcore_outbox p
                     JOIN fundcore_transactions t
                       ON t.client_id = p.client_id AND t.id = p.transaction_id
                     WHERE p.status = 'pending')
             FROM fundcore_outbox"
            .into(),
        Q::Funds => format!("SELECT {FUND_COLUMNS} FROM fundcore_funds f ORDER BY f.id"),
        Q::Fund => format!("SELECT {FUND_COLUMNS} FROM fundcore_funds f WHERE f.id = $1"),
        Q::CreateFund => format!(
            "WITH created AS (
                 INSERT INTO fundcore_funds (id, name, minimum, category, active)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING
                 RETURNING id
             ), logged AS ({})
             SELECT count(*) FROM created",
            insert_audit_event(6, "created")
        ),
        Q::LockFund => format!(
            "SELECT {FUND_COLUMNS},
                    (SELECT id FROM fundcore_audit_events ORDER BY id DESC LIMIT 1)
             FROM fundcore_funds f WHERE f.id = $1 FOR UPDATE OF f"
        ),
        Q::WriteFund => format!(
            "WITH changed AS (
                 UPDATE fundcore_funds
                 SET name = $2, minimum = $3, category = $4, active = $5,
                     version = version + 1
                 WHERE id = $1
                 RETURNING id
             ), logged AS ({})
             SELECT count(*) FROM changed",
            insert_audit_event(6, "changed")
        ),
        Q::LockClientRow => format!(
            "SELECT {CLIENT_COLUMNS},
                    (SELECT id FROM fundcore_audit_events ORDER BY id DESC LIMIT 1)
             FROM fundcore_clients c WHERE c.id = $1 FOR UPDATE OF c"
        ),
        // The client's version moves too: a subscribe or cancel read before the change must
        // not queue a notification on the old channel or recipient after it.
        Q::WriteClient => format!(
            "WITH changed AS (
                 UPDATE fundcore_clients
                 SET name = $2, email = $3, phone = $4, channel = $5,
                     version = version + 1
                 WHERE id = $1
                 RETURNING id
             ), logged AS ({})
             SELECT count(*) FROM changed",
            insert_audit_event(6, "changed")
        ),
        Q::AuditEvents => format!(
            "SELECT {AUDIT_COLUMNS} FROM fundcore_audit_events e
             WHERE e.id < $1 ORDER BY e.id DESC LIMIT $2"
        ),
        Q::AuditEventExists => "SELECT 1 FROM fundcore_audit_events WHERE id = $1".into(),
        Q::ImportAuditEvents => "INSERT INTO fundcore_audit_events
                 (id, at, actor, action, target, before, after, request_id)
             SELECT id, at, actor, action, target, before::jsonb, after::jsonb, request_id
             FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[],
                         $5::text[], $6::text[], $7::text[], $8::text[])
                 AS e(id, at, actor, action, target, before, after, request_id)"
            .into(),
        Q::InsertSettings => "INSERT INTO fundcore_settings (initial_balance) VALUES ($1)
             ON CONFLICT DO NOTHING"
            .into(),
        Q::SeedFund => "INSERT INTO fundcore_funds (id, name, minimum, category, active)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
            .into(),
        Q::InitialBalance => "SELECT initial_balance FROM fundcore_settings".into(),
        Q::LargestClientId => "SELECT id FROM fundcore_clients ORDER BY id DESC LIMIT 1".into(),
        Q::LargestTransactionId => {
            "SELECT id FROM fundcore_transactions ORDER BY id DESC LIMIT 1".into()
        }
        Q::LargestAuditEventId => {
            "SELECT id FROM fundcore_audit_events ORDER BY id DESC LIMIT 1".into()
        }
        Q::BundleEntries => format!(
            "SELECT {TRANSACTION_COLUMNS}, {NOTICE_COLUMNS}
             FROM fundcore_transactions t
             LEFT JOIN fundcore_outbox o
               ON o.client_id = t.client_id AND o.transaction_id = t.id
             WHERE t.client_id = $1 ORDER BY t.id"
        ),
        Q::BundleKeys => "SELECT key, request_kind, request_fund_id, request_amount, transaction_id
             FROM fundcore_idempotency_keys WHERE client_id = $1 ORDER BY key"
            .into(),
        Q::ImportClient => "INSERT INTO fundcore_clients
                 (id, name, email, phone, channel, balance, created_at, newest_transaction_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            .into(),
        Q::ImportTransaction => "INSERT INTO fundcore_transactions
                 (client_id, id, fund_id, fund_name, kind, amount, balance_after, created_at,
                  idempotency_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            .into(),
        Q::ImportNotice => "INSERT INTO fundcore_outbox
                 (client_id, transaction_id, id, channel, recipient, client_name, locale,
                  status, attempts, last_error, delivered_at, next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            .into(),
        Q::ImportSubscription => "INSERT INTO fundcore_subscriptions
                 (client_id, fund_id, fund_name, amount, transaction_id, subscribed_at)
             VALUES ($1, $2, $3, $4, $5, $6)"
            .into(),
        Q::ImportKey => "INSERT INTO fundcore_idempotency_keys
                 (client_id, key, request_kind, request_fund_id, request_amount, transaction_id)
             VALUES ($1, $2, $3, $4, $5, $6)"
            .into(),
        Q::AppliedVersion => "SELECT max(version) FROM fundcore_migrations".into(),
        Q::LockSchema => "SELECT id FROM fundcore_schema_lock WHERE id = 1 FOR UPDATE".into(),
        Q::RecordMigration => {
            "INSERT INTO fundcore_migrations (version, name) VALUES ($1, $2)".into()
        }
    }
}

/// An insert of one audit event whose eight values are the parameters from `$first` on (see
/// `admin::AuditRow`), made once per row of the CTE `source` (the change it records).
fn insert_audit_event(first: usize, source: &str) -> String {
    let p = |offset: usize| first + offset;
    format!(
        "INSERT INTO fundcore_audit_events
             (id, at, actor, action, target, before, after, request_id)
         SELECT ${}::uuid, ${}::timestamptz, ${}::text, ${}::text, ${}::text,
                ${}::text::jsonb, ${}::text::jsonb, ${}::text
         FROM {source}",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6),
        p(7),
    )
}

/// Every record of a subscribe or cancel in one statement, written only if the client's
/// `version`, newest transaction and contact data are still the ones decided on ($4, $20,
/// $23–$26) and so are the fund's version, name, minimum and active flag ($19, $6, $21, $22):
/// otherwise nothing is written and the count is 0. The fund's row is read, not locked: every
/// sub-statement sees the statement's snapshot, so a fund changed before the write began fails
/// the guard. Sending it again after a lost reply is safe: if the first one committed, the
/// client's version moved and the guard stops the second.
const WRITE_MONEY: &str = "
WITH moved AS (
    UPDATE fundcore_clients
    SET balance = $2, version = version + 1, newest_transaction_id = $3
    WHERE id = $1 AND version = $4 AND newest_transaction_id IS NOT DISTINCT FROM $20
      AND name = $23 AND channel = $24 AND email = $25 AND phone = $26
      AND EXISTS (SELECT 1 FROM fundcore_funds
                  WHERE id = $5 AND version = $19 AND name = $6 AND minimum = $21
                    AND active = $22)
    RETURNING id
), recorded AS (
    INSERT INTO fundcore_transactions
        (client_id, id, fund_id, fund_name, kind, amount, balance_after, created_at, idempotency_key)
    SELECT id, $3, $5, $6, $7, $8, $2, $9, $10 FROM moved
), opened AS (
    INSERT INTO fundcore_subscriptions
        (client_id, fund_id, fund_name, amount, transaction_id, subscribed_at)
    SELECT id, $5, $6, $8, $3, $9 FROM moved WHERE $7::text = 'subscription'
), closed AS (
    DELETE FROM fundcore_subscriptions
    WHERE client_id = $1 AND fund_id = $5 AND $7::text = 'cancellation'
      AND EXISTS (SELECT 1 FROM moved)
), keyed AS (
    INSERT INTO fundcore_idempotency_keys
        (client_id, key, request_kind, request_fund_id, request_amount, transaction_id)
    SELECT id, $10, $11, $12, $13, $3 FROM moved WHERE $10::text IS NOT NULL
), queued AS (
    INSERT INTO fundcore_outbox
        (client_id, transaction_id, id, channel, recipient, client_name, locale, status,
         attempts, next_attempt_at)
    SELECT id, $3, $14, $15, $16, $17, $18, 'pending', 0, $9 FROM moved
    WHERE $14::uuid IS NOT NULL
)
SELECT count(*) FROM moved";
