-- Changes, deployments and incidents (SPEC §19), one row per entity, written by the fold in
-- the transaction that advances the checkpoint. Each row holds the entity's facts as the
-- fold keeps them (`facts`: the latest event of each kind in canonical order) and, as
-- typed columns, what the API reads for the DORA trends and breakdowns.
CREATE TABLE metrics_change (
    project_id    UUID NOT NULL,
    change_id     TEXT COLLATE "C" NOT NULL,
    committed_at  TIMESTAMPTZ NOT NULL,
    service       TEXT,
    facts         JSONB NOT NULL,
    last_seq      BIGINT NOT NULL,
    PRIMARY KEY (project_id, change_id)
);

CREATE TABLE metrics_deployment (
    project_id    UUID NOT NULL,
    deployment_id TEXT COLLATE "C" NOT NULL,
    environment   TEXT,
    service       TEXT,
    -- The latest deployment_finished's time and status (NULL until it finished).
    finished_at   TIMESTAMPTZ,
    status        TEXT CHECK (status IN ('success', 'failure', 'cancelled')),
    change_ids    TEXT[] NOT NULL DEFAULT '{}',
    facts         JSONB NOT NULL,
    last_seq      BIGINT NOT NULL,
    PRIMARY KEY (project_id, deployment_id)
);

CREATE TABLE metrics_incident (
    project_id    UUID NOT NULL,
    incident_id   TEXT COLLATE "C" NOT NULL,
    service       TEXT,
    opened_at     TIMESTAMPTZ,
    resolved_at   TIMESTAMPTZ,
    caused_by_deployment_ids TEXT[] NOT NULL DEFAULT '{}',
    facts         JSONB NOT NULL,
    last_seq      BIGINT NOT NULL,
    PRIMARY KEY (project_id, incident_id)
);
