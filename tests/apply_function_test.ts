/**
 * The SQL apply function and the schema, against the real PostgreSQL, with Realtime events
 * counted from a logical replication slot.
 */
import assert from "node:assert/strict";
import { PostgresEventRepository } from "../supabase/functions/_shared/core/db/postgres_event_repository.ts";
import {
  membershipApply,
  type MembershipResultRow,
} from "../supabase/functions/_shared/membership/repository.ts";
import type { MembershipEvent } from "../supabase/functions/_shared/membership/event.ts";
import { databaseUrl, groupRows, sqlClient, uniqueGroup } from "./support/env.ts";
import { RealtimeChangeFeed } from "./support/realtime_changes.ts";

const T = Date.UTC(2026, 10, 22, 5, 0, 0);

function ev(group: string, action: "join" | "leave", at: number, participant = "+919963064165") {
  return { action, groupJid: group, participant, at, atSource: "payload" } as MembershipEvent;
}

async function outcomes(
  repo: PostgresEventRepository<MembershipEvent, MembershipResultRow>,
  events: MembershipEvent[],
) {
  return (await repo.apply(events)).map((r) => r.outcome);
}

async function withRepo(
  fn: (repo: PostgresEventRepository<MembershipEvent, MembershipResultRow>) => Promise<void>,
) {
  const repo = new PostgresEventRepository(membershipApply(), {
    url: databaseUrl(),
    poolMax: 4,
    timeoutMs: 5000,
  });
  try {
    await fn(repo);
  } finally {
    await repo.close();
  }
}

Deno.test("apply: only real state changes write, and each write is one Realtime change", async () => {
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const group = uniqueGroup();
  try {
    await withRepo(async (repo) => {
      assert.deepEqual(await outcomes(repo, [ev(group, "join", T)]), ["applied"]);
      assert.deepEqual(await outcomes(repo, [ev(group, "join", T)]), ["unchanged"]);
      assert.deepEqual(await outcomes(repo, [ev(group, "join", T + 10)]), ["unchanged"]);
      assert.deepEqual(await outcomes(repo, [ev(group, "leave", T + 2000)]), ["applied"]);
      assert.deepEqual(await outcomes(repo, [ev(group, "leave", T + 2000)]), ["unchanged"]);
      // A late duplicate of the older join after the newer leave: stale, nothing written.
      assert.deepEqual(await outcomes(repo, [ev(group, "join", T)]), ["stale"]);
      // A rejoin at the same instant as the leave is still a state change.
      // Within one second, events are applied in arrival order (WhatsApp's resolution).
      assert.deepEqual(await outcomes(repo, [ev(group, "join", T + 2000)]), ["applied"]);
    });
    const changes = await feed.changes(group);
    assert.deepEqual(changes.map((c) => c.op), ["INSERT", "UPDATE", "UPDATE"]);
    assert.ok(changes.every((c) => c.table === "public.whatsapp_group_members"));
    const rows = await groupRows(sql, group);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].status, "member");
    assert.equal(rows[0].last_event_at.getTime(), T + 2000);
  } finally {
    await feed.close();
    await sql.end();
  }
});

Deno.test("apply: inside one second the latest event time wins, whatever the arrival order", async () => {
  const sql = sqlClient();
  const group = uniqueGroup();
  try {
    await withRepo(async (repo) => {
      // A join at T+1.7 s, then a leave from T+1.0 s arriving after it: the join is the latest
      // by event time, so the leave changes nothing (issue 16: order that always converges).
      assert.deepEqual(await outcomes(repo, [ev(group, "join", T + 1700)]), ["applied"]);
      assert.deepEqual(await outcomes(repo, [ev(group, "leave", T + 1000)]), ["stale"]);
      assert.deepEqual(await outcomes(repo, [ev(group, "join", T)]), ["stale"]);
      // A leave at T+1.9 s is the latest: applied.
      assert.deepEqual(await outcomes(repo, [ev(group, "leave", T + 1900)]), ["applied"]);
    });
    assert.equal((await groupRows(sql, group))[0].status, "left");
  } finally {
    await sql.end();
  }
});

Deno.test("apply: copies are recognised unless another action of the person lies between", async () => {
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const group = uniqueGroup();
  try {
    await withRepo(async (repo) => {
      // join → leave → join 200 ms apart, each sent by two sessions of one gateway (one clock,
      // milliseconds apart), copies arriving in any order.
      assert.deepEqual(await outcomes(repo, [ev(group, "join", T + 100)]), ["applied"]);
      assert.deepEqual(await outcomes(repo, [ev(group, "join", T + 103)]), ["unchanged"]);
      assert.deepEqual(await outcomes(repo, [ev(group, "leave", T + 300)]), ["applied"]);
      assert.deepEqual(await outcomes(repo, [ev(group, "join", T + 102)]), ["unchanged"]);
      assert.deepEqual(await outcomes(repo, [ev(group, "join", T + 500)]), ["applied"]);
      assert.deepEqual(await outcomes(repo, [ev(group, "leave", T + 302)]), ["unchanged"]);
      assert.deepEqual(await outcomes(repo, [ev(group, "join", T + 504)]), ["unchanged"]);
    });
    assert.deepEqual((await feed.changes(group)).map((c) => c.op), ["INSERT", "UPDATE", "UPDATE"]);
    assert.equal((await groupRows(sql, group))[0].status, "member");
  } finally {
    await feed.close();
    await sql.end();
  }
});

Deno.test("apply: promote/demote change a member's role; after a leave only a later one counts", async () => {
  const sql = sqlClient();
  const group = uniqueGroup();
  const role = async () =>
    (await sql`select status, role from public.whatsapp_group_members where group_jid = ${group}`)
      .map((r) => [r.status, r.role])[0];
  try {
    await withRepo(async (repo) => {
      assert.deepEqual(await outcomes(repo, [ev(group, "join", T)]), ["applied"]);
      assert.deepEqual(
        await outcomes(repo, [{ ...ev(group, "join", T + 2000), action: "promote" }]),
        [
          "applied",
        ],
      );
      assert.deepEqual(await role(), ["member", "admin"]);
      assert.deepEqual(await outcomes(repo, [ev(group, "leave", T + 4000)]), ["applied"]);
      // A demote in the same second as the leave never brings the person back.
      assert.deepEqual(
        await outcomes(repo, [{ ...ev(group, "join", T + 4000), action: "demote" }]),
        [
          "unchanged",
        ],
      );
      assert.deepEqual(await role(), ["left", "member"]);
      // Re-added at T+7 and promoted at T+8, the promote arriving first: only members are
      // promoted, so the person is a member again; the late join is then stale.
      assert.deepEqual(
        await outcomes(repo, [{ ...ev(group, "join", T + 8000), action: "promote" }]),
        [
          "applied",
        ],
      );
      assert.deepEqual(await outcomes(repo, [ev(group, "join", T + 7000)]), ["stale"]);
    });
    assert.deepEqual(await role(), ["member", "admin"]);
  } finally {
    await sql.end();
  }
});

Deno.test("apply: a late leave after a newer rejoin that changed nothing is stale", async () => {
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const group = uniqueGroup();
  try {
    await withRepo(async (repo) => {
      assert.deepEqual(await outcomes(repo, [ev(group, "join", T)]), ["applied"]);
      // The leave at T+2 s failed (database down); the rejoin at T+4 s finds the person a member.
      assert.deepEqual(await outcomes(repo, [ev(group, "join", T + 4000)]), ["unchanged"]);
      // The gateway's retry of the leave comes after it: older than what was seen, stale.
      assert.deepEqual(await outcomes(repo, [ev(group, "leave", T + 2000)]), ["stale"]);
    });
    assert.equal((await groupRows(sql, group))[0].status, "member");
    assert.deepEqual((await feed.changes(group)).map((c) => c.op), ["INSERT"]);
    const [clock] = await sql`select count(*)::int as n from pg_publication_tables
      where pubname = 'supabase_realtime' and tablename = 'whatsapp_member_clock'`;
    assert.equal(clock.n, 0, "the clock table is not published to Realtime");
  } finally {
    await feed.close();
    await sql.end();
  }
});

Deno.test("apply: several events in one call come back in order, one outcome each", async () => {
  const sql = sqlClient();
  const group = uniqueGroup();
  try {
    await withRepo(async (repo) => {
      const got = await outcomes(repo, [
        ev(group, "join", T, "+14155552671"),
        ev(group, "join", T, "+919963064165"),
        ev(group, "join", T, "+14155552671"),
        ev(group, "leave", T + 5, "+447911123456"),
      ]);
      assert.deepEqual(got, ["applied", "applied", "unchanged", "applied"]);
    });
    const rows = await groupRows(sql, group);
    assert.deepEqual(rows.map((r) => [r.phone, r.status]), [
      ["+14155552671", "member"],
      ["+447911123456", "left"],
      ["+919963064165", "member"],
    ]);
  } finally {
    await sql.end();
  }
});

Deno.test("apply: concurrent calls with the same event change the row once", async () => {
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const group = uniqueGroup();
  try {
    await withRepo(async (repo) => {
      const all = (await Promise.all(
        Array.from({ length: 8 }, () => outcomes(repo, [ev(group, "join", T)])),
      )).flat();
      assert.equal(all.filter((o) => o === "applied").length, 1);
      assert.equal(all.filter((o) => o === "unchanged").length, 7);
      // Opposite participant order in two calls must not deadlock.
      const a = [
        ev(group, "leave", T + 1, "+14155552671"),
        ev(group, "leave", T + 1, "+919963064165"),
      ];
      const b = [
        ev(group, "leave", T + 1, "+919963064165"),
        ev(group, "leave", T + 1, "+14155552671"),
      ];
      await Promise.all([repo.apply(a), repo.apply(b), repo.apply(a), repo.apply(b)]);
    });
    const changes = await feed.changes(group);
    assert.deepEqual(changes.map((c) => c.op), ["INSERT", "INSERT", "UPDATE"]);
  } finally {
    await feed.close();
    await sql.end();
  }
});

Deno.test("schema: RLS lets users granted the group read, nobody else, and no user write", async () => {
  const sql = sqlClient(1);
  const group = uniqueGroup();
  const granted = crypto.randomUUID();
  try {
    await withRepo((repo) => repo.apply([ev(group, "join", T)]).then(() => {}));
    const [{ rls }] = await sql`select relrowsecurity as rls from pg_class
      where oid = 'public.whatsapp_group_members'::regclass`;
    assert.equal(rls, true);
    await sql`insert into public.whatsapp_account_members (account, user_id)
              values (${group}, ${granted})`;
    const asRole = (role: string, query: string, user = crypto.randomUUID()) =>
      sql.begin(async (tx) => {
        await tx.unsafe(`set local role ${role}`);
        await tx`select set_config('request.jwt.claims', ${
          JSON.stringify({ sub: user, role })
        }, true)`;
        return await tx.unsafe(query);
      });
    const query = `select phone from public.whatsapp_group_members where group_jid = '${group}'`;
    assert.equal((await asRole("authenticated", query, granted)).length, 1);
    assert.equal((await asRole("authenticated", query)).length, 0);
    await assert.rejects(
      asRole(
        "authenticated",
        `insert into public.whatsapp_group_members (group_jid, phone, status, last_event_at)
         values ('${group}', '+14155552671', 'member', now())`,
      ),
      /permission denied/,
    );
    await assert.rejects(
      asRole("anon", "select 1 from public.whatsapp_group_members limit 1"),
      /permission denied/,
    );
    await assert.rejects(
      asRole("authenticated", "select * from public.apply_whatsapp_membership_events('[]')"),
      /permission denied/,
    );
    const applied = await asRole(
      "service_role",
      `select * from public.apply_whatsapp_membership_events('[{"group_jid":"${group}",
        "phone":"+14155552671","action":"join","event_at":"2026-11-22T05:00:00Z"}]')`,
    );
    assert.equal(applied[0].outcome, "applied");
    const [{ published }] = await sql`select count(*)::int as published from pg_publication_tables
      where pubname = 'supabase_realtime' and tablename = 'whatsapp_group_members'`;
    assert.equal(published, 1);
  } finally {
    await sql.end();
  }
});

Deno.test("schema: the table refuses values the function would never write", async () => {
  const sql = sqlClient(1);
  try {
    for (
      const [group, phone, status] of [
        ["not-a-group", "+919963064165", "member"],
        ["120363025246125486@g.us", "919963064165", "member"],
        ["120363025246125486@g.us", "+919963064165", "admin"],
      ]
    ) {
      await assert.rejects(
        sql`insert into public.whatsapp_group_members (group_jid, phone, status, last_event_at)
            values (${group}, ${phone}, ${status}, now())`,
        /violates check constraint/,
      );
    }
  } finally {
    await sql.end();
  }
});
