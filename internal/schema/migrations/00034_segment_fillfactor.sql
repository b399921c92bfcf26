-- Room on each page of road_segment (the segments' current states) for the
-- next version of its rows, as 00033 gives sensor: a traffic batch rewrites
-- the state of each segment it carries, and with full pages each new version
-- went to another page with a new entry in each of the table's indexes (the
-- key, the geometry's GiST, the province). No index covers a column a state
-- update changes (the geometry and province are written again with the same
-- values), so with room on the page the update is HOT.

-- +goose Up
ALTER TABLE road_segment SET (fillfactor = 50);

-- +goose Down
ALTER TABLE road_segment RESET (fillfactor);
