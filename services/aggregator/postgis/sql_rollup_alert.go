package postgis

// SQL of the alert roll-ups and the gauges (store_rollup_alert.go).

// sqlRollupGauges returns, for each roll-up $1…$5 (unit, layer, window,
// start, start of its day; numbered from 1 in that order), the alerts active
// per grade and the reports open at the end of its window: the changes of
// the 1d roll-ups of the unit and layer before its day, plus those of the
// roll-ups of its window length from its day to its own start (two range
// reads of rollup's primary key). A roll-up with no such row is not returned.
const sqlRollupGauges = `SELECT i.ord,
    coalesce(sum(r.activated0_n - r.ended0_n), 0)::bigint, coalesce(sum(r.activated1_n - r.ended1_n), 0)::bigint,
    coalesce(sum(r.activated2_n - r.ended2_n), 0)::bigint, coalesce(sum(r.activated3_n - r.ended3_n), 0)::bigint,
    coalesce(sum(r.activated4_n - r.ended4_n), 0)::bigint, coalesce(sum(r.open_n - r.closed_n), 0)::bigint
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
    WITH ORDINALITY AS i (unit_code, layer, win, start, day, ord)
CROSS JOIN LATERAL (
    SELECT activated0_n, activated1_n, activated2_n, activated3_n, activated4_n,
        ended0_n, ended1_n, ended2_n, ended3_n, ended4_n, open_n, closed_n
    FROM rollup WHERE unit_code = i.unit_code AND layer = i.layer AND win = '1d' AND window_start < i.day
    UNION ALL
    SELECT activated0_n, activated1_n, activated2_n, activated3_n, activated4_n,
        ended0_n, ended1_n, ended2_n, ended3_n, ended4_n, open_n, closed_n
    FROM rollup WHERE unit_code = i.unit_code AND layer = i.layer AND win = i.win
        AND window_start >= i.day AND window_start <= i.start
) r
GROUP BY i.ord`
