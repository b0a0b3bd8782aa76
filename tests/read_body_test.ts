/**
 * `readBodyLimited`: a body with a Content-Length is read without touching `request.body`; a
 * chunked body is streamed; both refuse more than the limit with 413.
 */
import assert from "node:assert/strict";
import { PayloadTooLargeError, readBodyLimited } from "../supabase/functions/_shared/core/http.ts";

const LIMIT = 1024;

/** A request whose `body` getter is counted (an own property shadows the prototype's getter). */
function watched(request: Request): { request: Request; bodyReads: () => number } {
  let reads = 0;
  const getter = Object.getOwnPropertyDescriptor(Request.prototype, "body")!.get!;
  Object.defineProperty(request, "body", {
    get() {
      reads++;
      return getter.call(request);
    },
  });
  return { request, bodyReads: () => reads };
}

function chunkedStream(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

const bytes = (n: number, fill = 0x61) => new Uint8Array(n).fill(fill);

Deno.test("read body: with Content-Length, the bytes come back and request.body is never read", async () => {
  const payload = new TextEncoder().encode('{"event":"join"}');
  const { request, bodyReads } = watched(
    new Request("http://local/", {
      method: "POST",
      body: payload,
      headers: { "content-length": String(payload.byteLength) },
    }),
  );
  assert.equal(request.headers.get("content-length"), String(payload.byteLength));
  assert.deepEqual(await readBodyLimited(request, LIMIT), payload);
  assert.equal(bodyReads(), 0);
});

Deno.test("read body: a declared length over the limit is 413 before anything is read", async () => {
  const { request, bodyReads } = watched(
    new Request("http://local/", {
      method: "POST",
      body: bytes(LIMIT + 1),
      headers: { "content-length": String(LIMIT + 1) },
    }),
  );
  await assert.rejects(readBodyLimited(request, LIMIT), PayloadTooLargeError);
  assert.equal(bodyReads(), 0);
  assert.equal(request.bodyUsed, false);
});

Deno.test("read body: a chunked body is streamed and joined; at the limit exactly it is accepted", async () => {
  const chunks = [bytes(500, 1), bytes(400, 2), bytes(124, 3)];
  const { request, bodyReads } = watched(
    new Request("http://local/", { method: "POST", body: chunkedStream(chunks) }),
  );
  assert.equal(request.headers.get("content-length"), null);
  const body = await readBodyLimited(request, LIMIT);
  assert.equal(body.byteLength, LIMIT);
  assert.deepEqual(body, new Uint8Array([...chunks[0], ...chunks[1], ...chunks[2]]));
  assert.equal(bodyReads(), 1);
});

Deno.test("read body: a chunked body past the limit is 413 and its stream is cancelled", async () => {
  let cancelled = false;
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      sent += 300;
      controller.enqueue(bytes(300));
    },
    cancel() {
      cancelled = true;
    },
  });
  const request = new Request("http://local/", { method: "POST", body: stream });
  await assert.rejects(readBodyLimited(request, LIMIT), PayloadTooLargeError);
  assert.equal(cancelled, true);
  assert.ok(sent <= LIMIT + 600, `read ${sent} bytes of an endless body`);
});

Deno.test("read body: no body at all is empty", async () => {
  assert.equal((await readBodyLimited(new Request("http://local/"), LIMIT)).byteLength, 0);
});

Deno.test("read body: over real HTTP, Content-Length and chunked bodies, within and over the limit", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
    try {
      const body = await readBodyLimited(r, LIMIT);
      return Response.json({ size: body.byteLength, first: body[0] ?? null });
    } catch (error) {
      if (error instanceof PayloadTooLargeError) return new Response(null, { status: 413 });
      throw error;
    }
  });
  const url = `http://127.0.0.1:${server.addr.port}/`;
  try {
    const post = async (body: BodyInit) => {
      const response = await fetch(url, { method: "POST", body });
      return { status: response.status, json: response.ok ? await response.json() : null };
    };
    // A Uint8Array body is sent with Content-Length; a stream body is sent chunked.
    assert.deepEqual(await post(bytes(LIMIT, 7)), {
      status: 200,
      json: { size: LIMIT, first: 7 },
    });
    assert.equal((await post(bytes(LIMIT + 1))).status, 413);
    assert.deepEqual(await post(chunkedStream([bytes(600, 9), bytes(424)])), {
      status: 200,
      json: { size: LIMIT, first: 9 },
    });
    assert.equal((await post(chunkedStream([bytes(600), bytes(600)]))).status, 413);
  } finally {
    await server.shutdown();
  }
});
