-- Dead letters: authenticated webhook deliveries refused as a whole (unknown format, schema error:
-- the 400s after the signature check) and items rejected inside an accepted delivery, kept so an
-- operator can inspect them and replay them through today's code (the webhook-replay function, or
-- `deno task replay`). Gateways never retry a 4xx: without this those events are gone for good.
--
-- Only deliveries whose signature was checked are stored (nobody can fill the table from outside);
-- the headers kept are the few a replay needs (content type and the like), never a secret, a
-- signature, Authorization, apikey or a cookie. Service role only (RLS on, no grant to anon or
-- authenticated); not in the supabase_realtime publication.
--
-- Bounded, with limits set in SQL (defaults in brackets), e.g.
--   alter database postgres set webhook_dead_letters.max_rows = '20000';
--   webhook_dead_letters.max_body_bytes  [262144] bodies above it are kept truncated and are not
--                                        replayable;
--   webhook_dead_letters.max_rows        [10000] per function: the oldest rows beyond it are
--                                        removed as new ones arrive;
--   webhook_dead_letters.retention       [7 days] expired rows are removed by the hourly pg_cron
--                                        job that cleans Idempotency-Key rows
--                                        (cleanup-webhook-idempotency).

create table if not exists public.webhook_dead_letters (
  id bigint generated always as identity primary key,
  function_name text not null check (length(function_name) between 1 and 100),
  -- delivery: refused as a whole; item: one item rejected inside an accepted delivery.
  kind text not null check (kind in ('delivery', 'item')),
  format_guess text check (length(format_guess) <= 100),
  reason text not null check (length(reason) <= 2000),
  path text check (length(path) <= 500),
  -- The signature scheme that verified the delivery (replays run as it).
  auth_scheme text not null check (length(auth_scheme) <= 64),
  -- The request's query string without credentials (e.g. `?format=waha`).
  query text not null default '' check (length(query) <= 2000),
  headers jsonb not null default '{}'::jsonb check (jsonb_typeof(headers) = 'object'),
  body bytea not null,
  -- The body's size as received; body holds at most max_body_bytes of it.
  body_bytes integer not null check (body_bytes >= 0),
  truncated boolean not null default false,
  received_at timestamptz not null default now(),
  expires_at timestamptz not null,
  -- pending → replaying (a replay holds it until replay_locked_until) → done; not_replayable when
  -- truncated.
  replay_state text not null default 'pending'
    check (replay_state in ('pending', 'replaying', 'done', 'not_replayable')),
  replay_result text
    check (replay_result in ('applied', 'duplicate', 'unchanged', 'stale', 'still_refused')),
  replay_reason text check (length(replay_reason) <= 2000),
  replay_count integer not null default 0,
  replay_token uuid,
  replay_locked_until timestamptz,
  replayed_at timestamptz
);

comment on table public.webhook_dead_letters is
  'Authenticated webhook deliveries (or items) refused, kept for inspection and replay (webhook-replay).';

create index if not exists webhook_dead_letters_function_id_idx
  on public.webhook_dead_letters (function_name, id);
create index if not exists webhook_dead_letters_expires_at_idx
  on public.webhook_dead_letters (expires_at);

alter table public.webhook_dead_letters enable row level security;
drop policy if exists "Service role manages dead letters" on public.webhook_dead_letters;
create policy "Service role manages dead letters"
  on public.webhook_dead_letters for all to service_role using (true) with check (true);
revoke all on public.webhook_dead_letters from public, anon, authenticated;
revoke all on sequence public.webhook_dead_letters_id_seq from public, anon, authenticated;
grant select, insert, update, delete on public.webhook_dead_letters to service_role;

-- The limits: a setting when set, else the default.
create or replace function public.webhook_dead_letter_limits(
  out max_body_bytes integer,
  out max_rows integer,
  out retention interval
)
language sql
stable
set search_path = ''
as $$
  select
    coalesce(nullif(current_setting('webhook_dead_letters.max_body_bytes', true), '')::integer,
      262144),
    coalesce(nullif(current_setting('webhook_dead_letters.max_rows', true), '')::integer, 10000),
    coalesce(nullif(current_setting('webhook_dead_letters.retention', true), '')::interval,
      interval '7 days')
$$;

-- Keeps one delivery: one row when refused as a whole (p_kind 'delivery', one path and reason),
-- one row per rejected item otherwise (p_paths[i], p_reasons[i]). Truncates the body beyond the
-- size cap, then removes the function's oldest rows beyond the row cap. Returns the new ids.
create or replace function public.record_webhook_dead_letters(
  p_function text,
  p_kind text,
  p_format text,
  p_auth_scheme text,
  p_query text,
  p_headers jsonb,
  p_body bytea,
  p_paths text[],
  p_reasons text[]
)
returns setof bigint
language plpgsql
set search_path = ''
as $$
declare
  v_limits record;
  v_size integer := octet_length(p_body);
  v_truncated boolean;
  v_now timestamptz := now();
  v_cutoff bigint;
begin
  if coalesce(array_length(p_reasons, 1), 0) = 0
    or array_length(p_reasons, 1) <> coalesce(array_length(p_paths, 1), 0) then
    raise exception 'one path per reason, at least one';
  end if;
  select * into v_limits from public.webhook_dead_letter_limits();
  v_truncated := v_size > v_limits.max_body_bytes;
  return query
  insert into public.webhook_dead_letters as d (
    function_name, kind, format_guess, reason, path, auth_scheme, query, headers, body, body_bytes,
    truncated, received_at, expires_at, replay_state)
  select p_function, p_kind, left(p_format, 100), left(r.reason, 2000), left(r.path, 500),
    left(p_auth_scheme, 64), left(coalesce(p_query, ''), 2000), coalesce(p_headers, '{}'::jsonb),
    case when v_truncated then substring(p_body from 1 for v_limits.max_body_bytes) else p_body end,
    v_size, v_truncated, v_now, v_now + v_limits.retention,
    case when v_truncated then 'not_replayable' else 'pending' end
  from unnest(p_paths, p_reasons) as r(path, reason)
  returning d.id;

  select d.id into v_cutoff from public.webhook_dead_letters d
   where d.function_name = p_function
   order by d.id desc offset v_limits.max_rows limit 1;
  if v_cutoff is not null then
    delete from public.webhook_dead_letters d
     where d.function_name = p_function and d.id <= v_cutoff;
  end if;
end
$$;

-- Claims dead letters for a replay, by ids or by filter (function, received since, reason
-- containing a text), oldest first, at most p_limit. Every matching row comes back; `claimed`
-- says whether this call holds it (another replay holds it until its lease runs out, and a
-- truncated body is never replayed). The claim is one atomic update: two replays at once never
-- run the same row.
create or replace function public.claim_webhook_dead_letters(
  p_ids bigint[],
  p_function text,
  p_since timestamptz,
  p_reason text,
  p_lease_seconds integer default 60,
  p_limit integer default 500
)
returns table (
  id bigint,
  function_name text,
  kind text,
  path text,
  reason text,
  auth_scheme text,
  query text,
  headers jsonb,
  body bytea,
  truncated boolean,
  received_at timestamptz,
  replay_token uuid,
  claimed boolean
)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_token uuid := gen_random_uuid();
begin
  if p_ids is null and p_function is null then
    raise exception 'ids or a function are required';
  end if;
  return query
  with matched as (
    select d.id from public.webhook_dead_letters d
     where (p_ids is null or d.id = any (p_ids))
       and (p_function is null or d.function_name = p_function)
       and (p_since is null or d.received_at >= p_since)
       and (p_reason is null or strpos(d.reason, p_reason) > 0)
     order by d.id
     limit greatest(1, least(coalesce(p_limit, 500), 5000))
  ),
  taken as (
    update public.webhook_dead_letters d set
      replay_state = 'replaying',
      replay_token = v_token,
      replay_locked_until = now() + make_interval(secs => greatest(1, p_lease_seconds))
    where d.id in (select m.id from matched m)
      and not d.truncated
      and (d.replay_state <> 'replaying' or d.replay_locked_until <= now())
    returning d.id
  )
  select d.id, d.function_name, d.kind, d.path, d.reason, d.auth_scheme, d.query, d.headers,
    d.body, d.truncated, d.received_at,
    case when t.id is null then null else v_token end,
    t.id is not null
  from public.webhook_dead_letters d
  join matched m on m.id = d.id
  left join taken t on t.id = d.id
  order by d.id;
end
$$;

-- Records a replay's result (or, with a null result, gives the claim back untouched), only with
-- the claim's token.
create or replace function public.finish_webhook_dead_letter_replay(
  p_id bigint,
  p_token uuid,
  p_result text,
  p_reason text
)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
  if p_result is null then
    update public.webhook_dead_letters d set
      replay_state = case when d.replay_result is null then 'pending' else 'done' end,
      replay_token = null, replay_locked_until = null
    where d.id = p_id and d.replay_token = p_token;
  else
    update public.webhook_dead_letters d set
      replay_state = 'done', replay_result = p_result, replay_reason = left(p_reason, 2000),
      replay_count = d.replay_count + 1, replayed_at = now(),
      replay_token = null, replay_locked_until = null
    where d.id = p_id and d.replay_token = p_token;
  end if;
  return found;
end
$$;

-- Deletes expired dead letters in small batches, skipping rows a replay holds; returns the count.
create or replace function public.cleanup_webhook_dead_letters(batch_size integer default 5000)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_total bigint := 0;
  v_batch bigint;
begin
  if batch_size is null or batch_size < 1 then
    raise exception 'batch_size must be positive';
  end if;
  loop
    delete from public.webhook_dead_letters w
    where w.ctid = any (array(
      select e.ctid from public.webhook_dead_letters e
      where e.expires_at <= clock_timestamp()
      limit batch_size
      for update skip locked
    ));
    get diagnostics v_batch = row_count;
    v_total := v_total + v_batch;
    exit when v_batch < batch_size;
  end loop;
  return v_total;
end
$$;

-- Counts for webhook-stats.
create or replace function public.webhook_dead_letter_stats()
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_now timestamptz := clock_timestamp();
  v_totals jsonb;
  v_functions jsonb;
begin
  select jsonb_build_object(
    'total', count(*),
    'deliveries', count(*) filter (where kind = 'delivery'),
    'items', count(*) filter (where kind = 'item'),
    'pending', count(*) filter (where replay_state = 'pending'),
    'replaying', count(*) filter (where replay_state = 'replaying' and replay_locked_until > v_now),
    'notReplayable', count(*) filter (where truncated),
    'expired', count(*) filter (where expires_at <= v_now),
    'oldest', min(received_at),
    'newest', max(received_at),
    'byResult', jsonb_build_object(
      'applied', count(*) filter (where replay_result = 'applied'),
      'duplicate', count(*) filter (where replay_result = 'duplicate'),
      'unchanged', count(*) filter (where replay_result = 'unchanged'),
      'stale', count(*) filter (where replay_result = 'stale'),
      'still_refused', count(*) filter (where replay_result = 'still_refused'))
  ) into v_totals from public.webhook_dead_letters;

  select coalesce(jsonb_object_agg(f.function_name, jsonb_build_object(
    'total', f.total, 'deliveries', f.deliveries, 'items', f.items, 'pending', f.pending)),
    '{}'::jsonb)
  into v_functions from (
    select function_name, count(*) as total,
      count(*) filter (where kind = 'delivery') as deliveries,
      count(*) filter (where kind = 'item') as items,
      count(*) filter (where replay_state = 'pending') as pending
    from public.webhook_dead_letters group by function_name
  ) f;

  return v_totals || jsonb_build_object(
    'byFunction', v_functions,
    'tableBytes', pg_total_relation_size('public.webhook_dead_letters'::regclass),
    'limits', (select to_jsonb(l) from public.webhook_dead_letter_limits() l)
  );
end
$$;

-- The hourly pg_cron job (cleanup-webhook-idempotency, `select
-- public.cleanup_webhook_idempotency(5000)`) cleans the dead letters too: the function is
-- wrapped, so the job, its name and its command stay as they are wherever it was scheduled.
create or replace function public.cleanup_webhook_idempotency(batch_size integer default 5000)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_started timestamptz := clock_timestamp();
  v_total bigint := 0;
  v_batch bigint;
begin
  if batch_size is null or batch_size < 1 then
    raise exception 'batch_size must be positive';
  end if;
  loop
    delete from public.webhook_idempotency w
    where w.ctid = any (array(
      select e.ctid from public.webhook_idempotency e
      where e.expires_at <= clock_timestamp()
      limit batch_size
      for update skip locked
    ));
    get diagnostics v_batch = row_count;
    v_total := v_total + v_batch;
    exit when v_batch < batch_size;
  end loop;
  insert into public.webhook_idempotency_cleanup_runs (started_at, finished_at, rows_deleted)
  values (v_started, clock_timestamp(), v_total);
  delete from public.webhook_idempotency_cleanup_runs r
  where r.id <= (select max(id) - 1000 from public.webhook_idempotency_cleanup_runs);
  perform public.cleanup_webhook_dead_letters(batch_size);
  return v_total;
end
$$;

revoke all on function public.webhook_dead_letter_limits() from public, anon, authenticated;
revoke all on function public.record_webhook_dead_letters(
  text, text, text, text, text, jsonb, bytea, text[], text[]) from public, anon, authenticated;
revoke all on function public.claim_webhook_dead_letters(
  bigint[], text, timestamptz, text, integer, integer) from public, anon, authenticated;
revoke all on function public.finish_webhook_dead_letter_replay(bigint, uuid, text, text)
  from public, anon, authenticated;
revoke all on function public.cleanup_webhook_dead_letters(integer) from public, anon, authenticated;
revoke all on function public.webhook_dead_letter_stats() from public, anon, authenticated;
revoke all on function public.cleanup_webhook_idempotency(integer) from public, anon, authenticated;
grant execute on function public.webhook_dead_letter_limits() to service_role;
grant execute on function public.record_webhook_dead_letters(
  text, text, text, text, text, jsonb, bytea, text[], text[]) to service_role;
grant execute on function public.claim_webhook_dead_letters(
  bigint[], text, timestamptz, text, integer, integer) to service_role;
grant execute on function public.finish_webhook_dead_letter_replay(bigint, uuid, text, text)
  to service_role;
grant execute on function public.cleanup_webhook_dead_letters(integer) to service_role;
grant execute on function public.webhook_dead_letter_stats() to service_role;
grant execute on function public.cleanup_webhook_idempotency(integer) to service_role;
