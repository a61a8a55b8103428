-- plinth's one schema, for SQLite and PostgreSQL alike.
--
-- The only word that differs between the two is the byte-string type: it is written
-- `{bytes}` here and replaced by BLOB (SQLite) or BYTEA (PostgreSQL) when the migration is
-- loaded (src/schema.rs). Everything else is the common subset: TEXT, BIGINT, primary and
-- unique keys, plain indexes. Times are BIGINT Unix milliseconds; booleans are BIGINT 0/1;
-- hashes and serials are lower-case hex TEXT where people read them, raw bytes where only
-- the code does.

-- Challenges: one row per nonce handed out. A nonce is consumed by one UPDATE that sets
-- consumed_at only while it is NULL and the nonce has not expired, so exactly one caller,
-- on any replica, ever sees it succeed.
CREATE TABLE challenges (
    nonce                 {bytes} PRIMARY KEY,
    platform              TEXT    NOT NULL,
    hello                 {bytes} NOT NULL,
    activation_commitment {bytes},
    created_at            BIGINT  NOT NULL,
    expires_at            BIGINT  NOT NULL,
    consumed_at           BIGINT
);
CREATE INDEX challenges_expires_at ON challenges (expires_at);

-- Registrations: which SPIFFE ID a node (parent_id = '') or a workload under a node gets,
-- by selectors. identity_key is SHA-256 over (spiffe_id, parent_id, sorted selectors), so
-- the same entry cannot be created twice (NULLs would not collide in a UNIQUE index).
CREATE TABLE registrations (
    id             TEXT   PRIMARY KEY,
    spiffe_id      TEXT   NOT NULL,
    parent_id      TEXT   NOT NULL,
    selectors_json TEXT   NOT NULL,
    ttl_seconds    BIGINT,
    admin          BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    identity_key   TEXT   NOT NULL UNIQUE
);
CREATE INDEX registrations_spiffe_id ON registrations (spiffe_id);
CREATE INDEX registrations_parent_id ON registrations (parent_id);

-- The audit log: a hash chain, seq 1, 2, 3, ... without gaps. Every field that goes into
-- the hash is stored exactly as hashed.
CREATE TABLE audit_log (
    seq             BIGINT  PRIMARY KEY,
    prev_hash       {bytes} NOT NULL,
    record_hash     {bytes} NOT NULL,
    recorded_at     BIGINT  NOT NULL,
    platform        TEXT    NOT NULL,
    node_spiffe_id  TEXT,
    hardware_id     TEXT,
    evidence_sha256 TEXT    NOT NULL,
    policy_name     TEXT,
    policy_hash     TEXT,
    verdict         TEXT    NOT NULL,
    error_code      TEXT,
    error_message   TEXT,
    claims_json     TEXT    NOT NULL,
    result_json     TEXT    NOT NULL,
    svid_serial     TEXT
);
CREATE INDEX audit_log_node ON audit_log (node_spiffe_id, seq);
CREATE INDEX audit_log_recorded_at ON audit_log (recorded_at);

-- The chain head: exactly one row. Appending locks it first (an UPDATE: a row lock on
-- PostgreSQL, the database write lock on SQLite), so appends from every replica queue up
-- and each sees the head the previous one left.
CREATE TABLE audit_head (
    id        BIGINT  PRIMARY KEY,
    head_seq  BIGINT  NOT NULL,
    head_hash {bytes} NOT NULL
);
-- Its one row (seq 0, 32 zero bytes) is inserted by Store::open: a byte-string literal
-- is written differently on the two databases.

-- Signed checkpoints over the chain head.
CREATE TABLE audit_checkpoints (
    seq             BIGINT  PRIMARY KEY,
    head_hash       {bytes} NOT NULL,
    signed_at       BIGINT  NOT NULL,
    signer_spki_der {bytes} NOT NULL,
    signature       {bytes} NOT NULL,
    algorithm       TEXT    NOT NULL
);

-- Content-addressed evidence and policy texts the audit records point at.
CREATE TABLE evidence (
    sha256_hex TEXT    PRIMARY KEY,
    bytes      {bytes} NOT NULL
);
CREATE TABLE policies (
    hash_hex TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    text     TEXT NOT NULL
);

-- Attested nodes: written in the same transaction as their audit record.
CREATE TABLE nodes (
    spiffe_id            TEXT   PRIMARY KEY,
    platform             TEXT   NOT NULL,
    hardware_id          TEXT,
    policy_name          TEXT   NOT NULL,
    policy_hash          TEXT   NOT NULL,
    first_attested_at    BIGINT NOT NULL,
    last_attested_at     BIGINT NOT NULL,
    last_verdict         TEXT   NOT NULL,
    last_attestation_seq BIGINT NOT NULL
);
CREATE INDEX nodes_hardware_id ON nodes (hardware_id);

-- Issued X.509-SVIDs: each row names the audit record that justified it.
CREATE TABLE issued_svids (
    serial_hex     TEXT   PRIMARY KEY,
    spiffe_id      TEXT   NOT NULL,
    key_thumbprint TEXT   NOT NULL,
    not_after      BIGINT NOT NULL,
    issued_at      BIGINT NOT NULL,
    audit_seq      BIGINT NOT NULL REFERENCES audit_log (seq)
);
CREATE INDEX issued_svids_spiffe_id ON issued_svids (spiffe_id);
CREATE INDEX issued_svids_not_after ON issued_svids (not_after);

-- Bans by SPIFFE ID or hardware ID.
CREATE TABLE bans (
    kind       TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    reason     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, value)
);

-- The CA journal: public parts of every authority (certificates, JWT public keys).
CREATE TABLE ca_journal (
    authority_id        BIGINT  PRIMARY KEY,
    state               TEXT    NOT NULL,
    x509_certificate_der {bytes} NOT NULL,
    jwt_key_id          TEXT    NOT NULL,
    jwt_public_spki_der {bytes} NOT NULL,
    not_before          BIGINT  NOT NULL,
    not_after           BIGINT  NOT NULL,
    recorded_at         BIGINT  NOT NULL
);
