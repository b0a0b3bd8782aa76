/**
 * Dead letters and their replay (issue 16, items 1 and 2), against the test database: a delivery
 * in a format the parser does not know is answered 400 and kept; once the parser learns the
 * format (the webhook built with one more format in its dependencies, as a release with the fix
 * would be), webhook-replay applies it exactly once (one row change, one Realtime event), and
 * replays again or at once change nothing. Rejected items are kept, unsigned deliveries are not,
 * the stored headers carry no secret, the caps and the retention hold, webhook-stats counts them,
 * and only the service role may call webhook-replay.
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import type postgres from "postgres";
import { parseConfig } from "../supabase/functions/_shared/core/config.ts";
import {
  DeadLetters,
  type DeadLetterStore,
  KEPT_HEADERS,
} from "../supabase/functions/_shared/core/dead_letters/dead_letter.ts";
import { PostgresDeadLetterReplayStore } from "../supabase/functions/_shared/core/dead_letters/store.ts";
import { HttpError, jsonResponse } from "../supabase/functions/_shared/core/http.ts";
import { LOCAL_JWT_SECRET } from "../supabase/functions/_shared/core/jwt.ts";
import { silentLogger } from "../supabase/functions/_shared/core/log.ts";
import { isObject } from "../supabase/functions/_shared/core/formats/parse.ts";
import type { MembershipFormat } from "../supabase/functions/_shared/membership/formats/delivery.ts";
import { MEMBERSHIP_FORMATS } from "../supabase/functions/_shared/membership/formats/registry.ts";
import { parseMessageSettings } from "../supabase/functions/_shared/messages/config.ts";
import { parseReplayConfig } from "../supabase/functions/webhook-replay/config.ts";
import {
  createReplayHandler,
  type ReplayTargets,
} from "../supabase/functions/webhook-replay/handler.ts";
import { parseStatsConfig } from "../supabase/functions/webhook-stats/config.ts";
import {
  createStatsHandler,
  postgresStatsReader,
} from "../supabase/functions/webhook-stats/handler.ts";
import {
  createMembershipWebhookFromConfig,
  FUNCTION_NAME as MEMBERSHIP,
} from "../supabase/functions/whatsapp-membership-webhook/handler.ts";
import {
  createMessageWebhookFromConfig,
  FUNCTION_NAME as MESSAGES,
} from "../supabase/functions/whatsapp-message-webhook/handler.ts";
import { main as replayCli } from "../scripts/replay.ts";
import { databaseUrl, groupRows, sqlClient, uniqueGroup } from "./support/env.ts";
import { RealtimeChangeFeed } from "./support/realtime_changes.ts";
import { SECRETS, signedHeaders } from "./support/signing.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const SECRET_KEY = `sb_secret_${crypto.randomUUID().replaceAll("-", "")}`;
const PUBLISHABLE_KEY = `sb_publishable_${crypto.randomUUID().replaceAll("-", "")}`;
const PERSON = "+919963064165";

/** "Acme", a gateway version the parser does not know yet: one member change per delivery. */
const acmeFormat: MembershipFormat = {
  name: "acme",
  detect: (json) => isObject(json) && isObject(json.acme_event),
  parse: (json) => {
    const event = (json as { acme_event: Record<string, unknown> }).acme_event;
    return {
      kind: "changes",
      format: "acme",
      changes: [{
        action: event.kind === "member.removed" ? "leave" : "join",
        group: String(event.chat),
        participant: String(event.user),
        timestamp: Number(event.at),
        path: "acme_event.user",
      }],
    };
  },
};

function acmeBody(group: string, at = Date.now() - 1_000): string {
  return JSON.stringify({
    acme_event: {
      kind: "member.added",
      chat: group,
      user: "919963064165@s.whatsapp.net",
      at: Math.floor(at / 1000),
    },
  });
}

/** The membership webhook as deployed today, or after a release that knows `formats`. */
function membership(formats?: readonly MembershipFormat[]) {
  return createMembershipWebhookFromConfig(
    parseConfig({ SUPABASE_DB_URL: databaseUrl(), ...SECRETS }),
    silentLogger,
    undefined,
    formats,
  );
}

async function post(
  handler: (request: Request) => Promise<Response>,
  body: string,
  headers: Record<string, string>,
  url = `http://127.0.0.1/${MEMBERSHIP}`,
) {
  const response = await handler(new Request(url, { method: "POST", headers, body }));
  const text = await response.text();
  return { status: response.status, body: text.startsWith("{") ? JSON.parse(text) : text };
}

async function signed(body: string) {
  return { "content-type": "application/json", ...(await signedHeaders("generic", body)) };
}

function jwt(claims: Record<string, unknown>) {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuedAt()
    .setExpirationTime("5m").sign(new TextEncoder().encode(LOCAL_JWT_SECRET));
}

const AUTH_ENV = {
  SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET_KEY }),
  SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: PUBLISHABLE_KEY }),
};

function replayHandler(webhooks: ReplayTargets) {
  const config = parseReplayConfig({ SUPABASE_DB_URL: databaseUrl(), ...AUTH_ENV });
  const store = new PostgresDeadLetterReplayStore({
    url: databaseUrl(),
    timeoutMs: 5_000,
    applicationName: "dead-letters-test",
  });
  const handler = createReplayHandler({
    auth: config.auth,
    store,
    webhooks: () => webhooks,
    logger: silentLogger,
  });
  return { handler, close: () => store.close() };
}

async function replay(
  handler: (request: Request) => Promise<Response>,
  selection: unknown,
  headers: Record<string, string> = { apikey: SECRET_KEY },
) {
  const response = await handler(
    new Request("http://127.0.0.1/webhook-replay", {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(selection),
    }),
  );
  return { status: response.status, body: await response.json() };
}

type Sql = ReturnType<typeof sqlClient>;

async function lettersWith(sql: Sql, text: string) {
  return [
    ...(await sql<
      {
        id: string;
        function_name: string;
        kind: string;
        format_guess: string | null;
        reason: string;
        path: string | null;
        auth_scheme: string;
        query: string;
        headers: Record<string, string>;
        body: Uint8Array;
        replay_state: string;
        replay_result: string | null;
        replay_count: number;
        expires_at: Date;
        received_at: Date;
      }[]
    >`select * from public.webhook_dead_letters
       where strpos(convert_from(body, 'UTF8'), ${text}) > 0 order by id`),
  ];
}

Deno.test(
  "an unknown format is kept, and applied exactly once after the parser learns it",
  opts,
  async (t) => {
    const sql = sqlClient();
    const today = membership();
    const fixed = membership([acmeFormat, ...MEMBERSHIP_FORMATS]);
    const replayer = replayHandler({ [MEMBERSHIP]: fixed.handler });
    try {
      const group = uniqueGroup();
      const body = acmeBody(group);
      let id = 0;

      await t.step("answered 400 (unknown format) and kept with its body", async () => {
        const result = await post(today.handler, body, await signed(body));
        assert.equal(result.status, 400);
        assert.equal(result.body.error, "unknown_format");
        const [letter, ...more] = await lettersWith(sql, group);
        assert.equal(more.length, 0);
        assert.equal(letter.function_name, MEMBERSHIP);
        assert.equal(letter.kind, "delivery");
        assert.match(letter.reason, /^unknown_format: /);
        assert.equal(letter.format_guess, "unknown");
        assert.equal(letter.auth_scheme, "hmac-sha256");
        assert.equal(new TextDecoder().decode(letter.body), body);
        assert.equal(letter.replay_state, "pending");
        assert.deepEqual(await groupRows(sql, group), []);
        id = Number(letter.id);
      });

      await t.step(
        "replayed after the fix: applied once, one row change and one event",
        async () => {
          const feed = await RealtimeChangeFeed.open(sql);
          try {
            const first = await replay(replayer.handler, { ids: [id] });
            assert.equal(first.status, 200, JSON.stringify(first.body));
            assert.deepEqual(first.body.results, [{ id, function: MEMBERSHIP, result: "applied" }]);
            assert.deepEqual((await groupRows(sql, group)).map((r) => [r.phone, r.status]), [
              [PERSON, "member"],
            ]);
            const second = await replay(replayer.handler, { ids: [id] });
            assert.equal(second.status, 200);
            assert.ok(
              ["duplicate", "unchanged"].includes(second.body.results[0].result),
              JSON.stringify(second.body),
            );
            // By filter too: the same letter, still nothing more.
            const third = await replay(replayer.handler, {
              function: MEMBERSHIP,
              since: new Date(Date.now() - 60_000).toISOString(),
              reason: "unknown_format",
            });
            const mine = third.body.results.find((r: { id: number }) => r.id === id);
            assert.ok(["duplicate", "unchanged"].includes(mine.result), JSON.stringify(third.body));
            const changes = await feed.changes(group);
            assert.equal(changes.length, 1, JSON.stringify(changes));
            assert.equal(changes[0].op, "INSERT");
            if (feed.broadcasting) assert.equal(feed.broadcasts(group).length, 1);
          } finally {
            await feed.close();
          }
          const [letter] = await lettersWith(sql, group);
          assert.equal(letter.replay_state, "done");
          assert.ok(["duplicate", "unchanged"].includes(letter.replay_result!));
          assert.ok(letter.replay_count >= 2);
        },
      );

      await t.step("two replays at once: one applies, nothing changes twice", async () => {
        const other = uniqueGroup();
        const otherBody = acmeBody(other);
        assert.equal((await post(today.handler, otherBody, await signed(otherBody))).status, 400);
        const [letter] = await lettersWith(sql, other);
        const feed = await RealtimeChangeFeed.open(sql);
        const second = replayHandler({
          [MEMBERSHIP]: membership([acmeFormat, ...MEMBERSHIP_FORMATS]).handler,
        });
        try {
          const [a, b] = await Promise.all([
            replay(replayer.handler, { ids: [Number(letter.id)] }),
            replay(second.handler, { ids: [Number(letter.id)] }),
          ]);
          const results = [a.body.results[0].result, b.body.results[0].result].sort();
          assert.equal(results.filter((r) => r === "applied").length, 1, JSON.stringify(results));
          assert.ok(["duplicate", "unchanged"].includes(results.find((r) => r !== "applied")!));
          assert.equal((await feed.changes(other)).length, 1);
        } finally {
          await feed.close();
          await second.close();
        }
      });

      await t.step("still refused by today's code: still_refused with the reason", async () => {
        const other = uniqueGroup();
        const otherBody = acmeBody(other);
        await post(today.handler, otherBody, await signed(otherBody));
        const [letter] = await lettersWith(sql, other);
        const stale = replayHandler({ [MEMBERSHIP]: today.handler });
        try {
          const result = await replay(stale.handler, { ids: [Number(letter.id), 2 ** 40] });
          assert.deepEqual(result.body.results.map((r: { result: string }) => r.result), [
            "not_found",
            "still_refused",
          ]);
          assert.match(result.body.results[1].reason, /^unknown_format: /);
          const [after] = await lettersWith(sql, other);
          assert.equal(after.replay_result, "still_refused");
        } finally {
          await stale.close();
        }
      });
    } finally {
      await replayer.close();
      await today.close();
      await fixed.close();
      await sql.end();
    }
  },
);

Deno.test(
  "a rejected item inside an accepted delivery is kept, and replayed as an item",
  opts,
  async () => {
    const sql = sqlClient();
    const webhook = membership();
    const replayer = replayHandler({ [MEMBERSHIP]: webhook.handler });
    try {
      const group = uniqueGroup();
      const body = JSON.stringify({
        event: "join",
        groupJid: group,
        participants: ["919963064165@s.whatsapp.net", "12"],
        timestamp: Math.floor(Date.now() / 1000),
      });
      const result = await post(webhook.handler, body, await signed(body));
      assert.equal(result.status, 200);
      assert.deepEqual(result.body.results.map((r: { outcome: string }) => r.outcome), [
        "applied",
        "rejected",
      ]);
      const letters = await lettersWith(sql, group);
      assert.equal(letters.length, 1);
      assert.equal(letters[0].kind, "item");
      assert.equal(letters[0].path, result.body.results[1].path);
      assert.equal(letters[0].format_guess, "generic");
      assert.equal(letters[0].reason, result.body.results[1].reason);
      // Today's code still rejects the item; the valid one is not applied twice.
      const replayed = await replay(replayer.handler, { ids: [Number(letters[0].id)] });
      assert.equal(replayed.body.results[0].result, "still_refused");
      assert.equal(replayed.body.results[0].reason, result.body.results[1].reason);
      assert.equal((await groupRows(sql, group)).length, 1);
    } finally {
      await replayer.close();
      await webhook.close();
      await sql.end();
    }
  },
);

Deno.test(
  "unsigned or wrongly signed deliveries are never kept; kept headers hold no secret",
  opts,
  async () => {
    const sql = sqlClient();
    const webhook = membership();
    try {
      const group = uniqueGroup();
      const body = acmeBody(group);
      const unsigned = await post(webhook.handler, body, { "content-type": "application/json" });
      assert.equal(unsigned.status, 401);
      const wrong = await post(webhook.handler, body, {
        "content-type": "application/json",
        ...(await signedHeaders("generic", body, true)),
      });
      assert.equal(wrong.status, 401);
      assert.deepEqual(await lettersWith(sql, group), []);

      // Signed, with credentials around it: none of them is kept.
      const headers: Record<string, string> = {
        ...(await signed(body)),
        authorization: "Bearer secret-bearer-token",
        apikey: "sb_secret_should_not_be_kept",
        cookie: "session=should-not-be-kept",
        "x-api-key": "should-not-be-kept",
        "user-agent": "acme-gateway/2.0",
        "idempotency-key": `dl-${crypto.randomUUID()}`,
      };
      const refused = await post(
        webhook.handler,
        body,
        headers,
        `http://127.0.0.1/${MEMBERSHIP}?format=acme&token=should-not-be-kept&access_key=nope`,
      );
      assert.equal(refused.status, 400);
      const [letter] = await lettersWith(sql, group);
      assert.equal(letter.query, "?format=acme");
      assert.equal(letter.format_guess, "acme");
      for (const name of Object.keys(letter.headers)) assert.ok(KEPT_HEADERS.includes(name), name);
      assert.equal(letter.headers["content-type"], "application/json");
      assert.equal(letter.headers["user-agent"], "acme-gateway/2.0");
      const stored = JSON.stringify(letter.headers) + letter.query;
      for (const secret of [...Object.values(SECRETS), headers["x-webhook-signature"]]) {
        assert.ok(!stored.includes(secret), "a secret or signature was kept");
      }
      assert.doesNotMatch(stored, /should-not-be-kept|secret-bearer|nope/);
    } finally {
      await webhook.close();
      await sql.end();
    }
  },
);

Deno.test("the message webhook keeps its refusals through the same core", opts, async () => {
  const sql = sqlClient();
  const env = { SUPABASE_DB_URL: databaseUrl(), ...SECRETS };
  const webhook = createMessageWebhookFromConfig(
    parseConfig(env),
    parseMessageSettings(env),
    silentLogger,
  );
  try {
    const marker = `acme-${crypto.randomUUID()}`;
    const body = JSON.stringify({ acme_message: { id: marker, text: "hello" } });
    const result = await post(
      webhook.handler,
      body,
      await signed(body),
      `http://127.0.0.1/${MESSAGES}`,
    );
    assert.equal(result.status, 400);
    const [letter] = await lettersWith(sql, marker);
    assert.equal(letter.function_name, MESSAGES);
    assert.match(letter.reason, /^unknown_format: /);
  } finally {
    await webhook.close();
    await sql.end();
  }
});

Deno.test("keeping a dead letter is best effort: a failing store changes no answer", async () => {
  const failing: DeadLetterStore = {
    record: () => Promise.reject(new Error("database down")),
    close: () => Promise.resolve(),
  };
  const letters = new DeadLetters(MEMBERSHIP, failing, silentLogger);
  const delivery = {
    request: new Request("http://x/fn", { method: "POST" }),
    body: new Uint8Array([123, 125]),
    scheme: "hmac-sha256",
  };
  const refusal = new HttpError(400, "unknown_format", "no format");
  await assert.rejects(
    letters.capture(delivery, () => Promise.reject(refusal)),
    (error) => error === refusal,
  );
  const response = await letters.capture(delivery, (report) => {
    report.processed(["applied"], [{ path: "participants.1", reason: "bad" }]);
    return Promise.resolve(jsonResponse(200, { ok: true }));
  });
  assert.equal(response.status, 200);
});

Deno.test(
  "caps and retention: truncated bodies are not replayable, oldest go, expired are cleaned",
  opts,
  async () => {
    const sql = sqlClient();
    const fn = `cap-${crypto.randomUUID()}`;
    const record = (tx: Sql | postgres.TransactionSql, body: string) =>
      tx`select public.record_webhook_dead_letters(${fn}, 'delivery', 'generic', 'hmac-sha256', '',
      '{}'::jsonb, convert_to(${body}, 'UTF8'), array['(root)'], array['unknown_format: x'])`;
    try {
      await sql.begin(async (tx) => {
        await tx`set local webhook_dead_letters.max_rows = '3'`;
        await tx`set local webhook_dead_letters.max_body_bytes = '16'`;
        for (let i = 1; i <= 5; i++) await record(tx, `{"n":${i}}`);
        await record(tx, `{"long":"${"x".repeat(64)}"}`);
        const rows = await tx<
          { body: Uint8Array; body_bytes: number; truncated: boolean; replay_state: string }[]
        >`select body, body_bytes, truncated, replay_state from public.webhook_dead_letters
         where function_name = ${fn} order by id`;
        assert.deepEqual(
          rows.map((r) => new TextDecoder().decode(r.body)),
          ['{"n":4}', '{"n":5}', `{"long":"${"x".repeat(7)}`],
          "the row cap keeps the newest 3",
        );
        const long = rows[2];
        assert.equal(long.truncated, true);
        assert.equal(long.body_bytes, 75);
        assert.equal(long.replay_state, "not_replayable");
        // A truncated body is never run again.
        const [claimed] = await tx`select * from public.claim_webhook_dead_letters(
        null, ${fn}, null, null, 60, 500) where truncated`;
        assert.equal(claimed.claimed, false);
        throw new Error("rollback");
      }).catch((error) => {
        if (error.message !== "rollback") throw error;
      });

      // Kept 7 days by default; removed by the cleanup the hourly pg_cron job runs.
      await record(sql, '{"keep":1}');
      await record(sql, '{"expire":1}');
      const [{ days }] = await sql`
      select extract(epoch from expires_at - received_at) / 86400 as days
        from public.webhook_dead_letters where function_name = ${fn} limit 1`;
      assert.equal(Number(days), 7);
      await sql`update public.webhook_dead_letters set expires_at = now() - interval '1 s'
               where function_name = ${fn} and strpos(convert_from(body, 'UTF8'), 'expire') > 0`;
      // The job's command (tests/idempotency_e2e_test.ts checks the job runs exactly this).
      await sql`select public.cleanup_webhook_idempotency(5000)`;
      const left =
        await sql`select convert_from(body, 'UTF8') as body from public.webhook_dead_letters
                           where function_name = ${fn}`;
      assert.deepEqual(left.map((r) => r.body), ['{"keep":1}']);
    } finally {
      await sql`delete from public.webhook_dead_letters where function_name = ${fn}`;
      await sql.end();
    }
  },
);

Deno.test("webhook-stats counts dead letters", opts, async () => {
  const sql = sqlClient();
  const fn = `stats-${crypto.randomUUID()}`;
  const config = parseStatsConfig({ SUPABASE_DB_URL: databaseUrl(), ...AUTH_ENV });
  const reader = postgresStatsReader(config);
  const handler = createStatsHandler({
    auth: config.auth,
    read: reader.read,
    readDeadLetters: reader.readDeadLetters,
    logger: silentLogger,
  });
  try {
    await sql`select public.record_webhook_dead_letters(${fn}, 'item', 'generic', 'hmac-sha256',
      '', '{}'::jsonb, '\\x7b7d'::bytea, array['a', 'b'], array['bad a', 'bad b'])`;
    await sql`select public.record_webhook_dead_letters(${fn}, 'delivery', null, 'hmac-sha256',
      '', '{}'::jsonb, '\\x7b7d'::bytea, array['(root)'], array['unknown_format: x'])`;
    const response = await handler(
      new Request("http://127.0.0.1/webhook-stats", { headers: { apikey: SECRET_KEY } }),
    );
    assert.equal(response.status, 200);
    const { deadLetters, idempotency } = await response.json();
    assert.ok(idempotency);
    assert.deepEqual(deadLetters.byFunction[fn], {
      total: 3,
      deliveries: 1,
      items: 2,
      pending: 3,
    });
    assert.ok(deadLetters.total >= 3);
    assert.equal(deadLetters.limits.max_rows, 10000);
    assert.equal(deadLetters.limits.max_body_bytes, 262144);
  } finally {
    await sql`delete from public.webhook_dead_letters where function_name = ${fn}`;
    await reader.close();
    await sql.end();
  }
});

Deno.test("only the service role may call webhook-replay", opts, async () => {
  const replayer = replayHandler({});
  try {
    const body = { ids: [2 ** 40] };
    assert.equal((await replay(replayer.handler, body, {})).status, 401);
    assert.equal(
      (await replay(replayer.handler, body, { authorization: "Bearer not-a-jwt" })).status,
      401,
    );
    for (const role of ["anon", "authenticated"]) {
      const token = await jwt({ role, sub: crypto.randomUUID() });
      const refused = await replay(replayer.handler, body, { authorization: `Bearer ${token}` });
      assert.equal(refused.status, 403, role);
      assert.equal(refused.body.error, "forbidden");
    }
    assert.equal((await replay(replayer.handler, body, { apikey: PUBLISHABLE_KEY })).status, 403);
    const service = await jwt({ role: "service_role" });
    const ok = await replay(replayer.handler, body, { authorization: `Bearer ${service}` });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.results, [{ id: 2 ** 40, function: "", result: "not_found" }]);
    assert.equal((await replay(replayer.handler, body, { apikey: SECRET_KEY })).status, 200);
    assert.equal((await replay(replayer.handler, { nope: 1 })).status, 400);
    assert.equal((await replay(replayer.handler, { function: "nope" })).status, 400);
  } finally {
    await replayer.close();
  }
});

Deno.test("deno task replay: one function's letters, against a database URL", opts, async () => {
  const sql = sqlClient();
  const group = uniqueGroup();
  // A delivery an older release refused and today's code understands (a generic join).
  const body = JSON.stringify({
    event: "join",
    groupJid: group,
    participant: "919963064165@s.whatsapp.net",
    timestamp: Math.floor(Date.now() / 1000),
  });
  const [{ id }] = await sql`select public.record_webhook_dead_letters(${MEMBERSHIP}, 'delivery',
    'unknown', 'hmac-sha256', '', ${sql.json({ "content-type": "application/json" })},
    convert_to(${body}, 'UTF8'), array['(root)'], array['unknown_format: older release']) as id`;
  const run = async () => {
    const lines: string[] = [];
    const log = console.log;
    console.log = (line: string) => lines.push(line);
    try {
      const args = [MEMBERSHIP, "--ids", String(id), "--database-url", databaseUrl()];
      const code = await replayCli(args, {});
      return { code, lines: lines.map((line) => JSON.parse(line)) };
    } finally {
      console.log = log;
    }
  };
  try {
    const first = await run();
    assert.equal(first.code, 0);
    assert.deepEqual(first.lines[0], { id: Number(id), function: MEMBERSHIP, result: "applied" });
    assert.deepEqual(first.lines[1], { counts: { applied: 1 } });
    assert.deepEqual((await groupRows(sql, group)).map((r) => r.status), ["member"]);
    const again = await run();
    assert.equal(again.code, 0);
    assert.ok(["duplicate", "unchanged"].includes(again.lines[0].result));
    assert.equal((await groupRows(sql, group)).length, 1);
  } finally {
    await sql.end();
  }
});
