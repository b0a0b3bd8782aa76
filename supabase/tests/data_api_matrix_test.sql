-- The Data API's grant matrix: every table in public × each role PostgREST uses × select, insert,
-- update, delete, each cell tried for real the way PostgREST runs a request (`set local role`,
-- `set local request.jwt.claims`), plus catalogue checks that hold for any table or function
-- added later. Runs in one transaction that is rolled back.
--
-- Roles: anon; owner = authenticated user A (owns the batch, granted the account and the group);
-- other = authenticated user B (granted another account only); service_role.
-- Cells: 'denied' (permission denied or refused by a policy) or 'ok N' (N rows seen or changed).
begin;
create schema if not exists extensions;
create extension if not exists pgtap with schema extensions;
set local search_path = extensions, public;

select * from no_plan();

\ir support/try_as.sql

-- Fixtures (as the migration owner).
insert into public.whatsapp_send_batches (id, owner, message, total) values
  ('00000000-0000-4000-8000-0000000000ba', '00000000-0000-4000-8000-00000000000a',
   '{"type":"text","text":"hello"}', 2);
insert into public.whatsapp_send_recipients (batch_id, owner, row_number, phone) values
  ('00000000-0000-4000-8000-0000000000ba', '00000000-0000-4000-8000-00000000000a', 1, '+14155550001'),
  ('00000000-0000-4000-8000-0000000000ba', '00000000-0000-4000-8000-00000000000a', 2, '+14155550002');
insert into public.whatsapp_group_members (group_jid, phone, status, last_event_at) values
  ('120363099999999901@g.us', '+14155550011', 'member', now());
insert into public.whatsapp_messages (account, message_id, direction, body) values
  ('+15550001111', 'wamid.matrix-1', 'in', 'hello');
insert into public.whatsapp_account_members (account, user_id) values
  ('+15550001111', '00000000-0000-4000-8000-00000000000a'),
  ('120363099999999901@g.us', '00000000-0000-4000-8000-00000000000a'),
  ('+15550002222', '00000000-0000-4000-8000-00000000000b');
insert into public.whatsapp_lid_phones (lid, phone) values ('lid:99999901', '+14155550021');
insert into public.whatsapp_member_clock (group_jid, person, last_seen_at) values
  ('120363099999999901@g.us', '+14155550011', now());
insert into public.webhook_dead_letters
  (function_name, kind, reason, auth_scheme, body, body_bytes, expires_at) values
  ('matrix', 'delivery', 'unknown_format', 'hmac-sha256', '\x7b7d', 2, now() + interval '1 day');
insert into public.webhook_idempotency
  (scope, key, webhook_type, fingerprint, state, lock_token, locked_until, expires_at) values
  ('matrix', 'matrix-key', 'test', repeat('a', 64), 'completed', gen_random_uuid(), now(),
   now() + interval '1 day');
insert into public.webhook_idempotency_cleanup_runs (started_at, finished_at, rows_deleted)
  values ('2000-01-01', '2000-01-01', 0);
insert into public.whatsapp_send_rate_slots (key, next_slot_at) values ('matrix:provider', now());
-- A batch without recipients has no counts row yet (the insert cell adds one).
insert into public.whatsapp_send_batches (id, owner, message, total) values
  ('00000000-0000-4000-8000-0000000000bb', '00000000-0000-4000-8000-00000000000a',
   '{"type":"text","text":"hello"}', 1);

create temp table statements (tbl text, op text, stmt text) on commit drop;
insert into statements values
  ('whatsapp_send_batches', 'select',
   $$select * from public.whatsapp_send_batches where id = '00000000-0000-4000-8000-0000000000ba'$$),
  ('whatsapp_send_batches', 'insert',
   $$insert into public.whatsapp_send_batches (owner, message, total)
     values ('00000000-0000-4000-8000-00000000000a', '{"type":"text","text":"x"}', 1)$$),
  ('whatsapp_send_batches', 'update',
   $$update public.whatsapp_send_batches set total = total
      where id = '00000000-0000-4000-8000-0000000000ba'$$),
  ('whatsapp_send_batches', 'delete',
   $$delete from public.whatsapp_send_batches where id = '00000000-0000-4000-8000-0000000000ba'$$),
  ('whatsapp_send_recipients', 'select',
   $$select * from public.whatsapp_send_recipients
      where batch_id = '00000000-0000-4000-8000-0000000000ba'$$),
  ('whatsapp_send_recipients', 'insert',
   $$insert into public.whatsapp_send_recipients (batch_id, owner, row_number, phone)
     values ('00000000-0000-4000-8000-0000000000ba', '00000000-0000-4000-8000-00000000000a', 3,
             '+14155550003')$$),
  ('whatsapp_send_recipients', 'update',
   $$update public.whatsapp_send_recipients set name = name
      where batch_id = '00000000-0000-4000-8000-0000000000ba'$$),
  ('whatsapp_send_recipients', 'delete',
   $$delete from public.whatsapp_send_recipients
      where batch_id = '00000000-0000-4000-8000-0000000000ba'$$),
  ('whatsapp_group_members', 'select',
   $$select * from public.whatsapp_group_members where group_jid = '120363099999999901@g.us'$$),
  ('whatsapp_group_members', 'insert',
   $$insert into public.whatsapp_group_members (group_jid, phone, status, last_event_at)
     values ('120363099999999901@g.us', '+14155550012', 'member', now())$$),
  ('whatsapp_group_members', 'update',
   $$update public.whatsapp_group_members set status = status
      where group_jid = '120363099999999901@g.us'$$),
  ('whatsapp_group_members', 'delete',
   $$delete from public.whatsapp_group_members where group_jid = '120363099999999901@g.us'$$),
  ('whatsapp_messages', 'select',
   $$select * from public.whatsapp_messages where message_id = 'wamid.matrix-1'$$),
  ('whatsapp_messages', 'insert',
   $$insert into public.whatsapp_messages (account, message_id, direction)
     values ('+15550001111', 'wamid.matrix-2', 'in')$$),
  ('whatsapp_messages', 'update',
   $$update public.whatsapp_messages set body = body where message_id = 'wamid.matrix-1'$$),
  ('whatsapp_messages', 'delete',
   $$delete from public.whatsapp_messages where message_id = 'wamid.matrix-1'$$),
  ('whatsapp_account_members', 'select',
   $$select * from public.whatsapp_account_members
      where user_id in ('00000000-0000-4000-8000-00000000000a',
                        '00000000-0000-4000-8000-00000000000b')$$),
  ('whatsapp_account_members', 'insert',
   $$insert into public.whatsapp_account_members (account, user_id)
     values ('+15550002222', '00000000-0000-4000-8000-00000000000a')$$),
  ('whatsapp_account_members', 'update',
   $$update public.whatsapp_account_members set account = account
      where user_id in ('00000000-0000-4000-8000-00000000000a',
                        '00000000-0000-4000-8000-00000000000b')$$),
  ('whatsapp_account_members', 'delete',
   $$delete from public.whatsapp_account_members
      where user_id in ('00000000-0000-4000-8000-00000000000a',
                        '00000000-0000-4000-8000-00000000000b')$$),
  ('whatsapp_lid_phones', 'select',
   $$select * from public.whatsapp_lid_phones where lid = 'lid:99999901'$$),
  ('whatsapp_lid_phones', 'insert',
   $$insert into public.whatsapp_lid_phones (lid, phone) values ('lid:99999902', '+14155550022')$$),
  ('whatsapp_lid_phones', 'update',
   $$update public.whatsapp_lid_phones set phone = phone where lid = 'lid:99999901'$$),
  ('whatsapp_lid_phones', 'delete',
   $$delete from public.whatsapp_lid_phones where lid = 'lid:99999901'$$),
  ('whatsapp_member_clock', 'select',
   $$select * from public.whatsapp_member_clock where group_jid = '120363099999999901@g.us'$$),
  ('whatsapp_member_clock', 'insert',
   $$insert into public.whatsapp_member_clock (group_jid, person, last_seen_at)
     values ('120363099999999901@g.us', '+14155550013', now())$$),
  ('whatsapp_member_clock', 'update',
   $$update public.whatsapp_member_clock set last_seen_at = last_seen_at
      where group_jid = '120363099999999901@g.us'$$),
  ('whatsapp_member_clock', 'delete',
   $$delete from public.whatsapp_member_clock where group_jid = '120363099999999901@g.us'$$),
  ('webhook_dead_letters', 'select',
   $$select * from public.webhook_dead_letters where function_name = 'matrix'$$),
  ('webhook_dead_letters', 'insert',
   $$insert into public.webhook_dead_letters
       (function_name, kind, reason, auth_scheme, body, body_bytes, expires_at)
     values ('matrix', 'item', 'x', 'hmac-sha256', '\x7b7d', 2, now() + interval '1 day')$$),
  ('webhook_dead_letters', 'update',
   $$update public.webhook_dead_letters set replay_count = replay_count
      where function_name = 'matrix'$$),
  ('webhook_dead_letters', 'delete',
   $$delete from public.webhook_dead_letters where function_name = 'matrix'$$),
  ('webhook_idempotency', 'select',
   $$select * from public.webhook_idempotency where scope = 'matrix'$$),
  ('webhook_idempotency', 'insert',
   $$insert into public.webhook_idempotency
       (scope, key, webhook_type, fingerprint, state, lock_token, locked_until, expires_at)
     values ('matrix', 'matrix-key-2', 'test', repeat('b', 64), 'in_progress',
             gen_random_uuid(), now(), now() + interval '1 day')$$),
  ('webhook_idempotency', 'update',
   $$update public.webhook_idempotency set replay_count = replay_count where scope = 'matrix'$$),
  ('webhook_idempotency', 'delete',
   $$delete from public.webhook_idempotency where scope = 'matrix'$$),
  ('webhook_idempotency_cleanup_runs', 'select',
   $$select * from public.webhook_idempotency_cleanup_runs where started_at = '2000-01-01'$$),
  ('webhook_idempotency_cleanup_runs', 'insert',
   $$insert into public.webhook_idempotency_cleanup_runs (started_at, finished_at, rows_deleted)
     values ('2000-01-02', '2000-01-02', 0)$$),
  ('webhook_idempotency_cleanup_runs', 'update',
   $$update public.webhook_idempotency_cleanup_runs set rows_deleted = rows_deleted
      where started_at = '2000-01-01'$$),
  ('webhook_idempotency_cleanup_runs', 'delete',
   $$delete from public.webhook_idempotency_cleanup_runs where started_at = '2000-01-01'$$),
  ('whatsapp_send_rate_slots', 'select',
   $$select * from public.whatsapp_send_rate_slots where key = 'matrix:provider'$$),
  ('whatsapp_send_rate_slots', 'insert',
   $$insert into public.whatsapp_send_rate_slots (key, next_slot_at) values ('matrix:other', now())$$),
  ('whatsapp_send_rate_slots', 'update',
   $$update public.whatsapp_send_rate_slots set next_slot_at = next_slot_at
      where key = 'matrix:provider'$$),
  ('whatsapp_send_rate_slots', 'delete',
   $$delete from public.whatsapp_send_rate_slots where key = 'matrix:provider'$$),
  ('whatsapp_send_batch_counts', 'select',
   $$select * from public.whatsapp_send_batch_counts
      where batch_id = '00000000-0000-4000-8000-0000000000ba'$$),
  ('whatsapp_send_batch_counts', 'insert',
   $$insert into public.whatsapp_send_batch_counts (batch_id)
     values ('00000000-0000-4000-8000-0000000000bb')$$),
  ('whatsapp_send_batch_counts', 'update',
   $$update public.whatsapp_send_batch_counts set pending = pending
      where batch_id = '00000000-0000-4000-8000-0000000000ba'$$),
  ('whatsapp_send_batch_counts', 'delete',
   $$delete from public.whatsapp_send_batch_counts
      where batch_id = '00000000-0000-4000-8000-0000000000ba'$$);

-- The expected matrix, in the order of the README's table: anon | owner | other | service_role.
create temp table expected (tbl text, op text, anon text, owner text, other text, service text)
  on commit drop;
insert into expected values
  ('whatsapp_send_batches', 'select', 'denied', 'ok 1', 'ok 0', 'ok 1'),
  ('whatsapp_send_batches', 'insert', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_send_batches', 'update', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_send_batches', 'delete', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_send_recipients', 'select', 'denied', 'ok 2', 'ok 0', 'ok 2'),
  ('whatsapp_send_recipients', 'insert', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_send_recipients', 'update', 'denied', 'denied', 'denied', 'ok 2'),
  ('whatsapp_send_recipients', 'delete', 'denied', 'denied', 'denied', 'ok 2'),
  ('whatsapp_group_members', 'select', 'denied', 'ok 1', 'ok 0', 'ok 1'),
  ('whatsapp_group_members', 'insert', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_group_members', 'update', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_group_members', 'delete', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_messages', 'select', 'denied', 'ok 1', 'ok 0', 'ok 1'),
  ('whatsapp_messages', 'insert', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_messages', 'update', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_messages', 'delete', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_account_members', 'select', 'denied', 'ok 2', 'ok 1', 'ok 3'),
  ('whatsapp_account_members', 'insert', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_account_members', 'update', 'denied', 'denied', 'denied', 'ok 3'),
  ('whatsapp_account_members', 'delete', 'denied', 'denied', 'denied', 'ok 3'),
  ('whatsapp_lid_phones', 'select', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_lid_phones', 'insert', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_lid_phones', 'update', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_lid_phones', 'delete', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_member_clock', 'select', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_member_clock', 'insert', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_member_clock', 'update', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_member_clock', 'delete', 'denied', 'denied', 'denied', 'ok 1'),
  ('webhook_dead_letters', 'select', 'denied', 'denied', 'denied', 'ok 1'),
  ('webhook_dead_letters', 'insert', 'denied', 'denied', 'denied', 'ok 1'),
  ('webhook_dead_letters', 'update', 'denied', 'denied', 'denied', 'ok 1'),
  ('webhook_dead_letters', 'delete', 'denied', 'denied', 'denied', 'ok 1'),
  ('webhook_idempotency', 'select', 'denied', 'denied', 'denied', 'ok 1'),
  ('webhook_idempotency', 'insert', 'denied', 'denied', 'denied', 'ok 1'),
  ('webhook_idempotency', 'update', 'denied', 'denied', 'denied', 'ok 1'),
  ('webhook_idempotency', 'delete', 'denied', 'denied', 'denied', 'ok 1'),
  ('webhook_idempotency_cleanup_runs', 'select', 'denied', 'denied', 'denied', 'ok 1'),
  ('webhook_idempotency_cleanup_runs', 'insert', 'denied', 'denied', 'denied', 'ok 1'),
  ('webhook_idempotency_cleanup_runs', 'update', 'denied', 'denied', 'denied', 'ok 1'),
  ('webhook_idempotency_cleanup_runs', 'delete', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_send_rate_slots', 'select', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_send_rate_slots', 'insert', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_send_rate_slots', 'update', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_send_rate_slots', 'delete', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_send_batch_counts', 'select', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_send_batch_counts', 'insert', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_send_batch_counts', 'update', 'denied', 'denied', 'denied', 'ok 1'),
  ('whatsapp_send_batch_counts', 'delete', 'denied', 'denied', 'denied', 'ok 1');

-- Every table in public has a row in the matrix (a new table must be added here, with its cells).
select is(
  (select array_agg(c.relname::text order by c.relname) from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
      and c.relname::text not in (select tbl from expected)),
  null,
  'every table and view in public is in the grant matrix'
);

select is(
  pg_temp.try_as(r.role, r.user_id, s.stmt),
  case r.label when 'anon' then e.anon when 'owner' then e.owner
               when 'other' then e.other else e.service end,
  format('%s %s as %s', e.tbl, e.op, r.label)
)
from expected e
join statements s using (tbl, op)
cross join (values
  ('anon', 'anon', null::uuid),
  ('owner', 'authenticated', '00000000-0000-4000-8000-00000000000a'::uuid),
  ('other', 'authenticated', '00000000-0000-4000-8000-00000000000b'::uuid),
  ('service_role', 'service_role', null::uuid)
) as r(label, role, user_id)
order by e.tbl, e.op, r.label;

-- Catalogue checks that also cover whatever is added later.
select is(
  (select array_agg(c.relname::text order by c.relname) from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
      and not c.relrowsecurity),
  null,
  'row level security is enabled on every table in public'
);

select is(
  (select array_agg(format('%s:%s', c.relname, p.priv) order by c.relname, p.priv)
     from pg_class c
    cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES',
                            'TRIGGER']) as p(priv)
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
      and has_table_privilege('anon', c.oid, p.priv)),
  null,
  'anon has no privilege on any table or view in public'
);

select is(
  (select array_agg(format('%s:%s', c.relname, p.priv) order by c.relname, p.priv)
     from pg_class c
    cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES',
                            'TRIGGER']) as p(priv)
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
      and has_table_privilege('authenticated', c.oid, p.priv)),
  array['whatsapp_account_members:SELECT', 'whatsapp_group_members:SELECT',
        'whatsapp_messages:SELECT', 'whatsapp_send_batches:SELECT',
        'whatsapp_send_recipients:SELECT'],
  'authenticated may only select, and only from the tables meant for users'
);

select is(
  (select array_agg(c.relname::text order by c.relname) from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind = 'S'
      and (has_sequence_privilege('anon', c.oid, 'USAGE,SELECT,UPDATE')
        or has_sequence_privilege('authenticated', c.oid, 'USAGE,SELECT,UPDATE'))),
  null,
  'no sequence in public is usable by anon or authenticated'
);

select is(
  (select array_agg(c.relname::text order by c.relname) from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind = 'v'
      and not coalesce(c.reloptions @> array['security_invoker=true'], false)),
  null,
  'every view in public runs as its caller (security_invoker)'
);

select * from finish();
rollback;
