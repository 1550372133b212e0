-- fundcore schema 1: settings, funds, clients, the ledger, idempotency keys and the outbox.
-- Money is NUMERIC with 2 fractional digits, times are timestamptz, ids are uuid.

CREATE TABLE fundcore_settings (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    initial_balance numeric(17, 2) NOT NULL CHECK (initial_balance >= 0)
);

CREATE TABLE fundcore_funds (
    id       bigint PRIMARY KEY CHECK (id BETWEEN 0 AND 4294967295),
    name     text NOT NULL,
    minimum  numeric(17, 2) NOT NULL CHECK (minimum > 0),
    category text NOT NULL CHECK (category IN ('FPV', 'FIC')),
    active   boolean NOT NULL
);

-- `version` grows with every change to the row: a subscribe or cancel commits only if the
-- client is still as it was read.
CREATE TABLE fundcore_clients (
    id                    uuid PRIMARY KEY,
    name                  text NOT NULL,
    email                 text NOT NULL,
    phone                 text NOT NULL,
    channel               text NOT NULL CHECK (channel IN ('email', 'sms')),
    balance               numeric(17, 2) NOT NULL CHECK (balance >= 0),
    created_at            timestamptz NOT NULL,
    version               bigint NOT NULL DEFAULT 0,
    newest_transaction_id uuid
);

CREATE TABLE fundcore_subscriptions (
    client_id      uuid NOT NULL REFERENCES fundcore_clients (id),
    fund_id        bigint NOT NULL,
    fund_name      text NOT NULL,
    amount         numeric(17, 2) NOT NULL CHECK (amount > 0),
    transaction_id uuid NOT NULL,
    subscribed_at  timestamptz NOT NULL,
    PRIMARY KEY (client_id, fund_id)
);

-- A client's history is a keyset range on (client_id, id), newest first.
CREATE TABLE fundcore_transactions (
    client_id       uuid NOT NULL REFERENCES fundcore_clients (id),
    id              uuid NOT NULL,
    fund_id         bigint NOT NULL,
    fund_name       text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('subscription', 'cancellation')),
    amount          numeric(17, 2) NOT NULL CHECK (amount > 0),
    balance_after   numeric(17, 2) NOT NULL CHECK (balance_after >= 0),
    created_at      timestamptz NOT NULL,
    idempotency_key text,
    PRIMARY KEY (client_id, id)
);
CREATE UNIQUE INDEX fundcore_transactions_by_id ON fundcore_transactions (id);

CREATE TABLE fundcore_idempotency_keys (
    client_id       uuid NOT NULL REFERENCES fundcore_clients (id),
    key             text NOT NULL,
    request_kind    text NOT NULL CHECK (request_kind IN ('subscribe', 'cancel')),
    request_fund_id bigint NOT NULL,
    request_amount  numeric(17, 2),
    transaction_id  uuid NOT NULL,
    PRIMARY KEY (client_id, key)
);

-- One row per notification; `claim` names the dispatcher that holds it until next_attempt_at.
CREATE TABLE fundcore_outbox (
    client_id       uuid NOT NULL,
    transaction_id  uuid NOT NULL,
    id              uuid NOT NULL UNIQUE,
    channel         text NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient       text NOT NULL,
    client_name     text NOT NULL,
    locale          text NOT NULL CHECK (locale IN ('es', 'en')),
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL CHECK (attempts >= 0),
    last_error      text,
    delivered_at    timestamptz,
    next_attempt_at timestamptz,
    claim           uuid,
    PRIMARY KEY (client_id, transaction_id),
    FOREIGN KEY (client_id, transaction_id) REFERENCES fundcore_transactions (client_id, id),
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX fundcore_outbox_due ON fundcore_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX fundcore_outbox_failed ON fundcore_outbox (client_id, transaction_id)
    WHERE status = 'failed';
