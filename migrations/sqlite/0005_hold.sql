-- Legal holds: see migrations/postgres/0004_safety.sql (its end). Times are milliseconds.
CREATE TABLE chat_hold (
    user_role TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    placed_by TEXT NOT NULL,
    placed_at INTEGER NOT NULL,
    PRIMARY KEY (user_role, user_id)
);
