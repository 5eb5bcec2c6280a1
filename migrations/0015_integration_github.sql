-- GitHub webhook secrets (SPEC §19), one per project, set with
-- `flowmeter-api integrations github set-secret`. The secret is encrypted with
-- ChaCha20-Poly1305 under FLOWMETER_SECRET_KEY (the project id as associated data); the
-- database never holds it in clear.
CREATE TABLE integration_github_secret (
    project_id  UUID PRIMARY KEY,
    nonce       BYTEA NOT NULL CHECK (length(nonce) = 12),
    ciphertext  BYTEA NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
