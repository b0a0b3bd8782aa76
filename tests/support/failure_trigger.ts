/**
 * A test-only trigger that makes writes for flagged groups fail, to simulate a database error
 * inside the apply function without touching other groups.
 */
import type postgres from "postgres";

/** Installs the trigger (idempotent). Flag a group with {@link failGroup}. */
export async function installFailureTrigger(sql: postgres.Sql): Promise<void> {
  await sql.unsafe(`
    create schema if not exists test_support;
    create table if not exists test_support.failing_groups (group_jid text primary key);
    create or replace function test_support.fail_flagged_groups() returns trigger
    language plpgsql security definer set search_path = '' as $$
    begin
      if exists (select 1 from test_support.failing_groups f where f.group_jid = new.group_jid) then
        raise exception 'forced failure for a test';
      end if;
      return new;
    end $$;
    do $$ begin
      if not exists (select 1 from pg_trigger where tgname = 'fail_flagged_groups') then
        create trigger fail_flagged_groups before insert or update on public.whatsapp_group_members
          for each row execute function test_support.fail_flagged_groups();
      end if;
    end $$;`);
}

/** Makes every write for a group fail until {@link healGroup}. */
export async function failGroup(sql: postgres.Sql, groupJid: string): Promise<void> {
  await sql`insert into test_support.failing_groups values (${groupJid}) on conflict do nothing`;
}

/** Lets writes for a group succeed again. */
export async function healGroup(sql: postgres.Sql, groupJid: string): Promise<void> {
  await sql`delete from test_support.failing_groups where group_jid = ${groupJid}`;
}
