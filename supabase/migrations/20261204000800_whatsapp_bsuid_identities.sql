-- Meta's business-scoped user IDs (issue 16, item 5).
--
-- With WhatsApp usernames, Meta names some users only by a business-scoped user ID (BSUID,
-- `US.13491208655302741918`, or a parent `US.ENT.…`). Such a member is stored as 'bsuid:<id>'
-- (kept as given) until a payload pairs the BSUID with the phone. The pair is learned exactly as a
-- LID/phone pair is: public.whatsapp_lid_phones now holds 'lid:<digits>' or 'bsuid:<id>' aliases
-- of a phone, and the apply function treats either alias the same way (the member row keyed by
-- the alias moves to the phone, its clock with it). Messages keep their sender as given (no check
-- on whatsapp_messages.sender/chat).

alter table public.whatsapp_group_members
  drop constraint if exists whatsapp_group_members_phone_check;
alter table public.whatsapp_group_members
  add constraint whatsapp_group_members_phone_check
  check (phone ~ '^(\+[1-9][0-9]{5,16}|lid:[0-9]{1,32}|bsuid:[A-Za-z]{2}(\.[A-Za-z0-9]{1,32})?\.[A-Za-z0-9]{1,128})$');

alter table public.whatsapp_lid_phones drop constraint if exists whatsapp_lid_phones_lid_check;
alter table public.whatsapp_lid_phones
  add constraint whatsapp_lid_phones_lid_check
  check (lid ~ '^(lid:[0-9]{1,32}|bsuid:[A-Za-z]{2}(\.[A-Za-z0-9]{1,32})?\.[A-Za-z0-9]{1,128})$');

comment on table public.whatsapp_lid_phones is
  'Aliases of a phone learned from payloads: a WhatsApp LID (lid:<digits>) or a Meta business-scoped user ID (bsuid:<id>).';

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
  clock_history jsonb;
  clock_base jsonb;
  clock_floor bigint;
  newest_ms bigint;
  folded jsonb;
  dropped jsonb;
begin
  if jsonb_typeof(events) is distinct from 'array' then
    raise exception 'events must be a json array' using errcode = '22023';
  end if;

  for g in
    select distinct t.value ->> 'group_jid' from jsonb_array_elements(events) as t(value) order by 1
  loop
    perform pg_advisory_xact_lock(hashtextextended('whatsapp_group_members:' || g, 0));
  end loop;

  -- Learn LID/phone and BSUID/phone pairs; written only when new or changed.
  insert into public.whatsapp_lid_phones as p (lid, phone)
  select distinct on (t.value ->> 'lid') t.value ->> 'lid', t.value ->> 'phone'
  from jsonb_array_elements(events) as t(value)
  where t.value ->> 'lid' ~ '^(lid|bsuid):' and t.value ->> 'phone' like '+%'
  order by t.value ->> 'lid'
  on conflict (lid) do update set phone = excluded.phone, updated_at = now()
    where p.phone is distinct from excluded.phone;

  for e in
    select r.i, r.group_jid, r.action, r.event_at, r.given_lid,
           coalesce(
             case when r.given ~ '^(lid|bsuid):' then
               (select p.phone from public.whatsapp_lid_phones as p where p.lid = r.given)
             end,
             r.given) as who
    from (
      select (t.ordinality - 1)::integer as i,
             t.value ->> 'group_jid' as group_jid,
             t.value ->> 'phone' as given,
             coalesce(t.value ->> 'lid',
               case when t.value ->> 'phone' ~ '^(lid|bsuid):' then t.value ->> 'phone' end)
               as given_lid,
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

    -- A person still split over an alias (LID or BSUID) row and a phone row (both written before
    -- the pair was known) is merged into the phone row: the newer state wins, the alias row goes.
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
            actions = public.whatsapp_merge_action_times(c.actions, excluded.actions),
            -- Two histories are not merged: the merged clock restarts from the merged row.
            history = null,
            base = null,
            floor_ms = null;
      delete from public.whatsapp_member_clock as c
      where c.group_jid = e.group_jid and c.person = person_lid
        and not exists (
          select 1 from public.whatsapp_group_members as m
          where m.group_jid = e.group_jid and m.phone = person_lid
        );
    end if;

    -- The person's row: keyed by the phone, or still by the alias (LID or BSUID).
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
    clock_history := null;
    clock_base := null;
    clock_floor := null;
    select c.last_seen_at, c.actions, c.history, c.base, c.floor_ms
      into clock_seen, clock_actions, clock_history, clock_base, clock_floor
    from public.whatsapp_member_clock as c
    where c.group_jid = e.group_jid and c.person = coalesce(cur_key, e.who);
    clock_seen := coalesce(clock_seen, cur_at);
    clock_actions := coalesce(clock_actions, '{}'::jsonb);
    action_ref := (clock_actions ->> e.action)::bigint;
    leave_ref := (clock_actions ->> 'leave')::bigint;

    idx := e.i;
    phone := coalesce(cur_key, e.who);
    reference_ms := event_ms;

    if coalesce(clock_history @> jsonb_build_array(jsonb_build_array(event_ms, e.action)), false)
    then
      -- The very event is in the history already (a late copy of an older event): a copy.
      action_ref := event_ms;
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
      -- A copy of an event already seen: nothing to do ('stale' when it comes from an earlier
      -- second than the newest event seen for the person, as before).
      outcome := case when clock_seen is not null
        and date_trunc('second', clock_seen) > date_trunc('second', e.event_at)
        then 'stale' else 'unchanged' end;
      reference_ms := action_ref;
      return next;
      continue;
    end if;

    if clock_history is null then
      -- No history yet (a new person, or a clock written before histories were kept, or just
      -- merged from a LID): start one from the row as it stands; nothing older than what was
      -- already seen can be placed before it.
      clock_history := '[]'::jsonb;
      clock_base := case when cur_key is null then null else jsonb_build_object(
        'status', cur_status, 'role', cur_role, 'leave', leave_ref) end;
      clock_floor := (extract(epoch from clock_seen) * 1000)::bigint;
    end if;
    if clock_floor is not null and event_ms < clock_floor then
      -- Older than what the history can still place: stale.
      outcome := 'stale';
      return next;
      continue;
    end if;

    -- Record the distinct event in the history and fold the history in event-time order (equal
    -- times in arrival order): the state is the latest by event time whatever order deliveries
    -- arrive in. The oldest entries beyond 64 are folded into the base.
    clock_history := clock_history || jsonb_build_array(jsonb_build_array(event_ms, e.action));
    if jsonb_array_length(clock_history) > 64 then
      select coalesce(jsonb_agg(h.entry order by (h.entry ->> 0)::bigint, h.n), '[]'::jsonb)
        into dropped
      from (
        select x.entry, x.n from jsonb_array_elements(clock_history) with ordinality as x(entry, n)
        order by (x.entry ->> 0)::bigint, x.n
        limit jsonb_array_length(clock_history) - 64
      ) as h;
      clock_base := public.whatsapp_fold_membership(clock_base, dropped);
      clock_floor := (dropped -> -1 ->> 0)::bigint;
      select coalesce(jsonb_agg(x.entry order by x.n), '[]'::jsonb) into clock_history
      from (
        select y.entry, y.n from jsonb_array_elements(clock_history) with ordinality as y(entry, n)
        order by (y.entry ->> 0)::bigint desc, y.n desc
        limit 64
      ) as x;
    end if;
    folded := public.whatsapp_fold_membership(clock_base, clock_history);
    want_status := folded ->> 'status';
    want_role := folded ->> 'role';
    newest_ms := (extract(epoch from clock_seen) * 1000)::bigint;

    if cur_key is null then
      insert into public.whatsapp_group_members (group_jid, phone, status, role, last_event_at)
      values (e.group_jid, e.who, want_status, want_role, e.event_at);
      outcome := 'applied';
      new_key := e.who;
    elsif cur_status = want_status and cur_role = want_role then
      -- Nothing changed; 'stale' when an event newer than this one was already seen.
      outcome := case when event_ms < newest_ms then 'stale' else 'unchanged' end;
      new_key := cur_key;
    else
      new_key := case when cur_key ~ '^(lid|bsuid):' and e.who like '+%' then e.who else cur_key end;
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
    insert into public.whatsapp_member_clock as c
      (group_jid, person, last_seen_at, actions, history, base, floor_ms)
    values (e.group_jid, new_key, e.event_at, jsonb_build_object(e.action, event_ms),
      clock_history, clock_base, clock_floor)
    on conflict (group_jid, person) do update
      set last_seen_at = greatest(c.last_seen_at, excluded.last_seen_at),
          actions = public.whatsapp_merge_action_times(c.actions, excluded.actions),
          history = excluded.history,
          base = excluded.base,
          floor_ms = excluded.floor_ms;

    phone := new_key;
    return next;
  end loop;
end
$$;

comment on function public.apply_whatsapp_membership_events(jsonb, integer) is
  'Applies WhatsApp membership events (members by phone, LID or BSUID); the state is the latest by event time for any arrival order, written only on a real change.';

revoke all on function public.apply_whatsapp_membership_events(jsonb, integer)
  from public, anon, authenticated;
grant execute on function public.apply_whatsapp_membership_events(jsonb, integer) to service_role;
