-- Conversations and their message trees. Portable SQL (SQLite and
-- PostgreSQL): text ids, BIGINT times in Unix milliseconds, JSON as TEXT.

CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    -- 1 once the user named it; until then the first question names it.
    titled_by_user INTEGER NOT NULL DEFAULT 0,
    model TEXT,
    system TEXT,
    -- The conversation's sampling options, as the API takes them (JSON).
    options TEXT NOT NULL DEFAULT '{}',
    -- The message shown now: the end of the branch the page displays.
    current_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX conversations_newest_first ON conversations (updated_at DESC, id DESC);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    parent_id TEXT REFERENCES messages (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    model TEXT,
    -- streaming, complete, stopped, failed, interrupted
    status TEXT NOT NULL,
    error TEXT,
    -- How the answer went (JSON), once it ended.
    stats TEXT,
    -- The generation writing it, while it streams.
    generation_id TEXT,
    created_at BIGINT NOT NULL
);

CREATE INDEX messages_of_conversation ON messages (conversation_id, created_at);
CREATE INDEX messages_streaming ON messages (status);
