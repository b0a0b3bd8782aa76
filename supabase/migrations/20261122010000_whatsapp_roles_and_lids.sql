-- Admin roles (promote/demote), WhatsApp LID identities, and Cloud API group ids.
--
-- Gateways increasingly name participants by LID (`…@lid`) instead of phone number. A LID is not a
-- phone number: it is stored as 'lid:<digits>' until a payload pairs it with the phone. The pair is
-- remembered in public.whatsapp_lid_phones (written only when new or changed), later events for the
-- LID resolve to the phone, and a row still keyed by the LID is re-keyed to the phone by the next
-- real state change of that person, so every person has one row and an unchanged state emits no
-- Realtime event.

alter table public.whatsapp_group_members
  add column if not exists role text not null default 'member';

do $$
begin
  if not exists (
    select 1 from pg_constraint where conname = 'whatsapp_group_members_role_check'
  ) then
    alter table public.whatsapp_group_members
      add constraint whatsapp_group_members_role_check check (role in ('member', 'admin'));
  end if;
end
$$;

-- Cloud API groups have opaque ids; they are stored as 'meta:<id>'.
alter table public.whatsapp_group_members
  drop constraint if exists whatsapp_group_members_group_jid_check;
alter table public.whatsapp_group_members
  add constraint whatsapp_group_members_group_jid_check
  check (group_jid ~ '^([0-9]{5,40}(-[0-9]{5,20})?@g\.us|meta:[A-Za-z0-9._=-]{1,128})$');

create table if not exists public.whatsapp_lid_phones (
  lid text primary key
    constraint whatsapp_lid_phones_lid_check check (lid ~ '^lid:[0-9]{1,32}$'),
  phone text not null
    constraint whatsapp_lid_phones_phone_check check (phone ~ '^\+[1-9][0-9]{5,16}$'),
  learned_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.whatsapp_lid_phones is
  'WhatsApp LID to phone pairs learned from webhook payloads; written only when new or changed.';

create index if not exists whatsapp_lid_phones_phone_idx on public.whatsapp_lid_phones (phone);

alter table public.whatsapp_lid_phones enable row level security;
drop policy if exists "Service role manages LID pairs" on public.whatsapp_lid_phones;
create policy "Service role manages LID pairs"
  on public.whatsapp_lid_phones for all to service_role using (true) with check (true);
revoke all on public.whatsapp_lid_phones from anon, authenticated;
grant select, insert, update, delete on public.whatsapp_lid_phones to service_role;

-- The return type changes (the resolved identity is returned), so the function is recreated.
drop function if exists public.apply_whatsapp_membership_events(jsonb);

-- Applies a webhook's membership events in one call.
--
-- events: jsonb array of {group_jid, phone ('+E.164' or 'lid:<digits>'), lid? ('lid:<digits>',
-- when the payload paired it with the phone), action ('join'|'leave'|'promote'|'demote'), event_at}.
-- Returns one (idx, outcome, phone) row per event: idx is its 0-based position, phone the identity
-- it was applied to (a LID resolves to its known phone), and outcome:
--   applied   the state (status, role) changed: one row insert or update, one Realtime event;
--   unchanged the person already has that state (a duplicate; nothing written);
--   stale     the person has a different state from an event in a later second (a late retry;
--             nothing written). Events within the same second are applied in arrival order.
-- Writers are serialised per group with a transaction advisory lock taken in group order, so
-- concurrent webhooks can neither create two rows for one person nor deadlock.
create function public.apply_whatsapp_membership_events(events jsonb)
returns table (idx integer, outcome text, phone text)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  e record;
  g text;
  person_lid text;
  cur_key text;
  cur_status text;
  cur_role text;
  cur_at timestamptz;
  want_status text;
  want_role text;
  new_key text;
begin
  if jsonb_typeof(events) is distinct from 'array' then
    raise exception 'events must be a json array' using errcode = '22023';
  end if;

  for g in
    select distinct t.value ->> 'group_jid' from jsonb_array_elements(events) as t(value) order by 1
  loop
    perform pg_advisory_xact_lock(hashtextextended('whatsapp_group_members:' || g, 0));
  end loop;

  -- Learn LID/phone pairs; written only when new or changed.
  insert into public.whatsapp_lid_phones as p (lid, phone)
  select distinct on (t.value ->> 'lid') t.value ->> 'lid', t.value ->> 'phone'
  from jsonb_array_elements(events) as t(value)
  where t.value ->> 'lid' like 'lid:%' and t.value ->> 'phone' like '+%'
  order by t.value ->> 'lid'
  on conflict (lid) do update set phone = excluded.phone, updated_at = now()
    where p.phone is distinct from excluded.phone;

  for e in
    select r.i, r.group_jid, r.action, r.event_at, r.given_lid,
           coalesce(
             case when r.given like 'lid:%' then
               (select p.phone from public.whatsapp_lid_phones as p where p.lid = r.given)
             end,
             r.given) as who
    from (
      select (t.ordinality - 1)::integer as i,
             t.value ->> 'group_jid' as group_jid,
             t.value ->> 'phone' as given,
             coalesce(t.value ->> 'lid',
               case when t.value ->> 'phone' like 'lid:%' then t.value ->> 'phone' end) as given_lid,
             t.value ->> 'action' as action,
             (t.value ->> 'event_at')::timestamptz as event_at
      from jsonb_array_elements(events) with ordinality as t(value, ordinality)
    ) as r
    order by r.group_jid, 6, r.i
  loop
    if e.action is null or e.action not in ('join', 'leave', 'promote', 'demote') then
      raise exception 'unknown membership action %', e.action using errcode = '22023';
    end if;

    person_lid := e.given_lid;
    if person_lid is null and e.who like '+%' then
      select p.lid into person_lid from public.whatsapp_lid_phones as p
      where p.phone = e.who order by p.updated_at desc limit 1;
    end if;

    -- The person's row: keyed by the phone, or still by the LID.
    cur_key := null;
    select m.phone, m.status, m.role, m.last_event_at
      into cur_key, cur_status, cur_role, cur_at
    from public.whatsapp_group_members as m
    where m.group_jid = e.group_jid and m.phone in (e.who, person_lid)
    order by (m.phone = e.who) desc, m.last_event_at desc
    limit 1
    for update;

    want_status := case when e.action = 'leave' then 'left' else 'member' end;
    want_role := case e.action
      when 'promote' then 'admin'
      when 'join' then case when cur_status = 'member' then cur_role else 'member' end
      else 'member'
    end;

    idx := e.i;
    if cur_key is null then
      insert into public.whatsapp_group_members (group_jid, phone, status, role, last_event_at)
      values (e.group_jid, e.who, want_status, want_role, e.event_at);
      outcome := 'applied';
      phone := e.who;
    elsif cur_status = want_status and cur_role = want_role then
      outcome := 'unchanged';
      phone := cur_key;
    elsif date_trunc('second', cur_at) > date_trunc('second', e.event_at) then
      -- Ordered at WhatsApp's own one-second resolution: finer clocks (receive times, gateway
      -- clocks) must not make a real change look older than the one before it.
      outcome := 'stale';
      phone := cur_key;
    else
      new_key := case when cur_key like 'lid:%' and e.who like '+%' then e.who else cur_key end;
      update public.whatsapp_group_members as m
      set status = want_status,
          role = want_role,
          last_event_at = e.event_at,
          updated_at = now(),
          phone = new_key
      where m.group_jid = e.group_jid and m.phone = cur_key;
      -- A row still keyed by the LID from before the pair was known is merged away.
      if cur_key = e.who and person_lid is not null then
        delete from public.whatsapp_group_members as m
        where m.group_jid = e.group_jid and m.phone = person_lid;
      end if;
      outcome := 'applied';
      phone := new_key;
    end if;
    return next;
  end loop;
end
$$;

comment on function public.apply_whatsapp_membership_events(jsonb) is
  'Applies WhatsApp membership events; writes only real state changes that are not older than the last applied event.';

revoke all on function public.apply_whatsapp_membership_events(jsonb) from public, anon, authenticated;
grant execute on function public.apply_whatsapp_membership_events(jsonb) to service_role;
