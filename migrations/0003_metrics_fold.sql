-- The fold engine's state: per-project checkpoints with leases, run history, state
-- transition counters, projections, data-quality counters and the poison-event quarantine.
-- Every object is named metrics_* and every key starts with project_id.

CREATE TABLE metrics_job_checkpoint (
    project_id        UUID PRIMARY KEY,
    -- Last folded seq: everything up to it is in the projections and read model.
    last_seq          BIGINT NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    -- Bumped by rebuild and quarantine retry, so a worker's in-memory copy of the
    -- project from before the reset is never reused.
    generation        BIGINT NOT NULL DEFAULT 0,
    last_success_at   TIMESTAMPTZ,
    last_snapshot_at  TIMESTAMPTZ,
    lease_owner       TEXT,
    lease_token       UUID,
    lease_expires_at  TIMESTAMPTZ,
    status            TEXT NOT NULL DEFAULT 'idle'
                      CHECK (status IN ('idle', 'failing', 'stalled', 'halted')),
    failure_count     INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   TIMESTAMPTZ,
    last_error        TEXT,
    -- Event-time cursors of the fold (the open trend bucket per grain), carried between
    -- batches so bucket closes do not depend on batch boundaries.
    fold_state        JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX metrics_job_checkpoint_claimable
    ON metrics_job_checkpoint (lease_expires_at NULLS FIRST);

CREATE TABLE metrics_job_run (
    project_id        UUID NOT NULL,
    id                UUID NOT NULL,
    mode              TEXT NOT NULL CHECK (mode IN ('batch', 'near_real_time')),
    status            TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
    idempotency_key   TEXT NOT NULL,
    replay_from_seq   BIGINT,
    start_seq         BIGINT,
    end_seq           BIGINT,
    processed_events  BIGINT NOT NULL DEFAULT 0,
    failure_reason    TEXT,
    attempts          INTEGER NOT NULL DEFAULT 1,
    worker_id         TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at      TIMESTAMPTZ,
    PRIMARY KEY (project_id, id),
    UNIQUE (project_id, idempotency_key)
);

CREATE INDEX metrics_job_run_recent ON metrics_job_run (project_id, created_at DESC);

CREATE TABLE metrics_state_transition_counter (
    project_id        UUID NOT NULL,
    task_state        TEXT NOT NULL,
    transition_count  BIGINT NOT NULL DEFAULT 0,
    last_seq          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, task_state)
);

CREATE TABLE metrics_data_quality_counter (
    project_id  UUID NOT NULL,
    issue       TEXT NOT NULL,
    count       BIGINT NOT NULL DEFAULT 0,
    last_seq    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, issue)
);

-- One row per task. The typed columns serve queries (actions, drill-downs); `facts` holds
-- the complete per-task fold state (time per state, blocked episodes) that the fold reloads.
CREATE TABLE metrics_task (
    project_id            UUID NOT NULL,
    task_id               TEXT NOT NULL,
    title                 TEXT,
    phase_id              TEXT,
    milestone_id          TEXT,
    assignee              TEXT,
    task_class            TEXT,
    priority              BIGINT,
    state                 TEXT NOT NULL,
    inferred              BOOLEAN NOT NULL DEFAULT false,
    created_at            TIMESTAMPTZ NOT NULL,
    claimed_at            TIMESTAMPTZ,
    implemented_at        TIMESTAMPTZ,
    integrated_at         TIMESTAMPTZ,
    terminal_at           TIMESTAMPTZ,
    state_entered_at      TIMESTAMPTZ NOT NULL,
    blocked_since         TIMESTAMPTZ,
    integration_attempts  INTEGER NOT NULL DEFAULT 0,
    integration_failures  INTEGER NOT NULL DEFAULT 0,
    facts                 JSONB NOT NULL,
    last_seq              BIGINT NOT NULL,
    PRIMARY KEY (project_id, task_id)
);

CREATE INDEX metrics_task_by_state ON metrics_task (project_id, state);

CREATE TABLE metrics_gate (
    project_id    UUID NOT NULL,
    gate_id       TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    gate_type     TEXT,
    reviewer      TEXT,
    requested_at  TIMESTAMPTZ,
    decided_at    TIMESTAMPTZ,
    outcome       TEXT,
    sla_hours     DOUBLE PRECISION,
    last_seq      BIGINT NOT NULL,
    PRIMARY KEY (project_id, gate_id)
);

CREATE TABLE metrics_integration_attempt (
    project_id      UUID NOT NULL,
    attempt_id      TEXT NOT NULL,
    task_id         TEXT NOT NULL,
    attempt_number  BIGINT,
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ,
    result          TEXT,
    last_seq        BIGINT NOT NULL,
    PRIMARY KEY (project_id, attempt_id)
);

CREATE TABLE metrics_milestone (
    project_id        UUID NOT NULL,
    milestone_id      TEXT NOT NULL,
    name              TEXT,
    phase_id          TEXT,
    sequence          BIGINT,
    planned_start_at  TIMESTAMPTZ,
    due_at            TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL,
    last_seq          BIGINT NOT NULL,
    PRIMARY KEY (project_id, milestone_id)
);

CREATE TABLE metrics_phase (
    project_id  UUID NOT NULL,
    phase_id    TEXT NOT NULL,
    name        TEXT,
    sequence    BIGINT,
    last_seq    BIGINT NOT NULL,
    PRIMARY KEY (project_id, phase_id)
);

CREATE TABLE metrics_event_quarantine (
    project_id      UUID NOT NULL,
    seq             BIGINT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    error           TEXT NOT NULL,
    quarantined_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, seq)
);
