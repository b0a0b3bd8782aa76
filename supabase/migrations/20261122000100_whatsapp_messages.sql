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
