/**
 * Every gateway format end to end over HTTP: two function instances (separate processes) on the
 * real database, each format signed the way its gateway signs, Realtime changes counted from a
 * logical replication slot. Also LID identities and admin roles.
 */
import assert from "node:assert/strict";
import { databaseUrl, groupRows, sqlClient, uniqueGroup } from "./support/env.ts";
import { startFunctionInstance } from "./support/function_instance.ts";
import { RealtimeChangeFeed } from "./support/realtime_changes.ts";
import { type Scheme, SECRETS, signedHeaders } from "./support/signing.ts";
import { type Person, sessions } from "./fixtures/gateway_examples.ts";

const FN = "whatsapp-membership-webhook";

/** A LID of this run only: the suite runs twice on one database (direct, then pooled). */
function freshLid(): string {
  return String(10_000_000_000_000 + Math.floor(Math.random() * 89_999_999_999_999));
}

async function post(url: string, payload: unknown, scheme: Scheme | "none", wrong = false) {
  const body = JSON.stringify(payload);
  const headers = scheme === "none" ? {} : await signedHeaders(scheme, body, wrong);
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  return { status: response.status, body: await response.json() };
}

const SIGNING: Record<keyof typeof sessions, Scheme> = {
  generic: "generic",
  evolution: "bearer",
  waha: "waha",
  baileys: "standard",
  wwebjs: "generic",
  meta: "meta",
};

Deno.test("gateways: each format, two sessions, two instances, signatures", async (t) => {
  const env = { SUPABASE_DB_URL: databaseUrl(), ...SECRETS };
  const [a, b] = await Promise.all([startFunctionInstance(env), startFunctionInstance(env)]);
  const A = a.url(FN);
  const B = b.url(FN);
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const alice: Person = { digits: "919963064165" };
  try {
    for (const [format, build] of Object.entries(sessions)) {
      const scheme = SIGNING[format as keyof typeof sessions];
      await t.step(`${format}: the same event from two sessions → one row change`, async () => {
        const group = uniqueGroup();
        const ts = Date.now() - 1000;
        const [r1, r2] = await Promise.all([
          post(A, build("session-one", group, "join", [alice], ts), scheme),
          post(B, build("session-two", group, "join", [alice], ts), scheme),
        ]);
        assert.equal(r1.status, 200, JSON.stringify(r1.body));
        assert.equal(r2.status, 200, JSON.stringify(r2.body));
        assert.equal(r1.body.format, format);
        assert.equal((await feed.changes(group)).length, 1);
        const leave = await post(
          A,
          build("session-one", group, "leave", [alice], ts + 5000),
          scheme,
        );
        assert.equal(leave.body.results[0].outcome, "applied");
        assert.equal((await groupRows(sql, group))[0].status, "left");
      });
      await t.step(`${format}: wrong or missing signature → 401, nothing written`, async () => {
        const group = uniqueGroup();
        const payload = build("session-one", group, "join", [alice], Date.now());
        const wrong = await post(A, payload, scheme, true);
        const missing = await post(A, payload, "none");
        assert.deepEqual([wrong.status, missing.status], [401, 401]);
        assert.equal(wrong.body.error, "unauthorized");
        assert.deepEqual(await groupRows(sql, group), []);
        assert.deepEqual(await feed.changes(group), []);
      });
    }

    await t.step("a scheme without its secret is refused", async () => {
      const single = await startFunctionInstance({
        SUPABASE_DB_URL: databaseUrl(),
        WEBHOOK_SECRET: SECRETS.WEBHOOK_SECRET,
      });
      try {
        const group = uniqueGroup();
        const result = await post(
          single.url(FN),
          sessions.meta("s", group, "join", [alice]),
          "meta",
        );
        assert.equal(result.status, 401);
        assert.match(result.body.message, /META_APP_SECRET/);
      } finally {
        await single.stop();
      }
    });

    await t.step(
      "LID-only leave after a join that carried the pair → the phone's row leaves",
      async () => {
        const group = uniqueGroup();
        const bob: Person = { digits: "447911123456", lid: freshLid() };
        const join = await post(
          A,
          sessions.waha("s1", group, "join", [bob], Date.now() - 2000),
          "waha",
        );
        assert.equal(join.body.results[0].outcome, "applied");
        const lidOnly = {
          id: group,
          author: null,
          participants: [`${bob.lid}@lid`],
          action: "remove",
        };
        const leave = await post(B, lidOnly, "standard");
        assert.equal(leave.body.results[0].outcome, "applied");
        assert.equal(leave.body.results[0].phone, "+44*******456");
        const rows = await groupRows(sql, group);
        assert.deepEqual(rows.map((r) => [r.phone, r.status]), [["+447911123456", "left"]]);
        assert.deepEqual((await feed.changes(group)).map((c) => c.op), ["INSERT", "UPDATE"]);
      },
    );

    await t.step(
      "a LID-only person dedupes, then converges to one row when the pair is learned",
      async () => {
        const group = uniqueGroup();
        const carol: Person = { digits: "5511987654321", lid: freshLid() };
        const lidOnly = {
          id: group,
          author: null,
          participants: [`${carol.lid}@lid`],
          action: "add",
        };
        const [first, copy] = await Promise.all([
          post(A, lidOnly, "standard"),
          post(B, lidOnly, "standard"),
        ]);
        assert.deepEqual([first.status, copy.status], [200, 200]);
        assert.deepEqual((await groupRows(sql, group)).map((r) => r.phone), [`lid:${carol.lid}`]);
        assert.equal((await feed.changes(group)).length, 1);
        // A copy of the same join that carries the pair: no second row, no Realtime event.
        const paired = await post(A, sessions.evolution("s3", group, "join", [carol]), "bearer");
        assert.equal(paired.body.results[0].outcome, "unchanged");
        assert.equal((await groupRows(sql, group)).length, 1);
        assert.equal((await feed.changes(group)).length, 1);
        const [pair] = await sql`select phone from public.whatsapp_lid_phones where lid = ${
          "lid:" + carol.lid
        }`;
        assert.equal(pair.phone, "+5511987654321");
        // The next real change moves the person's row to the phone: still one row, one change.
        const leave = await post(B, { ...lidOnly, action: "remove" }, "standard");
        assert.equal(leave.body.results[0].outcome, "applied");
        assert.deepEqual((await groupRows(sql, group)).map((r) => [r.phone, r.status]), [
          ["+5511987654321", "left"],
        ]);
        assert.equal((await feed.changes(group)).length, 2);
      },
    );

    await t.step("promote/demote change the role exactly once", async () => {
      const group = uniqueGroup();
      const dave: Person = { digits: "14155552671" };
      const ts = Date.now() - 10_000;
      await post(A, sessions.generic("s1", group, "join", [dave], ts), "generic");
      for (
        const [action, offset] of [["promote", 1500], ["demote", 3000], ["promote", 4500]] as const
      ) {
        // Two sessions of different gateways, each with its own clock; 1.5 s between changes.
        const results = await Promise.all([
          post(A, sessions.wwebjs("s1", group, action, [dave], ts + offset), "generic"),
          post(B, sessions.waha("s2", group, action, [dave], ts + offset + 40), "waha"),
        ]);
        assert.ok(results.every((r) => r.status === 200));
      }
      const [row] = await sql`select status, role from public.whatsapp_group_members
        where group_jid = ${group}`;
      assert.deepEqual([row.status, row.role], ["member", "admin"]);
      assert.equal((await feed.changes(group)).length, 4);
      // A demote after the person left changes nothing: they stay left.
      await post(A, sessions.generic("s1", group, "leave", [dave], ts + 6000), "generic");
      const demote = await post(B, sessions.waha("s2", group, "demote", [dave], ts + 6000), "waha");
      assert.equal(demote.body.results[0].outcome, "unchanged");
      const [after] = await sql`select status, role from public.whatsapp_group_members
        where group_jid = ${group}`;
      assert.deepEqual([after.status, after.role], ["left", "member"]);
      assert.equal((await feed.changes(group)).length, 5);
    });

    await t.step(
      "a LID row and a phone row of one person merge when the pair is learned",
      async () => {
        const group = uniqueGroup();
        const erin: Person = { digits: "16505551234", lid: freshLid() };
        const ts = Date.now() - 5000;
        await post(
          A,
          { id: group, author: null, participants: [`${erin.lid}@lid`], action: "add" },
          "standard",
        );
        await post(
          B,
          sessions.generic("s2", group, "join", [{ digits: erin.digits }], ts),
          "generic",
        );
        assert.equal((await groupRows(sql, group)).length, 2, "two rows while the pair is unknown");
        const paired = await post(A, sessions.waha("s3", group, "join", [erin], ts + 100), "waha");
        assert.equal(paired.status, 200);
        assert.deepEqual((await groupRows(sql, group)).map((r) => [r.phone, r.status]), [
          ["+16505551234", "member"],
        ]);
        assert.deepEqual((await feed.changes(group)).map((c) => c.op), [
          "INSERT",
          "INSERT",
          "DELETE",
        ]);
      },
    );
  } finally {
    await feed.close();
    await sql.end();
    await Promise.all([a.stop(), b.stop()]);
  }
});
