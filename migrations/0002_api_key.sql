-- API keys. Only a SHA-256 hash of each key is stored; the key itself is shown once.
CREATE TABLE api_key (
    id            UUID PRIMARY KEY,
    name          TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    -- The first characters of the key ("fm_" and four more), to tell keys apart in listings.
    key_prefix    TEXT NOT NULL,
    -- NULL means every project ('*').
    project_id    UUID,
    roles         TEXT[] NOT NULL
                  CHECK (cardinality(roles) > 0
                         AND roles <@ ARRAY['viewer', 'planner', 'ingest', 'admin']::text[]),
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
