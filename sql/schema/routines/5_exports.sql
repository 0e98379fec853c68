-- What the exports (sql/exports.sql) share: text exactly as the JSON lists and Python's csv
-- module write it (tests/test_export_rows.py holds them to it).

-- A CSV field as RFC 4180 and Python's csv.writer (QUOTE_MINIMAL) write it: quoted, with
-- quotes doubled, when it holds a comma, a quote, CR or LF; otherwise as is.
CREATE OR REPLACE FUNCTION csv_field(value text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN value ~ '[,"\r\n]' THEN '"' || replace(value, '"', '""') || '"'
                ELSE value END
$$;

-- A timestamp as the API writes it: UTC, milliseconds truncated, 2026-11-28T16:49:47.123Z.
-- STABLE, as to_char is: the planner inlines a function (no call per row) only when it
-- claims no more than its body.
CREATE OR REPLACE FUNCTION api_timestamp(moment timestamptz)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(moment AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
