-- The Data API surface: what anon and authenticated can do with every table and function in
-- public, through PostgREST (/rest/v1) and Realtime, with RLS as the only guard.
--
-- 1. Send batches are read-only through the Data API. Batches and recipients are written by the
--    whatsapp-send-batch function alone (create, send, retry, drain), which checks the caller and
--    the lifecycle before it writes. A signed-in user reads their own batches and recipients (the
--    progress bar and its Realtime feed) and nothing else: no insert, update or delete grant.
--    Behind that, for every role:
--      * a recipient always belongs to its batch's owner (the owner column is taken from the
--        batch on insert and can never differ from it), so no one can put a recipient into a
--        batch that is not theirs;
--      * a recipient written by a Data API role starts pending with no outcome (guard on INSERT as
--        well as UPDATE), should such a grant ever be added;
--      * a batch's message cannot change once sending was requested.
-- 2. Group members and messages are read per WhatsApp account: public.whatsapp_account_members
--    grants a user an account (a business number or Cloud API phone_number_id, as stored in
--    whatsapp_messages.account) or a group (its JID, as stored in whatsapp_group_members.group_jid).
--    Nobody but the service role reads anything until a grant exists. Realtime's postgres_changes
--    runs the same select policies for each subscriber, so each change reaches only the users
--    granted its account or group.
-- 3. Every function in public runs with an empty search_path and is executable by the service
--    role only (trigger functions need no grant: they run as triggers).
-- 4. pg_cron lives in pg_catalog, as on Supabase, not in the exposed public schema.

-- 1. Send batches ------------------------------------------------------------------------------

revoke all on public.whatsapp_send_batches, public.whatsapp_send_recipients
  from public, anon, authenticated;
grant select on public.whatsapp_send_batches, public.whatsapp_send_recipients to authenticated;
grant select, insert, update, delete
  on public.whatsapp_send_batches, public.whatsapp_send_recipients to service_role;

drop policy if exists "Owners manage their batches" on public.whatsapp_send_batches;
drop policy if exists "Owners read their batches" on public.whatsapp_send_batches;
create policy "Owners read their batches" on public.whatsapp_send_batches
  for select to authenticated
  using (owner = (select auth.uid()));

drop policy if exists "Owners manage their recipients" on public.whatsapp_send_recipients;
drop policy if exists "Owners read their recipients" on public.whatsapp_send_recipients;
create policy "Owners read their recipients" on public.whatsapp_send_recipients
  for select to authenticated
  using (owner = (select auth.uid()));

-- No insert grant goes with it today (the create route writes recipients); the rule is kept
-- here so that one added later checks the batch itself, not the copied owner column.
drop policy if exists "Owners add recipients to their unsent batches"
  on public.whatsapp_send_recipients;
create policy "Owners add recipients to their unsent batches" on public.whatsapp_send_recipients
  for insert to authenticated
  with check (exists (
    select 1 from public.whatsapp_send_batches b
     where b.id = batch_id and b.owner = (select auth.uid()) and b.send_requested_at is null
  ));

-- The owner of a recipient is its batch's owner, whoever writes the row.
create or replace function public.whatsapp_send_recipient_owner_from_batch()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_owner uuid;
  v_sent timestamptz;
begin
  select b.owner, b.send_requested_at into v_owner, v_sent
    from public.whatsapp_send_batches b where b.id = new.batch_id;
  if v_owner is null then
    -- A Data API role sees only its own batches (RLS): any other batch is not the caller's.
    if current_user in ('anon', 'authenticated') then
      raise exception 'a recipient can only be added to a batch of the caller'
        using errcode = '42501';
    end if;
    raise exception 'batch % does not exist', new.batch_id using errcode = '23503';
  end if;
  if new.owner is not null and new.owner is distinct from v_owner then
    raise exception 'a recipient''s owner is its batch''s owner' using errcode = '42501';
  end if;
  if tg_op = 'INSERT' and current_user in ('anon', 'authenticated') then
    if v_sent is not null then
      raise exception 'recipients cannot be added once sending was requested'
        using errcode = '42501';
    end if;
    if new.status <> 'pending' or new.attempts <> 0
       or num_nonnulls(new.provider_message_id, new.error_code, new.error_message, new.retryable,
                       new.sent_at, new.delivery_status, new.delivered_at, new.read_at,
                       new.lease_until) > 0
    then
      raise exception 'a new recipient is pending with no outcome' using errcode = '42501';
    end if;
  end if;
  new.owner := v_owner;
  return new;
end
$$;

drop trigger if exists whatsapp_send_recipient_owner_from_batch on public.whatsapp_send_recipients;
create trigger whatsapp_send_recipient_owner_from_batch
  before insert or update of batch_id, owner on public.whatsapp_send_recipients
  for each row execute function public.whatsapp_send_recipient_owner_from_batch();

-- A batch's owner never changes, and its message is fixed once sending was requested (the drain
-- and every retry send what the user saw when they clicked send).
create or replace function public.whatsapp_send_guard_batch_update()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.owner is distinct from old.owner then
    raise exception 'a batch''s owner cannot be changed' using errcode = '42501';
  end if;
  if old.send_requested_at is not null and new.message is distinct from old.message then
    raise exception 'a batch''s message cannot be changed once sending was requested'
      using errcode = '42501';
  end if;
  return new;
end
$$;

drop trigger if exists whatsapp_send_guard_batch_update on public.whatsapp_send_batches;
create trigger whatsapp_send_guard_batch_update
  before update on public.whatsapp_send_batches
  for each row execute function public.whatsapp_send_guard_batch_update();

-- 2. Reading members and messages per account ----------------------------------------------------

create table if not exists public.whatsapp_account_members (
  -- A business number ('+E.164'), a Cloud API phone_number_id, or a group JID.
  account text not null
    constraint whatsapp_account_members_account_check
    check (account ~ '^(\+?[0-9]{5,32}|[0-9]{5,40}(-[0-9]{5,20})?@g\.us|meta:[A-Za-z0-9._=-]{1,128})$'),
  user_id uuid not null,
  created_at timestamptz not null default now(),
  primary key (account, user_id)
);

create index if not exists whatsapp_account_members_user_idx
  on public.whatsapp_account_members (user_id, account);

comment on table public.whatsapp_account_members is
  'Which signed-in users read which WhatsApp account''s messages or which group''s members; written by the service role.';

alter table public.whatsapp_account_members enable row level security;

drop policy if exists "Users read their own account grants" on public.whatsapp_account_members;
create policy "Users read their own account grants" on public.whatsapp_account_members
  for select to authenticated
  using (user_id = (select auth.uid()));

revoke all on public.whatsapp_account_members from public, anon, authenticated;
grant select on public.whatsapp_account_members to authenticated;
grant select, insert, update, delete on public.whatsapp_account_members to service_role;

drop policy if exists "Authenticated users can read memberships" on public.whatsapp_group_members;
drop policy if exists "Granted users read memberships" on public.whatsapp_group_members;
create policy "Granted users read memberships" on public.whatsapp_group_members
  for select to authenticated
  using (exists (
    select 1 from public.whatsapp_account_members g
     where g.account = whatsapp_group_members.group_jid and g.user_id = (select auth.uid())
  ));

drop policy if exists "Authenticated users can read messages" on public.whatsapp_messages;
drop policy if exists "Granted users read messages" on public.whatsapp_messages;
create policy "Granted users read messages" on public.whatsapp_messages
  for select to authenticated
  using (exists (
    select 1 from public.whatsapp_account_members g
     where g.account = whatsapp_messages.account and g.user_id = (select auth.uid())
  ));

-- Tables only the service role reads or writes (defaults of the platform grant all to the Data
-- API roles; these tables are not for them).
revoke all on public.whatsapp_group_members, public.whatsapp_messages
  from public, anon, authenticated;
grant select on public.whatsapp_group_members, public.whatsapp_messages to authenticated;
revoke all on public.whatsapp_lid_phones, public.whatsapp_member_clock, public.webhook_idempotency,
  public.webhook_idempotency_cleanup_runs from public, anon, authenticated;
revoke all on all sequences in schema public from public, anon, authenticated;

-- 3. Functions ---------------------------------------------------------------------------------

alter function public.whatsapp_send_expire_leases(uuid) set search_path = '';
alter function public.whatsapp_send_claim(uuid, integer, integer) set search_path = '';
alter function public.whatsapp_send_acquire_drain(uuid, uuid, integer) set search_path = '';
alter function public.whatsapp_send_release_drain(uuid, uuid) set search_path = '';
alter function public.whatsapp_send_batches_to_drain(integer) set search_path = '';
alter function public.whatsapp_message_status_rank(text) set search_path = '';
alter function public.whatsapp_send_reconcile_from_message() set search_path = '';

-- Every function in public (this project's own; none belongs to an extension) is for the service
-- role: the functions call them with the database connection or the service role key.
do $$
declare
  f regprocedure;
begin
  for f in
    select p.oid::regprocedure
      from pg_proc p
      join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'public'
       and not exists (
         select 1 from pg_depend d
          where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e'
       )
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$$;

-- 4. pg_cron out of public --------------------------------------------------------------------

-- pg_cron cannot be moved (not relocatable): recreate it in pg_catalog and keep every job.
do $$
declare
  v_jobs jsonb;
  j jsonb;
begin
  if not exists (
    select 1 from pg_extension e join pg_namespace n on n.oid = e.extnamespace
     where e.extname = 'pg_cron' and n.nspname = 'public'
  ) then
    return;
  end if;
  execute $q$select coalesce(jsonb_agg(to_jsonb(j)), '[]'::jsonb) from cron.job j$q$ into v_jobs;
  drop extension pg_cron;
  create extension pg_cron with schema pg_catalog;
  for j in select * from jsonb_array_elements(v_jobs) loop
    execute 'select cron.schedule_in_database($1, $2, $3, $4, $5, $6)'
      using j ->> 'jobname', j ->> 'schedule', j ->> 'command', j ->> 'database',
            j ->> 'username', (j ->> 'active')::boolean;
  end loop;
end
$$;
