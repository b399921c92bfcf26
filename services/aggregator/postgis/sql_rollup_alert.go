package postgis

// SQL of the alert roll-ups and the gauges (store_rollup_alert.go).

// sqlRollupGauges returns, for each roll-up $1…$5 (unit, layer, window,
// start, start of its day; numbered from 1 in that order), the alerts active
// per grade and the reports open at the end of its window: the totals of the
// changes of its unit and layer (rollup_gauge_total) less the changes after
// the window, those of the 1d roll-ups of later days and of the roll-ups of
// its window length later in its day (two range reads of rollup's primary
// key, empty for a batch of current events).
const sqlRollupGauges = `SELECT i.ord,
    coalesce(t.active0_n, 0) - coalesce(l.a0, 0), coalesce(t.active1_n, 0) - coalesce(l.a1, 0),
    coalesce(t.active2_n, 0) - coalesce(l.a2, 0), coalesce(t.active3_n, 0) - coalesce(l.a3, 0),
    coalesce(t.active4_n, 0) - coalesce(l.a4, 0), coalesce(t.open_n, 0) - coalesce(l.o, 0)
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
    WITH ORDINALITY AS i (unit_code, layer, win, start, day, ord)
LEFT JOIN rollup_gauge_total t ON t.unit_code = i.unit_code AND t.layer = i.layer
CROSS JOIN LATERAL (
    SELECT sum(r.activated0_n - r.ended0_n)::bigint AS a0, sum(r.activated1_n - r.ended1_n)::bigint AS a1,
        sum(r.activated2_n - r.ended2_n)::bigint AS a2, sum(r.activated3_n - r.ended3_n)::bigint AS a3,
        sum(r.activated4_n - r.ended4_n)::bigint AS a4, sum(r.open_n - r.closed_n)::bigint AS o
    FROM (
        SELECT activated0_n, activated1_n, activated2_n, activated3_n, activated4_n,
            ended0_n, ended1_n, ended2_n, ended3_n, ended4_n, open_n, closed_n
        FROM rollup WHERE unit_code = i.unit_code AND layer = i.layer AND win = '1d' AND window_start > i.day
        UNION ALL
        SELECT activated0_n, activated1_n, activated2_n, activated3_n, activated4_n,
            ended0_n, ended1_n, ended2_n, ended3_n, ended4_n, open_n, closed_n
        FROM rollup WHERE unit_code = i.unit_code AND layer = i.layer AND win = i.win
            AND window_start > i.start AND window_start < i.day + interval '24 hours'
    ) r
) l`

// sqlGaugeTotalsByBatch tells the totals' trigger (migration 00037) that
// the transaction adds its changes to the totals itself (sqlAddGaugeTotals).
const sqlGaugeTotalsByBatch = `SELECT set_config('iochub.gauge_totals', 'batch', true)`

// sqlAddGaugeTotals adds a batch's changes to the gauges' totals, per unit
// and layer ($1, $2; in key order, the lock order): alerts activated less
// ended per grade ($3…$7) and reports opened less closed ($8).
const sqlAddGaugeTotals = `INSERT INTO rollup_gauge_total AS t (unit_code, layer, active0_n, active1_n, active2_n, active3_n, active4_n, open_n)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
ON CONFLICT (unit_code, layer) DO UPDATE SET
    active0_n = t.active0_n + excluded.active0_n, active1_n = t.active1_n + excluded.active1_n,
    active2_n = t.active2_n + excluded.active2_n, active3_n = t.active3_n + excluded.active3_n,
    active4_n = t.active4_n + excluded.active4_n, open_n = t.open_n + excluded.open_n`
