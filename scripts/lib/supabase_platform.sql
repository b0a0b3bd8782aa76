-- What a Supabase project has before any migration of ours runs, for a plain local PostgreSQL:
-- the Data API roles and the platform's default privileges in public (every new table, function
-- and sequence there is granted to anon, authenticated and service_role). With them the local
-- database exposes what a deployed one does, so the grant matrix and the advisor see the same
-- surface. Applied by scripts/lib/migrate.ts only where the supabase_admin role is absent.
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

grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;

-- Which schemas the Data API exposes (Supabase sets it for PostgREST; the advisor reads it).
do $$
begin
  execute format('alter database %I set pgrst.db_schemas = %L', current_database(),
    'public, graphql_public');
end
$$;
