-- Alerts (SPEC §6): one row per alert with its current state, the history of every
-- transition, the pending state of each (project, rule), and the webhook outbox.
-- Written by the worker in the same transaction as the summary snapshot they evaluate.

CREATE TABLE metrics_alert (
    project_id       UUID NOT NULL,
    id               UUID NOT NULL,
    -- The rule's identity: the metric key for threshold rules, `anomaly:<metric>` for anomalies.
    rule_key         TEXT NOT NULL,
    metric_key       TEXT NOT NULL,
    alert_type       TEXT NOT NULL CHECK (alert_type IN ('threshold', 'anomaly')),
    severity         TEXT NOT NULL CHECK (severity IN ('warning', 'critical', 'emergency')),
    state            TEXT NOT NULL CHECK (state IN ('firing', 'resolved')),
    value            DOUBLE PRECISION,
    threshold        DOUBLE PRECISION,
    context          JSONB NOT NULL DEFAULT '{}',
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    resolved_at      TIMESTAMPTZ,
    acknowledged_at  TIMESTAMPTZ,
    acknowledged_by  TEXT,
    ack_reason       TEXT,
    ack_expires_at   TIMESTAMPTZ,
    PRIMARY KEY (project_id, id)
);

-- At most one open alert per (project, rule).
CREATE UNIQUE INDEX metrics_alert_one_open
    ON metrics_alert (project_id, rule_key) WHERE state = 'firing';

-- The listing: newest first, keyset pagination on (created_at, id).
CREATE INDEX metrics_alert_recent ON metrics_alert (project_id, created_at DESC, id DESC);

CREATE TABLE metrics_alert_event (
    project_id   UUID NOT NULL,
    alert_id     UUID NOT NULL,
    event_no     INTEGER NOT NULL,
    -- firing, escalated, deescalated, resolved, acknowledged
    kind         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    value        DOUBLE PRECISION,
    threshold    DOUBLE PRECISION,
    at           TIMESTAMPTZ NOT NULL,
    as_of_seq    BIGINT,
    actor        TEXT,
    PRIMARY KEY (project_id, alert_id, event_no)
);

CREATE TABLE metrics_alert_rule_state (
    project_id         UUID NOT NULL,
    rule_key           TEXT NOT NULL,
    pending_since      TIMESTAMPTZ,
    last_value         DOUBLE PRECISION,
    last_evaluated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (project_id, rule_key)
);

CREATE TABLE metrics_alert_outbox (
    project_id       UUID NOT NULL,
    id               BIGINT GENERATED ALWAYS AS IDENTITY,
    alert_id         UUID NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    payload          JSONB NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at     TIMESTAMPTZ,
    last_error       TEXT,
    PRIMARY KEY (project_id, id)
);

CREATE INDEX metrics_alert_outbox_due
    ON metrics_alert_outbox (next_attempt_at) WHERE delivered_at IS NULL;
