-- Room on each page of sensor (the stations' current states) for the next
-- version of its rows. Every batch rewrites the state of each station it
-- carries; with full pages each new version went to another page, and every
-- index of the table (the key, the location's GiST, the province) got a new
-- entry for it. With half of each page free, the new version stays on its
-- page and, since no index covers a column a state update changes (a
-- station's location and province are written again with the same values),
-- the update is HOT: one heap write, no index writes, the old version pruned
-- by the next one to visit the page. Half, because a feed sends its stations
-- together: one batch updates every row of the pages they were inserted on.
-- Rows on pages filled before this migration move at their next update to
-- pages filled to half (an update that leaves its page is not HOT), and from
-- then on stay. road_segment is updated the same way by traffic batches but
-- is not measured yet (docs/benchmarks.md, issue 12, state write).

-- +goose Up
ALTER TABLE sensor SET (fillfactor = 50);

-- +goose Down
ALTER TABLE sensor RESET (fillfactor);
