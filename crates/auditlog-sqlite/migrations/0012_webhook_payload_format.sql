-- What an endpoint's deliveries carry as `data`: 'auditlog' (the entry as
-- the query API shows it) or 'ocsf' (the entry as an OCSF event). Existing
-- endpoints keep getting what they always got. No CHECK: the domain decides
-- which names are valid, and a new format then needs no table rebuild.
ALTER TABLE webhooks ADD COLUMN payload_format TEXT NOT NULL DEFAULT 'auditlog';
