-- WhatsApp group membership, written by the whatsapp-membership-webhook function.
--
-- public.whatsapp_group_members is the source of truth and the table the UI follows through
-- Realtime. public.apply_whatsapp_membership_events writes a member row only when the membership
-- state (status, role) really changes, so a duplicate delivery that slips past every cache changes
-- nothing and emits no Realtime event.
--
-- Gateways increasingly name participants by LID (`…@lid`) instead of phone number. A LID is not a
-- phone number: it is stored as 'lid:<digits>' until a payload pairs it with the phone. The pair is
-- remembered in public.whatsapp_lid_phones (written only when new or changed), later events for the
-- LID resolve to the phone, and a row still keyed by the LID is re-keyed to the phone by the next
-- real state change of that person.
--
-- Cloud API groups have opaque ids; they are stored as 'meta:<id>'.
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
    check (group_jid ~ '^([0-9]{5,40}(-[0-9]{5,20})?@g\.us|meta:[A-Za-z0-9._=-]{1,128})$'),
  -- E.164 with '+', or 'lid:<digits>' for a participant known only by its WhatsApp LID.
  phone text not null
    constraint whatsapp_group_members_phone_check
    check (phone ~ '^(\+[1-9][0-9]{5,16}|lid:[0-9]{1,32})$'),
  status text not null
    constraint whatsapp_group_members_status_check
    check (status in ('member', 'left')),
  role text not null default 'member'
    constraint whatsapp_group_members_role_check
    check (role in ('member', 'admin')),
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

-- Copies and ordering decided by the database itself, whatever order deliveries arrive in.
--
-- Gateways without event timestamps (Evolution API, Baileys) and WAHA's NOWEB/GOWS engines stamp
-- each session's copy with its own clock, and gateways retry failed deliveries later. So:
--
-- * copies: an action within copy_window_ms of the last distinct event of the same action for the
--   same person is a copy of it, not a change, unless a distinct event of another action of that
--   person lies between them (join, leave, join 200 ms apart is three changes);
-- * ordering: an event from an earlier second than the newest distinct event seen for the person
--   is stale, even when that newest event changed nothing (a rejoin that found the person still a
--   member because their leave had not been applied yet);
-- * roles: promote/demote change the role of a member; one from a later second than the person's
--   leave shows they were added back.
--
-- What the database has seen of each person is kept in public.whatsapp_member_clock, a table that
-- is not in the supabase_realtime publication: recording an event that changes nothing emits no
-- Realtime event. A person found with both a LID row and a phone row (written before the pair was
-- known) is merged into the phone row at their next event.

create table if not exists public.whatsapp_member_clock (
  group_jid text not null,
  -- The member row's key: '+E.164' or 'lid:<digits>'.
  person text not null,
  -- Event time of the newest distinct (non-copy) event seen for the person, applied or not.
  last_seen_at timestamptz not null,
  -- Per action, the event time (epoch ms) of the newest distinct event of that action.
  actions jsonb not null default '{}'::jsonb,
  primary key (group_jid, person)
);

comment on table public.whatsapp_member_clock is
  'What the membership webhook has seen of each person (not published to Realtime): recognises copies and late events.';

alter table public.whatsapp_member_clock enable row level security;
drop policy if exists "Service role manages member clocks" on public.whatsapp_member_clock;
create policy "Service role manages member clocks"
  on public.whatsapp_member_clock for all to service_role using (true) with check (true);
revoke all on public.whatsapp_member_clock from anon, authenticated;
grant select, insert, update, delete on public.whatsapp_member_clock to service_role;

-- Per key, the larger epoch-ms value of two action-time maps.
create or replace function public.whatsapp_merge_action_times(a jsonb, b jsonb)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select coalesce(jsonb_object_agg(k, v), '{}'::jsonb)
  from (
    select k, max(v) as v
    from (
      select key as k, value::bigint as v from jsonb_each_text(coalesce(a, '{}'::jsonb))
      union all
      select key, value::bigint from jsonb_each_text(coalesce(b, '{}'::jsonb))
    ) as both_maps
    group by k
  ) as merged
$$;

-- Applies a webhook's membership events in one call.
--
-- events: jsonb array of {group_jid, phone ('+E.164' or 'lid:<digits>'), lid? ('lid:<digits>',
-- when the payload paired it with the phone), action ('join'|'leave'|'promote'|'demote'), event_at}.
-- copy_window_ms: see above.
-- Returns one (idx, outcome, phone, reference_ms) row per event: idx is its 0-based position, phone
-- the identity it was applied to (a LID resolves to its known phone), reference_ms the event time
-- of the distinct event it belongs to (its own, or the original's for a copy), which the caches
-- use as theirs; and outcome:
--   applied   the state (status, role) changed: one row insert or update, one Realtime event;
--   unchanged a copy, or the person already has that state (no Realtime event);
--   stale     older (by second) than an event already seen for the person (no Realtime event).
-- Writers are serialised per group with a transaction advisory lock taken in group order, so
-- concurrent webhooks can neither create two rows for one person nor deadlock.
create or replace function public.apply_whatsapp_membership_events(
  events jsonb,
  copy_window_ms integer default 1000
)
returns table (idx integer, outcome text, phone text, reference_ms bigint)
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
  lid_row record;
  clock_seen timestamptz;
  clock_actions jsonb;
  action_ref bigint;
  leave_ref bigint;
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
      select m.status, m.role, m.last_event_at into lid_row
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
            updated_at = now()
        where m.group_jid = e.group_jid and m.phone = e.who
          and m.last_event_at < lid_row.last_event_at
          and (m.status, m.role) is distinct from (lid_row.status, lid_row.role);
        delete from public.whatsapp_group_members as m
        where m.group_jid = e.group_jid and m.phone = person_lid;
      end if;
      -- Clocks follow the rows: the LID's clock is folded into the phone's.
      insert into public.whatsapp_member_clock as c (group_jid, person, last_seen_at, actions)
      select c2.group_jid, e.who, c2.last_seen_at, c2.actions
      from public.whatsapp_member_clock as c2
      where c2.group_jid = e.group_jid and c2.person = person_lid
        and not exists (
          select 1 from public.whatsapp_group_members as m
          where m.group_jid = e.group_jid and m.phone = person_lid
        )
      on conflict (group_jid, person) do update
        set last_seen_at = greatest(c.last_seen_at, excluded.last_seen_at),
            actions = public.whatsapp_merge_action_times(c.actions, excluded.actions);
      delete from public.whatsapp_member_clock as c
      where c.group_jid = e.group_jid and c.person = person_lid
        and not exists (
          select 1 from public.whatsapp_group_members as m
          where m.group_jid = e.group_jid and m.phone = person_lid
        );
    end if;

    -- The person's row: keyed by the phone, or still by the LID.
    cur_key := null;
    cur_status := null;
    cur_role := null;
    cur_at := null;
    select m.phone, m.status, m.role, m.last_event_at
      into cur_key, cur_status, cur_role, cur_at
    from public.whatsapp_group_members as m
    where m.group_jid = e.group_jid and m.phone in (e.who, person_lid)
    order by (m.phone = e.who) desc, m.last_event_at desc
    limit 1
    for update;

    clock_seen := null;
    clock_actions := '{}'::jsonb;
    select c.last_seen_at, c.actions into clock_seen, clock_actions
    from public.whatsapp_member_clock as c
    where c.group_jid = e.group_jid and c.person = coalesce(cur_key, e.who);
    clock_seen := coalesce(clock_seen, cur_at);
    clock_actions := coalesce(clock_actions, '{}'::jsonb);
    action_ref := (clock_actions ->> e.action)::bigint;
    leave_ref := (clock_actions ->> 'leave')::bigint;

    idx := e.i;
    phone := coalesce(cur_key, e.who);
    reference_ms := event_ms;

    if clock_seen is not null
      and date_trunc('second', clock_seen) > date_trunc('second', e.event_at) then
      -- Older than an event already seen (at WhatsApp's one-second resolution, so that a finer
      -- clock never makes a real change look older than the one before it).
      outcome := 'stale';
      return next;
      continue;
    end if;

    if action_ref is not null and abs(event_ms - action_ref) < copy_window_ms
      and not exists (
        -- A distinct event of another action between the two (join, leave, join 200 ms apart)
        -- makes this one a new event, not a copy.
        select 1 from jsonb_each_text(clock_actions) as other(action, at_ms)
        where other.action <> e.action
          and other.at_ms::bigint > least(action_ref, event_ms)
          and other.at_ms::bigint < greatest(action_ref, event_ms)
      ) then
      -- A copy of an event already seen: nothing to do.
      outcome := 'unchanged';
      reference_ms := action_ref;
      return next;
      continue;
    end if;

    want_status := case
      when e.action = 'leave' then 'left'
      when e.action = 'join' then 'member'
      -- Only members are promoted or demoted: after a leave, one from a later second shows the
      -- person was added back; one from the same second changes nothing.
      when cur_status = 'left' and (leave_ref is null
        or date_trunc('second', to_timestamp(leave_ref / 1000.0))
           >= date_trunc('second', e.event_at)) then 'left'
      else 'member'
    end;
    want_role := case
      when want_status = 'left' then 'member'
      when e.action = 'promote' then 'admin'
      when e.action = 'demote' then 'member'
      when cur_status = 'member' then cur_role -- a join of a member keeps their role
      else 'member'
    end;

    if cur_key is null then
      insert into public.whatsapp_group_members (group_jid, phone, status, role, last_event_at)
      values (e.group_jid, e.who, want_status, want_role, e.event_at);
      outcome := 'applied';
      new_key := e.who;
    elsif cur_status = want_status and cur_role = want_role then
      outcome := 'unchanged';
      new_key := cur_key;
    else
      new_key := case when cur_key like 'lid:%' and e.who like '+%' then e.who else cur_key end;
      update public.whatsapp_group_members as m
      set status = want_status,
          role = want_role,
          last_event_at = greatest(m.last_event_at, e.event_at),
          updated_at = now(),
          phone = new_key
      where m.group_jid = e.group_jid and m.phone = cur_key;
      outcome := 'applied';
      if new_key <> cur_key then
        update public.whatsapp_member_clock as c set person = new_key
        where c.group_jid = e.group_jid and c.person = cur_key;
      end if;
    end if;

    -- Record the distinct event, applied or not (this table is not published to Realtime).
    insert into public.whatsapp_member_clock as c (group_jid, person, last_seen_at, actions)
    values (e.group_jid, new_key, e.event_at, jsonb_build_object(e.action, event_ms))
    on conflict (group_jid, person) do update
      set last_seen_at = greatest(c.last_seen_at, excluded.last_seen_at),
          actions = public.whatsapp_merge_action_times(c.actions, excluded.actions);

    phone := new_key;
    return next;
  end loop;
end
$$;

comment on function public.apply_whatsapp_membership_events(jsonb, integer) is
  'Applies WhatsApp membership events; writes only real state changes, never copies or events older than one already seen.';

revoke all on function public.apply_whatsapp_membership_events(jsonb, integer)
  from public, anon, authenticated;
grant execute on function public.apply_whatsapp_membership_events(jsonb, integer) to service_role;
revoke all on function public.whatsapp_merge_action_times(jsonb, jsonb)
  from public, anon, authenticated;
grant execute on function public.whatsapp_merge_action_times(jsonb, jsonb) to service_role;
