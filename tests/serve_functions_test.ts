/**
 * The local runner's router and runtime, in-process with fake functions: a function receives the
 * very request the server got, `EdgeRuntime.waitUntil` work runs after the response and is waited
 * for on shutdown, and functions with `verify_jwt` are guarded like the platform gateway does.
 * The membership function still finds `/health` and `?format=` in the untouched URL.
 */
import assert from "node:assert/strict";
import { BackgroundTasks, installEdgeRuntime } from "../scripts/lib/edge_runtime.ts";
import { LOCAL_JWT_SECRET, mintJwt } from "../scripts/lib/local_jwt.ts";
import {
  createRouter,
  functionNameOf,
  type LocalFunction,
  type Router,
  serveFunctions,
} from "../scripts/serve_functions.ts";
import { waitUntil } from "../supabase/functions/_shared/core/wait_until.ts";
import { parseConfig } from "../supabase/functions/_shared/core/config.ts";
import { queryParam, urlPath } from "../supabase/functions/_shared/core/http.ts";
import { silentLogger } from "../supabase/functions/_shared/core/log.ts";
import { createMembershipWebhookFromConfig } from "../supabase/functions/whatsapp-membership-webhook/handler.ts";
import { databaseUrl, signature, TEST_SECRET } from "./support/env.ts";

const INFO: Deno.ServeHandlerInfo<Deno.NetAddr> = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 50000 },
  completed: Promise.resolve(),
};

/** A fake function that records every request and info it is called with. */
function recorder(name: string, verifyJwt = false) {
  const seen: {
    request: Request;
    info: Deno.ServeHandlerInfo;
    url: string;
    headers: [string, string][];
    body: Uint8Array;
  }[] = [];
  const fn: LocalFunction = {
    name,
    verifyJwt,
    fetch: async (request, info) => {
      // Read while the request is open (a served request closes with its response).
      seen.push({
        request,
        info,
        url: request.url,
        headers: [...request.headers],
        body: new Uint8Array(await request.arrayBuffer()),
      });
      return Response.json({ ok: true });
    },
  };
  return { fn, seen };
}

/** A deferred promise the test settles by hand (no timers). */
function gate<T = void>() {
  let open!: (value: T) => void;
  let fail!: (error: unknown) => void;
  const promise = new Promise<T>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

Deno.test("runner: a function receives the very request object, URL, headers and body untouched", async () => {
  const { fn, seen } = recorder("echo");
  const route = createRouter([fn]);
  const body = new Uint8Array([0, 1, 2, 250, 255, 10, 13]);
  const url = "http://127.0.0.1:54321/functions/v1/echo/sub/path?format=waha&x=%20y";
  const request = new Request(url, {
    method: "POST",
    headers: { "x-webhook-signature": "sha256=abc", "content-type": "application/octet-stream" },
    body,
  });
  const response = await route(request, INFO);
  assert.equal(response.status, 200);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].request, request, "the same Request object");
  assert.equal(seen[0].info, INFO, "the same connection info");
  assert.equal(seen[0].request.url, url);
  assert.equal(seen[0].request.headers.get("x-webhook-signature"), "sha256=abc");
  assert.deepEqual(seen[0].body, body);
});

Deno.test("runner: over real HTTP the function sees the URL, headers and body bytes as sent", async () => {
  const { fn, seen } = recorder("echo");
  const route = createRouter([fn]);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, route);
  try {
    const url = `http://127.0.0.1:${server.addr.port}/functions/v1/echo?format=meta`;
    const body = new TextEncoder().encode('{"a":"olá"}');
    const response = await fetch(url, {
      method: "POST",
      headers: { "x-hub-signature-256": "sha256=00", "x-custom": "1" },
      body,
    });
    await response.body?.cancel();
    assert.equal(response.status, 200);
    assert.equal(seen[0].url, url);
    const headers = new Headers(seen[0].headers);
    assert.equal(headers.get("x-hub-signature-256"), "sha256=00");
    assert.equal(headers.get("x-custom"), "1");
    assert.equal(headers.get("content-length"), String(body.byteLength));
    assert.deepEqual(seen[0].body, body);
  } finally {
    await server.shutdown();
  }
});

Deno.test("runner: routes by name from the URL string; other paths are 404 JSON", async () => {
  const a = recorder("fn-a");
  const b = recorder("fn-b");
  const route = createRouter([a.fn, b.fn]);
  const status = async (url: string) => (await route(new Request(url), INFO)).status;
  assert.equal(await status("http://h/functions/v1/fn-b"), 200);
  assert.equal(await status("http://h/functions/v1/fn-a/health"), 200);
  assert.equal(await status("http://h/functions/v1/fn-a?x=1"), 200);
  assert.equal(await status("http://h/functions/v1/fn-c"), 404);
  assert.equal(await status("http://h/functions/v1/"), 404);
  assert.equal(await status("http://h/fn-a"), 404);
  const notFound = await route(new Request("http://h/functions/v2/fn-a"), INFO);
  assert.deepEqual(await notFound.json(), {
    error: "not_found",
    message: "no such function",
    functions: ["fn-a", "fn-b"],
  });
  assert.equal(a.seen.length, 2);
  assert.equal(b.seen.length, 1);
  assert.equal(functionNameOf("http://h:1/functions/v1/x-y_z/a/b?c=/functions/v1/q"), "x-y_z");
  assert.equal(functionNameOf("http://h/functions/v1/name#frag"), "name");
});

Deno.test("url helpers: path and query parameter cut from the URL string", () => {
  assert.equal(urlPath("http://h:1/functions/v1/f/health?x=1"), "/functions/v1/f/health");
  assert.equal(urlPath("http://h/f/health#top"), "/f/health");
  assert.equal(urlPath("http://h/"), "/");
  assert.equal(queryParam("http://h/f?format=waha&x=1", "format"), "waha");
  assert.equal(queryParam("http://h/f?x=1&format=meta%20api#f", "format"), "meta api");
  assert.equal(queryParam("http://h/f?x=1", "format"), null);
  assert.equal(queryParam("http://h/f", "format"), null);
});

Deno.test("runner: waitUntil work runs after the response, and shutdown waits for it", async () => {
  const tasks = installEdgeRuntime(new BackgroundTasks({ log: () => {} }));
  try {
    const release = gate();
    const effects: string[] = [];
    const fn: LocalFunction = {
      name: "later",
      verifyJwt: false,
      fetch: () => {
        // The project's helper, as a function calls it.
        waitUntil(release.promise.then(() => {
          effects.push("background work done");
        }));
        effects.push("responded");
        return new Response("accepted", { status: 202 });
      },
    };
    const route = createRouter([fn]);
    const response = await route(new Request("http://h/functions/v1/later"), INFO);
    assert.equal(response.status, 202);
    assert.equal(await response.text(), "accepted");
    assert.deepEqual(effects, ["responded"], "the response did not wait for the work");
    assert.equal(tasks.pending, 1);

    const drained = tasks.drain(60_000);
    release.open();
    assert.equal(await drained, 0);
    assert.deepEqual(effects, ["responded", "background work done"]);
    assert.equal(tasks.pending, 0);
  } finally {
    delete (globalThis as { EdgeRuntime?: unknown }).EdgeRuntime;
  }
});

Deno.test({
  name: "runner: shutdown stops serving, then waits for pending waitUntil work before resolving",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const server = await serveFunctions({ port: 0, quiet: true, drainTimeoutMs: 60_000 });
    try {
      const work = gate();
      const events: string[] = [];
      waitUntil(work.promise.then(() => {
        events.push("work done");
      }));
      assert.equal(server.tasks.pending, 1);
      const stopped = server.shutdown().then(() => events.push("shutdown resolved"));
      // Wait until the runner no longer answers: its server is closed, its work still pending.
      for (;;) {
        try {
          const r = await fetch(`http://127.0.0.1:${server.addr.port}/functions/v1/none`);
          await r.body?.cancel();
          await new Promise((r) => setTimeout(r, 20));
        } catch {
          break;
        }
      }
      assert.deepEqual(events, [], "shutdown resolved while work was pending");
      work.open();
      await stopped;
      assert.deepEqual(events, ["work done", "shutdown resolved"]);
    } finally {
      delete (globalThis as { EdgeRuntime?: unknown }).EdgeRuntime;
    }
  },
});

Deno.test("runner: a rejected waitUntil task is logged by error name only; drain is bounded", async () => {
  const lines: string[] = [];
  const tasks = installEdgeRuntime(new BackgroundTasks({ log: (line) => lines.push(line) }));
  try {
    // Through the global, as a function calling EdgeRuntime.waitUntil directly does (the
    // project's waitUntil helper swallows rejections itself).
    const runtime = (globalThis as unknown as {
      EdgeRuntime: { waitUntil(p: Promise<unknown>): Promise<unknown> };
    }).EdgeRuntime;
    const failing = gate();
    runtime.waitUntil(failing.promise).catch(() => {});
    failing.fail(new TypeError("token=s3cret-value for +919963064165"));
    assert.equal(await tasks.drain(60_000), 0);
    assert.equal(tasks.rejected, 1);
    assert.equal(lines.length, 1);
    assert.deepEqual(JSON.parse(lines[0]), {
      level: "error",
      msg: "waitUntil task rejected",
      error: "TypeError",
    });
    assert.ok(!lines[0].includes("s3cret") && !lines[0].includes("9963064165"));

    // Work that never settles: drain gives up at its bound and says how much is left.
    waitUntil(new Promise(() => {}));
    assert.equal(await tasks.drain(10), 1);
  } finally {
    delete (globalThis as { EdgeRuntime?: unknown }).EdgeRuntime;
  }
});

Deno.test("gateway JWT: valid passes untouched; missing, malformed, expired, forged, unsigned are 401", async () => {
  const { fn, seen } = recorder("private", true);
  const open = recorder("public", false);
  const route: Router = createRouter([fn, open.fn], { jwtSecret: LOCAL_JWT_SECRET });
  const call = async (authorization?: string, name = "private") => {
    const headers: Record<string, string> = authorization ? { authorization } : {};
    const request = new Request(`http://h/functions/v1/${name}`, {
      method: "POST",
      headers,
      body: "{}",
    });
    const response = await route(request, INFO);
    return { request, status: response.status, body: await response.json() };
  };

  const userToken = await mintJwt({ sub: "7f1c0a52-0000-4000-8000-000000000001" });
  const valid = await call(`Bearer ${userToken}`);
  assert.equal(valid.status, 200);
  assert.equal(seen.at(-1)!.request, valid.request, "passed through untouched");
  assert.equal(seen.at(-1)!.request.headers.get("authorization"), `Bearer ${userToken}`);
  const service = await call(`Bearer ${await mintJwt({ role: "service_role" })}`);
  assert.equal(service.status, 200);

  const refusals: [string, string | undefined, string][] = [
    ["missing", undefined, "Missing authorization header"],
    ["not bearer", `Basic ${btoa("a:b")}`, "Auth header is not 'Bearer {token}'"],
    ["not a JWT", "Bearer not-a-jwt", "Invalid JWT"],
    ["expired", `Bearer ${await mintJwt({ sub: "u", expiresInS: -120 })}`, "Invalid JWT"],
    [
      "forged",
      `Bearer ${await mintJwt({ sub: "u", secret: "another-secret-of-at-least-32-characters!" })}`,
      "Invalid JWT",
    ],
    ["alg none", `Bearer ${unsignedToken()}`, "Invalid JWT"],
  ];
  const before = seen.length;
  for (const [label, authorization, message] of refusals) {
    const refused = await call(authorization);
    assert.equal(refused.status, 401, label);
    assert.deepEqual(refused.body, { code: 401, message }, label);
  }
  assert.equal(seen.length, before, "no refused request reached the function");

  // verify_jwt = false: no token needed; CORS preflights skip the check.
  assert.equal((await call(undefined, "public")).status, 200);
  const preflight = await route(
    new Request("http://h/functions/v1/private", { method: "OPTIONS" }),
    INFO,
  );
  assert.equal(preflight.status, 200);
});

function unsignedToken(): string {
  const part = (value: unknown) =>
    btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  const exp = Math.floor(Date.now() / 1000) + 600;
  return `${part({ alg: "none", typ: "JWT" })}.${part({ sub: "u", role: "service_role", exp })}.`;
}

Deno.test("runner + membership webhook: /health and ?format= are found in the untouched URL", async () => {
  const { handler, close } = createMembershipWebhookFromConfig(
    parseConfig({ SUPABASE_DB_URL: databaseUrl(), WEBHOOK_SECRET: TEST_SECRET }),
    silentLogger,
  );
  const route = createRouter([{
    name: "whatsapp-membership-webhook",
    verifyJwt: false,
    fetch: handler,
  }]);
  const base = "http://127.0.0.1:54321/functions/v1/whatsapp-membership-webhook";
  try {
    const health = await route(new Request(`${base}/health`), INFO);
    assert.equal(health.status, 200);
    const body = await health.json();
    assert.equal(body.function, "whatsapp-membership-webhook");
    assert.ok(body.tiers.memory, "the health response, not a webhook refusal");

    const delivery = JSON.stringify({
      event: "join",
      groupJid: "120363025246125486@g.us",
      participant: "919963064165@s.whatsapp.net",
    });
    const forced = await route(
      new Request(`${base}?format=telegram`, {
        method: "POST",
        headers: { "x-webhook-signature": signature(delivery) },
        body: delivery,
      }),
      INFO,
    );
    assert.equal(forced.status, 400);
    assert.equal((await forced.json()).error, "unknown_format");
  } finally {
    await close();
  }
});
