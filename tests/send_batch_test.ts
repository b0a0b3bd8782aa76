/**
 * whatsapp-send-batch end to end through the handler: real PostgreSQL (RLS as the caller) and a
 * fake provider that is a real HTTP server speaking the Cloud API, Evolution and WAHA shapes.
 */
import assert from "node:assert/strict";
import { sqlClient } from "./support/env.ts";
import { FakeWhatsAppProvider } from "./support/fake_whatsapp_provider.ts";
import { mintJwt, newUser } from "./support/jwt.ts";
import { RealtimeChangeFeed } from "./support/realtime_changes.ts";
import { call, eventually, phones, sendBatchHandler } from "./support/send_batch.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

async function createBatch(
  handler: (r: Request) => Promise<Response>,
  jwt: string,
  list: string[],
  message: unknown = "Hello {{name}}",
) {
  const created = await call(handler, "POST", "", jwt, {
    message,
    recipients: list.map((phone, i) => ({ phone, name: `Traveler ${i}` })),
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.batch_id as string;
}

async function statuses(batchId: string) {
  const sql = sqlClient(1);
  try {
    return [
      ...await sql<
        {
          id: string;
          phone: string;
          status: string;
          provider_message_id: string | null;
          error_code: string | null;
          attempts: number;
        }[]
      >`
      select id, phone, status, provider_message_id, error_code, attempts
        from public.whatsapp_send_recipients where batch_id = ${batchId} order by row_number`,
    ];
  } finally {
    await sql.end();
  }
}

for (const kind of ["meta", "evolution", "waha", "twilio"] as const) {
  Deno.test(
    `${kind}: 10 recipients → exactly 10 calls, all sent with the provider's message id`,
    opts,
    async () => {
      const fake = FakeWhatsAppProvider.start();
      const fn = sendBatchHandler(fake, {}, kind);
      try {
        const user = await newUser();
        const list = phones(10);
        const batchId = await createBatch(fn.handler, user.jwt, list);
        const sent = await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
        assert.equal(sent.status, 202);
        assert.equal(sent.body.already_sent, 0);
        await fn.service.idle();
        assert.equal(fake.calls.length, 10);
        assert.deepEqual([...fake.callsPerRecipient().values()], Array(10).fill(1));
        const rows = await statuses(batchId);
        assert.deepEqual(rows.map((r) => r.status), Array(10).fill("sent"));
        for (const row of rows) {
          const callMade = fake.calls.find((c) => `+${c.to}` === row.phone)!;
          assert.equal(row.provider_message_id, callMade.messageId);
          if (kind === "meta") assert.equal(callMade.callbackData, row.id);
        }
        assert.equal(fake.calls[0].text, "Hello Traveler 0");
        const progress = await call(fn.handler, "GET", `/${batchId}`, user.jwt);
        assert.equal(progress.status, 200);
        assert.deepEqual(progress.body.counts, {
          pending: 0,
          processing: 0,
          sent: 10,
          failed: 0,
          unknown: 0,
        });
        assert.equal(progress.body.done, true);
      } finally {
        await fn.close();
        await fake.stop();
      }
    },
  );
}

Deno.test(
  "double click and 5 concurrent clicks on 2 instances: each recipient called at most once",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const a = sendBatchHandler(fake, { SEND_RATE_PER_SECOND: "300" });
    const b = sendBatchHandler(fake, { SEND_RATE_PER_SECOND: "300" });
    try {
      const user = await newUser();
      const batchId = await createBatch(a.handler, user.jwt, phones(60));
      const clicks = await Promise.all([
        call(a.handler, "POST", `/${batchId}/send`, user.jwt),
        call(b.handler, "POST", `/${batchId}/send`, user.jwt),
        call(a.handler, "POST", `/${batchId}/send`, user.jwt),
        call(b.handler, "POST", `/${batchId}/send`, user.jwt),
        call(a.handler, "POST", `/${batchId}/send`, user.jwt),
      ]);
      assert.equal(
        clicks.filter((c) => c.status === 202).length,
        1,
        JSON.stringify(clicks.map((c) => c.status)),
      );
      for (const click of clicks.filter((c) => c.status === 200)) {
        assert.equal(click.body.claimed, 0);
        assert.match(click.body.message, /in progress/);
      }
      await a.service.idle();
      await b.service.idle();
      const again = await call(b.handler, "POST", `/${batchId}/send`, user.jwt);
      assert.equal(again.status, 200);
      assert.equal(again.body.claimed, 0);
      assert.equal(again.body.already_sent, 60);
      assert.match(again.body.message, /nothing to send/);
      assert.equal(fake.calls.length, 60);
      assert.ok([...fake.callsPerRecipient().values()].every((n) => n === 1));
    } finally {
      await a.close();
      await b.close();
      await fake.stop();
    }
  },
);

Deno.test(
  "timeout after acceptance → unknown, resolved by the status webhook; drop → unknown",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const list = phones(4);
    const hang = list[1].slice(1);
    const drop = list[2].slice(1);
    fake.behave = (to) => (to === hang ? "hang" : to === drop ? "drop" : "succeed");
    const fn = sendBatchHandler(fake, { SEND_PROVIDER_TIMEOUT_MS: "300" });
    const sql = sqlClient(1);
    try {
      const user = await newUser();
      const batchId = await createBatch(fn.handler, user.jwt, list);
      await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
      await fn.service.idle();
      const rows = await statuses(batchId);
      assert.deepEqual(rows.map((r) => r.status), ["sent", "unknown", "unknown", "sent"]);
      const progress = await call(fn.handler, "GET", `/${batchId}`, user.jwt);
      assert.deepEqual(progress.body.unknown.map((u: { reason: string }) => u.reason), [
        "timeout",
        "connection lost",
      ]);
      // A second click never resends an unknown recipient.
      const click = await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
      assert.equal(click.body.claimed, 0);
      assert.equal(fake.calls.length, 4);
      // The Cloud API status webhook echoes biz_opaque_callback_data = the recipient id.
      const hung = fake.calls.find((c) => c.to === hang)!;
      await sql`insert into public.whatsapp_messages (account, message_id, direction, status, status_at, callback_data)
              values ('106540352242922', ${hung.messageId}, 'out', 'sent', now(), ${hung
        .callbackData!})`;
      await sql`update public.whatsapp_messages set status = 'delivered' where message_id = ${hung.messageId}`;
      const after = await statuses(batchId);
      assert.equal(after[1].status, "sent");
      assert.equal(after[1].provider_message_id, hung.messageId);
      assert.equal(after[2].status, "unknown");
      const [delivery] =
        await sql`select delivery_status from public.whatsapp_send_recipients where id = ${
          after[1].id
        }`;
      assert.equal(delivery.delivery_status, "delivered");
    } finally {
      await sql.end();
      await fn.close();
      await fake.stop();
    }
  },
);

Deno.test(
  "permanent error → failed with the code; 429/130429 → backs off, called once successfully",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const list = phones(3);
    const bad = list[0].slice(1);
    const throttled = list[1].slice(1);
    fake.behave = (to, n) =>
      to === bad ? "permanent" : to === throttled && n === 1 ? "throttle" : "succeed";
    const fn = sendBatchHandler(fake);
    try {
      const user = await newUser();
      const batchId = await createBatch(fn.handler, user.jwt, list);
      await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
      await fn.service.idle();
      const rows = await statuses(batchId);
      assert.deepEqual(rows.map((r) => [r.status, r.error_code]), [["failed", "131026"], [
        "sent",
        null,
      ], ["sent", null]]);
      const throttledCalls = fake.calls.filter((c) => c.to === throttled);
      assert.deepEqual(throttledCalls.map((c) => c.behaviour), ["throttle", "succeed"]);
      assert.equal(rows[1].attempts, 2);
      const progress = await call(fn.handler, "GET", `/${batchId}`, user.jwt);
      assert.equal(progress.body.failed[0].error_code, "131026");
      assert.equal(progress.body.failed[0].retryable, false);
      // A permanent failure is not requeued by retry.
      const retry = await call(fn.handler, "POST", `/${batchId}/retry`, user.jwt, {});
      assert.equal(retry.body.requeued_failed, 0);
    } finally {
      await fn.close();
      await fake.stop();
    }
  },
);

Deno.test(
  "provider down → recipients stay pending (nothing sent); send again when it is back",
  opts,
  async () => {
    const down = FakeWhatsAppProvider.start();
    const url = down.url;
    await down.stop();
    const fn = sendBatchHandler({ url }, { SEND_TIME_BUDGET_MS: "400", SEND_BACKOFF_MS: "50" });
    try {
      const user = await newUser();
      const batchId = await createBatch(fn.handler, user.jwt, phones(3));
      const first = await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
      assert.equal(first.status, 202);
      await fn.service.idle();
      const rows = await statuses(batchId);
      assert.deepEqual(rows.map((r) => r.status), ["pending", "pending", "pending"]);
      assert.equal(rows[0].error_code, "unreachable");
    } finally {
      await fn.close();
    }
  },
);

Deno.test(
  "retry requeues only the listed unknown recipients; send then calls them again",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const list = phones(3);
    fake.behave = (to, n) => (n === 1 && to !== list[2].slice(1) ? "hang" : "succeed");
    const fn = sendBatchHandler(fake, { SEND_PROVIDER_TIMEOUT_MS: "200" });
    try {
      const user = await newUser();
      const batchId = await createBatch(fn.handler, user.jwt, list);
      await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
      await fn.service.idle();
      const rows = await statuses(batchId);
      assert.deepEqual(rows.map((r) => r.status), ["unknown", "unknown", "sent"]);
      const retry = await call(fn.handler, "POST", `/${batchId}/retry`, user.jwt, {
        unknown: [rows[0].id],
      });
      assert.equal(retry.status, 200);
      assert.equal(retry.body.requeued_unknown, 1);
      await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
      await fn.service.idle();
      assert.deepEqual((await statuses(batchId)).map((r) => r.status), ["sent", "unknown", "sent"]);
      assert.deepEqual(list.map((p) => fake.callsPerRecipient().get(p.slice(1))), [2, 1, 1]);
    } finally {
      await fn.close();
      await fake.stop();
    }
  },
);

Deno.test(
  "another user's JWT cannot read, send or retry; expired or forged → 401; service role may",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const fn = sendBatchHandler(fake);
    try {
      const owner = await newUser();
      const other = await newUser();
      const batchId = await createBatch(fn.handler, owner.jwt, phones(2));
      for (
        const [method, path] of [["GET", `/${batchId}`], ["POST", `/${batchId}/send`], [
          "POST",
          `/${batchId}/retry`,
        ]]
      ) {
        const answer = await call(
          fn.handler,
          method,
          path,
          other.jwt,
          method === "POST" ? {} : undefined,
        );
        assert.equal(answer.status, 404, `${method} ${path}`);
      }
      assert.equal(fake.calls.length, 0);
      const expired = await mintJwt({ sub: owner.id, expiresInS: -120 });
      const forged = await mintJwt({
        sub: owner.id,
        secret: "another-secret-that-is-long-enough-to-sign-with",
      });
      for (const jwt of [expired, forged, undefined, "not.a.jwt"]) {
        const answer = await call(fn.handler, "GET", `/${batchId}`, jwt);
        assert.equal(answer.status, 401);
        assert.equal(answer.body.error, "unauthorized");
      }
      const anon = await mintJwt({ role: "anon" });
      assert.equal((await call(fn.handler, "GET", `/${batchId}`, anon)).status, 401);
      const service = await mintJwt({ role: "service_role" });
      const read = await call(fn.handler, "GET", `/${batchId}`, service);
      assert.equal(read.status, 200);
      assert.equal(read.body.total, 2);
      assert.equal(
        (await call(fn.handler, "GET", `/${crypto.randomUUID()}`, owner.jwt)).status,
        404,
      );
      assert.equal((await call(fn.handler, "GET", `/not-a-uuid`, owner.jwt)).status, 404);
    } finally {
      await fn.close();
      await fake.stop();
    }
  },
);

Deno.test(
  "CSV: duplicates removed, bad phones reported; empty, header-only and over-limit rows refused, nothing written",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const fn = sendBatchHandler(fake, { SEND_MAX_RECIPIENTS: "1000" });
    const sql = sqlClient(1);
    try {
      const user = await newUser();
      const csv = [
        "phone,name,city",
        "+1 415 555 2671,Ana,Lisbon",
        "14155552671,Ana again,Lisbon",
        "(415) 555,Bad,Nowhere",
        '+44 20 7946 0958,"Smith, Bob",London',
        "not a phone,X,Y",
      ].join("\n");
      const created = await call(
        fn.handler,
        "POST",
        "?message=Hi%20%7B%7Bname%7D%7D%20in%20%7B%7Bcity%7D%7D",
        user.jwt,
        csv,
        "text/csv",
      );
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.body.accepted, 2);
      assert.equal(created.body.duplicates_removed, 1);
      assert.deepEqual(
        created.body.rejected.map((r: { row: number; value: string }) => [r.row, r.value]),
        [[3, "(415) 555"], [5, "not a phone"]],
      );
      const rows = await sql`select phone, name, variables from public.whatsapp_send_recipients
                            where batch_id = ${created.body.batch_id} order by row_number`;
      assert.deepEqual(rows.map((r) => [r.phone, r.name, r.variables.city]), [[
        "+14155552671",
        "Ana",
        "Lisbon",
      ], ["+442079460958", "Smith, Bob", "London"]]);
      await call(fn.handler, "POST", `/${created.body.batch_id}/send`, user.jwt);
      await fn.service.idle();
      assert.deepEqual(fake.calls.map((c) => c.text).sort(), [
        "Hi Ana in Lisbon",
        "Hi Smith, Bob in London",
      ]);

      const before =
        await sql`select count(*)::int as n from public.whatsapp_send_batches where owner = ${user.id}`;
      const tooMany = ["phone", ...phones(1_001)].join("\n");
      const refusals = [
        ["", "empty_file"],
        ["phone,name\n", "no_recipients"],
        ["name\nAna\n", "missing_phone_column"],
        [tooMany, "too_many_recipients"],
        ["phone\nnope\n", "no_valid_recipients"],
      ];
      for (const [body, code] of refusals) {
        const answer = await call(fn.handler, "POST", "?message=Hi", user.jwt, body, "text/csv");
        assert.equal(answer.status, 400, code);
        assert.equal(answer.body.error, code);
      }
      const noMessage = await call(
        fn.handler,
        "POST",
        "",
        user.jwt,
        "phone\n+14155552671\n",
        "text/csv",
      );
      assert.equal(noMessage.status, 400);
      const badJson = await call(fn.handler, "POST", "", user.jwt, "{", "application/json");
      assert.equal(badJson.status, 400);
      const after =
        await sql`select count(*)::int as n from public.whatsapp_send_batches where owner = ${user.id}`;
      assert.equal(after[0].n, before[0].n);
    } finally {
      await sql.end();
      await fn.close();
      await fake.stop();
    }
  },
);

Deno.test(
  "JSON create: template with {{variables}}, unknown fields ignored, 10,000 accepted",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const fn = sendBatchHandler(fake);
    try {
      const user = await newUser();
      const template = {
        name: "trip_reminder",
        language: "en_US",
        components: [{
          type: "body",
          parameters: [{ type: "text", text: "{{name}}" }, { type: "text", text: "{{date}}" }],
        }],
      };
      const created = await call(fn.handler, "POST", "", user.jwt, {
        message: { template },
        recipients: [{
          phone: "+14155552671",
          name: "Ana",
          variables: { date: "12 May" },
          vip: true,
        }],
        ui_version: 3,
      });
      assert.equal(created.status, 201);
      await call(fn.handler, "POST", `/${created.body.batch_id}/send`, user.jwt);
      await fn.service.idle();
      assert.deepEqual(fake.calls[0].template, {
        name: "trip_reminder",
        language: { code: "en_US" },
        components: [{
          type: "body",
          parameters: [{ type: "text", text: "Ana" }, { type: "text", text: "12 May" }],
        }],
      });
      const big = await call(fn.handler, "POST", "", user.jwt, {
        message: "Hi",
        recipients: phones(10_000).map((phone) => ({ phone })),
      });
      assert.equal(big.status, 201);
      assert.equal(big.body.accepted, 10_000);
    } finally {
      await fn.close();
      await fake.stop();
    }
  },
);

Deno.test(
  "recipients are in the Realtime publication: create and send emit their row changes",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const fn = sendBatchHandler(fake);
    const sql = sqlClient(1);
    const feed = await RealtimeChangeFeed.open(sql);
    try {
      const user = await newUser();
      const batchId = await createBatch(fn.handler, user.jwt, phones(2));
      await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
      await fn.service.idle();
      const changes = (await feed.changes(batchId)).filter((c) => c.data.includes(batchId));
      assert.equal(changes.filter((c) => c.op === "INSERT").length, 2);
      assert.ok(changes.filter((c) => c.op === "UPDATE" && c.data.includes("'sent'")).length >= 2);
    } finally {
      await feed.close();
      await sql.end();
      await fn.close();
      await fake.stop();
    }
  },
);

Deno.test(
  "a long batch continues past the time budget without a second click, at most the configured rate",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const fn = sendBatchHandler(fake, { SEND_RATE_PER_SECOND: "50", SEND_TIME_BUDGET_MS: "300" });
    try {
      const user = await newUser();
      const batchId = await createBatch(fn.handler, user.jwt, phones(60));
      await call(fn.handler, "POST", `/${batchId}/send`, user.jwt);
      await eventually(async () => (await statuses(batchId)).every((r) => r.status === "sent"));
      await fn.service.idle();
      assert.equal(fake.calls.length, 60);
      // No one-second window of call arrivals holds more than the rate (+1 for boundary rounding).
      const times = fake.calls.map((c) => c.at).sort((x, y) => x - y);
      let most = 0;
      for (let i = 0, j = 0; i < times.length; i++) {
        while (times[i] - times[j] >= 1000) j++;
        most = Math.max(most, i - j + 1);
      }
      assert.ok(most <= 51, `${most} calls within one second at 50/s`);
    } finally {
      await fn.close();
      await fake.stop();
    }
  },
);

Deno.test(
  "Idempotency-Key: a repeated create makes one batch; a repeated send click is replayed",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const fn = sendBatchHandler(fake);
    const sql = sqlClient(1);
    try {
      const user = await newUser();
      const list = phones(5);
      const request = (path: string, key: string, body?: unknown) =>
        new Request(`http://localhost/whatsapp-send-batch${path}`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${user.jwt}`,
            "content-type": "application/json",
            "idempotency-key": key,
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      const payload = { message: "Hi {{name}}", recipients: list.map((phone) => ({ phone })) };
      const createKey = crypto.randomUUID();
      const first = await fn.handler(request("", createKey, payload));
      const firstBody = await first.text();
      assert.equal(first.status, 201);
      const again = await fn.handler(request("", createKey, payload));
      assert.equal(again.status, 201);
      assert.equal(again.headers.get("idempotent-replayed"), "true");
      assert.equal(await again.text(), firstBody, "byte for byte");
      const batchId = JSON.parse(firstBody).batch_id as string;
      const [{ n }] = await sql`select count(*)::int as n from public.whatsapp_send_batches
        where owner = ${user.id}`;
      assert.equal(n, 1, "one batch");

      const sendKey = crypto.randomUUID();
      const send = await fn.handler(request(`/${batchId}/send`, sendKey));
      assert.equal(send.status, 202);
      await send.body?.cancel();
      await fake.waitForCalls(5);
      const click = await fn.handler(request(`/${batchId}/send`, sendKey));
      assert.equal(click.headers.get("idempotent-replayed"), "true");
      assert.equal(click.status, 202, "the first answer, replayed");
      await click.body?.cancel();
      await fn.service.idle();
      assert.equal(fake.calls.length, 5, "each recipient called once");
      // Another user's same key is another key (and sees no batch).
      const other = await newUser();
      const stranger = await fn.handler(
        new Request(`http://localhost/whatsapp-send-batch/${batchId}/send`, {
          method: "POST",
          headers: { authorization: `Bearer ${other.jwt}`, "idempotency-key": sendKey },
        }),
      );
      assert.equal(stranger.status, 404);
      await stranger.body?.cancel();
    } finally {
      await sql.end();
      await fn.close();
      await fake.stop();
    }
  },
);

Deno.test(
  "review: NULs in a CSV, a semicolon CSV, a bare phone in JSON: stored, never a 500",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const fn = sendBatchHandler(fake);
    try {
      const user = await newUser();
      const [a, b] = phones(2);
      const csv = await call(
        fn.handler,
        "POST",
        "?message=Hi%00%20{{name}}",
        user.jwt,
        `phone;name\n${a};Ana\u0000\n${b};Bo\n`,
        "text/csv",
      );
      assert.equal(csv.status, 201, JSON.stringify(csv.body));
      assert.equal(csv.body.accepted, 2);
      const json = await call(fn.handler, "POST", "", user.jwt, {
        message: "hi\u0000 {{name}}",
        recipients: [phones(1)[0], { phone: "12" }],
      });
      assert.equal(json.status, 201, JSON.stringify(json.body));
      assert.equal(json.body.accepted, 1);
      assert.equal(json.body.rejected.length, 1);
    } finally {
      await fn.close();
      await fake.stop();
    }
  },
);
