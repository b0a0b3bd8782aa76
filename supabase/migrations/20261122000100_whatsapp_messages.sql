-- WhatsApp messages and their delivery statuses, written by the whatsapp-message-webhook function.
--
-- One row per real message, identified by (account, message_id): the connected business number
-- (E.164 with '+', or the Cloud API phone_number_id) and WhatsApp's own message id. The unique
-- index is the last word: a copy that slips past every cache inserts nothing, and a status that is
-- a copy or not a step forward updates nothing, so neither emits a Realtime event.

create table if not exists public.whatsapp_messages (
  id bigint generated always as identity primary key,
  -- The connected business number: '+E.164', or the Cloud API phone_number_id (digits).
  account text not null
    constraint whatsapp_messages_account_check check (account ~ '^\+?[0-9]{5,32}$'),
  -- WhatsApp's message id, normalised (wamid…, Baileys key.id, Twilio SM…/MM…).
  message_id text not null
    constraint whatsapp_messages_message_id_check check (length(message_id) between 1 and 256),
  -- The chat: '+E.164', a group JID, or 'lid:<digits>'; null for a status-only row.
  chat text,
  -- Who wrote it: '+E.164' or 'lid:<digits>'; the account itself for outgoing messages.
  sender text,
  from_me boolean not null default false,
  direction text not null
    constraint whatsapp_messages_direction_check check (direction in ('in', 'out')),
  type text,
  body text,
  -- Media metadata only (id, mime type, sha256, caption, file name); media are never downloaded.
  media jsonb,
  sent_at timestamptz,
  status text
    constraint whatsapp_messages_status_check
    check (status in ('pending', 'sent', 'delivered', 'read', 'played', 'failed')),
  status_at timestamptz,
  error_code text,
  -- Cloud API biz_opaque_callback_data echoed back on statuses (the send-batch recipient id).
  callback_data text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create unique index if not exists whatsapp_messages_account_message_id_key
  on public.whatsapp_messages (account, message_id);
create index if not exists whatsapp_messages_chat_idx
  on public.whatsapp_messages (account, chat, sent_at desc);
create index if not exists whatsapp_messages_message_id_idx
  on public.whatsapp_messages (message_id);
create index if not exists whatsapp_messages_callback_data_idx
  on public.whatsapp_messages (callback_data) where callback_data is not null;

comment on table public.whatsapp_messages is
  'WhatsApp messages, one row per (account, message_id); statuses only move forward.';

alter table public.whatsapp_messages enable row level security;

drop policy if exists "Authenticated users can read messages" on public.whatsapp_messages;
create policy "Authenticated users can read messages"
  on public.whatsapp_messages for select to authenticated using (true);

drop policy if exists "Service role writes messages" on public.whatsapp_messages;
create policy "Service role writes messages"
  on public.whatsapp_messages for all to service_role using (true) with check (true);

revoke all on public.whatsapp_messages from anon, authenticated;
grant select on public.whatsapp_messages to authenticated;
grant select, insert, update, delete on public.whatsapp_messages to service_role;

do $$
begin
  if not exists (
    select 1 from pg_publication_tables
    where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'whatsapp_messages'
  ) then
    alter publication supabase_realtime add table public.whatsapp_messages;
  end if;
end
$$;

-- Statuses only move forward: pending < sent < delivered < read < played. 'failed' applies only
-- over pending/sent; a later delivered/read/played (the message did arrive) moves past a failure.
create or replace function public.whatsapp_status_advances(current_status text, next_status text)
returns boolean
language sql
immutable
set search_path = ''
as $$
  select case
    when next_status is null or next_status is not distinct from current_status then false
    when current_status is null then true
    when next_status = 'failed' then current_status in ('pending', 'sent')
    when current_status = 'failed' then next_status in ('delivered', 'read', 'played')
    else array_position(array['pending', 'sent', 'delivered', 'read', 'played'], next_status)
       > array_position(array['pending', 'sent', 'delivered', 'read', 'played'], current_status)
  end
$$;

-- Applies a webhook's messages and statuses in one call, in order.
--
-- events: jsonb array of
--   {kind: 'message', account, message_id, chat, sender, from_me, type, body, media, at_ms}
--   {kind: 'status', account, message_id, status, chat, from_me, error_code, callback_data, at_ms}
-- Returns one (idx, outcome, reference_ms) row per event:
--   applied   a message inserted (or filling the row a status created before it arrived), or a
--             status that moved forward: one row change, one Realtime event;
--   unchanged a copy (the message is there, the status is the stored one): nothing written;
--   stale     a status behind the stored one (delivered after read): nothing written.
-- Each statement is an atomic insert … on conflict against the unique (account, message_id)
-- index, so concurrent copies on other connections insert or advance a row exactly once.
create or replace function public.apply_whatsapp_message_events(events jsonb)
returns table (idx integer, outcome text, reference_ms bigint)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  e record;
  changed integer;
  stored_status text;
begin
  if jsonb_typeof(events) is distinct from 'array' then
    raise exception 'events must be a json array' using errcode = '22023';
  end if;
  for e in
    select (t.ordinality - 1)::integer as i, t.value as v
    from jsonb_array_elements(events) with ordinality as t(value, ordinality)
    order by t.ordinality
  loop
    idx := e.i;
    reference_ms := (e.v ->> 'at_ms')::bigint;
    if e.v ->> 'kind' = 'message' then
      insert into public.whatsapp_messages as m
        (account, message_id, chat, sender, from_me, direction, type, body, media, sent_at)
      values (
        e.v ->> 'account', e.v ->> 'message_id', e.v ->> 'chat', e.v ->> 'sender',
        coalesce((e.v ->> 'from_me')::boolean, false),
        case when coalesce((e.v ->> 'from_me')::boolean, false) then 'out' else 'in' end,
        coalesce(e.v ->> 'type', 'unknown'), e.v ->> 'body', e.v -> 'media',
        to_timestamp((e.v ->> 'at_ms')::bigint / 1000.0)
      )
      on conflict (account, message_id) do update
        set chat = excluded.chat,
            sender = excluded.sender,
            from_me = excluded.from_me,
            direction = excluded.direction,
            type = excluded.type,
            body = excluded.body,
            media = excluded.media,
            sent_at = excluded.sent_at,
            updated_at = now()
        -- Only a row a status created before its message arrived (no type yet) is filled in;
        -- its status is kept.
        where m.type is null;
      get diagnostics changed = row_count;
      outcome := case when changed > 0 then 'applied' else 'unchanged' end;
    elsif e.v ->> 'kind' = 'status' then
      insert into public.whatsapp_messages as m
        (account, message_id, chat, from_me, direction, status, status_at, error_code, callback_data)
      values (
        e.v ->> 'account', e.v ->> 'message_id', e.v ->> 'chat',
        coalesce((e.v ->> 'from_me')::boolean, true),
        case when coalesce((e.v ->> 'from_me')::boolean, true) then 'out' else 'in' end,
        e.v ->> 'status', to_timestamp((e.v ->> 'at_ms')::bigint / 1000.0),
        e.v ->> 'error_code', e.v ->> 'callback_data'
      )
      on conflict (account, message_id) do update
        set status = excluded.status,
            status_at = excluded.status_at,
            -- The error belongs to a failure: a later status that proves delivery clears it.
            error_code = case when excluded.status = 'failed'
                              then coalesce(excluded.error_code, m.error_code) end,
            callback_data = coalesce(m.callback_data, excluded.callback_data),
            chat = coalesce(m.chat, excluded.chat),
            updated_at = now()
        where public.whatsapp_status_advances(m.status, excluded.status);
      get diagnostics changed = row_count;
      if changed > 0 then
        outcome := 'applied';
      else
        select m.status into stored_status from public.whatsapp_messages as m
        where m.account = e.v ->> 'account' and m.message_id = e.v ->> 'message_id';
        outcome := case when stored_status = e.v ->> 'status' then 'unchanged' else 'stale' end;
      end if;
    else
      raise exception 'unknown message event kind %', e.v ->> 'kind' using errcode = '22023';
    end if;
    return next;
  end loop;
end
$$;

comment on function public.apply_whatsapp_message_events(jsonb) is
  'Stores WhatsApp messages once per (account, message_id) and moves statuses only forward.';

revoke all on function public.apply_whatsapp_message_events(jsonb) from public, anon, authenticated;
grant execute on function public.apply_whatsapp_message_events(jsonb) to service_role;
revoke all on function public.whatsapp_status_advances(text, text) from public, anon, authenticated;
grant execute on function public.whatsapp_status_advances(text, text) to service_role;
