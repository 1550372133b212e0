-- fundcore schema 2: administration (the catalogue changes, clients change their contact data,
-- every such change is recorded in the audit trail).

-- `version` grows with every change to the fund: a subscribe or cancel commits only if the fund
-- is still as it was read (its minimum, its active flag, its name).
ALTER TABLE fundcore_funds ADD COLUMN version bigint NOT NULL DEFAULT 0;

-- One row per administrative change, written in the transaction of the change and never
-- changed or removed. The listing is a keyset range on the id (UUIDv7), newest first.
-- `before` and `after` hold the changed fields as JSON objects.
CREATE TABLE fundcore_audit_events (
    id         uuid PRIMARY KEY,
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    action     text NOT NULL
               CHECK (action IN ('fund_created', 'fund_updated', 'client_updated')),
    target     text NOT NULL,
    before     jsonb NOT NULL CHECK (jsonb_typeof(before) = 'object'),
    after      jsonb NOT NULL CHECK (jsonb_typeof(after) = 'object'),
    request_id text
);
