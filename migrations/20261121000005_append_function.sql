-- The append as one server-side call: one round trip and one autocommit transaction per batch,
-- so stream rows stay locked only while the server works, never across network round trips.
--
-- The caller (commands/src/store/postgres.rs) sends, as parallel arrays:
--   per request write w: its request number (1-based, writes of a request are contiguous), the
--     stream id and type, the expected version (-1 any, -2 must exist, 0 must not exist, n exact),
--     and the range of its events (first index, count);
--   per event e: id, type, schema version, payload, metadata and the digest of its canonical
--     content (sha256 over everything but version and chain, computed by the caller);
--   per idempotency key: its request number, scope, key, command, request hash, response.
-- Each request is all-or-nothing: a failed expected version leaves it out (one 'conflict' row
-- naming the stream and its actual version) and the others are written. Versions and the hash
-- chain are assigned here, under the stream locks: hash = sha256(prev hash || be64(version) ||
-- digest), the same formula `canonical::event_hash` verifies with.

create function es_append(
    w_request integer[], w_stream text[], w_stream_type text[], w_expected bigint[],
    w_first integer[], w_count integer[],
    e_id uuid[], e_type text[], e_schema integer[], e_payload jsonb[], e_metadata jsonb[], e_digest bytea[],
    p_recorded_at timestamptz,
    k_request integer[], k_scope text[], k_key text[], k_command text[], k_hash text[], k_response jsonb[],
    p_channel text, p_types text)
returns table (request integer, conflict_stream text, actual bigint, event_id uuid, version bigint,
               event_position bigint, event_txid bigint, prev_hash bytea, hash bytea)
language plpgsql as $$
#variable_conflict use_column
declare
    s_ids    text[];
    s_ver    bigint[];
    s_hash   bytea[];
    s_dirty  boolean[];
    n_writes integer := coalesce(array_length(w_request, 1), 0);
    w        integer;
    w_end    integer;
    r        integer;
    i        integer;
    e        integer;
    idx      integer;
    cur      bigint;
    exp      bigint;
    failed   boolean;
    accepted integer[] := '{}';
    -- Rows to insert.
    o_id     uuid[] := '{}';
    o_stream text[] := '{}';
    o_type   text[] := '{}';
    o_ver    bigint[] := '{}';
    o_etype  text[] := '{}';
    o_schema integer[] := '{}';
    o_pay    jsonb[] := '{}';
    o_meta   jsonb[] := '{}';
    o_prev   bytea[] := '{}';
    o_hash   bytea[] := '{}';
    o_req    integer[] := '{}';
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

    -- 2. Lock every stream the batch touches, in id order (a fresh snapshot: sees the above).
    select coalesce(array_agg(l.stream_id order by l.stream_id), '{}'),
           coalesce(array_agg(l.version order by l.stream_id), '{}'),
           coalesce(array_agg(l.last_hash order by l.stream_id), '{}')
      into s_ids, s_ver, s_hash
      from (select s.stream_id, s.version, s.last_hash from streams s
            where s.stream_id = any(w_stream) order by s.stream_id for update) l;
    s_dirty := array_fill(false, array[coalesce(array_length(s_ids, 1), 0)]);

    -- 3. Requests in order: check, then chain versions and hashes.
    w := 1;
    while w <= n_writes loop
        r := w_request[w];
        w_end := w;
        while w_end < n_writes and w_request[w_end + 1] = r loop
            w_end := w_end + 1;
        end loop;
        failed := false;
        for i in w..w_end loop
            idx := array_position(s_ids, w_stream[i]);
            cur := case when idx is null then 0 else s_ver[idx] end;
            exp := w_expected[i];
            if not (exp = -1 or (exp = -2 and cur > 0) or (exp >= 0 and cur = exp)) then
                request := r; conflict_stream := w_stream[i]; actual := cur;
                event_id := null; version := null; event_position := null; event_txid := null;
                prev_hash := null; hash := null;
                return next;
                failed := true;
                exit;
            end if;
        end loop;
        if not failed then
            for i in w..w_end loop
                idx := array_position(s_ids, w_stream[i]);
                if idx is null then
                    -- Only checked, never written (no events): nothing to chain.
                    continue;
                end if;
                for e in w_first[i] .. w_first[i] + w_count[i] - 1 loop
                    h := sha256(coalesce(s_hash[idx], ''::bytea) || int8send(s_ver[idx] + 1) || e_digest[e]);
                    o_id := array_append(o_id, e_id[e]);
                    o_stream := array_append(o_stream, w_stream[i]);
                    o_type := array_append(o_type, w_stream_type[i]);
                    o_ver := array_append(o_ver, (s_ver[idx] + 1));
                    o_etype := array_append(o_etype, e_type[e]);
                    o_schema := array_append(o_schema, e_schema[e]);
                    o_pay := array_append(o_pay, e_payload[e]);
                    o_meta := array_append(o_meta, e_metadata[e]);
                    o_prev := array_append(o_prev, s_hash[idx]);
                    o_hash := array_append(o_hash, h);
                    o_req := array_append(o_req, r);
                    s_ver[idx] := s_ver[idx] + 1;
                    s_hash[idx] := h;
                    s_dirty[idx] := true;
                end loop;
            end loop;
            accepted := array_append(accepted, r);
        end if;
        w := w_end + 1;
    end loop;

    if coalesce(array_length(o_id, 1), 0) = 0 then
        return;
    end if;

    -- 4. One insert, the stream heads, the idempotency keys of accepted requests, the wake-up.
    update streams s set version = u.v, last_hash = u.h, updated_at = now()
      from unnest(s_ids, s_ver, s_hash, s_dirty) as u(id, v, h, d)
     where u.d and s.stream_id = u.id;

    insert into idempotency_keys (scope, key, command_name, request_hash, response)
    select k.scope, k.key, k.command, k.hash, k.response
      from unnest(k_request, k_scope, k_key, k_command, k_hash, k_response)
           as k(req, scope, key, command, hash, response)
     where k.req = any(accepted);

    perform pg_notify(p_channel, pg_current_xact_id()::text || ':' || p_types);

    return query
    with ins as (
        insert into events (event_id, stream_id, stream_type, version, event_type, schema_version,
                            payload, metadata, recorded_at, prev_hash, hash)
        select u.id, u.stream, u.ty, u.ver, u.etype, u.schema, u.pay, u.meta, p_recorded_at, u.prev, u.h
          from unnest(o_id, o_stream, o_type, o_ver, o_etype, o_schema, o_pay, o_meta, o_prev, o_hash)
               as u(id, stream, ty, ver, etype, schema, pay, meta, prev, h)
        returning events.event_id, events.version, events.position, events.txid, events.prev_hash, events.hash)
    select o.req, null::text, null::bigint, ins.event_id, ins.version, ins.position,
           ins.txid::text::bigint, ins.prev_hash, ins.hash
      from ins join unnest(o_id, o_req) as o(id, req) on o.id = ins.event_id;
end $$;

grant execute on function es_append to eventlog_writer;
