-- fundcore schema 3: the operator's listing of failed notifications, newest first across
-- every client, is a keyset range on the notification id over the failed entries only.

CREATE INDEX fundcore_outbox_failed_by_id ON fundcore_outbox (id) WHERE status = 'failed';
