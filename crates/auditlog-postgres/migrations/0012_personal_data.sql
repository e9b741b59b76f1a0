-- Personal data sealed per person, so erasing a person destroys their key
-- and leaves every Merkle proof intact (see the domain's `personal`
-- module). Entries written before this migration keep their values in
-- their rows and their version 1 or 2 leaves.

-- Canonical version 3: what stands in the leaf for each personal value,
-- encoded by `personal::encode_commitments`. NULL for earlier versions.
-- Added to the partitioned table, so every month's partition gets it; a
-- column without a default rewrites no partition.
ALTER TABLE entries ADD COLUMN commitments bytea;

-- One key per person and organization, sealed under a key derived from the
-- master secret the operator keeps outside the database.
CREATE TABLE subject_keys (
    org_id bigint NOT NULL,
    pseudonym bytea NOT NULL,      -- HMAC of the subject, 32 bytes
    wrapped bytea NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (org_id, pseudonym)
);

-- Each entry's values of one person, sealed under that person's key.
-- Unpartitioned, like entry_ids: (org_id, seq) names an entry, and the
-- parts go wherever their entry goes, row by row or with its month's
-- partition (see the store's `expiry`).
CREATE TABLE personal_parts (
    org_id bigint NOT NULL,
    seq bigint NOT NULL,
    pseudonym bytea NOT NULL,
    sealed bytea NOT NULL,
    PRIMARY KEY (org_id, seq, pseudonym)
);

-- What an erasure finds: one person's parts.
CREATE INDEX personal_parts_by_subject ON personal_parts (org_id, pseudonym);
