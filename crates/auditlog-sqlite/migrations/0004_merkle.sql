-- Tamper evidence: each organization's log is an RFC 9162 Merkle tree
-- (leaf index = seq - 1). Leaf hashes are packed 256 to a tile, and only
-- perfect subtrees of level 8 and up get a row; the levels between are
-- recomputed from a tile when a proof needs them. Both are written in the
-- transaction that adds their entries, and purging entries leaves them
-- alone, so proofs and roots outlive retention.
CREATE TABLE merkle_leaves (
    org_id INTEGER NOT NULL REFERENCES orgs (org_id),
    tile INTEGER NOT NULL,          -- leaves tile*256 .. tile*256+255
    hashes BLOB NOT NULL,           -- 32 bytes a leaf, in order
    PRIMARY KEY (org_id, tile)
) WITHOUT ROWID;

CREATE TABLE merkle_nodes (
    org_id INTEGER NOT NULL REFERENCES orgs (org_id),
    level INTEGER NOT NULL,         -- 8 and up
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
