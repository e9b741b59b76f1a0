-- Each log head carries its Merkle tree's frontier: the hashes of the
-- perfect subtrees its size decomposes into, largest first, 32 bytes each
-- (merkle::frontier_ids). An append reads it with the lock it takes on the
-- head, so growing the tree needs no read of merkle_nodes or merkle_leaves
-- while other replicas wait for that lock. NULL where it was never stored
-- (heads from before this migration, imported heads): the append then loads
-- the frontier from the tree's rows, as before, and stores it.
ALTER TABLE log_heads ADD COLUMN frontier bytea;
