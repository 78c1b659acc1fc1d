<?php
// Writes into a queue exactly as the Chappy.php framework does today: its
// queue:migration, DatabaseQueueDriver::push (toPayload() or dispatch() payloads, times
// as UTC 'Y-m-d H:i:s' strings) and its Redis driver's LPUSH. The test suite runs it
// with Debian's php-cli (php-sqlite3, php-pgsql, php-redis) against a real store.
//
//   php chappy_php.php migrate  PDO_DSN
//   php chappy_php.php push     PDO_DSN QUEUE JOB NAME DELAY_S [dispatch|failed|AT]
//   php chappy_php.php lpush    HOST:PORT[:DB] QUEUE JOB NAME DELAY_S [dispatch]
// push and lpush print the new row's id (push) or the list length (lpush).

declare(strict_types=1);

function utc(int $delay = 0): string
{
    // Chappy.php's DateTime::nowPlusSeconds(): a UTC 'Y-m-d H:i:s' string
    return gmdate('Y-m-d H:i:s', time() + $delay);
}

function connect(string $dsn): PDO
{
    $pdo = new PDO($dsn);
    $pdo->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_EXCEPTION);
    return $pdo;
}

function migrate(PDO $pdo): void
{
    // Chappy.php's queue:migration: TIMESTAMP columns and no lease columns
    $id = $pdo->getAttribute(PDO::ATTR_DRIVER_NAME) === 'pgsql'
        ? 'id BIGSERIAL PRIMARY KEY'
        : 'id INTEGER PRIMARY KEY AUTOINCREMENT';
    $pdo->exec("CREATE TABLE IF NOT EXISTS queue (
        $id,
        queue VARCHAR(255) NOT NULL DEFAULT 'default',
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        reserved_at TIMESTAMP NULL,
        available_at TIMESTAMP NOT NULL,
        failed_at TIMESTAMP NULL,
        exception TEXT NULL,
        created_at TIMESTAMP NULL,
        updated_at TIMESTAMP NULL
    )");
    $pdo->exec('CREATE INDEX IF NOT EXISTS queue_queue_index ON queue (queue)');
}

function payload(string $job, string $name, int $delay, string $form): array
{
    if (!in_array($form, ['', 'dispatch', 'failed'], true)) {
        // a time as some producer wrote it ('next tuesday')
        return ['job' => $job, 'data' => ['name' => $name], 'available_at' => $form,
                'max_attempts' => 3];
    }
    if ($form === 'dispatch') {
        // QueueManager::dispatch(): attempts and queued_at, no available_at/max_attempts
        return ['job' => $job, 'data' => ['name' => $name], 'attempts' => 0,
                'queued_at' => utc()];
    }
    // Job::toPayload()
    return ['job' => $job, 'data' => ['name' => $name], 'available_at' => utc($delay),
            'max_attempts' => 3];
}

function push(PDO $pdo, string $queue, array $payload, string $form): string
{
    // DatabaseQueueDriver::push: the payload's available_at into the column, the
    // Queue model's beforeSave() times as strings
    $availableAt = $payload['available_at'] ?? utc();
    $failedAt = null;
    $exception = null;
    if ($form === 'failed') {
        $failedAt = utc();
        $exception = 'RuntimeException: the mail server said no';
    }
    $now = utc();
    $stmt = $pdo->prepare('INSERT INTO queue (queue, payload, attempts, available_at,
        failed_at, exception, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    $stmt->execute([$queue, json_encode($payload), $form === 'failed' ? 3 : 0,
                    $availableAt, $failedAt, $exception, $now, $now]);
    return $pdo->getAttribute(PDO::ATTR_DRIVER_NAME) === 'pgsql'
        ? (string) $pdo->query('SELECT lastval()')->fetchColumn()
        : (string) $pdo->lastInsertId();
}

$argv += array_fill(0, 8, '');
[, $command, $target, $queue, $job, $name, $delay, $form] = $argv;
switch ($command) {
    case 'migrate':
        migrate(connect($target));
        break;
    case 'push':
        $pdo = connect($target);
        echo push($pdo, $queue, payload($job, $name, (int) $delay, $form), $form), "\n";
        break;
    case 'lpush':
        [$host, $port, $db] = explode(':', $target . ':0');
        $redis = new Redis();
        $redis->connect($host, (int) $port);
        $redis->select((int) $db);
        echo $redis->lPush($queue, json_encode(payload($job, $name, (int) $delay, $form))), "\n";
        break;
    default:
        fwrite(STDERR, "usage: chappy_php.php migrate|push|lpush ...\n");
        exit(2);
}
