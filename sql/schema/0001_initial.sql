-- The business tables the Project Data API reads.
-- Every row that belongs to a project carries project_id, kept consistent with
-- its parent through composite foreign keys, so scope filters need no joins.

CREATE TABLE users (
    id    uuid PRIMARY KEY,
    email text NOT NULL,
    name  text NOT NULL
);

CREATE TABLE projects (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    owner_id   uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL
);
CREATE INDEX projects_owner_idx ON projects (owner_id);

CREATE TABLE members (
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('admin', 'member')),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX members_user_idx ON members (user_id);

CREATE TABLE api_keys (
    id         uuid PRIMARY KEY,
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- SHA-256 of the whole secret; the secret itself is never stored.
    key_hash   bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    name       text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_keys_project_idx ON api_keys (project_id);

CREATE TABLE upload_sessions (
    id                   uuid PRIMARY KEY,
    project_id           uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    created_at           timestamptz NOT NULL,
    expires_at           timestamptz NOT NULL,
    status               text NOT NULL
        CHECK (status IN ('pending', 'active', 'expired', 'completed', 'failed')),
    tags                 text[],
    long_polling_enabled boolean NOT NULL DEFAULT false,
    UNIQUE (id, project_id)
);
CREATE INDEX upload_sessions_project_recent_idx
    ON upload_sessions (project_id, created_at DESC, id DESC);

CREATE TABLE destinations (
    id         uuid PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES upload_sessions (id) ON DELETE CASCADE,
    type       text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_]{0,31}$'),
    UNIQUE (session_id, id)
);

CREATE TABLE uploads (
    id           uuid PRIMARY KEY,
    session_id   uuid NOT NULL,
    project_id   uuid NOT NULL,
    filename     text NOT NULL,
    size_bytes   bigint NOT NULL CHECK (size_bytes >= 0),
    mime_type    text NOT NULL,
    source       text NOT NULL CHECK (source IN ('camera', 'gallery', 'url', 'google_drive',
                     'google_photos', 'dropbox', 'onedrive', 'box', 'instagram')),
    is_encrypted boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL,
    FOREIGN KEY (session_id, project_id)
        REFERENCES upload_sessions (id, project_id) ON DELETE CASCADE,
    UNIQUE (session_id, id)
);
CREATE INDEX uploads_project_recent_idx ON uploads (project_id, created_at DESC, id DESC);

-- One row per upload x destination; both must belong to the same session.
CREATE TABLE deliveries (
    upload_id      uuid NOT NULL,
    destination_id uuid NOT NULL,
    session_id     uuid NOT NULL,
    project_id     uuid NOT NULL,
    status         text NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    PRIMARY KEY (upload_id, destination_id),
    FOREIGN KEY (session_id, project_id)
        REFERENCES upload_sessions (id, project_id) ON DELETE CASCADE,
    FOREIGN KEY (session_id, upload_id) REFERENCES uploads (session_id, id) ON DELETE CASCADE,
    FOREIGN KEY (session_id, destination_id)
        REFERENCES destinations (session_id, id) ON DELETE CASCADE
);
CREATE INDEX deliveries_destination_idx ON deliveries (destination_id);
CREATE INDEX deliveries_project_status_idx ON deliveries (project_id, status, upload_id);
