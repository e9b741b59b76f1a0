-- A sign-in's state is marked taken rather than deleted when the browser
-- comes back, so that a replay of it is known, and recorded as a failed
-- sign-in in its organization, until the flow expires and is swept.
ALTER TABLE sso_flows ADD COLUMN taken_at INTEGER;
