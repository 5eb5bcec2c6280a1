#!/usr/bin/env bash
# Rolls the metrics subsystem out of a Flowmeter database (SPEC §8).
#
#   scripts/rollback_metrics.sh [--dry-run] [--confirm]
#
# Drops every object the metrics migrations (migrations/NNNN_metrics_*.sql) created: views,
# tables (with their indexes, constraints, triggers, sequences and row types), and any
# function, procedure, type, domain, sequence, trigger, index or constraint named metrics_*
# that is left, then deletes the schema_migrations rows of those migrations and verifies
# that nothing named metrics_* remains. Objects are found in the catalog by their metrics_
# prefix, so metrics migrations added later are covered too. The event log, projects and
# API keys are kept; the read model is rebuilt from the event log when the metrics release
# starts again (its migrations re-apply and the worker folds from seq 1).
#
#   --dry-run   print what would be done and change nothing
#   --confirm   do it without asking (otherwise an interactive prompt asks first)
#
# Needs psql and FLOWMETER_DATABASE_URL (or DATABASE_URL). Everything runs in one
# transaction with ON_ERROR_STOP: on any error nothing is changed and the exit status is
# non-zero. Running it again after a rollback is harmless (there is nothing left to drop).
# Stop the worker and the API first: a running process holding a lock makes the rollback
# fail after the lock timeout (30 s) instead of waiting forever.
set -euo pipefail

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "rollback_metrics: $*" >&2; exit 1; }

dry_run=0
confirm=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) dry_run=1 ;;
        --confirm) confirm=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $arg" ;;
    esac
done

url=${FLOWMETER_DATABASE_URL:-${DATABASE_URL:-}}
[ -n "$url" ] || die "set FLOWMETER_DATABASE_URL (or DATABASE_URL) to the database to roll back"
command -v psql >/dev/null 2>&1 || die "psql is missing (Debian: apt-get install postgresql-client)"

# Every statement of the rollback, in an order that respects dependencies: triggers and
# constraints on tables that stay, views, tables, then whatever is left on its own
# (indexes on tables that stay, routines, types, sequences). Objects that go with a table
# (its indexes, constraints, triggers, owned sequences, row and array types) are left to it.
# Names are matched in the current schema with `metrics\_%` (the underscore is literal).
read -r -d '' PLAN_SQL <<'SQL' || true
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = current_schema()),
metrics_table AS (
    SELECT c.oid FROM pg_class c JOIN ns ON c.relnamespace = ns.oid
     WHERE c.relname LIKE 'metrics\_%' AND c.relkind IN ('r', 'p', 'f')
),
plan (step, name, statement) AS (
    SELECT 1, t.tgname::text, format('DROP TRIGGER %I ON %s', t.tgname, t.tgrelid::regclass)
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN ns ON c.relnamespace = ns.oid
     WHERE NOT t.tgisinternal AND t.tgname LIKE 'metrics\_%'
       AND t.tgrelid NOT IN (SELECT oid FROM metrics_table)
    UNION ALL
    SELECT 2, k.conname::text, format('ALTER TABLE %s DROP CONSTRAINT %I', k.conrelid::regclass, k.conname)
      FROM pg_constraint k JOIN ns ON k.connamespace = ns.oid
     WHERE k.conname LIKE 'metrics\_%' AND k.conrelid <> 0
       AND k.conrelid NOT IN (SELECT oid FROM metrics_table)
    UNION ALL
    -- One statement per kind, so views on views and keys between metrics tables need no order.
    SELECT 3, string_agg(c.relname, ', ' ORDER BY c.relname),
           'DROP VIEW ' || string_agg(quote_ident(c.relname), ', ' ORDER BY c.relname)
      FROM pg_class c JOIN ns ON c.relnamespace = ns.oid
     WHERE c.relname LIKE 'metrics\_%' AND c.relkind = 'v'
    HAVING count(*) > 0
    UNION ALL
    SELECT 3, c.relname::text, format('DROP MATERIALIZED VIEW %I', c.relname)
      FROM pg_class c JOIN ns ON c.relnamespace = ns.oid
     WHERE c.relname LIKE 'metrics\_%' AND c.relkind = 'm'
    UNION ALL
    SELECT 4, string_agg(c.relname, ', ' ORDER BY c.relname),
           'DROP TABLE ' || string_agg(quote_ident(c.relname), ', ' ORDER BY c.relname)
      FROM pg_class c WHERE c.oid IN (SELECT oid FROM metrics_table)
    HAVING count(*) > 0
    UNION ALL
    -- Indexes on tables that stay (a constraint's index went with step 2).
    SELECT 5, c.relname::text, format('DROP INDEX %I', c.relname)
      FROM pg_class c JOIN ns ON c.relnamespace = ns.oid JOIN pg_index i ON i.indexrelid = c.oid
     WHERE c.relname LIKE 'metrics\_%' AND c.relkind IN ('i', 'I')
       AND i.indrelid NOT IN (SELECT oid FROM metrics_table)
       AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid AND k.conrelid = i.indrelid)
    UNION ALL
    SELECT 6, p.oid::regprocedure::text,
           format('DROP %s %s', CASE p.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'ROUTINE' END,
                  p.oid::regprocedure)
      FROM pg_proc p JOIN ns ON p.pronamespace = ns.oid
     WHERE p.proname LIKE 'metrics\_%'
    UNION ALL
    -- Types of their own (enum, composite, domain, range); a table's row and array types
    -- and a range's multirange go with their owner.
    SELECT 7, t.typname::text,
           format('DROP %s %I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.typname)
      FROM pg_type t JOIN ns ON t.typnamespace = ns.oid
     WHERE t.typname LIKE 'metrics\_%' AND t.typtype IN ('e', 'c', 'd', 'r')
       AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
    UNION ALL
    -- Sequences not owned by a metrics table's column (those go with the table).
    SELECT 8, c.relname::text, format('DROP SEQUENCE %I', c.relname)
      FROM pg_class c JOIN ns ON c.relnamespace = ns.oid
     WHERE c.relname LIKE 'metrics\_%' AND c.relkind = 'S'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                          AND d.deptype IN ('a', 'i')
                          AND d.refobjid IN (SELECT oid FROM metrics_table))
)
SELECT step, name, statement FROM plan ORDER BY step, name
SQL

# The schema_migrations rows of the metrics migrations (none when the table is missing).
read -r -d '' MIGRATIONS_SQL <<'SQL' || true
SELECT version FROM schema_migrations WHERE version ~ '^[0-9]{4}_metrics_' ORDER BY version
SQL

# Whatever named metrics_* is still there; empty after a complete rollback.
read -r -d '' LEFTOVERS_SQL <<'SQL' || true
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
SELECT 'relation ' || c.relname FROM pg_class c JOIN ns ON c.relnamespace = ns.oid WHERE c.relname LIKE 'metrics\_%'
UNION ALL
SELECT 'type ' || t.typname FROM pg_type t JOIN ns ON t.typnamespace = ns.oid
 WHERE t.typname LIKE 'metrics\_%' OR t.typname LIKE '\_metrics\_%'
UNION ALL
SELECT 'routine ' || p.proname FROM pg_proc p JOIN ns ON p.pronamespace = ns.oid WHERE p.proname LIKE 'metrics\_%'
UNION ALL
SELECT 'trigger ' || t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN ns ON c.relnamespace = ns.oid
 WHERE t.tgname LIKE 'metrics\_%'
UNION ALL
SELECT 'constraint ' || k.conname FROM pg_constraint k JOIN ns ON k.connamespace = ns.oid WHERE k.conname LIKE 'metrics\_%'
UNION ALL
SELECT 'schema_migrations row ' || version FROM schema_migrations WHERE version ~ '^[0-9]{4}_metrics_'
SQL

run_psql() { psql "$url" -X -q -v ON_ERROR_STOP=1 "$@"; }

# A URL without its password, for messages.
shown_url=$(printf '%s' "$url" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#')

has_migrations_table=$(run_psql -At -c "SELECT to_regclass('schema_migrations') IS NOT NULL") \
    || die "cannot query $shown_url"
[ "$has_migrations_table" = t ] || die "$shown_url has no schema_migrations table: is this a Flowmeter database?"

plan=$(run_psql -At -F $'\t' -c "$PLAN_SQL") || die "reading the catalog of $shown_url failed"
migrations=$(run_psql -At -c "$MIGRATIONS_SQL") || die "reading schema_migrations failed"
statements=$(printf '%s\n' "$plan" | sed '/^$/d' | cut -f3)
object_count=$(printf '%s\n' "$plan" | sed '/^$/d' | wc -l)
migration_count=$(printf '%s\n' "$migrations" | sed '/^$/d' | wc -l)

echo "rollback_metrics: database $shown_url"
echo "rollback_metrics: $object_count statement(s) to drop metrics objects, $migration_count schema_migrations row(s) to delete"
if [ "$object_count" -gt 0 ]; then
    printf '%s\n' "$statements" | sed 's/^/  /; s/$/;/'
fi
if [ "$migration_count" -gt 0 ]; then
    printf '%s\n' "$migrations" | sed "s/^/  DELETE FROM schema_migrations WHERE version = '/; s/\$/';/"
fi

if [ "$dry_run" = 1 ]; then
    echo "rollback_metrics: dry run, nothing changed"
    exit 0
fi

if [ "$confirm" != 1 ]; then
    [ -t 0 ] || die "not a terminal: pass --confirm to roll back without the prompt (or --dry-run)"
    printf 'Drop the metrics subsystem from %s? The event log, projects and API keys are kept. Type "rollback" to go on: ' "$shown_url"
    read -r answer || answer=
    [ "$answer" = rollback ] || die "not confirmed; nothing changed"
fi

# One transaction: discover again under the transaction (so an object added since the
# listing above is not missed), drop, delete the bookkeeping rows, verify, commit.
run_psql --single-transaction <<SQL || die "the rollback failed (see the error above); its transaction was rolled back, nothing changed"
SET LOCAL lock_timeout = '30s';
DO \$rollback\$
DECLARE
    r record;
BEGIN
    FOR r IN ${PLAN_SQL} LOOP
        EXECUTE r.statement;
    END LOOP;
END
\$rollback\$;
DELETE FROM schema_migrations WHERE version ~ '^[0-9]{4}_metrics_';
DO \$verify\$
DECLARE
    leftovers text;
BEGIN
    SELECT string_agg(item, ', ') INTO leftovers FROM (${LEFTOVERS_SQL}) AS left_behind (item);
    IF leftovers IS NOT NULL THEN
        RAISE EXCEPTION 'metrics objects left after the rollback: %', leftovers;
    END IF;
END
\$verify\$;
SQL

echo "rollback_metrics: done; nothing named metrics_* is left and the metrics migrations are unrecorded"
