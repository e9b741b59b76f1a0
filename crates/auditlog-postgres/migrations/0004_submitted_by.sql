-- Who submitted each entry (the credential, set by the service), and the
-- version of the canonical form its Merkle leaf commits to. Entries from
-- before keep version 1 and no submitter, so their leaves verify as they
-- were written. Added to the partitioned table, so every month's partition
-- gets them; the default is a constant, so no partition is rewritten.
--
-- No index on the submitter: it is a rare filter for reviewers, it walks
-- the time index, and an index would cost every insert.
ALTER TABLE entries ADD COLUMN submitted_by_kind text;
ALTER TABLE entries ADD COLUMN submitted_by_id text;
ALTER TABLE entries ADD COLUMN canonical_version smallint NOT NULL DEFAULT 1;
