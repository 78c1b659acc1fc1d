-- Queries of the SQLite driver. Times are unix seconds (REAL); :now is passed in so
-- that one clock decides. Time strings a producer writes ('Y-m-d H:i:s', ISO 8601)
-- become unix seconds as the row comes in (migration_2's triggers). A plain
-- INSERT INTO queue (queue, payload) is enough to enqueue: every other column is
-- nullable or has a default (docs/design.md §4).

-- name: schema
-- chappyd schema for SQLite (idempotent)
CREATE TABLE IF NOT EXISTS queue (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue        TEXT    NOT NULL DEFAULT 'default',
    payload      TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    available_at REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    reserved_at  REAL,
    failed_at    REAL,
    exception    TEXT,
    created_at   REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    updated_at   REAL,
    token        TEXT,
    owner        TEXT,
    lease_until  REAL,
    unique_key   TEXT,
    unique_until TEXT,
    limit_key    TEXT,
    limit_concurrency INTEGER,
    limit_rate   INTEGER,
    limit_window_s REAL
);
-- only ready/delayed rows: the claim reads nothing else
CREATE INDEX IF NOT EXISTS queue_waiting ON queue (queue, available_at, id)
    WHERE reserved_at IS NULL AND failed_at IS NULL;
CREATE INDEX IF NOT EXISTS queue_owner ON queue (owner) WHERE owner IS NOT NULL;
CREATE INDEX IF NOT EXISTS queue_lease ON queue (lease_until) WHERE reserved_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS queue_failed ON queue (failed_at) WHERE failed_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS queue_workers (
    host       TEXT    NOT NULL,
    pid        INTEGER NOT NULL,
    queues     TEXT    NOT NULL,
    workers    INTEGER NOT NULL,
    busy       INTEGER NOT NULL,
    jobs_done  INTEGER NOT NULL,
    started_at REAL    NOT NULL,
    last_seen  REAL    NOT NULL,
    PRIMARY KEY (host, pid)
);
CREATE TABLE IF NOT EXISTS queue_paused (
    queue     TEXT PRIMARY KEY,
    paused_at REAL NOT NULL
);

-- name: migration_2
-- chappyd 2: times written as strings. Chappy.php's producer writes available_at,
-- created_at and updated_at as UTC 'Y-m-d H:i:s' strings; SQLite stores such text as
-- it is, and a claim would then compare text with numbers (and wait() subtract them).
-- These triggers turn every time string into unix seconds as the row comes in; a
-- string that is no time fails the job at once (InvalidPayload), so that no worker
-- ever reads it. The UPDATE converts rows stored before the triggers existed.
CREATE TRIGGER IF NOT EXISTS queue_times_insert AFTER INSERT ON queue
WHEN typeof(NEW.available_at) = 'text' OR typeof(NEW.reserved_at) = 'text' OR typeof(NEW.failed_at) = 'text' OR typeof(NEW.created_at) = 'text' OR typeof(NEW.updated_at) = 'text'
BEGIN
    UPDATE queue
       SET available_at = coalesce(CASE WHEN typeof(NEW.available_at) = 'text' THEN round((julianday(NEW.available_at) - 2440587.5) * 86400.0, 3) ELSE NEW.available_at END, ((julianday('now') - 2440587.5) * 86400.0)),
           reserved_at  = CASE WHEN typeof(NEW.reserved_at) = 'text' THEN round((julianday(NEW.reserved_at) - 2440587.5) * 86400.0, 3) ELSE NEW.reserved_at END,
           failed_at    = CASE WHEN (typeof(NEW.available_at) = 'text' AND julianday(NEW.available_at) IS NULL) THEN ((julianday('now') - 2440587.5) * 86400.0) ELSE CASE WHEN typeof(NEW.failed_at) = 'text' THEN round((julianday(NEW.failed_at) - 2440587.5) * 86400.0, 3) ELSE NEW.failed_at END END,
           exception    = CASE WHEN (typeof(NEW.available_at) = 'text' AND julianday(NEW.available_at) IS NULL)
                               THEN 'InvalidPayload: available_at ' || quote(NEW.available_at)
                                    || ' is not a time (unix seconds, ''Y-m-d H:i:s'' or ISO 8601 UTC)'
                               ELSE NEW.exception END,
           attempts     = CASE WHEN (typeof(NEW.available_at) = 'text' AND julianday(NEW.available_at) IS NULL) THEN max(NEW.attempts, 1) ELSE NEW.attempts END,
           created_at   = coalesce(CASE WHEN typeof(NEW.created_at) = 'text' THEN round((julianday(NEW.created_at) - 2440587.5) * 86400.0, 3) ELSE NEW.created_at END, ((julianday('now') - 2440587.5) * 86400.0)),
           updated_at   = CASE WHEN typeof(NEW.updated_at) = 'text' THEN round((julianday(NEW.updated_at) - 2440587.5) * 86400.0, 3) ELSE NEW.updated_at END
     WHERE id = NEW.id;
END;
CREATE TRIGGER IF NOT EXISTS queue_times_update
AFTER UPDATE OF available_at, reserved_at, failed_at, created_at, updated_at ON queue
WHEN typeof(NEW.available_at) = 'text' OR typeof(NEW.reserved_at) = 'text' OR typeof(NEW.failed_at) = 'text' OR typeof(NEW.created_at) = 'text' OR typeof(NEW.updated_at) = 'text'
BEGIN
    UPDATE queue
       SET available_at = coalesce(CASE WHEN typeof(NEW.available_at) = 'text' THEN round((julianday(NEW.available_at) - 2440587.5) * 86400.0, 3) ELSE NEW.available_at END, ((julianday('now') - 2440587.5) * 86400.0)),
           reserved_at  = CASE WHEN typeof(NEW.reserved_at) = 'text' THEN round((julianday(NEW.reserved_at) - 2440587.5) * 86400.0, 3) ELSE NEW.reserved_at END,
           failed_at    = CASE WHEN (typeof(NEW.available_at) = 'text' AND julianday(NEW.available_at) IS NULL) THEN ((julianday('now') - 2440587.5) * 86400.0) ELSE CASE WHEN typeof(NEW.failed_at) = 'text' THEN round((julianday(NEW.failed_at) - 2440587.5) * 86400.0, 3) ELSE NEW.failed_at END END,
           exception    = CASE WHEN (typeof(NEW.available_at) = 'text' AND julianday(NEW.available_at) IS NULL)
                               THEN 'InvalidPayload: available_at ' || quote(NEW.available_at)
                                    || ' is not a time (unix seconds, ''Y-m-d H:i:s'' or ISO 8601 UTC)'
                               ELSE NEW.exception END,
           attempts     = CASE WHEN (typeof(NEW.available_at) = 'text' AND julianday(NEW.available_at) IS NULL) THEN max(NEW.attempts, 1) ELSE NEW.attempts END,
           created_at   = coalesce(CASE WHEN typeof(NEW.created_at) = 'text' THEN round((julianday(NEW.created_at) - 2440587.5) * 86400.0, 3) ELSE NEW.created_at END, ((julianday('now') - 2440587.5) * 86400.0)),
           updated_at   = CASE WHEN typeof(NEW.updated_at) = 'text' THEN round((julianday(NEW.updated_at) - 2440587.5) * 86400.0, 3) ELSE NEW.updated_at END
     WHERE id = NEW.id;
END;
UPDATE queue
   SET available_at = coalesce(CASE WHEN typeof(available_at) = 'text' THEN round((julianday(available_at) - 2440587.5) * 86400.0, 3) ELSE available_at END, ((julianday('now') - 2440587.5) * 86400.0)),
           reserved_at  = CASE WHEN typeof(reserved_at) = 'text' THEN round((julianday(reserved_at) - 2440587.5) * 86400.0, 3) ELSE reserved_at END,
           failed_at    = CASE WHEN (typeof(available_at) = 'text' AND julianday(available_at) IS NULL) THEN ((julianday('now') - 2440587.5) * 86400.0) ELSE CASE WHEN typeof(failed_at) = 'text' THEN round((julianday(failed_at) - 2440587.5) * 86400.0, 3) ELSE failed_at END END,
           exception    = CASE WHEN (typeof(available_at) = 'text' AND julianday(available_at) IS NULL)
                               THEN 'InvalidPayload: available_at ' || quote(available_at)
                                    || ' is not a time (unix seconds, ''Y-m-d H:i:s'' or ISO 8601 UTC)'
                               ELSE exception END,
           attempts     = CASE WHEN (typeof(available_at) = 'text' AND julianday(available_at) IS NULL) THEN max(attempts, 1) ELSE attempts END,
           created_at   = coalesce(CASE WHEN typeof(created_at) = 'text' THEN round((julianday(created_at) - 2440587.5) * 86400.0, 3) ELSE created_at END, ((julianday('now') - 2440587.5) * 86400.0)),
           updated_at   = CASE WHEN typeof(updated_at) = 'text' THEN round((julianday(updated_at) - 2440587.5) * 86400.0, 3) ELSE updated_at END
 WHERE typeof(available_at) = 'text' OR typeof(reserved_at) = 'text' OR typeof(failed_at) = 'text' OR typeof(created_at) = 'text' OR typeof(updated_at) = 'text';
PRAGMA user_version = 2;

-- name: migration_3
-- chappyd 3: periodic jobs.
-- One row per (job, tick) ever enqueued or skipped: the primary key is
-- what refuses a second enqueue of a tick. Rows older than a day are pruned.
CREATE TABLE IF NOT EXISTS queue_schedule_ticks (
    job  TEXT    NOT NULL,
    tick INTEGER NOT NULL,
    PRIMARY KEY (job, tick)
);
-- Per schedule: the last enqueued tick (catch-up after downtime) and its job (no
-- pile-up while that job still waits). Never pruned.
CREATE TABLE IF NOT EXISTS queue_schedules (
    job         TEXT PRIMARY KEY,
    queue       TEXT NOT NULL,
    last_tick   INTEGER,
    last_job_id INTEGER
);
PRAGMA user_version = 3;

-- name: is_chappy_php_table
-- A queue table without chappyd's lease columns: Chappy.php's own migration made it.
SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'queue')
   AND NOT EXISTS (SELECT 1 FROM pragma_table_info('queue') WHERE name = 'owner')

-- name: adopt_chappy_php
-- Take over Chappy.php's queue table: SQLite cannot change a column's type or default,
-- so the table is rebuilt as chappyd's (see schema) with every row and id kept, in the
-- caller's transaction. Rows its stopped worker held become waiting again with their
-- attempts; failed rows stay failed with their exception; times become unix seconds
-- (migration_2's UPDATE, which runs next).
ALTER TABLE queue RENAME TO queue_chappy_php;

-- name: adopt_chappy_php_copy
INSERT INTO queue (id, queue, payload, attempts, available_at, reserved_at, failed_at,
                   exception, created_at, updated_at)
SELECT id, coalesce(queue, 'default'), coalesce(payload, ''), coalesce(attempts, 0),
       coalesce(available_at, created_at, ((julianday('now') - 2440587.5) * 86400.0)), NULL, failed_at, exception,
       coalesce(created_at, ((julianday('now') - 2440587.5) * 86400.0)), updated_at
  FROM queue_chappy_php ORDER BY id;
DROP TABLE queue_chappy_php;

-- name: adopted_counts
SELECT count(*) FILTER (WHERE failed_at IS NULL AND available_at <= :now),
       count(*) FILTER (WHERE failed_at IS NULL AND available_at > :now),
       count(*) FILTER (WHERE failed_at IS NOT NULL)
  FROM queue

-- name: unique_limits_columns
-- Unique jobs and limits: the columns a table made before them (version 3 or older)
-- lacks; _apply_schema adds each one missing before migration_4 runs (SQLite has no
-- ADD COLUMN IF NOT EXISTS). A fresh table gets them from `schema`.
unique_key TEXT
unique_until TEXT
limit_key TEXT
limit_concurrency INTEGER
limit_rate INTEGER
limit_window_s REAL

-- name: migration_4
-- chappyd 4: unique jobs and limits (the columns: unique_limits_columns above).
-- Unique jobs: a key is held by at most one job in a blocking state, the states in the
-- index's predicate: "done" keys while waiting or running (not failed), "started" keys
-- while waiting (not reserved, not failed). A finished job is deleted and a failed one
-- leaves the predicate, so the key is free the moment the row changes: no lock to leak.
CREATE UNIQUE INDEX IF NOT EXISTS queue_unique ON queue (unique_key)
    WHERE unique_key IS NOT NULL AND failed_at IS NULL
      AND (unique_until = 'done' OR reserved_at IS NULL);
-- A raw INSERT whose payload carries "unique_key" (a PHP producer) gets the columns
-- filled here; a key already held makes it fail with a UNIQUE constraint error.
CREATE TRIGGER IF NOT EXISTS queue_unique_from_payload AFTER INSERT ON queue
    WHEN NEW.unique_key IS NULL AND instr(NEW.payload, 'unique_key') > 0
     AND json_valid(NEW.payload)
     AND json_type(NEW.payload, '$.unique_key') = 'text'
BEGIN
    UPDATE queue SET unique_key = json_extract(NEW.payload, '$.unique_key'),
                     unique_until = CASE json_extract(NEW.payload, '$.unique_until')
                                    WHEN 'started' THEN 'started' ELSE 'done' END
     WHERE id = NEW.id;
END;

-- Limits: running jobs are counted from the rows themselves (reserved rows with the
-- same limit key), so no counter can be left behind by a process that dies; starts
-- within a rate's window are rows of queue_starts, pruned by the claim.
CREATE INDEX IF NOT EXISTS queue_limit_running ON queue (limit_key)
    WHERE reserved_at IS NOT NULL AND limit_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS queue_starts (
    limit_key  TEXT NOT NULL,
    started_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_starts_by_key ON queue_starts (limit_key, started_at);
PRAGMA user_version = 4;

-- name: insert
-- A key another job holds inserts nothing (then insert_holder finds that job, in the
-- same write transaction: nothing can change in between).
INSERT INTO queue (queue, payload, available_at, created_at, updated_at, unique_key,
                   unique_until, limit_key, limit_concurrency, limit_rate, limit_window_s)
VALUES (:queue, :payload, :available_at, :now, :now, :unique_key, :unique_until,
        :limit_key, :limit_concurrency, :limit_rate, :limit_window_s)
ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND failed_at IS NULL
      AND (unique_until = 'done' OR reserved_at IS NULL)
DO NOTHING
RETURNING id

-- name: insert_holder
SELECT id FROM queue
 WHERE unique_key = :unique_key AND unique_key IS NOT NULL AND failed_at IS NULL
   AND (unique_until = 'done' OR reserved_at IS NULL)

-- name: reserve
-- Charges the attempt at reservation, so a job that kills its worker runs out of tries.
-- A job whose limit is full is skipped (no attempt, never reserved) and the next ones
-- are taken: no job waits behind it. One row per run, so that each sees the last.
UPDATE queue
   SET attempts = attempts + 1, reserved_at = :now, lease_until = :now + :lease_s,
       token = lower(hex(randomblob(12))), owner = :owner, updated_at = :now
 WHERE id IN (SELECT id FROM queue q
               WHERE queue = :queue AND reserved_at IS NULL AND failed_at IS NULL
                 AND available_at <= :now
                 AND (limit_key IS NULL OR ((limit_concurrency IS NULL OR limit_concurrency > (
                      SELECT count(*) FROM queue r
                       WHERE r.limit_key = q.limit_key AND r.reserved_at IS NOT NULL
                         AND r.limit_key IS NOT NULL))
                 AND (limit_rate IS NULL OR limit_rate > (
                      SELECT count(*) FROM queue_starts s
                       WHERE s.limit_key = q.limit_key
                         AND s.started_at > :now - q.limit_window_s))))
               ORDER BY available_at, id
               LIMIT 1)
RETURNING id, queue, payload, attempts, token, reserved_at, available_at, limit_key,
          limit_rate, limit_window_s

-- name: record_start
INSERT INTO queue_starts (limit_key, started_at) VALUES (:limit_key, :now)

-- name: prune_starts
DELETE FROM queue_starts WHERE limit_key = :limit_key AND started_at <= :now - :window_s

-- name: next_available_at
SELECT min(available_at) FROM queue
 WHERE queue IN (SELECT value FROM json_each(:queues))
   AND reserved_at IS NULL AND failed_at IS NULL

-- name: has_queue_table
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'queue'

-- name: paused_queues
SELECT queue FROM queue_paused

-- name: ack
DELETE FROM queue WHERE id = :id AND token = :token

-- name: retry
-- A job back to waiting keeps its unique key only if no other job took it meanwhile
-- (a "started" key is free while its job runs); else it goes on without one.
UPDATE queue
   SET reserved_at = NULL, lease_until = NULL, token = NULL, owner = NULL,
       available_at = :available_at, exception = :error, updated_at = :now,
       unique_key = CASE WHEN unique_key IS NOT NULL AND EXISTS (
           SELECT 1 FROM queue o
            WHERE o.unique_key = queue.unique_key AND o.id <> queue.id
              AND ((o.unique_key IS NOT NULL AND o.failed_at IS NULL
                    AND (o.unique_until = 'done' OR o.reserved_at IS NULL))))
           THEN NULL ELSE unique_key END
 WHERE id = :id AND token = :token

-- name: fail
UPDATE queue
   SET reserved_at = NULL, lease_until = NULL, token = NULL, owner = NULL,
       failed_at = :now, exception = :error, updated_at = :now
 WHERE id = :id AND token = :token

-- name: release
-- The attempt is refunded: a stop must not burn attempts.
UPDATE queue
   SET reserved_at = NULL, lease_until = NULL, token = NULL, owner = NULL,
       attempts = max(attempts - 1, 0), updated_at = :now,
       unique_key = CASE WHEN unique_key IS NOT NULL AND EXISTS (
           SELECT 1 FROM queue o
            WHERE o.unique_key = queue.unique_key AND o.id <> queue.id
              AND ((o.unique_key IS NOT NULL AND o.failed_at IS NULL
                    AND (o.unique_until = 'done' OR o.reserved_at IS NULL))))
           THEN NULL ELSE unique_key END
 WHERE id = :id AND token = :token

-- name: release_owner
-- Two released jobs with one key: the older keeps it (the "o.id < queue.id" term).
UPDATE queue
   SET reserved_at = NULL, lease_until = NULL, token = NULL, owner = NULL,
       attempts = max(attempts - 1, 0), updated_at = :now,
       unique_key = CASE WHEN unique_key IS NOT NULL AND EXISTS (
           SELECT 1 FROM queue o
            WHERE o.unique_key = queue.unique_key AND o.id <> queue.id
              AND ((o.unique_key IS NOT NULL AND o.failed_at IS NULL
                    AND (o.unique_until = 'done' OR o.reserved_at IS NULL))
               OR (o.owner = :owner AND o.reserved_at IS NOT NULL AND o.id < queue.id)))
           THEN NULL ELSE unique_key END
 WHERE owner = :owner AND reserved_at IS NOT NULL

-- name: held_by
SELECT id, queue, payload, attempts, token, reserved_at FROM queue
 WHERE owner = :owner AND reserved_at IS NOT NULL
 ORDER BY id

-- name: extend_lease
UPDATE queue SET lease_until = :now + :lease_s
 WHERE owner = :owner AND reserved_at IS NOT NULL

-- name: expire_leases
UPDATE queue
   SET reserved_at = NULL, lease_until = NULL, token = NULL, owner = NULL,
       exception = 'LeaseExpired: the worker holding this job stopped renewing its lease',
       updated_at = :now,
       unique_key = CASE WHEN unique_key IS NOT NULL AND EXISTS (
           SELECT 1 FROM queue o
            WHERE o.unique_key = queue.unique_key AND o.id <> queue.id
              AND ((o.unique_key IS NOT NULL AND o.failed_at IS NULL
                    AND (o.unique_until = 'done' OR o.reserved_at IS NULL))
               OR (o.reserved_at IS NOT NULL AND o.lease_until < :now AND o.id < queue.id)))
           THEN NULL ELSE unique_key END
 WHERE reserved_at IS NOT NULL AND lease_until < :now

-- name: heartbeat
INSERT INTO queue_workers (host, pid, queues, workers, busy, jobs_done, started_at, last_seen)
VALUES (:host, :pid, :queues, :workers, :busy, :jobs_done, :started_at, :last_seen)
ON CONFLICT (host, pid) DO UPDATE
   SET queues = excluded.queues, workers = excluded.workers, busy = excluded.busy,
       jobs_done = excluded.jobs_done, started_at = excluded.started_at,
       last_seen = excluded.last_seen

-- name: remove_worker
DELETE FROM queue_workers WHERE host = :host AND pid = :pid

-- name: workers
SELECT host, pid, queues, workers, busy, jobs_done, started_at, last_seen
  FROM queue_workers WHERE last_seen >= :since ORDER BY host, pid

-- name: prune_workers
DELETE FROM queue_workers WHERE last_seen < :since

-- name: pause
INSERT INTO queue_paused (queue, paused_at) VALUES (:queue, :now) ON CONFLICT DO NOTHING

-- name: resume
DELETE FROM queue_paused WHERE queue = :queue

-- name: stats
SELECT queue,
       sum(reserved_at IS NULL AND failed_at IS NULL AND available_at <= :now),
       sum(reserved_at IS NULL AND failed_at IS NULL AND available_at > :now),
       sum(reserved_at IS NOT NULL),
       sum(failed_at IS NOT NULL),
       min(CASE WHEN reserved_at IS NULL AND failed_at IS NULL AND available_at <= :now
                THEN available_at END),
       sum(reserved_at IS NULL AND failed_at IS NULL AND available_at <= :now
           AND limit_key IS NOT NULL AND NOT ((limit_concurrency IS NULL OR limit_concurrency > (
                          SELECT count(*) FROM queue r
                           WHERE r.limit_key = q.limit_key AND r.reserved_at IS NOT NULL
                             AND r.limit_key IS NOT NULL))
                     AND (limit_rate IS NULL OR limit_rate > (
                          SELECT count(*) FROM queue_starts s
                           WHERE s.limit_key = q.limit_key
                             AND s.started_at > :now - q.limit_window_s))))
  FROM queue q GROUP BY queue

-- name: has_work
-- For --stop-when-empty (see the PostgreSQL driver's): index probes, not stats' scan.
SELECT EXISTS (SELECT 1 FROM json_each(:queues) AS w
                WHERE EXISTS (SELECT 1 FROM queue q
                               WHERE q.queue = w.value AND q.reserved_at IS NULL
                                 AND q.failed_at IS NULL AND q.available_at <= :now))
    OR EXISTS (SELECT 1 FROM queue
                WHERE reserved_at IS NOT NULL
                  AND queue IN (SELECT value FROM json_each(:queues)))

-- name: get
SELECT id, queue, payload, attempts, available_at, reserved_at, failed_at, exception, created_at
  FROM queue WHERE id = :id

-- name: failed
SELECT id, queue, payload, attempts, available_at, reserved_at, failed_at, exception, created_at
  FROM queue
 WHERE failed_at IS NOT NULL AND (:queue IS NULL OR queue = :queue)
 ORDER BY failed_at DESC, id DESC
 LIMIT :limit

-- name: retry_failed
UPDATE queue SET failed_at = NULL, attempts = 0, available_at = :now, updated_at = :now,
       unique_key = CASE WHEN unique_key IS NOT NULL AND EXISTS (
           SELECT 1 FROM queue o
            WHERE o.unique_key = queue.unique_key AND o.id <> queue.id
              AND ((o.unique_key IS NOT NULL AND o.failed_at IS NULL
                    AND (o.unique_until = 'done' OR o.reserved_at IS NULL))
               OR (o.failed_at IS NOT NULL AND o.id < queue.id
                   AND (:queue IS NULL OR o.queue = :queue)
                   AND (:ids IS NULL OR o.id IN (SELECT value FROM json_each(:ids))))))
           THEN NULL ELSE unique_key END
 WHERE failed_at IS NOT NULL AND (:queue IS NULL OR queue = :queue)
   AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))

-- name: forget
DELETE FROM queue
 WHERE failed_at IS NOT NULL AND id IN (SELECT value FROM json_each(:ids))

-- name: flush
DELETE FROM queue WHERE failed_at IS NOT NULL AND (:queue IS NULL OR queue = :queue)

-- name: clear
DELETE FROM queue WHERE queue = :queue AND reserved_at IS NULL AND failed_at IS NULL

-- name: tick_claim
-- The (job, tick) is taken by whoever inserts it first; RETURNING is empty for the rest.
INSERT INTO queue_schedule_ticks (job, tick) VALUES (:job, :tick)
ON CONFLICT DO NOTHING
RETURNING tick

-- name: tick_waiting
-- Is the schedule's last enqueued run still waiting (ready, delayed, or backing off)?
SELECT 1 FROM queue_schedules s JOIN queue q ON q.id = s.last_job_id
 WHERE s.job = :job AND q.reserved_at IS NULL AND q.failed_at IS NULL

-- name: tick_enqueued
INSERT INTO queue_schedules (job, queue, last_tick, last_job_id)
VALUES (:job, :queue, :tick, :job_id)
ON CONFLICT (job) DO UPDATE
   SET queue = excluded.queue, last_tick = max(coalesce(last_tick, 0), excluded.last_tick),
       last_job_id = excluded.last_job_id

-- name: tick_prune
DELETE FROM queue_schedule_ticks WHERE job = :job AND tick < :before

-- name: last_ticks
SELECT job, last_tick FROM queue_schedules
 WHERE last_tick IS NOT NULL AND job IN (SELECT value FROM json_each(:jobs))

-- name: jobs
-- One page of a state's jobs for the dashboard; {state} and {order} are fixed fragments
-- chosen by the driver (never user text). A payload that is not JSON has no job name.
SELECT id, queue, payload, attempts, available_at, reserved_at, failed_at, exception, created_at
  FROM queue
 WHERE {state} AND (:queue IS NULL OR queue = :queue)
   AND (:job IS NULL OR (json_valid(payload) AND json_extract(payload, '$.job') = :job))
 ORDER BY {order}
 LIMIT :limit OFFSET :offset

-- name: count_jobs
SELECT count(*) FROM queue
 WHERE {state} AND (:queue IS NULL OR queue = :queue)
   AND (:job IS NULL OR (json_valid(payload) AND json_extract(payload, '$.job') = :job))
