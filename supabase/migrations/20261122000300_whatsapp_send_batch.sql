-- WhatsApp send batches, written by the whatsapp-send-batch function.
--
-- A batch is a message and a list of recipients owned by the user who created it (RLS on
-- auth.uid()). Each recipient moves pending -> processing -> sent | failed | unknown:
--
-- * the claim is one atomic statement (whatsapp_send_claim: `… where status = 'pending' … for
--   update skip locked … returning`) that sets a lease and counts the attempt, so two drains never
--   claim one recipient;
-- * a `processing` row whose lease expired (the sending process died between the provider call and
--   the status write) becomes `unknown`, never `pending`: it may have been sent, and resending it is
--   the user's decision (whatsapp_send_expire_leases);
-- * status webhooks stored in public.whatsapp_messages move `unknown`/`processing` recipients to
--   `sent` (matched by provider message id, or by the recipient id echoed as Cloud API
--   biz_opaque_callback_data) and record delivered/read, whichever instance received them
--   (trigger whatsapp_messages_reconcile_send_recipients).
--
-- Applies on plain PostgreSQL too: the auth schema and auth.uid() are created when absent (they
-- exist on Supabase), like the roles and the supabase_realtime publication of the first migration.

create schema if not exists auth;

do $$
begin
  if not exists (
    select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'auth' and p.proname = 'uid'
  ) then
    execute $fn$
      create function auth.uid() returns uuid language sql stable as $body$
        select nullif(
          coalesce(
            current_setting('request.jwt.claim.sub', true),
            (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
          ),
          ''
        )::uuid
      $body$
    $fn$;
  end if;
end
$$;

grant usage on schema auth to anon, authenticated, service_role;

create table if not exists public.whatsapp_send_batches (
  id uuid primary key default gen_random_uuid(),
  owner uuid not null default auth.uid(),
  -- {"type":"text","text":"…"} or {"type":"template","template":{"name","language","components"}}
  message jsonb not null,
  total integer not null check (total between 1 and 10000),
  created_at timestamptz not null default now(),
  -- First click on send; the drain schedule only looks at batches that were sent.
  send_requested_at timestamptz,
  -- One drain at a time per batch: the holder's token and its lease.
  drain_token uuid,
  drain_lease_until timestamptz
);

create index if not exists whatsapp_send_batches_owner_idx
  on public.whatsapp_send_batches (owner, created_at desc);

create table if not exists public.whatsapp_send_recipients (
  id uuid primary key default gen_random_uuid(),
  batch_id uuid not null references public.whatsapp_send_batches (id) on delete cascade,
  -- Copied from the batch so that RLS (and Realtime's per-subscriber check) reads one column.
  owner uuid not null,
  -- 1-based position in the upload (CSV data row or JSON array index).
  row_number integer not null,
  phone text not null
    constraint whatsapp_send_recipients_phone_check check (phone ~ '^\+[1-9][0-9]{5,16}$'),
  name text,
  variables jsonb not null default '{}'::jsonb,
  status text not null default 'pending'
    constraint whatsapp_send_recipients_status_check
    check (status in ('pending', 'processing', 'sent', 'failed', 'unknown')),
  attempts integer not null default 0,
  lease_until timestamptz,
  -- A throttled or unreachable-provider recipient waits until then before the next claim.
  not_before timestamptz,
  provider_message_id text,
  error_code text,
  error_message text,
  -- For failed recipients: whether retry puts them back to pending.
  retryable boolean,
  sent_at timestamptz,
  -- From status webhooks: delivered, read, played, or failed after acceptance.
  delivery_status text,
  delivered_at timestamptz,
  read_at timestamptz,
  updated_at timestamptz not null default now(),
  constraint whatsapp_send_recipients_batch_phone_key unique (batch_id, phone)
);

create index if not exists whatsapp_send_recipients_claim_idx
  on public.whatsapp_send_recipients (batch_id, status, row_number);
create index if not exists whatsapp_send_recipients_provider_message_idx
  on public.whatsapp_send_recipients (provider_message_id) where provider_message_id is not null;

comment on table public.whatsapp_send_recipients is
  'Recipients of a send batch: pending -> processing -> sent | failed | unknown (never resent automatically).';

-- Row level security: a batch and its recipients belong to their owner. The service role bypasses
-- RLS (bypassrls), so it may act on any batch.
alter table public.whatsapp_send_batches enable row level security;
alter table public.whatsapp_send_recipients enable row level security;

drop policy if exists "Owners manage their batches" on public.whatsapp_send_batches;
create policy "Owners manage their batches" on public.whatsapp_send_batches
  for all to authenticated
  using (owner = (select auth.uid())) with check (owner = (select auth.uid()));

drop policy if exists "Owners manage their recipients" on public.whatsapp_send_recipients;
create policy "Owners manage their recipients" on public.whatsapp_send_recipients
  for all to authenticated
  using (owner = (select auth.uid())) with check (owner = (select auth.uid()));

revoke all on public.whatsapp_send_batches, public.whatsapp_send_recipients from anon;
grant select, insert, update on public.whatsapp_send_batches to authenticated;
grant select, insert, update on public.whatsapp_send_recipients to authenticated;
grant select, insert, update, delete on public.whatsapp_send_batches to service_role;
grant select, insert, update, delete on public.whatsapp_send_recipients to service_role;

-- Leases that expired become unknown (the process died mid-call): never pending.
create or replace function public.whatsapp_send_expire_leases(p_batch uuid)
returns integer
language sql
as $$
  with expired as (
    update public.whatsapp_send_recipients
       set status = 'unknown',
           error_code = 'lease_expired',
           error_message = 'the sending process stopped before recording the outcome',
           lease_until = null,
           updated_at = now()
     where batch_id = p_batch and status = 'processing' and lease_until < now()
    returning 1
  )
  select count(*)::integer from expired
$$;

-- The atomic claim: pending (and not backing off) -> processing, with a lease and an attempt.
-- The candidates are a materialized CTE: as an `id in (subquery … limit)` the subquery may be
-- rescanned and claim more than p_limit rows.
create or replace function public.whatsapp_send_claim(p_batch uuid, p_limit integer, p_lease_ms integer)
returns setof public.whatsapp_send_recipients
language sql
as $$
  with picked as materialized (
    select id from public.whatsapp_send_recipients
     where batch_id = p_batch and status = 'pending'
       and (not_before is null or not_before <= now())
     order by row_number
     limit p_limit
       for update skip locked
  )
  update public.whatsapp_send_recipients r
     set status = 'processing',
         attempts = r.attempts + 1,
         lease_until = now() + make_interval(secs => p_lease_ms / 1000.0),
         not_before = null,
         updated_at = now()
    from picked
   where r.id = picked.id and r.status = 'pending'
  returning r.*
$$;

-- One drain per batch: takes (or renews, with the same token) the batch's drain lease.
create or replace function public.whatsapp_send_acquire_drain(
  p_batch uuid, p_token uuid, p_lease_ms integer
)
returns boolean
language sql
as $$
  with taken as (
    update public.whatsapp_send_batches
       set drain_token = p_token,
           drain_lease_until = now() + make_interval(secs => p_lease_ms / 1000.0),
           send_requested_at = coalesce(send_requested_at, now())
     where id = p_batch
       and (drain_token is null or drain_token = p_token or drain_lease_until < now())
    returning 1
  )
  select exists (select 1 from taken)
$$;

-- Releases the drain lease if this token still holds it.
create or replace function public.whatsapp_send_release_drain(p_batch uuid, p_token uuid)
returns void
language sql
as $$
  update public.whatsapp_send_batches
     set drain_token = null, drain_lease_until = null
   where id = p_batch and drain_token = p_token
$$;

-- Batches that still have work: sent at least once, pending recipients, no live drain.
create or replace function public.whatsapp_send_batches_to_drain(p_limit integer default 100)
returns table (batch_id uuid)
language sql
stable
as $$
  select b.id from public.whatsapp_send_batches b
   where b.send_requested_at is not null
     and (b.drain_lease_until is null or b.drain_lease_until < now())
     and exists (
       select 1 from public.whatsapp_send_recipients r
        where r.batch_id = b.id
          and (r.status = 'pending' or (r.status = 'processing' and r.lease_until < now()))
     )
   order by b.send_requested_at
   limit p_limit
$$;

create or replace function public.whatsapp_message_status_rank(p_status text)
returns integer
language sql
immutable
as $$
  select case p_status
    when 'pending' then 0 when 'sent' then 1 when 'delivered' then 2
    when 'read' then 3 when 'played' then 4 else -1 end
$$;

-- Reconciliation: a stored status moves matching unknown/processing recipients to sent and
-- records delivered/read; a failed status after acceptance is recorded as the delivery status.
create or replace function public.whatsapp_send_reconcile_from_message()
returns trigger
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
  v_recipient uuid;
begin
  if new.status is null or new.direction <> 'out' then
    return null;
  end if;
  if new.callback_data ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    v_recipient := new.callback_data::uuid;
  end if;
  if new.status in ('sent', 'delivered', 'read', 'played') then
    update public.whatsapp_send_recipients r
       set status = case when r.status in ('unknown', 'processing') then 'sent' else r.status end,
           provider_message_id = coalesce(r.provider_message_id, new.message_id),
           sent_at = coalesce(r.sent_at, new.status_at, now()),
           lease_until = case when r.status = 'processing' then null else r.lease_until end,
           error_code = case when r.status = 'unknown' then null else r.error_code end,
           error_message = case when r.status = 'unknown' then null else r.error_message end,
           delivery_status = case
             when public.whatsapp_message_status_rank(new.status) >
                  public.whatsapp_message_status_rank(r.delivery_status)
             then new.status else r.delivery_status end,
           delivered_at = case when new.status in ('delivered', 'read', 'played')
             then coalesce(r.delivered_at, new.status_at, now()) else r.delivered_at end,
           read_at = case when new.status in ('read', 'played')
             then coalesce(r.read_at, new.status_at, now()) else r.read_at end,
           updated_at = now()
     where (r.provider_message_id = new.message_id or r.id = v_recipient)
       and r.status in ('unknown', 'processing', 'sent');
  elsif new.status = 'failed' then
    update public.whatsapp_send_recipients r
       set status = case when r.status in ('unknown', 'processing') then 'failed' else r.status end,
           retryable = case when r.status in ('unknown', 'processing') then false else r.retryable end,
           provider_message_id = coalesce(r.provider_message_id, new.message_id),
           lease_until = case when r.status = 'processing' then null else r.lease_until end,
           error_code = coalesce(new.error_code, r.error_code),
           delivery_status = 'failed',
           updated_at = now()
     where (r.provider_message_id = new.message_id or r.id = v_recipient)
       and r.status in ('unknown', 'processing', 'sent');
  end if;
  return null;
end
$$;

drop trigger if exists whatsapp_messages_reconcile_send_recipients on public.whatsapp_messages;
create trigger whatsapp_messages_reconcile_send_recipients
  after insert or update of status on public.whatsapp_messages
  for each row execute function public.whatsapp_send_reconcile_from_message();

-- The UI's progress bar follows recipients live.
do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
  if not exists (
    select 1 from pg_publication_tables
    where pubname = 'supabase_realtime' and schemaname = 'public'
      and tablename = 'whatsapp_send_recipients'
  ) then
    alter publication supabase_realtime add table public.whatsapp_send_recipients;
  end if;
end
$$;

-- What a signed-in user may change in their own recipients, whether through this function or
-- directly through the Data API: only the transitions of the lifecycle a user can cause. A sent
-- recipient can never be put back to pending (that would message the person twice), and the
-- outcome columns are written by the sending process (service role) alone.
create or replace function public.whatsapp_send_guard_user_update()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user <> 'authenticated' then
    return new;
  end if;
  if (new.batch_id, new.owner, new.phone, new.row_number, new.provider_message_id)
     is distinct from (old.batch_id, old.owner, old.phone, old.row_number, old.provider_message_id)
  then
    raise exception 'recipients'' identity and provider message id cannot be changed'
      using errcode = '42501';
  end if;
  if new.status is distinct from old.status and not (
       (old.status = 'pending' and new.status = 'processing')
    or (old.status = 'processing' and new.status = 'unknown' and old.lease_until < now())
    or (old.status = 'failed' and old.retryable and new.status = 'pending')
    or (old.status = 'unknown' and new.status = 'pending')
  ) then
    raise exception 'a user cannot move a recipient from % to %', old.status, new.status
      using errcode = '42501';
  end if;
  return new;
end
$$;

drop trigger if exists whatsapp_send_guard_user_update on public.whatsapp_send_recipients;
create trigger whatsapp_send_guard_user_update
  before update on public.whatsapp_send_recipients
  for each row execute function public.whatsapp_send_guard_user_update();
