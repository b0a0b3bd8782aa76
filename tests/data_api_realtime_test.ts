/**
 * Realtime through the Data API's eyes: postgres_changes checks each change from the replication
 * stream against the subscriber's select policies (as `authenticated`, with their claims). Each
 * message and member change must reach only the users granted its account or group.
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { RealtimeChangeFeed } from "./support/realtime_changes.ts";
import { sqlClient, uniqueGroup } from "./support/env.ts";

/** Whether `user` passes the table's select policy for the row, as Realtime checks it. */
async function visibleTo(
  sql: postgres.Sql,
  user: string,
  query: (tx: postgres.TransactionSql) => PromiseLike<readonly unknown[]>,
): Promise<boolean> {
  return await sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true),
                    set_config('request.jwt.claims', ${
      JSON.stringify({ sub: user, role: "authenticated" })
    }, true)`;
    return (await query(tx)).length > 0;
  });
}

Deno.test("Realtime: each message and member change reaches only the users granted it", async () => {
  const sql = sqlClient(2);
  const feed = await RealtimeChangeFeed.open(sql);
  const [alice, bob] = [crypto.randomUUID(), crypto.randomUUID()];
  const suffix = String(Date.now() % 1e8).padStart(8, "0");
  const [accountA, accountB] = [`+1555${suffix}`, `+1666${suffix}`];
  const group = uniqueGroup();
  try {
    await sql`insert into public.whatsapp_account_members (account, user_id)
              values (${accountA}, ${alice}), (${group}, ${alice}), (${accountB}, ${bob})`;
    await sql`insert into public.whatsapp_messages (account, message_id, direction, body)
              values (${accountA}, ${"wamid.rt-a-" + suffix}, 'in', 'to alice'),
                     (${accountB}, ${"wamid.rt-b-" + suffix}, 'in', 'to bob')`;
    await sql`insert into public.whatsapp_group_members (group_jid, phone, status, last_event_at)
              values (${group}, '+14155550101', 'member', now())`;

    const changes = (await feed.changes()).filter((c) =>
      c.data.includes(suffix) || c.data.includes(group)
    );
    assert.equal(changes.length, 3, "three changes in the replication stream");
    // Broadcast from Database (on in the test command): one broadcast per change, on its topic.
    assert.equal(feed.broadcasting, true);
    assert.deepEqual(
      feed.broadcasts().filter((b) => b.data.includes(suffix) || b.data.includes(group))
        .map((b) => b.topic).sort(),
      [`whatsapp:account:${accountA}`, `whatsapp:account:${accountB}`, `whatsapp:group:${group}`],
    );
    const seen: Record<string, string[]> = { alice: [], bob: [] };
    for (const change of changes) {
      const messageId = /message_id\[text\]:'([^']+)'/.exec(change.data)?.[1];
      for (const [name, user] of [["alice", alice], ["bob", bob]] as const) {
        const visible = change.table === "public.whatsapp_messages"
          ? await visibleTo(
            sql,
            user,
            (tx) => tx`select 1 from public.whatsapp_messages where message_id = ${messageId!}`,
          )
          : await visibleTo(
            sql,
            user,
            (tx) => tx`select 1 from public.whatsapp_group_members where group_jid = ${group}`,
          );
        if (visible) seen[name].push(messageId ?? "member");
      }
    }
    assert.deepEqual(seen, {
      alice: [`wamid.rt-a-${suffix}`, "member"],
      bob: [`wamid.rt-b-${suffix}`],
    });
    // A user with no grant receives nothing at all.
    const stranger = crypto.randomUUID();
    assert.equal(
      await visibleTo(
        sql,
        stranger,
        (tx) =>
          tx`select 1 from public.whatsapp_messages where account in (${accountA}, ${accountB})
           union all select 1 from public.whatsapp_group_members where group_jid = ${group}`,
      ),
      false,
    );
  } finally {
    await feed.close();
    await sql.end();
  }
});
