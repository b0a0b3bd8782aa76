-- The attacks found against the Data API, each tried the way a signed-in user would through
-- PostgREST, and the rules behind them that hold for every role.
begin;
create schema if not exists extensions;
create extension if not exists pgtap with schema extensions;
set local search_path = extensions, public;

select * from no_plan();

\ir support/try_as.sql

-- User A's batch (not yet sent) and user B.
insert into public.whatsapp_send_batches (id, owner, message, total) values
  ('00000000-0000-4000-8000-0000000000ba', '00000000-0000-4000-8000-00000000000a',
   '{"type":"text","text":"Hi {{name}}"}', 1);
insert into public.whatsapp_send_recipients (batch_id, owner, row_number, phone) values
  ('00000000-0000-4000-8000-0000000000ba', '00000000-0000-4000-8000-00000000000a', 1,
   '+14155550001');

-- 1. Another user's batch: B cannot add a recipient to A's batch (POST /rest/v1/whatsapp_send_recipients).
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000b',
    $$insert into public.whatsapp_send_recipients (batch_id, owner, row_number, phone, name)
      values ('00000000-0000-4000-8000-0000000000ba', '00000000-0000-4000-8000-00000000000b', 2,
              '+14155550666', 'B')$$),
  'denied', 'B cannot insert a recipient into A''s batch'
);
-- Nor move one of A's recipients into a batch of their own, nor read them.
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000b',
    $$update public.whatsapp_send_recipients set phone = '+14155550666'
       where batch_id = '00000000-0000-4000-8000-0000000000ba'$$),
  'denied', 'B cannot change A''s recipients'
);
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000b',
    $$select 1 from public.whatsapp_send_recipients
       where batch_id = '00000000-0000-4000-8000-0000000000ba'$$),
  'ok 0', 'B does not see A''s recipients'
);
-- Behind the grants: should an insert grant ever be added, the batch still decides the owner.
grant insert on public.whatsapp_send_recipients to authenticated;
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000b',
    $$insert into public.whatsapp_send_recipients (batch_id, owner, row_number, phone)
      values ('00000000-0000-4000-8000-0000000000ba', '00000000-0000-4000-8000-00000000000b', 2,
              '+14155550666')$$),
  'denied', 'with an insert grant, B still cannot add to A''s batch (RLS and the batch''s owner)'
);
-- Whoever writes a recipient, its owner is the batch's owner.
select throws_ok(
  $$insert into public.whatsapp_send_recipients (batch_id, owner, row_number, phone) values
    ('00000000-0000-4000-8000-0000000000ba', '00000000-0000-4000-8000-00000000000b', 3,
     '+14155550667')$$,
  '42501', null, 'even the service role cannot write a recipient owned apart from its batch'
);
select throws_ok(
  $$update public.whatsapp_send_recipients set owner = '00000000-0000-4000-8000-00000000000b'
     where phone = '+14155550001'$$,
  '42501', null, 'nor move a recipient''s owner away from its batch''s'
);

-- 2. Forged outcomes: a user cannot write a recipient that is already sent or read.
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000a',
    $$insert into public.whatsapp_send_recipients
        (batch_id, owner, row_number, phone, status, provider_message_id, delivery_status)
      values ('00000000-0000-4000-8000-0000000000ba', '00000000-0000-4000-8000-00000000000a', 4,
              '+14155550004', 'sent', 'wamid.forged', 'read')$$),
  'denied', 'with an insert grant, the owner cannot insert a sent/read recipient'
);
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000a',
    $$insert into public.whatsapp_send_recipients (batch_id, owner, row_number, phone)
      values ('00000000-0000-4000-8000-0000000000ba', '00000000-0000-4000-8000-00000000000a', 4,
              '+14155550004')$$),
  'ok 1', 'with an insert grant, the owner may add a pending recipient to an unsent batch'
);
revoke insert on public.whatsapp_send_recipients from authenticated;
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000a',
    $$insert into public.whatsapp_send_recipients (batch_id, owner, row_number, phone)
      values ('00000000-0000-4000-8000-0000000000ba', '00000000-0000-4000-8000-00000000000a', 4,
              '+14155550004')$$),
  'denied', 'as deployed, users insert no recipient directly (the create route is the way)'
);
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000a',
    $$update public.whatsapp_send_recipients set status = 'sent', provider_message_id = 'wamid.x'
       where batch_id = '00000000-0000-4000-8000-0000000000ba'$$),
  'denied', 'the owner cannot mark their recipients sent'
);

-- A batch's message and owner.
select lives_ok(
  $$update public.whatsapp_send_batches set message = '{"type":"text","text":"Hello {{name}}"}'
     where id = '00000000-0000-4000-8000-0000000000ba'$$,
  'the message can be corrected before sending was requested'
);
update public.whatsapp_send_batches set send_requested_at = now()
 where id = '00000000-0000-4000-8000-0000000000ba';
select throws_ok(
  $$update public.whatsapp_send_batches set message = '{"type":"text","text":"changed"}'
     where id = '00000000-0000-4000-8000-0000000000ba'$$,
  '42501', null, 'the message is fixed once sending was requested (for every role)'
);
select throws_ok(
  $$update public.whatsapp_send_batches set owner = '00000000-0000-4000-8000-00000000000b'
     where id = '00000000-0000-4000-8000-0000000000ba'$$,
  '42501', null, 'a batch''s owner never changes'
);
grant insert on public.whatsapp_send_recipients to authenticated;
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000a',
    $$insert into public.whatsapp_send_recipients (batch_id, owner, row_number, phone)
      values ('00000000-0000-4000-8000-0000000000ba', '00000000-0000-4000-8000-00000000000a', 5,
              '+14155550005')$$),
  'denied', 'even with an insert grant, no recipient joins a batch once sending was requested'
);
revoke insert on public.whatsapp_send_recipients from authenticated;

-- 6. Members and messages are read per granted account or group; nobody else reads them.
insert into public.whatsapp_messages (account, message_id, direction, body) values
  ('+15550001111', 'wamid.abuse-1', 'in', 'for A'),
  ('+15550002222', 'wamid.abuse-2', 'in', 'for B');
insert into public.whatsapp_group_members (group_jid, phone, status, last_event_at) values
  ('120363099999999902@g.us', '+14155550031', 'member', now());
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000a',
    $$select 1 from public.whatsapp_messages where message_id like 'wamid.abuse-%'
      union all
      select 1 from public.whatsapp_group_members where group_jid = '120363099999999902@g.us'$$),
  'ok 0', 'with no grant, a signed-in user reads no message and no member (secure default)'
);
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000a',
    $$insert into public.whatsapp_account_members (account, user_id)
      values ('+15550002222', '00000000-0000-4000-8000-00000000000a')$$),
  'denied', 'a user cannot grant themselves an account'
);
insert into public.whatsapp_account_members (account, user_id) values
  ('+15550001111', '00000000-0000-4000-8000-00000000000a'),
  ('120363099999999902@g.us', '00000000-0000-4000-8000-00000000000a');
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000a',
    $$select 1 from public.whatsapp_messages where message_id like 'wamid.abuse-%'$$),
  'ok 1', 'granted one account, A reads that account''s messages only'
);
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000a',
    $$select 1 from public.whatsapp_group_members where group_jid = '120363099999999902@g.us'$$),
  'ok 1', 'granted a group, A reads its members'
);
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000b',
    $$select 1 from public.whatsapp_messages where message_id like 'wamid.abuse-%'
      union all
      select 1 from public.whatsapp_group_members where group_jid = '120363099999999902@g.us'$$),
  'ok 0', 'B, granted nothing, still reads nothing'
);
select is(
  pg_temp.try_as('anon', null, $$select 1 from public.whatsapp_messages$$),
  'denied', 'anon reads no message'
);

select * from finish();
rollback;
