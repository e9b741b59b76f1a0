-- An endpoint's deliveries are listed newest first by (created_at, id);
-- with the id in the index, the many deliveries one transaction creates
-- at the same instant come out in order without being sorted, so the
-- webhooks page reads a few rows per endpoint instead of all of them.
DROP INDEX deliveries_by_webhook;
CREATE INDEX deliveries_by_webhook ON deliveries (org_id, webhook_id, created_at, id);
