-- Personal data sealed per person, so erasing a person destroys their key
-- and leaves every Merkle proof intact (see the domain's `personal`
-- module). Entries written before this migration keep their values in
-- their rows and their version 1 or 2 leaves.

-- Canonical version 3: what stands in the leaf for each personal value,
-- encoded by `personal::encode_commitments`. NULL for earlier versions.
ALTER TABLE entries ADD COLUMN commitments BLOB;

-- One key per person and organization, sealed under a key derived from the
-- master secret the operator keeps outside the database.
CREATE TABLE subject_keys (
    org_id INTEGER NOT NULL,
    pseudonym BLOB NOT NULL,       -- HMAC of the subject, 32 bytes
    wrapped BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, pseudonym)
) WITHOUT ROWID;

-- Each entry's values of one person, sealed under that person's key.
CREATE TABLE personal_parts (
    org_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    pseudonym BLOB NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (org_id, seq, pseudonym)
) WITHOUT ROWID;

-- What an erasure finds: one person's parts.
CREATE INDEX personal_parts_by_subject ON personal_parts (org_id, pseudonym);
