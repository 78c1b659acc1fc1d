-- Queries of the SQLite driver. Times are unix seconds (REAL); :now is passed in so
-- that one clock decides. A plain INSERT INTO queue (queue, payload) is enough to
-- enqueue: every other column is nullable or has a default (DESIGN §6).

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

-- name: unique_limits_columns
-- Unique jobs and limits: the columns a table made before them lacks, added by
-- SqliteDriver one by one when missing (SQLite has no ADD COLUMN IF NOT EXISTS).
unique_key TEXT
unique_until TEXT
limit_key TEXT
limit_concurrency INTEGER
limit_rate INTEGER
limit_window_s REAL

-- name: unique_limits_schema
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
