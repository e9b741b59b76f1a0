-- What an endpoint's deliveries carry as `data`: 'auditlog' (the entry as
-- the query API shows it) or 'ocsf' (the entry as an OCSF event). Existing
-- endpoints keep getting what they always got. The domain decides which
-- names are valid, as on SQLite.
ALTER TABLE webhooks ADD COLUMN payload_format text NOT NULL DEFAULT 'auditlog';
