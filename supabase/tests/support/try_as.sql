-- Included by the pgTAP files (\ir): pg_temp.try_as(role, user, statement) runs one statement
-- the way PostgREST runs a request and answers 'denied' or 'ok <rows>'.
-- Runs one statement as a role with a user's claims, in a subtransaction that is always undone.
create function pg_temp.try_as(p_role text, p_user uuid, p_sql text) returns text
language plpgsql as $$
declare
  n bigint;
  result text;
begin
  begin
    perform set_config('role', p_role, true);
    perform set_config('request.jwt.claims',
      case when p_user is null then json_build_object('role', p_role)
           else json_build_object('sub', p_user, 'role', p_role) end::text, true);
    execute p_sql;
    get diagnostics n = row_count;
    result := 'ok ' || n;
    raise exception using errcode = 'P0T01', message = 'undo';
  exception
    when sqlstate 'P0T01' then null;
    when insufficient_privilege then result := 'denied';
    when others then result := 'error ' || sqlstate || ': ' || sqlerrm;
  end;
  return result;
end
$$;
