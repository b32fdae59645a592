-- The append as one server-side call: one round trip and one autocommit transaction per batch,
-- so stream rows stay locked only while the server works, never across network round trips.
--
-- The caller (commands/src/store/postgres.rs) sends, as parallel arrays:
--   per request write w: its request number (1-based, writes of a request are contiguous), the
--     stream id and type, the expected version (-1 any, -2 must exist, 0 must not exist, n exact),
--     and the range of its events (first index, count);
--   per event e: id, its stream id and type, type, schema version, payload, metadata and the digest of its canonical
--     content (sha256 over everything but version and chain, computed by the caller);
--   per idempotency key: its request number, scope, key, command, request hash, response.
-- Each request is all-or-nothing: a failed expected version leaves it out (one 'conflict' row
-- naming the stream and its actual version) and the others are written. Versions and the hash
-- chain are assigned here, under the stream locks: hash = sha256(prev hash || be64(version) ||
-- digest), the same formula `canonical::event_hash` verifies with.

create function es_append(
    w_request integer[], w_stream text[], w_stream_type text[], w_expected bigint[],
    w_first integer[], w_count integer[],
    e_id uuid[], e_stream text[], e_stream_type text[], e_type text[], e_schema integer[],
    e_payload jsonb[], e_metadata jsonb[], e_digest bytea[],
    p_recorded_at timestamptz,
    k_request integer[], k_scope text[], k_key text[], k_command text[], k_hash text[], k_response jsonb[])
returns table (request integer, conflict_stream text, actual bigint, event_id uuid, version bigint,
               event_position bigint, event_txid bigint, prev_hash bytea, hash bytea)
language plpgsql as $$
#variable_conflict use_column
declare
    n_writes integer := coalesce(array_length(w_request, 1), 0);
    n_events integer := coalesce(array_length(e_id, 1), 0);
    s_ver    bigint[];
    s_hash   bytea[];
    s_dirty  boolean[];
    s_ids    text[];
    w_idx    integer[];
    -- Per event, filled for the accepted ones only (the rest stay null and are not inserted).
    e_ver    bigint[] := array_fill(null::bigint, array[n_events]);
    e_prev   bytea[] := array_fill(null::bytea, array[n_events]);
    e_hash   bytea[] := array_fill(null::bytea, array[n_events]);
    accepted integer[] := '{}';
    w        integer := 1;
    w_end    integer;
    r        integer;
    i        integer;
    e        integer;
    idx      integer;
    cur      bigint;
    exp      bigint;
    failed   boolean;
    h        bytea;
begin
    -- 1. Rows for streams about to be written, created in id order (a concurrent creator of the
    --    same stream makes us wait for its commit, then we see its row below).
    insert into streams (stream_id, stream_type)
    select distinct on (u.id) u.id, u.ty
      from unnest(w_stream, w_stream_type, w_count) as u(id, ty, n)
     where u.n > 0
     order by u.id
    on conflict (stream_id) do nothing;

    -- 2. Lock every stream the batch touches, in id order (a fresh snapshot: sees the above), and
    --    map each write to its stream's slot (null: a stream that does not exist, only checked).
    select coalesce(array_agg(l.stream_id order by l.stream_id), '{}'),
           coalesce(array_agg(l.version order by l.stream_id), '{}'),
           coalesce(array_agg(l.last_hash order by l.stream_id), '{}')
      into s_ids, s_ver, s_hash
      from (select s.stream_id, s.version, s.last_hash from streams s
             where s.stream_id = any(w_stream) order by s.stream_id for update) l;
    s_dirty := array_fill(false, array[coalesce(array_length(s_ids, 1), 0)]);
    select array_agg(array_position(s_ids, u.id) order by u.ord) into w_idx
      from unnest(w_stream) with ordinality as u(id, ord);

    -- 3. Requests in order: check every write, then chain versions and hashes.
    while w <= n_writes loop
        r := w_request[w];
        w_end := w;
        while w_end < n_writes and w_request[w_end + 1] = r loop
            w_end := w_end + 1;
        end loop;
        failed := false;
        for i in w..w_end loop
            idx := w_idx[i];
            cur := case when idx is null then 0 else s_ver[idx] end;
            exp := w_expected[i];
            if not (exp = -1 or (exp = -2 and cur > 0) or (exp >= 0 and cur = exp)) then
                request := r; conflict_stream := w_stream[i]; actual := cur;
                return next;
                failed := true;
                exit;
            end if;
        end loop;
        if not failed then
            for i in w..w_end loop
                idx := w_idx[i];
                continue when idx is null; -- only checked, never written: nothing to chain
                for e in w_first[i] .. w_first[i] + w_count[i] - 1 loop
                    cur := s_ver[idx] + 1;
                    h := sha256(coalesce(s_hash[idx], ''::bytea) || int8send(cur) || e_digest[e]);
                    e_ver[e] := cur;
                    e_prev[e] := s_hash[idx];
                    e_hash[e] := h;
                    s_ver[idx] := cur;
                    s_hash[idx] := h;
                    s_dirty[idx] := true;
                end loop;
            end loop;
            accepted := array_append(accepted, r);
        end if;
        w := w_end + 1;
    end loop;

    if cardinality(accepted) = 0 or n_events = 0 then
        return;
    end if;

    -- 4. One insert, the stream heads, the idempotency keys of accepted requests. No NOTIFY here:
    --    PostgreSQL serialises the commits of notifying transactions; the caller tells the other
    --    processes after the commit (LogWake in commands/src/store/postgres.rs).
    update streams s set version = u.v, last_hash = u.h, updated_at = now()
      from unnest(s_ids, s_ver, s_hash, s_dirty) as u(id, v, h, d)
     where u.d and s.stream_id = u.id;

    insert into idempotency_keys (scope, key, command_name, request_hash, response)
    select k.scope, k.key, k.command, k.hash, k.response
      from unnest(k_request, k_scope, k_key, k_command, k_hash, k_response)
           as k(req, scope, key, command, hash, response)
     where k.req = any(accepted);

    return query
    with ins as (
        insert into events (event_id, stream_id, stream_type, version, event_type, schema_version,
                            payload, metadata, recorded_at, prev_hash, hash)
        select u.id, u.stream, u.ty, u.ver, u.etype, u.schema, u.pay, u.meta, p_recorded_at, u.prev, u.h
          from unnest(e_id, e_stream, e_stream_type, e_ver, e_type, e_schema, e_payload, e_metadata,
                      e_prev, e_hash) as u(id, stream, ty, ver, etype, schema, pay, meta, prev, h)
         where u.ver is not null
        returning events.event_id, events.version, events.position, events.txid, events.prev_hash,
                  events.hash)
    select null::integer, null::text, null::bigint, ins.event_id, ins.version, ins.position,
           ins.txid::text::bigint, ins.prev_hash, ins.hash
      from ins;
end $$;

grant execute on function es_append to eventlog_writer;

-- A filtered page of the log for one consumer: a merge of per-type range scans of the
-- (event_type, txid, position) index, each bounded by the page size, then primary-key fetches.
-- The planner under-estimates the row comparison `(txid, position) > (…)` and, left alone,
-- chose bitmap scans that read EVERY remaining event of each type and sorted them: a page cost
-- grew with the backlog (82 ms per page at 100k events, quadratic over a catch-up). Ordered index
-- scans are what bounds the page cost, so bitmap scans are off for this function only (GIN
-- indexes of the read tables still need them elsewhere).
create function es_read_filtered(after_txid xid8, after_position bigint, types text[], page integer)
returns table (horizon bigint, "position" bigint, txid bigint, event_id uuid, stream_id text,
               stream_type text, version bigint, event_type text, schema_version integer,
               payload jsonb, metadata jsonb, recorded_at timestamptz, prev_hash bytea, hash bytea)
language sql stable
set enable_bitmapscan = off
as $$
    with h as materialized (select pg_snapshot_xmin(pg_current_snapshot()) as xmin),
    s as materialized (
        select m.position, m.txid from h, unnest(types) as t(ty)
        cross join lateral (
            select ev.position, ev.txid from events ev
             where ev.event_type = t.ty and (ev.txid, ev.position) > (after_txid, after_position)
               and ev.txid < h.xmin
             order by ev.txid, ev.position limit page) m
        order by m.txid, m.position limit page)
    select h.xmin::text::bigint, e.position, e.txid::text::bigint, e.event_id, e.stream_id,
           e.stream_type, e.version, e.event_type, e.schema_version, e.payload, e.metadata,
           e.recorded_at, e.prev_hash, e.hash
      from h left join lateral (
          select * from events ev
           where ev.position = any(array(select s.position from s))
           order by ev.txid, ev.position) e on true
$$;

grant execute on function es_read_filtered to eventlog_writer;
