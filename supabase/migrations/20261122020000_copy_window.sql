-- Copies recognised by the database itself, whatever order they arrive in.
--
-- Gateways without event timestamps (Evolution API, Baileys) and WAHA's NOWEB/GOWS engines stamp
-- each session's copy with its own clock, so a slow session's copy of a join can reach the
-- database after the leave that followed it, with a later time than that leave. The row therefore
-- remembers when each action was last applied (last_actions, epoch milliseconds per action); an
-- action within copy_window_ms of the last applied one of the same kind is a copy, not a change.
-- A real leave-and-rejoin takes a person longer than the window (default 1 s).
--
-- Also: promote/demote change the role of a current member only (a person who left stays left),
-- and a person found with both a LID row and a phone row (from before the pair was known) is
-- merged into the phone row as soon as the pair is known.

alter table public.whatsapp_group_members
  add column if not exists last_actions jsonb not null default '{}'::jsonb;

comment on column public.whatsapp_group_members.last_actions is
  'Event time (epoch ms) of the last applied join/leave/promote/demote: copies within the copy window are recognised.';

drop function if exists public.apply_whatsapp_membership_events(jsonb);

-- Applies a webhook's membership events in one call.
--
-- events: jsonb array of {group_jid, phone ('+E.164' or 'lid:<digits>'), lid? ('lid:<digits>',
-- when the payload paired it with the phone), action ('join'|'leave'|'promote'|'demote'), event_at}.
-- copy_window_ms: an action this close (by event time) to the last applied one of the same kind
-- is a copy of it.
-- Returns one (idx, outcome, phone) row per event: idx is its 0-based position, phone the identity
-- it was applied to (a LID resolves to its known phone), and outcome:
--   applied   the state (status, role) changed: one row insert or update, one Realtime event;
--   unchanged a copy, or the person already has that state (nothing written);
--   stale     the person has a different state from an event in a later second (a late retry;
--             nothing written). Events within the same second are applied in arrival order.
-- Writers are serialised per group with a transaction advisory lock taken in group order, so
-- concurrent webhooks can neither create two rows for one person nor deadlock.
create or replace function public.apply_whatsapp_membership_events(
  events jsonb,
  copy_window_ms integer default 1000
)
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
  cur_actions jsonb;
  lid_row record;
  want_status text;
  want_role text;
  new_key text;
  event_ms bigint;
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
    event_ms := (extract(epoch from e.event_at) * 1000)::bigint;

    person_lid := e.given_lid;
    if person_lid is null and e.who like '+%' then
      select p.lid into person_lid from public.whatsapp_lid_phones as p
      where p.phone = e.who order by p.updated_at desc limit 1;
    end if;

    -- A person still split over a LID row and a phone row (both written before the pair was
    -- known) is merged into the phone row: the newer state wins, the LID row goes.
    if e.who like '+%' and person_lid is not null and person_lid <> e.who then
      select m.status, m.role, m.last_event_at, m.last_actions into lid_row
      from public.whatsapp_group_members as m
      where m.group_jid = e.group_jid and m.phone = person_lid
      for update;
      if found and exists (
        select 1 from public.whatsapp_group_members as m
        where m.group_jid = e.group_jid and m.phone = e.who
      ) then
        update public.whatsapp_group_members as m
        set status = lid_row.status,
            role = lid_row.role,
            last_event_at = lid_row.last_event_at,
            last_actions = m.last_actions || lid_row.last_actions,
            updated_at = now()
        where m.group_jid = e.group_jid and m.phone = e.who
          and m.last_event_at < lid_row.last_event_at
          and (m.status, m.role) is distinct from (lid_row.status, lid_row.role);
        delete from public.whatsapp_group_members as m
        where m.group_jid = e.group_jid and m.phone = person_lid;
      end if;
    end if;

    -- The person's row: keyed by the phone, or still by the LID.
    cur_key := null;
    select m.phone, m.status, m.role, m.last_event_at, m.last_actions
      into cur_key, cur_status, cur_role, cur_at, cur_actions
    from public.whatsapp_group_members as m
    where m.group_jid = e.group_jid and m.phone in (e.who, person_lid)
    order by (m.phone = e.who) desc, m.last_event_at desc
    limit 1
    for update;

    want_status := case
      when e.action = 'leave' then 'left'
      when e.action = 'join' then 'member'
      else coalesce(cur_status, 'member') -- promote/demote never change membership
    end;
    want_role := case
      when want_status = 'left' then 'member'
      when e.action = 'promote' then 'admin'
      when e.action = 'demote' then 'member'
      when cur_status = 'member' then cur_role -- a join of a member keeps their role
      else 'member'
    end;

    idx := e.i;
    if cur_key is null then
      insert into public.whatsapp_group_members
        (group_jid, phone, status, role, last_event_at, last_actions)
      values (e.group_jid, e.who, want_status, want_role, e.event_at,
              jsonb_build_object(e.action, event_ms));
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
    elsif cur_actions ? e.action
      and abs(event_ms - (cur_actions ->> e.action)::bigint) < copy_window_ms then
      outcome := 'unchanged'; -- a late copy of the last applied event of this kind
      phone := cur_key;
    else
      new_key := case when cur_key like 'lid:%' and e.who like '+%' then e.who else cur_key end;
      update public.whatsapp_group_members as m
      set status = want_status,
          role = want_role,
          last_event_at = greatest(m.last_event_at, e.event_at),
          last_actions = m.last_actions || jsonb_build_object(e.action, event_ms),
          updated_at = now(),
          phone = new_key
      where m.group_jid = e.group_jid and m.phone = cur_key;
      outcome := 'applied';
      phone := new_key;
    end if;
    return next;
  end loop;
end
$$;

comment on function public.apply_whatsapp_membership_events(jsonb, integer) is
  'Applies WhatsApp membership events; writes only real state changes, never copies or events older than the last applied change.';

revoke all on function public.apply_whatsapp_membership_events(jsonb, integer)
  from public, anon, authenticated;
grant execute on function public.apply_whatsapp_membership_events(jsonb, integer) to service_role;
