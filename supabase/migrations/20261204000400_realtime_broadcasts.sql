-- Realtime Broadcast from Database, opt-in: one broadcast per effective change of a group member,
-- a message or a send recipient, on private channels a UI joins by topic:
--
--   whatsapp:account:<account>   messages of one business number / Cloud API phone_number_id
--   whatsapp:group:<group_jid>   members of one group
--   whatsapp:batch:<batch_id>    recipients of one send batch (its progress)
--
-- postgres_changes checks every change once per subscriber on one thread; broadcasts scale with
-- the number of subscribers instead, which is what Supabase recommends at scale. The triggers are
-- row triggers after the write, so a statement that changed nothing (a copy that slipped past
-- every cache) broadcasts nothing; an update that leaves the row as it was is skipped by WHEN.
-- They are created disabled; enable them with public.whatsapp_realtime_broadcasts(true), run as
-- the database owner (SQL editor or a migration).
--
-- Who receives what is decided by RLS on realtime.messages, as for postgres_changes: users granted
-- the account or group (public.whatsapp_account_members), and a batch's owner.

create or replace function public.whatsapp_broadcast_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row record;
  v_topic text;
begin
  if tg_op = 'DELETE' then
    v_row := old;
  else
    v_row := new;
  end if;
  if tg_table_name = 'whatsapp_messages' then
    v_topic := 'whatsapp:account:' || v_row.account;
  elsif tg_table_name = 'whatsapp_group_members' then
    v_topic := 'whatsapp:group:' || v_row.group_jid;
  else
    v_topic := 'whatsapp:batch:' || v_row.batch_id::text;
  end if;
  perform realtime.broadcast_changes(
    v_topic, tg_op, tg_op, tg_table_name, tg_table_schema, new, old
  );
  return null;
end
$$;

revoke all on function public.whatsapp_broadcast_change() from public, anon, authenticated;

do $$
declare
  t text;
begin
  foreach t in array array['whatsapp_group_members', 'whatsapp_messages', 'whatsapp_send_recipients']
  loop
    execute format('drop trigger if exists %I on public.%I', t || '_broadcast', t);
    execute format('drop trigger if exists %I on public.%I', t || '_broadcast_update', t);
    execute format(
      'create trigger %I after insert or delete on public.%I for each row '
      'execute function public.whatsapp_broadcast_change()', t || '_broadcast', t);
    execute format(
      'create trigger %I after update on public.%I for each row '
      'when (old.* is distinct from new.*) execute function public.whatsapp_broadcast_change()',
      t || '_broadcast_update', t);
    execute format('alter table public.%I disable trigger %I', t, t || '_broadcast');
    execute format('alter table public.%I disable trigger %I', t, t || '_broadcast_update');
  end loop;
end
$$;

-- Turns the broadcasts on or off (run as the owner of the tables).
create or replace function public.whatsapp_realtime_broadcasts(enabled boolean)
returns void
language plpgsql
set search_path = ''
as $$
declare
  t text;
  v_action text := case when enabled then 'enable' else 'disable' end;
begin
  foreach t in array array['whatsapp_group_members', 'whatsapp_messages', 'whatsapp_send_recipients']
  loop
    execute format('alter table public.%I %s trigger %I', t, v_action, t || '_broadcast');
    execute format('alter table public.%I %s trigger %I', t, v_action, t || '_broadcast_update');
  end loop;
end
$$;

revoke all on function public.whatsapp_realtime_broadcasts(boolean) from public, anon, authenticated;
grant execute on function public.whatsapp_realtime_broadcasts(boolean) to service_role;

-- Private channels: a signed-in user receives a topic's broadcasts when granted its account or
-- group, or when the batch is theirs.
drop policy if exists "WhatsApp topics reach granted users" on realtime.messages;
create policy "WhatsApp topics reach granted users" on realtime.messages
  for select to authenticated
  using (
    realtime.messages.extension = 'broadcast'
    and (
      exists (
        select 1 from public.whatsapp_account_members g
         where g.user_id = (select auth.uid())
           and (select realtime.topic()) in ('whatsapp:account:' || g.account,
                                            'whatsapp:group:' || g.account)
      )
      or exists (
        select 1 from public.whatsapp_send_batches b
         where b.owner = (select auth.uid())
           and (select realtime.topic()) = 'whatsapp:batch:' || b.id::text
      )
    )
  );
