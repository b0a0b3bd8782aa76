/**
 * The two quick fixes a message webhook usually gets, as handlers with the project's own
 * signature check so that only the dedup differs:
 *
 * - `msgCheckThenInsert`: `select` the message id, `insert` when absent (no unique index), and
 *   write every status as it comes (`update … set status`);
 * - `msgRedisGetSetex`: `GET` the id in Redis, skip when present, else `SETEX` and write as above.
 *
 * Both write to `public.bench_naive_messages`, a table like `whatsapp_messages` without the
 * unique index, in the Realtime publication, created by {@link createNaiveMessagesTable}.
 */
import postgres from "postgres";
import { Redis } from "@upstash/redis";
import { WebhookAuthenticator } from "../../supabase/functions/_shared/core/webhook_auth.ts";

/** The baseline strategies of the message rows. */
export const MESSAGE_BASELINES = ["msgCheckThenInsert", "msgRedisGetSetex"] as const;

/** A message baseline's name. */
export type MessageBaseline = typeof MESSAGE_BASELINES[number];

/** Creates (or empties) the baselines' table and puts it in the Realtime publication. */
export async function createNaiveMessagesTable(sql: postgres.Sql): Promise<void> {
  await sql.unsafe(`
    create table if not exists public.bench_naive_messages (
      id bigint generated always as identity primary key,
      account text not null,
      message_id text not null,
      body text,
      status text,
      updated_at timestamptz not null default now()
    );
    create index if not exists bench_naive_messages_lookup
      on public.bench_naive_messages (account, message_id);
    truncate public.bench_naive_messages;
    do $$ begin
      if not exists (select 1 from pg_publication_tables
        where pubname = 'supabase_realtime' and tablename = 'bench_naive_messages') then
        alter publication supabase_realtime add table public.bench_naive_messages;
      end if;
    end $$;`);
}

interface Item {
  key: string;
  account: string;
  id: string;
  status?: string;
  body?: string;
}

/** The messages and statuses of a Cloud API webhook. */
function itemsOf(json: unknown): Item[] {
  const items: Item[] = [];
  // deno-lint-ignore no-explicit-any
  for (const entry of (json as any)?.entry ?? []) {
    for (const change of entry?.changes ?? []) {
      const value = change?.value ?? {};
      const account = String(value.metadata?.phone_number_id ?? "");
      for (const m of value.messages ?? []) {
        items.push({ key: `m|${account}|${m.id}`, account, id: String(m.id), body: m.text?.body });
      }
      for (const s of value.statuses ?? []) {
        const id = String(s.id);
        items.push({ key: `s|${account}|${id}|${s.status}`, account, id, status: s.status });
      }
    }
  }
  return items;
}

/** Builds a baseline handler. */
export function createMessageBaselineHandler(options: {
  strategy: MessageBaseline;
  databaseUrl: string;
  secret: string;
  redis?: { url: string; token: string };
}): { fetch(request: Request): Promise<Response> } {
  const sql = postgres(options.databaseUrl, {
    max: 4,
    prepare: false,
    idle_timeout: 30,
    onnotice: () => {},
    connection: { application_name: `bench-${options.strategy}` },
  });
  const authenticator = new WebhookAuthenticator({ shared: options.secret });
  const redis = options.redis
    ? new Redis({
      url: options.redis.url,
      token: options.redis.token,
      retry: { retries: 0 },
      automaticDeserialization: false,
      enableTelemetry: false,
    })
    : undefined;

  const write = async (item: Item) => {
    const [row] = await sql`select status from public.bench_naive_messages
      where account = ${item.account} and message_id = ${item.id} limit 1`;
    if (!row) {
      await sql`insert into public.bench_naive_messages (account, message_id, body, status)
        values (${item.account}, ${item.id}, ${item.body ?? null}, ${item.status ?? null})`;
    } else if (item.status) {
      await sql`update public.bench_naive_messages set status = ${item.status}, updated_at = now()
        where account = ${item.account} and message_id = ${item.id}`;
    }
  };

  return {
    async fetch(request) {
      try {
        const body = new Uint8Array(await request.arrayBuffer());
        await authenticator.verify(request.headers, body);
        for (const item of itemsOf(JSON.parse(new TextDecoder().decode(body)))) {
          if (options.strategy === "msgRedisGetSetex" && redis) {
            if (await redis.get(item.key) !== null) continue;
            await redis.setex(item.key, 600, "1");
          }
          await write(item);
        }
        return Response.json({ success: true });
      } catch (error) {
        return Response.json({ success: false, error: String(error) }, { status: 503 });
      }
    },
  };
}
