-- Projects, the append-only event log and its per-project gapless sequence.
--
-- seq is assigned by a BEFORE INSERT row trigger. On the first row of a project in a
-- transaction it locks the project's event_stream_head row (held until commit, so one
-- project's sequence numbers commit in order and a rollback leaves no hole) and reads
-- last_seq; later rows of the same transaction count on in a transaction-local setting
-- (which a savepoint rollback restores too). A statement-level AFTER trigger writes the
-- head back once per statement, so a bulk insert costs one head update, not one per row.
-- Any writer gets this, including producers that insert with plain SQL or COPY.

CREATE TABLE project (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'archived')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE event_stream_head (
    project_id  UUID PRIMARY KEY REFERENCES project (id),
    last_seq    BIGINT NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);

-- id is a global reference for people and tools, never used for ordering (seq is).
-- No foreign key to project: the seq trigger creates the project row before the first
-- event of a project, and a per-row key check would halve bulk insert speed.
CREATE TABLE event_log (
    id              BIGSERIAL NOT NULL,
    project_id      UUID NOT NULL,
    seq             BIGINT NOT NULL CHECK (seq > 0),
    event_id        TEXT NOT NULL,
    entity_type     TEXT NOT NULL,
    entity_id       TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         JSONB NOT NULL DEFAULT '{}'::jsonb,
    occurred_at     TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    caused_by       TEXT,
    correlation_id  TEXT,
    PRIMARY KEY (project_id, seq),
    UNIQUE (project_id, event_id)
);

CREATE FUNCTION event_log_assign_seq() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    counter_name TEXT := 'flowmeter.seq_' || replace(NEW.project_id::text, '-', '');
    counter TEXT := current_setting(counter_name, true);
    next_seq BIGINT;
BEGIN
    IF counter IS NULL OR counter = '' THEN
        -- First row of this project in this transaction: make sure the project and its
        -- head exist, then lock the head until commit.
        INSERT INTO project (id, name) VALUES (NEW.project_id, NEW.project_id::text)
            ON CONFLICT (id) DO NOTHING;
        INSERT INTO event_stream_head (project_id, last_seq) VALUES (NEW.project_id, 0)
            ON CONFLICT (project_id) DO NOTHING;
        SELECT last_seq INTO next_seq FROM event_stream_head
            WHERE project_id = NEW.project_id FOR UPDATE;
    ELSE
        next_seq := counter::bigint;
    END IF;
    -- A duplicate must not consume a number. Checked under the head lock, so a
    -- concurrent writer of the same event_id has committed (or rolled back) by now.
    IF EXISTS (SELECT 1 FROM event_log
               WHERE project_id = NEW.project_id AND event_id = NEW.event_id) THEN
        PERFORM set_config(counter_name, next_seq::text, true);
        RETURN NULL;
    END IF;
    next_seq := next_seq + 1;
    PERFORM set_config(counter_name, next_seq::text, true);
    NEW.seq := next_seq;
    RETURN NEW;
END
$$;

CREATE TRIGGER event_log_assign_seq
    BEFORE INSERT ON event_log
    FOR EACH ROW EXECUTE FUNCTION event_log_assign_seq();

CREATE FUNCTION event_log_write_heads() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE event_stream_head h
       SET last_seq = n.max_seq
      FROM (SELECT project_id, max(seq) AS max_seq FROM new_rows GROUP BY project_id) n
     WHERE h.project_id = n.project_id AND h.last_seq < n.max_seq;
    RETURN NULL;
END
$$;

CREATE TRIGGER event_log_write_heads
    AFTER INSERT ON event_log
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION event_log_write_heads();

CREATE FUNCTION event_log_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'event_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER event_log_append_only
    BEFORE UPDATE OR DELETE ON event_log
    FOR EACH ROW EXECUTE FUNCTION event_log_reject_change();

CREATE TRIGGER event_log_no_truncate
    BEFORE TRUNCATE ON event_log
    FOR EACH STATEMENT EXECUTE FUNCTION event_log_reject_change();
