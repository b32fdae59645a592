-- The event log: the single source of truth. Append-only, hash-chained per stream.
--
-- Readers of the global log take events in (txid, position) order and only below
-- pg_snapshot_xmin(pg_current_snapshot()): a transaction that took its position early but commits
-- late is then never skipped (positions are handed out at insert, not at commit).

create table events (
    position       bigint generated always as identity primary key,
    txid           xid8        not null default pg_current_xact_id(),
    event_id       uuid        not null,
    stream_id      text        not null,
    stream_type    text        not null,
    version        bigint      not null check (version > 0),
    event_type     text        not null,
    schema_version integer     not null default 1,
    payload        jsonb       not null,
    metadata       jsonb       not null,
    recorded_at    timestamptz not null,
    prev_hash      bytea,
    hash           bytea       not null,
    constraint events_event_id_key unique (event_id),
    -- The expected-version backstop: two writers can never both hold version N of a stream.
    constraint events_stream_version_key unique (stream_id, version)
);

create index events_txid_position on events (txid, position);
create index events_type_txid_position on events (event_type, txid, position);

-- One row per stream: its current version and the hash of its last event. Appends lock these rows
-- (in stream id order) to check expected versions before writing.
create table streams (
    stream_id   text        primary key,
    stream_type text        not null,
    version     bigint      not null default 0,
    last_hash   bytea,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);

-- Immutability: the database itself refuses to change history.
create function events_refuse_change() returns trigger language plpgsql as $$
begin
    raise exception 'the event log is append-only: % on events is refused', tg_op
        using errcode = 'insufficient_privilege';
end $$;

create trigger events_no_update before update on events
    for each row execute function events_refuse_change();
create trigger events_no_delete before delete on events
    for each row execute function events_refuse_change();
create trigger events_no_truncate before truncate on events
    for each statement execute function events_refuse_change();

-- The role the application should run as in production: it can append and read, never rewrite.
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'eventlog_writer') then
        create role eventlog_writer nologin;
    end if;
end $$;
revoke update, delete, truncate on events from public;
grant select, insert on events to eventlog_writer;
grant select, insert, update on streams to eventlog_writer;

-- Snapshots: a cache of folded state, never a source of truth. Rebuilt when the state's shape
-- (state_version) changes.
create table snapshots (
    stream_id     text        primary key,
    stream_type   text        not null,
    version       bigint      not null,
    state_version integer     not null,
    state         jsonb       not null,
    taken_at      timestamptz not null default now()
);

-- Idempotency keys, recorded in the transaction of the append they guard.
create table idempotency_keys (
    scope        text        not null,
    key          text        not null,
    command_name text        not null,
    request_hash text        not null,
    response     jsonb       not null,
    created_at   timestamptz not null default now(),
    primary key (scope, key)
);

-- Checkpoints of every log consumer (projectors, the NATS relay, process managers).
create table consumer_checkpoints (
    name           text        primary key,
    txid           xid8        not null default '0'::xid8,
    position       bigint      not null default 0,
    status         text        not null default 'running',
    failed_position bigint,
    last_error     text,
    attempts       integer     not null default 0,
    updated_at     timestamptz not null default now()
);

-- Durable commands due at a time.
create table scheduled_commands (
    id            uuid        primary key,
    context       text        not null,
    command       text        not null,
    payload       jsonb       not null,
    due_at        timestamptz not null,
    status        text        not null default 'pending'
                  check (status in ('pending', 'running', 'done', 'refused', 'failed', 'cancelled')),
    attempts      integer     not null default 0,
    last_error    text,
    result        jsonb,
    source_event  uuid,
    created_at    timestamptz not null default now(),
    dispatched_at timestamptz
);
create index scheduled_commands_due on scheduled_commands (due_at) where status in ('pending', 'running');
