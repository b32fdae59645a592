-- Projectors that read neither the metadata nor the hash chain of the events they apply (every
-- read model but the audit log) no longer receive them: the metadata is about 40% of an event's
-- JSON, and serialising it to text here and parsing it again in the reader was a measured part
-- of a catch-up's cost. `with_metadata = false` returns null metadata and hashes.

drop function es_read_filtered(xid8, bigint, text[], integer);

create function es_read_filtered(after_txid xid8, after_position bigint, types text[], page integer,
                                 with_metadata boolean)
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
           e.stream_type, e.version, e.event_type, e.schema_version, e.payload,
           case when with_metadata then e.metadata end, e.recorded_at,
           case when with_metadata then e.prev_hash end, case when with_metadata then e.hash end
      from h left join lateral (
          select * from events ev
           where ev.position = any(array(select s.position from s))
           order by ev.txid, ev.position) e on true
$$;

grant execute on function es_read_filtered to eventlog_writer;
