-- Idempotency-Key records of every function of the set (the shared layer in
-- supabase/functions/_shared/core/idempotency/).
--
-- One row per (scope, key): scope = function + verified caller, so one caller never reads another's
-- stored response. Request bodies are never stored, only a SHA-256 fingerprint of method, path and
-- body. public.begin_webhook_idempotency is the one round trip of a request's lookup-or-lock;
-- public.complete_webhook_idempotency stores the response, public.release_webhook_idempotency drops
-- the record of an attempt that must run again. public.cleanup_webhook_idempotency deletes expired
-- rows in small batches; pg_cron runs it hourly when the extension is available.
--
-- The table is not in the supabase_realtime publication: recording a key or a replay emits no
-- Realtime event. The migration also applies on plain PostgreSQL without pg_cron.

create table if not exists public.webhook_idempotency (
  scope text not null check (length(scope) between 1 and 300),
  key text not null check (key ~ '^[A-Za-z0-9._:-]{1,255}$'),
  webhook_type text not null check (length(webhook_type) between 1 and 100),
  fingerprint text not null check (fingerprint ~ '^[0-9a-f]{64}$'),
  state text not null check (state in ('in_progress', 'completed')),
  -- The attempt that holds the lease; complete/release act only with it.
  lock_token uuid not null,
  response_status integer,
  response_content_type text,
  response_body bytea,
  replay_count integer not null default 0,
  locked_until timestamptz not null,
  expires_at timestamptz not null,
  created_at timestamptz not null default now(),
  completed_at timestamptz,
  source_ip text check (length(source_ip) <= 64),
  primary key (scope, key)
);

comment on table public.webhook_idempotency is
  'Idempotency-Key records: first response of each (scope, key), replayed to retries until expires_at.';

create index if not exists webhook_idempotency_expires_at_idx
  on public.webhook_idempotency (expires_at);
create index if not exists webhook_idempotency_type_state_idx
  on public.webhook_idempotency (webhook_type, state);

alter table public.webhook_idempotency enable row level security;

drop policy if exists "Service role manages idempotency keys" on public.webhook_idempotency;
create policy "Service role manages idempotency keys"
  on public.webhook_idempotency for all to service_role using (true) with check (true);

revoke all on public.webhook_idempotency from public, anon, authenticated;
grant select, insert, update, delete on public.webhook_idempotency to service_role;

-- Runs of the cleanup (rows deleted per run), for the statistics endpoint; the newest 1000 are kept.
create table if not exists public.webhook_idempotency_cleanup_runs (
  id bigint generated always as identity primary key,
  started_at timestamptz not null,
  finished_at timestamptz not null,
  rows_deleted bigint not null
);

alter table public.webhook_idempotency_cleanup_runs enable row level security;
drop policy if exists "Service role reads cleanup runs" on public.webhook_idempotency_cleanup_runs;
create policy "Service role reads cleanup runs"
  on public.webhook_idempotency_cleanup_runs for all to service_role using (true) with check (true);
revoke all on public.webhook_idempotency_cleanup_runs from public, anon, authenticated;
grant select, insert, delete on public.webhook_idempotency_cleanup_runs to service_role;

-- Lookup-or-lock, one round trip. Outcomes:
--   started      no live record (none, expired, or an in-progress lease that ran out): the caller
--                holds a new lease (token) and runs;
--   replay       completed with the same fingerprint: the stored response and its expiry
--                (replay_count + 1);
--   mismatch     same key, different fingerprint;
--   in_progress  another attempt holds the lease; retry_after_ms until it runs out.
create or replace function public.begin_webhook_idempotency(
  p_scope text,
  p_key text,
  p_webhook_type text,
  p_fingerprint text,
  p_lease_ms integer,
  p_ttl_seconds integer,
  p_source_ip text default null
)
returns table (
  outcome text,
  token uuid,
  response_status integer,
  response_content_type text,
  response_body bytea,
  retry_after_ms integer,
  expires_at timestamptz
)
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := clock_timestamp();
  v_token uuid := gen_random_uuid();
  v_row public.webhook_idempotency%rowtype;
begin
  for attempt in 1..3 loop
    insert into public.webhook_idempotency as w (
      scope, key, webhook_type, fingerprint, state, lock_token, locked_until, expires_at,
      created_at, source_ip
    ) values (
      p_scope, p_key, p_webhook_type, p_fingerprint, 'in_progress', v_token,
      v_now + make_interval(secs => p_lease_ms / 1000.0),
      v_now + make_interval(secs => p_ttl_seconds), v_now, left(p_source_ip, 64)
    )
    on conflict (scope, key) do nothing;
    if found then
      return query select 'started'::text, v_token, null::integer, null::text, null::bytea,
        null::integer, null::timestamptz;
      return;
    end if;

    select * into v_row from public.webhook_idempotency w
    where w.scope = p_scope and w.key = p_key
    for update;
    if not found then
      continue; -- deleted between the insert and the select (release or cleanup): insert again
    end if;

    if v_row.expires_at <= v_now
      or (v_row.state = 'in_progress' and v_row.locked_until <= v_now) then
      -- Expired, or the holder died: this attempt takes the key over.
      update public.webhook_idempotency w set
        webhook_type = p_webhook_type,
        fingerprint = p_fingerprint,
        state = 'in_progress',
        lock_token = v_token,
        response_status = null,
        response_content_type = null,
        response_body = null,
        replay_count = case when v_row.expires_at <= v_now then 0 else w.replay_count end,
        locked_until = v_now + make_interval(secs => p_lease_ms / 1000.0),
        expires_at = v_now + make_interval(secs => p_ttl_seconds),
        created_at = v_now,
        completed_at = null,
        source_ip = left(p_source_ip, 64)
      where w.scope = p_scope and w.key = p_key;
      return query select 'started'::text, v_token, null::integer, null::text, null::bytea,
        null::integer, null::timestamptz;
      return;
    end if;

    if v_row.fingerprint <> p_fingerprint then
      return query select 'mismatch'::text, null::uuid, null::integer, null::text, null::bytea,
        null::integer, null::timestamptz;
      return;
    end if;

    if v_row.state = 'in_progress' then
      return query select 'in_progress'::text, null::uuid, null::integer, null::text, null::bytea,
        greatest(1, ceil(extract(epoch from (v_row.locked_until - v_now)) * 1000))::integer,
        null::timestamptz;
      return;
    end if;

    update public.webhook_idempotency w set replay_count = w.replay_count + 1
    where w.scope = p_scope and w.key = p_key;
    return query select 'replay'::text, null::uuid, v_row.response_status,
      v_row.response_content_type, v_row.response_body, null::integer, v_row.expires_at;
    return;
  end loop;
  raise exception 'webhook_idempotency: could not record key after 3 attempts';
end
$$;

-- Stores the response of the attempt holding the lease; false when the lease was lost (taken over).
create or replace function public.complete_webhook_idempotency(
  p_scope text,
  p_key text,
  p_token uuid,
  p_status integer,
  p_content_type text,
  p_body bytea
)
returns boolean
language sql
set search_path = ''
as $$
  with done as (
    update public.webhook_idempotency w set
      state = 'completed',
      response_status = p_status,
      response_content_type = p_content_type,
      response_body = p_body,
      completed_at = clock_timestamp()
    where w.scope = p_scope and w.key = p_key and w.lock_token = p_token
      and w.state = 'in_progress'
    returning 1
  )
  select exists (select 1 from done);
$$;

-- Drops the record of an attempt whose response is not kept (5xx, validation errors), so the retry
-- runs; false when the lease was lost.
create or replace function public.release_webhook_idempotency(
  p_scope text,
  p_key text,
  p_token uuid
)
returns boolean
language sql
set search_path = ''
as $$
  with gone as (
    delete from public.webhook_idempotency w
    where w.scope = p_scope and w.key = p_key and w.lock_token = p_token
      and w.state = 'in_progress'
    returning 1
  )
  select exists (select 1 from gone);
$$;

-- Deletes expired records, batch_size rows at a time, and returns the count; records the run in
-- webhook_idempotency_cleanup_runs (rows deleted, for the statistics endpoint). It takes no table
-- lock and skips rows another transaction holds (`for update skip locked`) instead of waiting, so
-- writers recording new keys never wait for it; only a request taking over a key this run has just
-- deleted waits for the run to commit. Rows skipped are deleted by the next run.
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
  return v_total;
end
$$;

-- Statistics for the webhook-stats function, one round trip. The last cleanup run comes from
-- pg_cron's cron.job_run_details when present, its row count from webhook_idempotency_cleanup_runs.
create or replace function public.webhook_idempotency_stats()
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := clock_timestamp();
  v_totals jsonb;
  v_types jsonb;
  v_cron jsonb := null;
  v_run jsonb;
begin
  select jsonb_build_object(
    'total', count(*),
    'active', count(*) filter (where expires_at > v_now),
    'expired', count(*) filter (where expires_at <= v_now),
    'inProgress', count(*) filter (
      where state = 'in_progress' and locked_until > v_now and expires_at > v_now),
    'replays', coalesce(sum(replay_count), 0)
  ) into v_totals from public.webhook_idempotency;

  select coalesce(jsonb_object_agg(t.webhook_type, jsonb_build_object(
    'total', t.total, 'active', t.active, 'expired', t.expired,
    'inProgress', t.in_progress, 'replays', t.replays)), '{}'::jsonb)
  into v_types from (
    select webhook_type,
      count(*) as total,
      count(*) filter (where expires_at > v_now) as active,
      count(*) filter (where expires_at <= v_now) as expired,
      count(*) filter (
        where state = 'in_progress' and locked_until > v_now and expires_at > v_now) as in_progress,
      coalesce(sum(replay_count), 0) as replays
    from public.webhook_idempotency group by webhook_type
  ) t;

  select jsonb_build_object('startedAt', r.started_at, 'finishedAt', r.finished_at,
    'rowsDeleted', r.rows_deleted)
  into v_run from public.webhook_idempotency_cleanup_runs r order by r.id desc limit 1;

  if to_regclass('cron.job_run_details') is not null then
    execute $q$
      select jsonb_build_object('jobId', j.jobid, 'schedule', j.schedule, 'lastRun', (
        select jsonb_build_object('status', d.status, 'startedAt', d.start_time,
          'finishedAt', d.end_time, 'message', d.return_message)
        from cron.job_run_details d where d.jobid = j.jobid
        order by d.start_time desc nulls last limit 1))
      from cron.job j where j.jobname = 'cleanup-webhook-idempotency'
    $q$ into v_cron;
  end if;

  return v_totals || jsonb_build_object(
    'byType', v_types,
    'tableBytes', pg_total_relation_size('public.webhook_idempotency'::regclass),
    'lastCleanup', v_run,
    'cron', case when to_regclass('cron.job') is null then null
      else coalesce(v_cron, jsonb_build_object('jobId', null)) end
  );
end
$$;

revoke all on function public.begin_webhook_idempotency(text, text, text, text, integer, integer, text)
  from public, anon, authenticated;
revoke all on function public.complete_webhook_idempotency(text, text, uuid, integer, text, bytea)
  from public, anon, authenticated;
revoke all on function public.release_webhook_idempotency(text, text, uuid)
  from public, anon, authenticated;
revoke all on function public.cleanup_webhook_idempotency(integer) from public, anon, authenticated;
revoke all on function public.webhook_idempotency_stats() from public, anon, authenticated;
grant execute on function public.begin_webhook_idempotency(text, text, text, text, integer, integer, text)
  to service_role;
grant execute on function public.complete_webhook_idempotency(text, text, uuid, integer, text, bytea)
  to service_role;
grant execute on function public.release_webhook_idempotency(text, text, uuid) to service_role;
grant execute on function public.cleanup_webhook_idempotency(integer) to service_role;
grant execute on function public.webhook_idempotency_stats() to service_role;

-- Hourly cleanup with pg_cron when the server offers it (Supabase does; locally scripts/ loads it
-- through shared_preload_libraries). Without it — or when it cannot be created in this database —
-- nothing is scheduled and the migration still applies.
do $$
begin
  if not exists (select 1 from pg_available_extensions where name = 'pg_cron') then
    raise notice 'pg_cron is not available: webhook_idempotency cleanup is not scheduled';
    return;
  end if;
  begin
    create extension if not exists pg_cron;
  exception when others then
    raise notice 'pg_cron could not be created here (%): cleanup is not scheduled', sqlerrm;
    return;
  end;
  perform cron.schedule(
    'cleanup-webhook-idempotency',
    '17 * * * *',
    'select public.cleanup_webhook_idempotency(5000)'
  );
end
$$;
