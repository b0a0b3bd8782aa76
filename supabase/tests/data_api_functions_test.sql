-- Every function in public through the Data API's roles (POST /rest/v1/rpc/<name>): executable by
-- the service role only, with a fixed search_path; no SECURITY DEFINER function reachable by anon
-- or authenticated. Covers functions added later as well.
begin;
create schema if not exists extensions;
create extension if not exists pgtap with schema extensions;
set local search_path = extensions, public;

select * from no_plan();

\ir support/try_as.sql

create temp view our_functions as
  select p.oid, p.oid::regprocedure::text as signature, p.prosecdef, p.proconfig, p.prorettype
    from pg_proc p
   where p.pronamespace = 'public'::regnamespace
     and not exists (
       select 1 from pg_depend d
        where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e'
     );

select ok((select count(*) from our_functions) >= 15, 'the project''s functions are in public');

select is(
  (select array_agg(signature order by signature) from our_functions
    where has_function_privilege('anon', oid, 'EXECUTE')),
  null,
  'anon can execute no function in public'
);

select is(
  (select array_agg(signature order by signature) from our_functions
    where has_function_privilege('authenticated', oid, 'EXECUTE')),
  null,
  'authenticated can execute no function in public'
);

select is(
  (select array_agg(signature order by signature) from our_functions
    where prorettype <> 'trigger'::regtype
      and not has_function_privilege('service_role', oid, 'EXECUTE')),
  null,
  'the service role can execute every function the functions call'
);

select is(
  (select array_agg(signature order by signature) from our_functions
    where not exists (select 1 from unnest(proconfig) c where c like 'search_path=%')),
  null,
  'every function in public has a fixed search_path'
);

select is(
  (select array_agg(signature order by signature) from our_functions
    where prosecdef and (has_function_privilege('anon', oid, 'EXECUTE')
                      or has_function_privilege('authenticated', oid, 'EXECUTE'))),
  null,
  'no SECURITY DEFINER function is executable by anon or authenticated'
);

-- Tried for real, as PostgREST would call them.
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000b',
    $$select public.whatsapp_send_claim('00000000-0000-4000-8000-0000000000ba', 10, 60000)$$),
  'denied', 'a user cannot call the claim function (rpc/whatsapp_send_claim)'
);
select is(
  pg_temp.try_as('anon', null, $$select public.apply_whatsapp_message_events('[]'::jsonb)$$),
  'denied', 'anon cannot apply message events (rpc/apply_whatsapp_message_events)'
);
select is(
  pg_temp.try_as('authenticated', '00000000-0000-4000-8000-00000000000a',
    $$select public.webhook_idempotency_stats()$$),
  'denied', 'a user cannot read webhook statistics (rpc/webhook_idempotency_stats)'
);
select is(
  pg_temp.try_as('service_role', null, $$select public.apply_whatsapp_message_events('[]'::jsonb)$$),
  'ok 0', 'the service role applies message events (rpc, as the Supabase-RPC repository calls it)'
);

select * from finish();
rollback;
