-- Alert areas in one well-defined, valid form, so that neither the unit join
-- (ST_Intersects) nor the GeoJSON of the alert list can fail on a stored area.
--
-- iochub_alert_area(g) is the form: the distinct parts of g (CAP alerts
-- repeat one polygon in every area and language), made 2D; polygons made
-- valid (ST_MakeValid, polygons kept) and, when they overlap or touch, united
-- into one valid MultiPolygon; points kept only when no polygon covers them.
-- The result is NULL (no polygon, no point: geocodes only), a MultiPolygon,
-- a MultiPoint (alerts at a station or a report), or for an alert with both a
-- flat GeometryCollection of one MultiPolygon and one MultiPoint. Lines are
-- dropped: the aggregator refuses them in alert areas. Valid polygons that
-- neither overlap nor touch are kept as given (same vertices, same order).
--
-- iochub_geojson(g, decimals) is g as RFC 7946 GeoJSON (a single-part Multi
-- as its one part, outer rings counter-clockwise), or NULL when PostGIS
-- cannot write it (a nested GeometryCollection, a curve): the alert list
-- shows such a row without geometry instead of failing as a whole.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION iochub_alert_area(g geometry) RETURNS geometry
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    polys  geometry;
    points geometry;
BEGIN
    WITH parts AS (
        SELECT ST_AsEWKB(d.geom) AS wkb, min(d.path) AS first
        FROM ST_Dump(ST_Force2D(g)) d
        WHERE ST_GeometryType(d.geom) = 'ST_Polygon' AND NOT ST_IsEmpty(d.geom)
        GROUP BY 1
    )
    SELECT ST_Collect(v.geom ORDER BY p.first, v.path) INTO polys
    FROM parts p
    CROSS JOIN LATERAL ST_Dump(CASE WHEN (ST_IsValidDetail(p.wkb::geometry)).valid THEN p.wkb::geometry
        ELSE ST_CollectionExtract(ST_MakeValid(p.wkb::geometry), 3) END) v
    WHERE NOT ST_IsEmpty(v.geom);

    IF polys IS NOT NULL AND NOT (ST_IsValidDetail(polys)).valid THEN
        -- Valid polygons that overlap or touch: their union.
        BEGIN
            polys := ST_UnaryUnion(polys);
        EXCEPTION WHEN internal_error THEN
            polys := ST_MakeValid(polys, 'method=structure');
        END;
        polys := ST_Multi(ST_CollectionExtract(polys, 3));
        IF ST_IsEmpty(polys) THEN
            polys := NULL;
        END IF;
    END IF;

    WITH parts AS (
        SELECT ST_AsEWKB(d.geom) AS wkb, min(d.path) AS first
        FROM ST_Dump(ST_Force2D(g)) d
        WHERE ST_GeometryType(d.geom) = 'ST_Point' AND NOT ST_IsEmpty(d.geom)
        GROUP BY 1
    )
    SELECT ST_Collect(p.wkb::geometry ORDER BY p.first) INTO points
    FROM parts p
    WHERE polys IS NULL OR NOT ST_Covers(polys, p.wkb::geometry);

    IF points IS NOT NULL THEN
        points := ST_Multi(points);
    END IF;
    IF polys IS NULL OR points IS NULL THEN
        RETURN coalesce(polys, points);
    END IF;
    RETURN ST_SetSRID(ST_Collect(polys, points), ST_SRID(g));
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION iochub_geojson(g geometry, decimals integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    IF ST_NumGeometries(g) = 1 AND GeometryType(g) LIKE 'MULTI%' THEN
        g := ST_GeometryN(g, 1);
    END IF;
    RETURN ST_AsGeoJSON(ST_ForcePolygonCCW(g), decimals);
EXCEPTION WHEN internal_error OR data_exception OR feature_not_supported THEN
    RETURN NULL;
END
$$;
-- +goose StatementEnd

UPDATE alert SET area = iochub_alert_area(area) WHERE area IS NOT NULL;

ALTER TABLE alert ADD CONSTRAINT alert_area_form CHECK (
    area IS NULL
    OR NOT ST_IsEmpty(area) AND (
        GeometryType(area) IN ('MULTIPOLYGON', 'MULTIPOINT')
        OR GeometryType(area) = 'GEOMETRYCOLLECTION' AND ST_NumGeometries(area) = 2
            AND GeometryType(ST_GeometryN(area, 1)) = 'MULTIPOLYGON'
            AND GeometryType(ST_GeometryN(area, 2)) = 'MULTIPOINT'));

-- +goose Down
ALTER TABLE alert DROP CONSTRAINT alert_area_form;
DROP FUNCTION iochub_geojson(geometry, integer);
DROP FUNCTION iochub_alert_area(geometry);
