-- How many entries retention purged before each stream sent them: the API
-- and the Streams page show it beside the stream's health.

ALTER TABLE streams ADD COLUMN purged_unsent BIGINT NOT NULL DEFAULT 0;
