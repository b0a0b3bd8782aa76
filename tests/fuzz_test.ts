/**
 * Fuzzing every input of every function, in-process against the real database: bodies (random
 * JSON, truncations and mutations of each example, forms, CSV files), each query parameter and
 * each header a function reads. Whatever comes in: never a 5xx; a refusal is a JSON error and a
 * 400 names the path of each problem; a refusal writes nothing (rows counted before and after)
 * and takes no claim.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../supabase/functions/_shared/core/config.ts";
import { parseIdempotencyConfig } from "../supabase/functions/_shared/core/idempotency/config.ts";
import { silentLogger } from "../supabase/functions/_shared/core/log.ts";
import { twilioSignature } from "../supabase/functions/_shared/core/twilio_signature.ts";
import { parseMembershipDelivery } from "../supabase/functions/_shared/membership/formats/registry.ts";
import { createMembershipWebhookFromConfig } from "../supabase/functions/whatsapp-membership-webhook/handler.ts";
import { statsHandlerFromEnv } from "../supabase/functions/webhook-stats/handler.ts";
import { databaseUrl, sqlClient, uniqueGroup } from "./support/env.ts";
import { SECRETS, signedHeaders } from "./support/signing.ts";
import * as examples from "./fixtures/gateway_examples.ts";
import * as ex from "./fixtures/message_examples.ts";
import {
  buildMessageWebhookWithIdempotency,
  MESSAGE_ENV,
  MESSAGE_URL,
} from "./support/message_webhook.ts";
import { FakeWhatsAppProvider } from "./support/fake_whatsapp_provider.ts";
import { mintJwt, newUser } from "./support/jwt.ts";
import { phones, sendBatchHandler } from "./support/send_batch.ts";
import {
  checkFuzzedResponse,
  type FuzzedResponse,
  mutate,
  mutateText,
  prng,
  randomCsv,
  randomHeaderValue,
  randomJson,
  randomText,
} from "./support/fuzz.ts";

const EXAMPLES: unknown[] = Object.values(examples).filter((v) =>
  v && typeof v === "object" && !("generic" in (v as object)) && !("group" in (v as object))
);
const MEMBERSHIP_URL = "http://127.0.0.1/whatsapp-membership-webhook";
const SEND_URL = "http://127.0.0.1/whatsapp-send-batch";
const STATS_URL = "http://127.0.0.1/webhook-stats";
const opts = { sanitizeResources: false, sanitizeOps: false };
type Handler = (request: Request) => Promise<Response>;
type Sql = ReturnType<typeof sqlClient>;

/** Row counts of every table a function writes, as one comparable text. */
async function rowCounts(sql: Sql): Promise<string> {
  const [row] = await sql`select
    (select count(*) from public.whatsapp_group_members)::int as members,
    (select count(*) from public.whatsapp_member_clock)::int as clocks,
    (select count(*) from public.whatsapp_lid_phones)::int as lids,
    (select count(*) from public.whatsapp_messages)::int as messages,
    (select count(*) from public.whatsapp_send_batches)::int as batches,
    (select count(*) from public.whatsapp_send_recipients)::int as recipients,
    (select count(*) from public.webhook_idempotency where expires_at > now())::int as keys`;
  return JSON.stringify(row);
}

/**
 * A function under fuzz: its handler, what it holds besides the database (its claims), and the
 * statuses it answered (so that a step can check it reached both acceptance and refusal).
 */
interface Target {
  handler: Handler;
  claims?: () => Promise<number>;
  seen?: Set<number>;
}

/** Runs a step and checks that its inputs were both accepted and refused at least once. */
async function mixedStep(
  t: Deno.TestContext,
  target: Target,
  name: string,
  run: () => Promise<void>,
): Promise<void> {
  await t.step(name, async () => {
    target.seen = new Set();
    await run();
    const statuses = [...target.seen];
    assert.ok(statuses.some((s) => s < 300), `${name}: nothing accepted (${statuses})`);
    assert.ok(statuses.some((s) => s >= 400), `${name}: nothing refused (${statuses})`);
  });
}

/** Claims held by a webhook instance's Map, from its health response. */
function claimsOf(handler: Handler, url: string): () => Promise<number> {
  return async () => (await (await handler(new Request(`${url}/health`))).json()).tiers.memory.size;
}

/**
 * Sends one fuzzed request and checks the response; a refusal must leave every table and the
 * instance's claims as they were.
 */
async function fuzzOnce(
  sql: Sql,
  target: Target,
  request: Request,
  context: string,
): Promise<FuzzedResponse> {
  const before = [await rowCounts(sql), await target.claims?.()];
  const result = await checkFuzzedResponse(await target.handler(request), context.slice(0, 300));
  target.seen?.add(result.status);
  if (result.status >= 400) {
    assert.deepEqual(
      [await rowCounts(sql), await target.claims?.()],
      before,
      `a ${result.status} wrote or claimed for ${context.slice(0, 300)}`,
    );
  }
  return result;
}

/** `url` with one query parameter set to `value` (or a raw, possibly broken, query). */
function withParam(url: string, name: string, value: string, raw = false): string {
  const query = raw ? `${name}=${value}` : new URLSearchParams({ [name]: value }).toString();
  return `${url}${url.includes("?") ? "&" : "?"}${query}`;
}

/** A raw query value: percent garbage, an encoded NUL, or a text. */
function rawQueryValue(rand: () => number): string {
  return ["%", "%zz", "%00", "%ff%fe", "%ED%A0%80", "a%00b", "%2500"][Math.floor(rand() * 7)];
}

/** A text the Fetch API accepts as a header value: Latin-1 only, no NUL, CR or LF. */
function headerSafe(text: string): string {
  return [...text].map((c) => (c.charCodeAt(0) > 0xff || "\u0000\r\n".includes(c) ? "?" : c))
    .join("");
}

/** A header set with one value replaced (or removed, when the value is undefined). */
function replaceHeader(
  headers: Record<string, string>,
  name: string,
  value: string | undefined,
): Headers {
  const result = new Headers(headers);
  if (value === undefined) result.delete(name);
  else result.set(name, value);
  return result;
}

Deno.test("fuzz: the detector and parsers never throw anything but their own errors", () => {
  const rand = prng(20261122);
  for (let i = 0; i < 5000; i++) {
    const json = i % 2 === 0 ? randomJson(rand) : mutate(EXAMPLES[i % EXAMPLES.length], rand);
    try {
      parseMembershipDelivery(json);
    } catch (error) {
      const name = (error as Error).name;
      assert.ok(
        name === "UnknownFormatError" || name === "PayloadFormatError",
        `input ${JSON.stringify(json)} threw ${name}: ${(error as Error).message}`,
      );
    }
  }
});

/** Headers each webhook reads, besides the signature schemes' own. */
const WEBHOOK_HEADERS = [
  "x-webhook-signature",
  "authorization",
  "x-hub-signature-256",
  "x-webhook-hmac",
  "x-webhook-hmac-algorithm",
  "webhook-id",
  "webhook-timestamp",
  "webhook-signature",
  "idempotency-key",
  "x-idempotency-key",
  "x-forwarded-for",
  "content-type",
];

Deno.test("fuzz membership webhook: body, ?format= and every header", opts, async (t) => {
  const values = { SUPABASE_DB_URL: databaseUrl(), ...SECRETS };
  const { handler, close } = createMembershipWebhookFromConfig(
    parseConfig(values),
    silentLogger,
    parseIdempotencyConfig(values),
  );
  const target = { handler, claims: claimsOf(handler, MEMBERSHIP_URL) };
  const sql = sqlClient();
  const signed = async (body: string, url = MEMBERSHIP_URL, extra: Record<string, string> = {}) =>
    new Request(url, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/json",
        ...await signedHeaders("generic", body),
        ...extra,
      },
    });
  /** A valid delivery of a fresh group, so that accepted ones really write. */
  const valid = () =>
    JSON.stringify(
      examples.sessions.generic("s1", uniqueGroup(), "join", [{ digits: "919963064165" }]),
    );
  try {
    await mixedStep(t, target, "body: random JSON, truncations, mutations", async () => {
      const rand = prng(42);
      for (let i = 0; i < 400; i++) {
        const body = JSON.stringify(randomJson(rand));
        await fuzzOnce(sql, target, await signed(body), body);
      }
      for (const example of EXAMPLES) {
        const text = JSON.stringify(example);
        for (let cut = 0; cut < text.length; cut += Math.max(1, Math.floor(text.length / 30))) {
          const result = await fuzzOnce(sql, target, await signed(text.slice(0, cut)), text);
          assert.equal(result.status, 400);
        }
      }
      for (let i = 0; i < 400; i++) {
        const body = JSON.stringify(mutate(EXAMPLES[i % EXAMPLES.length], rand));
        await fuzzOnce(sql, target, await signed(body), body);
      }
    });

    await mixedStep(t, target, "?format=", async () => {
      const rand = prng(7);
      for (let i = 0; i < 150; i++) {
        const url = i % 5 === 0
          ? withParam(MEMBERSHIP_URL, "format", rawQueryValue(rand), true)
          : withParam(MEMBERSHIP_URL, "format", randomText(rand));
        const body = i % 2 === 0 ? valid() : JSON.stringify(EXAMPLES[i % EXAMPLES.length]);
        await fuzzOnce(sql, target, await signed(body, url), url);
      }
    });

    await mixedStep(t, target, "every header it reads", async () => {
      const rand = prng(11);
      for (const name of WEBHOOK_HEADERS) {
        for (let i = 0; i < 25; i++) {
          const body = valid();
          const headers = {
            "content-type": "application/json",
            "idempotency-key": crypto.randomUUID(),
            ...await signedHeaders(i % 3 === 0 ? "standard" : "generic", body),
          };
          const value = i === 0 ? undefined : randomHeaderValue(rand);
          const request = new Request(MEMBERSHIP_URL, {
            method: "POST",
            body,
            headers: replaceHeader(headers, name, value),
          });
          await fuzzOnce(sql, target, request, `${name}: ${JSON.stringify(value)}`);
        }
      }
    });
  } finally {
    await sql.end();
    await close();
  }
});

/** Valid message deliveries of each JSON format, with fresh ids. */
function messageExamples(): unknown[] {
  const customer = ex.phoneDigits();
  const business = ex.phoneDigits();
  const id = ex.messageId();
  return [
    ex.metaWebhook(ex.phoneNumberId(), [{
      messages: [ex.metaMessage({ id: `wamid.${id}`, from: customer })],
      statuses: [
        ex.metaStatus({ id: `wamid.${ex.messageId()}`, status: "read", recipient: customer }),
      ],
    }]),
    ex.evolutionUpsert({
      instance: "i1",
      sender: `${business}@s.whatsapp.net`,
      id,
      remoteJid: `${customer}@s.whatsapp.net`,
    }),
    ex.evolutionUpdate({
      instance: "i1",
      sender: `${business}@s.whatsapp.net`,
      keyId: id,
      remoteJid: `${customer}@s.whatsapp.net`,
      status: "READ",
    }),
    ex.wahaMessage({
      session: "s1",
      me: `${business}@c.us`,
      id,
      from: `${customer}@c.us`,
      to: `${business}@c.us`,
    }),
    ex.wahaAck({ session: "s1", me: `${business}@c.us`, id, to: `${customer}@c.us`, ack: 3 }),
  ];
}

/** A Twilio form: an incoming message or a status, with fresh ids. */
function twilioForm(rand: () => number): URLSearchParams {
  const sid = `SM${crypto.randomUUID().replaceAll("-", "")}`;
  const [from, to] = [ex.phoneDigits(), ex.phoneDigits()];
  return rand() < 0.5
    ? ex.twilioIncoming({ sid, from, to })
    : ex.twilioStatus({ sid, status: "delivered", from, to });
}

Deno.test(
  "fuzz message webhook: bodies, forms, query parameters and every header",
  opts,
  async (t) => {
    const { handler, close } = buildMessageWebhookWithIdempotency();
    const target = { handler, claims: claimsOf(handler, MESSAGE_URL) };
    const sql = sqlClient();
    const json = async (body: string, url = MESSAGE_URL, scheme: "meta" | "generic" = "meta") =>
      new Request(url, {
        method: "POST",
        body,
        headers: { "content-type": "application/json", ...await signedHeaders(scheme, body) },
      });
    const form = (params: URLSearchParams, url = MESSAGE_URL) =>
      new Request(url, {
        method: "POST",
        body: params.toString(),
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "x-twilio-signature": twilioSignature(MESSAGE_ENV.TWILIO_AUTH_TOKEN, url, params),
        },
      });
    try {
      await mixedStep(t, target, "JSON bodies: random, truncated, mutated", async () => {
        const rand = prng(314);
        for (let i = 0; i < 300; i++) {
          const body = JSON.stringify(randomJson(rand));
          await fuzzOnce(sql, target, await json(body), body);
        }
        for (const example of messageExamples()) {
          const text = JSON.stringify(example);
          for (let cut = 0; cut < text.length; cut += Math.max(1, Math.floor(text.length / 25))) {
            const result = await fuzzOnce(sql, target, await json(text.slice(0, cut)), text);
            assert.equal(result.status, 400);
          }
        }
        for (let i = 0; i < 400; i++) {
          const all = messageExamples();
          const body = JSON.stringify(mutate(all[i % all.length], rand));
          await fuzzOnce(
            sql,
            target,
            await json(body, MESSAGE_URL, i % 2 ? "meta" : "generic"),
            body,
          );
        }
      });

      await mixedStep(t, target, "form posts: every field mutated", async () => {
        const rand = prng(2718);
        for (let i = 0; i < 300; i++) {
          const params = twilioForm(rand);
          const names = [...params.keys()];
          for (let n = 1 + Math.floor(rand() * 3); n > 0; n--) {
            const name = names[Math.floor(rand() * names.length)];
            const r = rand();
            if (r < 0.2) params.delete(name);
            else {params.set(
                name,
                r < 0.6 ? mutateText(params.get(name) ?? "", rand) : randomText(rand),
              );}
          }
          await fuzzOnce(sql, target, form(params), params.toString());
        }
      });

      await mixedStep(
        t,
        target,
        "query parameters: ?format= and the handshake's hub.*",
        async () => {
          const rand = prng(99);
          for (let i = 0; i < 100; i++) {
            const url = i % 5 === 0
              ? withParam(MESSAGE_URL, "format", rawQueryValue(rand), true)
              : withParam(MESSAGE_URL, "format", randomText(rand));
            const all = messageExamples();
            await fuzzOnce(sql, target, await json(JSON.stringify(all[i % all.length]), url), url);
          }
          for (let i = 0; i < 150; i++) {
            let url = MESSAGE_URL;
            for (const name of ["hub.mode", "hub.verify_token", "hub.challenge"]) {
              const r = rand();
              if (r < 0.15) continue;
              const value = r < 0.3
                ? (name === "hub.mode" ? "subscribe" : MESSAGE_ENV.META_VERIFY_TOKEN)
                : randomText(rand);
              url = r > 0.9
                ? withParam(url, name, rawQueryValue(rand), true)
                : withParam(url, name, value);
            }
            await fuzzOnce(sql, target, new Request(url), url);
          }
        },
      );

      await mixedStep(t, target, "every header it reads", async () => {
        const rand = prng(5);
        for (const name of [...WEBHOOK_HEADERS, "x-twilio-signature"]) {
          for (let i = 0; i < 20; i++) {
            const value = i === 0 ? undefined : randomHeaderValue(rand);
            let request: Request;
            if (i % 4 === 3) {
              const params = twilioForm(rand);
              const headers = Object.fromEntries(form(params).headers);
              request = new Request(MESSAGE_URL, {
                method: "POST",
                body: params.toString(),
                headers: replaceHeader(
                  { ...headers, "idempotency-key": crypto.randomUUID() },
                  name,
                  value,
                ),
              });
            } else {
              const all = messageExamples();
              const body = JSON.stringify(all[i % all.length]);
              const headers = {
                "content-type": "application/json",
                "idempotency-key": crypto.randomUUID(),
                ...await signedHeaders(i % 2 === 0 ? "standard" : "meta", body),
              };
              request = new Request(MESSAGE_URL, {
                method: "POST",
                body,
                headers: replaceHeader(headers, name, value),
              });
            }
            await fuzzOnce(sql, target, request, `${name}: ${JSON.stringify(value)}`);
          }
        }
      });
    } finally {
      await sql.end();
      await close();
    }
  },
);

Deno.test(
  "fuzz send-batch: JSON and CSV bodies, cells, query parameters, headers, routes",
  opts,
  async (t) => {
    const fake = FakeWhatsAppProvider.start();
    const fn = sendBatchHandler(fake);
    const target = { handler: fn.handler };
    const sql = sqlClient();
    const user = await newUser();
    const service = await mintJwt({ role: "service_role" });
    const list = phones(4);
    const create = (
      body: string,
      contentType: string,
      query = "",
      headers: Record<string, string> = {},
    ) =>
      new Request(`${SEND_URL}${query}`, {
        method: "POST",
        body,
        headers: { authorization: `Bearer ${user.jwt}`, "content-type": contentType, ...headers },
      });
    const validJson = () => ({
      message: Math.random() < 0.5 ? "Hi {{name}}, {{time}}" : {
        template: {
          name: "trip_reminder",
          language: { code: "en_US" },
          components: [{ type: "body", parameters: [{ type: "text", text: "{{name}}" }] }],
        },
      },
      recipients: list.map((phone, i) => ({ phone, name: `T${i}`, variables: { time: "9:00" } })),
    });
    const validCsv = () => `phone,name,time\n${list.map((p, i) => `${p},T${i},9:00`).join("\n")}\n`;
    try {
      await mixedStep(t, target, "JSON bodies: random and mutated", async () => {
        const rand = prng(1);
        for (let i = 0; i < 250; i++) {
          const body = JSON.stringify(i % 2 === 0 ? randomJson(rand) : mutate(validJson(), rand));
          await fuzzOnce(sql, target, create(body, "application/json"), body);
        }
        for (let i = 0; i < 30; i++) {
          const text = JSON.stringify(validJson());
          const body = text.slice(0, Math.floor(rand() * text.length));
          await fuzzOnce(sql, target, create(body, "application/json"), body);
        }
      });

      await mixedStep(t, target, "CSV uploads: random files and mutated cells", async () => {
        const rand = prng(2);
        for (let i = 0; i < 250; i++) {
          const body = i % 2 === 0 ? randomCsv(rand, list) : mutateText(validCsv(), rand);
          await fuzzOnce(sql, target, create(body, "text/csv", "?message=Hi%20{{name}}"), body);
        }
      });

      await mixedStep(
        t,
        target,
        "query parameters: message, template, language, owner",
        async () => {
          const rand = prng(3);
          for (const name of ["message", "template", "language", "owner"]) {
            for (let i = 0; i < 40; i++) {
              let query = name === "language"
                ? "?template=trip_reminder"
                : name === "owner"
                ? "?message=Hi"
                : "";
              const value = randomText(rand);
              query = i % 6 === 0
                ? withParam(query, name, rawQueryValue(rand), true)
                : withParam(query, name, value);
              const headers: Record<string, string> = name === "owner" && i % 2 === 0
                ? { authorization: `Bearer ${service}` }
                : {};
              await fuzzOnce(sql, target, create(validCsv(), "text/csv", query, headers), query);
            }
          }
        },
      );

      await mixedStep(t, target, "every header it reads", async () => {
        const rand = prng(4);
        for (
          const name of [
            "authorization",
            "apikey",
            "content-type",
            "idempotency-key",
            "x-idempotency-key",
            "x-forwarded-for",
          ]
        ) {
          for (let i = 0; i < 25; i++) {
            let value: string | undefined = i === 0 ? undefined : randomHeaderValue(rand);
            if (name === "authorization" && i % 3 === 1) {
              value = `Bearer ${mutateText(user.jwt, rand)}`;
            }
            const headers = replaceHeader(
              {
                authorization: `Bearer ${user.jwt}`,
                "content-type": "application/json",
                "idempotency-key": crypto.randomUUID(),
              },
              name,
              value === undefined ? undefined : headerSafe(value),
            );
            const request = new Request(SEND_URL, {
              method: "POST",
              body: JSON.stringify(validJson()),
              headers,
            });
            await fuzzOnce(sql, target, request, `${name}: ${JSON.stringify(value)}`);
          }
        }
      });

      await mixedStep(t, target, "routes and methods", async () => {
        const rand = prng(6);
        const id = crypto.randomUUID();
        const created = await fn.handler(create(JSON.stringify(validJson()), "application/json"));
        const own = (await created.json()).batch_id;
        const paths = [
          `/${own}`,
          `/${own}/retry`,
          "",
          "/",
          "/drain",
          `/${id}`,
          `/${id}/send`,
          `/${id}/retry`,
          `/${id}/x`,
          "/health",
        ];
        for (let i = 0; i < 120; i++) {
          const path = i % 4 === 3
            ? `/${encodeURIComponent(randomText(rand).toWellFormed())}`
            : paths[i % paths.length];
          const method = ["GET", "POST", "PUT", "DELETE", "PATCH"][Math.floor(rand() * 5)];
          const body = method === "GET" ? undefined : JSON.stringify(randomJson(rand));
          const request = new Request(`${SEND_URL}${path}`, {
            method,
            body,
            headers: { authorization: `Bearer ${user.jwt}`, "content-type": "application/json" },
          });
          await fuzzOnce(sql, target, request, `${method} ${path} ${body ?? ""}`);
        }
      });
    } finally {
      await sql.end();
      await fn.close();
      await fake.stop();
    }
  },
);

Deno.test("fuzz webhook-stats: credentials, methods and paths", opts, async () => {
  const handler = statsHandlerFromEnv(() => ({
    SUPABASE_DB_URL: databaseUrl(),
    LOG_LEVEL: "error",
  }));
  const target: Target = { handler, seen: new Set() };
  const sql = sqlClient();
  const service = await mintJwt({ role: "service_role" });
  const rand = prng(8);
  try {
    for (let i = 0; i < 150; i++) {
      const headers = new Headers();
      const r = rand();
      if (r < 0.15) headers.set("authorization", `Bearer ${service}`);
      else if (r < 0.4) {
        headers.set("authorization", `Bearer ${headerSafe(mutateText(service, rand))}`);
      } else if (r < 0.7) headers.set("authorization", randomHeaderValue(rand));
      if (rand() < 0.3) headers.set("apikey", randomHeaderValue(rand));
      const method = ["GET", "POST", "DELETE"][Math.floor(rand() * 3)];
      const path = rand() < 0.7 ? "" : `/${encodeURIComponent(randomText(rand).toWellFormed())}`;
      const request = new Request(`${STATS_URL}${path}`, { method, headers });
      const result = await fuzzOnce(sql, target, request, `${method} ${path} ${[...headers]}`);
      assert.ok([200, 401, 403, 405].includes(result.status), `${result.status}`);
    }
    assert.deepEqual([...target.seen!].sort(), [200, 401, 405]);
  } finally {
    await sql.end();
  }
});
