package postgis

// sqlSetStatementTimeoutFenced is sqlSetStatementTimeout that also checks,
// in the same round trip, that partition $2 is still held at epoch $3
// (iochub_partition_fence, migration 00031), keeping its row share-locked
// until the transaction ends.
const sqlSetStatementTimeoutFenced = `SELECT set_config('statement_timeout', $1, true), iochub_partition_fence($2, $3)`

// sqlPartitionFence checks that partition $1 is still held at epoch $2,
// keeping its row share-locked until the transaction ends (a batch started
// beside the batch before checks it when it is finished: store_overlap.go).
const sqlPartitionFence = `SELECT iochub_partition_fence($1, $2)`

// sqlSetLockTimeout bounds the wait for a lock by $1 until the transaction ends.
const sqlSetLockTimeout = `SELECT set_config('lock_timeout', $1, true)`

// sqlAcquirePartition bumps the epoch of partition $1 for holder $2 and
// returns it. The update waits for the write transactions of the previous
// holder, which share-lock the row.
const sqlAcquirePartition = `
INSERT INTO aggregator_partition (partition, epoch, holder) VALUES ($1, 1, $2)
ON CONFLICT (partition) DO UPDATE
SET epoch = aggregator_partition.epoch + 1, holder = excluded.holder, acquired_at = now()
RETURNING epoch`

// sqlCurrentProvinces lists the codes of the provinces valid now.
const sqlCurrentProvinces = `
SELECT DISTINCT code FROM admin_unit
WHERE level = 'province' AND valid_from <= now() AND (valid_to IS NULL OR valid_to > now())
ORDER BY code`
