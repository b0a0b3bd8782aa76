-- Broadcast from Database: one broadcast per effective change on the documented topic, none for a
-- write that changed nothing, and private channels that reach only the users granted them (the
-- Realtime server checks a subscriber with realtime.topic() set and the select policies of
-- realtime.messages, as tried here).
begin;
create schema if not exists extensions;
create extension if not exists pgtap with schema extensions;
set local search_path = extensions, public;

select * from no_plan();

\ir support/try_as.sql

select public.whatsapp_realtime_broadcasts(true);

insert into public.whatsapp_send_batches (id, owner, message, total) values
  ('00000000-0000-4000-8000-0000000000bb', '00000000-0000-4000-8000-00000000000a',
   '{"type":"text","text":"hi"}', 1);
insert into public.whatsapp_send_recipients (batch_id, owner, row_number, phone) values
  ('00000000-0000-4000-8000-0000000000bb', '00000000-0000-4000-8000-00000000000a', 1,
   '+14155550001');
insert into public.whatsapp_messages (account, message_id, direction, body) values
  ('+15550003333', 'wamid.broadcast-1', 'in', 'hello');
insert into public.whatsapp_group_members (group_jid, phone, status, last_event_at) values
  ('120363099999999903@g.us', '+14155550041', 'member', now());

select is(
  (select array_agg(topic || ' ' || event order by topic) from realtime.messages
    where topic in ('whatsapp:account:+15550003333', 'whatsapp:group:120363099999999903@g.us',
                   'whatsapp:batch:00000000-0000-4000-8000-0000000000bb')
      and extension = 'broadcast'),
  array['whatsapp:account:+15550003333 INSERT',
        'whatsapp:batch:00000000-0000-4000-8000-0000000000bb INSERT',
        'whatsapp:group:120363099999999903@g.us INSERT'],
  'one broadcast per inserted row, on its account, batch and group topic'
);

-- Writes that change nothing broadcast nothing; a real change broadcasts once.
update public.whatsapp_messages set body = body where message_id = 'wamid.broadcast-1';
update public.whatsapp_group_members set status = 'member'
 where group_jid = '120363099999999903@g.us';
select is(
  (select count(*)::int from realtime.messages
    where topic in ('whatsapp:account:+15550003333', 'whatsapp:group:120363099999999903@g.us',
                   'whatsapp:batch:00000000-0000-4000-8000-0000000000bb')),
  3, 'an update that leaves the row as it was broadcasts nothing'
);
select is(
  (select count(*)::int from public.apply_whatsapp_message_events(jsonb_build_array(jsonb_build_object(
     'kind', 'status', 'account', '+15550003333', 'message_id', 'wamid.broadcast-1',
     'status', 'delivered', 'status_at', now())))),
  1, 'a status event is applied'
);
update public.whatsapp_group_members set status = 'left'
 where group_jid = '120363099999999903@g.us';
select is(
  (select array_agg(payload ->> 'operation' order by inserted_at, topic) from realtime.messages
    where topic in ('whatsapp:account:+15550003333', 'whatsapp:group:120363099999999903@g.us')
      and event = 'UPDATE'),
  array['UPDATE', 'UPDATE'], 'each real change broadcasts once'
);
select is(
  (select payload -> 'record' ->> 'status' from realtime.messages
    where topic = 'whatsapp:group:120363099999999903@g.us' and event = 'UPDATE'),
  'left', 'the broadcast carries the new row (record) and the old one (old_record)'
);

-- Private channels.
insert into public.whatsapp_account_members (account, user_id) values
  ('+15550003333', '00000000-0000-4000-8000-00000000000b');
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000b',
    $$select set_config('realtime.topic', 'whatsapp:account:+15550003333', true);
      select 1 from realtime.messages where topic = 'whatsapp:account:+15550003333'$$),
  'ok 2', 'a user granted the account receives its topic (both broadcasts)'
);
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000a',
    $$select set_config('realtime.topic', 'whatsapp:account:+15550003333', true);
      select 1 from realtime.messages where topic = 'whatsapp:account:+15550003333'$$),
  'ok 0', 'a user not granted the account receives nothing on its topic'
);
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000a',
    $$select set_config('realtime.topic', 'whatsapp:batch:00000000-0000-4000-8000-0000000000bb', true);
      select 1 from realtime.messages where topic = 'whatsapp:batch:00000000-0000-4000-8000-0000000000bb'$$),
  'ok 1', 'the batch''s owner receives its progress'
);
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000b',
    $$select set_config('realtime.topic', 'whatsapp:batch:00000000-0000-4000-8000-0000000000bb', true);
      select 1 from realtime.messages where topic = 'whatsapp:batch:00000000-0000-4000-8000-0000000000bb'$$),
  'ok 0', 'another user does not'
);
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000b',
    $$select set_config('realtime.topic', 'whatsapp:group:120363099999999903@g.us', true);
      select 1 from realtime.messages where topic = 'whatsapp:group:120363099999999903@g.us'$$),
  'ok 0', 'nor does a user not granted the group'
);

-- Off again: no broadcast at all.
select public.whatsapp_realtime_broadcasts(false);
update public.whatsapp_group_members set status = 'member'
 where group_jid = '120363099999999903@g.us';
select is(
  (select count(*)::int from realtime.messages
    where topic in ('whatsapp:account:+15550003333', 'whatsapp:group:120363099999999903@g.us',
                   'whatsapp:batch:00000000-0000-4000-8000-0000000000bb')),
  5, 'with broadcasts off, changes broadcast nothing'
);

select * from finish();
rollback;
