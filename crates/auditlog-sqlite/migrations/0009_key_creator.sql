-- Which credential created a key (`kind:id`, as an entry's submitted_by),
-- for the console's key list. Keys made before this are left NULL: the
-- log's api_key.created entry still names who made them.
ALTER TABLE api_keys ADD COLUMN created_by TEXT;
