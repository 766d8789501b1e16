-- Fuzzy plate search: a trigram index answers the pigeonhole prefilter of
-- edge.central.pg_history (plate_fold LIKE '%piece%' OR ...) without reading every row.
-- pg_trgm is a trusted extension (PostgreSQL >= 13): the database owner may create it; on
-- Debian it ships in the postgresql-15 package.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX events_plate_fold_trgm ON events USING gin (plate_fold gin_trgm_ops);
