-- Who submitted each entry (the credential, set by the service), and the
-- version of the canonical form its Merkle leaf commits to. Entries from
-- before keep version 1 and no submitter, so their leaves verify as they
-- were written.
--
-- No index on the submitter: it is a rare filter for reviewers, it walks
-- the time index, and an index would cost every insert.
ALTER TABLE entries ADD COLUMN submitted_by_kind TEXT;
ALTER TABLE entries ADD COLUMN submitted_by_id TEXT;
ALTER TABLE entries ADD COLUMN canonical_version INTEGER NOT NULL DEFAULT 1;
