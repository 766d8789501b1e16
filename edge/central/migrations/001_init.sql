-- platewatch central store, version 1: devices, events (one row per vehicle track), crops,
-- alerts, camera stats (history and the latest per camera) and the messages that could not be
-- stored as any of those.
-- Applied once by `platewatch collect` (edge.central.migrate), recorded in schema_migrations.

CREATE TABLE devices (
    device          text PRIMARY KEY,
    status          text,                       -- last retained <prefix>/<device>/status
    status_at       timestamptz,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_message_at timestamptz NOT NULL DEFAULT now()
);

-- One row per vehicle track: a final replaces its provisional (same track_key), a redelivered
-- message (same event_id) changes nothing. event_id is the id of the message the row holds.
CREATE TABLE events (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id              uuid NOT NULL UNIQUE,
    track_key             text NOT NULL UNIQUE,
    track_uuid            uuid,
    schema_version        text NOT NULL,
    type                  text NOT NULL CHECK (type IN ('provisional', 'final')),
    device                text NOT NULL,
    camera                text NOT NULL,
    track_id              bigint NOT NULL,
    plate                 text NOT NULL,            -- normalised (or the keyed hash)
    plate_fold            text NOT NULL,            -- O/0 and I/1 folded: what search compares
    plate_len             smallint NOT NULL,
    plate_hashed          boolean NOT NULL,
    confidence            real NOT NULL,
    char_confidences      real[] NOT NULL,
    candidates            jsonb NOT NULL,
    region                text,
    format                text,
    first_seen            timestamptz NOT NULL,
    last_seen             timestamptz NOT NULL,
    first_frame           bigint NOT NULL,
    last_frame            bigint NOT NULL,
    video_time_s          double precision,
    vehicle_box           integer[],
    plate_box             integer[] NOT NULL,
    direction             text,
    zones                 text[] NOT NULL,
    watchlist             text,
    watchlist_kind        text,
    watchlist_entry       text,
    watchlist_distance    integer,
    watchlist_description text,
    has_crop              boolean NOT NULL DEFAULT false,
    crop_path             text,                     -- crops: files (relative to crop_dir)
    received_at           timestamptz NOT NULL,     -- when the collector got the message
    stored_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_last_seen ON events (last_seen);
CREATE INDEX events_device_camera_last_seen ON events (device, camera, last_seen);
CREATE INDEX events_plate_fold ON events (plate_fold);
CREATE INDEX events_watchlist_last_seen ON events (watchlist, last_seen)
    WHERE watchlist IS NOT NULL;

-- Crops apart from events: searches never read image bytes. JPEG does not compress: EXTERNAL
-- storage skips the futile TOAST compression attempt.
CREATE TABLE crops (
    event_row bigint PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    event_id  uuid NOT NULL,
    jpeg      bytea NOT NULL
);
ALTER TABLE crops ALTER COLUMN jpeg SET STORAGE EXTERNAL;

CREATE TABLE alerts (
    event_id    uuid PRIMARY KEY,
    device      text NOT NULL,
    camera      text NOT NULL,
    plate       text NOT NULL,
    plate_hashed boolean NOT NULL,
    watchlist   text NOT NULL,
    kind        text NOT NULL,
    entry       text NOT NULL,
    distance    integer NOT NULL,
    description text,
    last_seen   timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_last_seen ON alerts (last_seen);
CREATE INDEX alerts_device_camera_last_seen ON alerts (device, camera, last_seen);

-- The primary key also serves "last stats per camera" (DISTINCT ON ... ORDER BY ts DESC).
CREATE TABLE camera_stats (
    device         text NOT NULL,
    camera         text NOT NULL,
    ts             timestamptz NOT NULL,
    online         boolean NOT NULL,
    fps_in         real NOT NULL,
    fps_analysed   real NOT NULL,
    frames_dropped bigint NOT NULL,
    frames_corrupt bigint NOT NULL,
    latency_ms_p50 real,
    latency_ms_p95 real,
    reconnects     bigint NOT NULL,
    queue_depth    integer NOT NULL,
    last_error     text,
    received_at    timestamptz NOT NULL,
    PRIMARY KEY (device, camera, ts)
);

-- One row per camera: its latest stats (health) and latest event, kept current by the
-- collector so the dashboard's device list never scans the history tables.
CREATE TABLE cameras (
    device         text NOT NULL REFERENCES devices (device) ON DELETE CASCADE,
    camera         text NOT NULL,
    stats_ts       timestamptz,
    online         boolean,
    fps_in         real,
    fps_analysed   real,
    frames_dropped bigint,
    frames_corrupt bigint,
    latency_ms_p50 real,
    latency_ms_p95 real,
    reconnects     bigint,
    queue_depth    integer,
    last_error     text,
    last_event_at  timestamptz,
    PRIMARY KEY (device, camera)
);

-- A message the collector could not read (bad JSON, unknown schema, a device that disagrees
-- with its topic): kept with the reason instead of being dropped or blocking the queue.
CREATE TABLE rejected_messages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic       text NOT NULL,
    payload     bytea NOT NULL,
    error       text NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX rejected_messages_received_at ON rejected_messages (received_at);
