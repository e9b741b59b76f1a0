-- Tamper evidence: each organization's log is an RFC 9162 Merkle tree.
-- Only perfect subtrees are stored (level 0 = leaves, leaf index = seq - 1);
-- each is written once, in the transaction that adds its last entry, and
-- never changed. Purging entries leaves these rows alone, so proofs and
-- roots outlive retention.
CREATE TABLE merkle_nodes (
    org_id INTEGER NOT NULL REFERENCES orgs (org_id),
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (org_id, level, idx)
) WITHOUT ROWID;

-- Signed checkpoints (C2SP tlog-checkpoint notes), one per signed size.
CREATE TABLE checkpoints (
    org_id INTEGER NOT NULL REFERENCES orgs (org_id),
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    signed_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, size)
) WITHOUT ROWID;
