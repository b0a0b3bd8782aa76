-- WhatsApp group membership, written by the whatsapp-membership-webhook function.
--
-- The table is the source of truth. public.apply_whatsapp_membership_events writes a row only
-- when the membership state really changes and the event is not older than the last one applied,
-- so a duplicate delivery that slips past every cache changes nothing and emits no Realtime event.
--
-- The migration also applies on plain PostgreSQL: the Supabase roles and the supabase_realtime
-- publication are created when they are absent.

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
end
$$;

create table if not exists public.whatsapp_group_members (
  group_jid text not null
    constraint whatsapp_group_members_group_jid_check
    check (group_jid ~ '^[0-9]{5,40}(-[0-9]{5,20})?@g\.us$'),
  -- E.164 with '+', or 'lid:<digits>' for a participant known only by its WhatsApp LID.
  phone text not null
    constraint whatsapp_group_members_phone_check
    check (phone ~ '^(\+[1-9][0-9]{5,16}|lid:[0-9]{1,32})$'),
  status text not null
    constraint whatsapp_group_members_status_check
    check (status in ('member', 'left')),
  last_event_at timestamptz not null,
  updated_at timestamptz not null default now(),
  primary key (group_jid, phone)
);

comment on table public.whatsapp_group_members is
  'Current membership of WhatsApp groups; one row per (group, participant), changed only on a real state change.';

alter table public.whatsapp_group_members enable row level security;

drop policy if exists "Authenticated users can read memberships" on public.whatsapp_group_members;
create policy "Authenticated users can read memberships"
  on public.whatsapp_group_members for select to authenticated using (true);

drop policy if exists "Service role writes memberships" on public.whatsapp_group_members;
create policy "Service role writes memberships"
  on public.whatsapp_group_members for all to service_role using (true) with check (true);

revoke all on public.whatsapp_group_members from anon, authenticated;
grant select on public.whatsapp_group_members to authenticated;
grant select, insert, update, delete on public.whatsapp_group_members to service_role;

-- Realtime reads the supabase_realtime publication.
do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
  if not exists (
    select 1 from pg_publication_tables
    where pubname = 'supabase_realtime'
      and schemaname = 'public'
      and tablename = 'whatsapp_group_members'
  ) then
    alter publication supabase_realtime add table public.whatsapp_group_members;
  end if;
end
$$;

-- Applies a webhook's membership events in one call.
--
-- events: jsonb array of {group_jid, phone, action ('join'|'leave'), event_at (timestamptz)}.
-- Returns one (idx, outcome) row per event, idx being its 0-based position:
--   applied   the state changed (one row insert or update, so one Realtime event);
--   unchanged the row already has that state (a duplicate; nothing written);
--   stale     the row holds a different state from a newer event (a late retry; nothing written).
-- Events are applied in (group_jid, phone, idx) order so that concurrent calls lock rows in the
-- same order and cannot deadlock.
create or replace function public.apply_whatsapp_membership_events(events jsonb)
returns table (idx integer, outcome text)
language plpgsql
set search_path = ''
as $$
declare
  e record;
  wanted text;
  current_status text;
  changed integer;
begin
  if jsonb_typeof(events) is distinct from 'array' then
    raise exception 'events must be a json array' using errcode = '22023';
  end if;

  for e in
    select (t.ordinality - 1)::integer as i,
           t.value ->> 'group_jid' as group_jid,
           t.value ->> 'phone' as phone,
           t.value ->> 'action' as action,
           (t.value ->> 'event_at')::timestamptz as event_at
    from jsonb_array_elements(events) with ordinality as t(value, ordinality)
    order by 2, 3, 1
  loop
    wanted := case e.action when 'join' then 'member' when 'leave' then 'left' end;
    if wanted is null then
      raise exception 'unknown membership action %', e.action using errcode = '22023';
    end if;

    insert into public.whatsapp_group_members as m (group_jid, phone, status, last_event_at)
    values (e.group_jid, e.phone, wanted, e.event_at)
    on conflict (group_jid, phone) do update
      set status = excluded.status,
          last_event_at = excluded.last_event_at,
          updated_at = now()
      where m.status is distinct from excluded.status
        and m.last_event_at <= excluded.last_event_at;
    get diagnostics changed = row_count;

    idx := e.i;
    if changed > 0 then
      outcome := 'applied';
    else
      select m.status into current_status
      from public.whatsapp_group_members as m
      where m.group_jid = e.group_jid and m.phone = e.phone;
      outcome := case when current_status = wanted then 'unchanged' else 'stale' end;
    end if;
    return next;
  end loop;
end
$$;

comment on function public.apply_whatsapp_membership_events(jsonb) is
  'Applies WhatsApp membership events; writes only real state changes that are not older than the last applied event.';

revoke all on function public.apply_whatsapp_membership_events(jsonb) from public, anon, authenticated;
grant execute on function public.apply_whatsapp_membership_events(jsonb) to service_role;
