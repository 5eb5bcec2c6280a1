-- Alertmanager delivery (SPEC §17).
--
-- metrics_alertmanager_outbox: one row per alert transition (firing, escalated,
-- deescalated, resolved) and configured Alertmanager, written in the snapshot's transaction;
-- delivered at least once, in id order per Alertmanager. The alert's labels and annotations
-- are built when the row is sent, from the alert's row at that time.
CREATE TABLE metrics_alertmanager_outbox (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The Alertmanager's base URL, as configured in FLOWMETER_ALERTMANAGER_URLS.
    alertmanager     TEXT NOT NULL,
    project_id       UUID NOT NULL,
    alert_id         UUID NOT NULL,
    kind             TEXT NOT NULL
                     CHECK (kind IN ('firing', 'escalated', 'deescalated', 'resolved')),
    -- A severity change ends the Alertmanager alert of the previous severity (severity is a
    -- label, so each severity is a separate alert there).
    ended_severity   TEXT CHECK (ended_severity IN ('warning', 'critical', 'emergency')),
    at               TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts         INTEGER NOT NULL DEFAULT 0,
    delivered_at     TIMESTAMPTZ,
    last_error       TEXT
);

CREATE INDEX metrics_alertmanager_outbox_pending
    ON metrics_alertmanager_outbox (alertmanager, id) WHERE delivered_at IS NULL;

-- Per Alertmanager: the resend clock and the backoff after failed posts. Its row lock makes
-- one worker at a time deliver to an Alertmanager, so posts reach it in order.
CREATE TABLE metrics_alertmanager_target (
    alertmanager     TEXT PRIMARY KEY,
    last_resend_at   TIMESTAMPTZ,
    failures         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error       TEXT
);

-- The silence each Alertmanager holds for an acknowledgement with an expiry: one per
-- (Alertmanager, alert, acknowledgement); a lapsed and renewed acknowledgement gets a new one.
CREATE TABLE metrics_alertmanager_silence (
    alertmanager     TEXT NOT NULL,
    project_id       UUID NOT NULL,
    alert_id         UUID NOT NULL,
    acknowledged_at  TIMESTAMPTZ NOT NULL,
    silence_id       TEXT NOT NULL,
    ends_at          TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (alertmanager, project_id, alert_id, acknowledged_at)
);

-- Acknowledgements that may still need a silence (the worker looks for unexpired ones).
CREATE INDEX metrics_alert_ack_expiry
    ON metrics_alert (ack_expires_at) WHERE ack_expires_at IS NOT NULL;
