/**
 * The benchmark's and the tests' round-trip counter reads the client side of the wire protocol
 * and counts every message the client then waits on: Query, Sync and Flush.
 */
import assert from "node:assert/strict";
import { FrontendMessageCounter } from "../bench/lib/pg_counting_proxy.ts";

/** A typed frontend message: type byte, length, body. */
function message(type: string, body = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, 4 + body.length);
  out.set(body, 5);
  return out;
}

function startup(): Uint8Array {
  const body = new TextEncoder().encode("user\0postgres\0\0");
  const out = new Uint8Array(8 + body.length);
  new DataView(out.buffer).setInt32(0, out.length);
  new DataView(out.buffer).setInt32(4, 196608);
  out.set(body, 8);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

Deno.test("counter: Parse/Describe/Flush then Bind/Execute/Sync is two round trips; Query one", () => {
  const text = new TextEncoder().encode("select 1\0");
  const stream = concat(
    startup(),
    message("p", new Uint8Array(8)), // a password message: part of set-up
    message("P", text),
    message("D", new TextEncoder().encode("S\0")),
    message("H"),
    message("B", new Uint8Array(10)),
    message("E", new Uint8Array(5)),
    message("S"),
    message("Q", text),
  );
  const whole = new FrontendMessageCounter();
  whole.push(stream);
  assert.equal(whole.roundTrips, 3);
  // The same bytes cut at every position count the same.
  for (let cut = 1; cut < stream.length; cut++) {
    const split = new FrontendMessageCounter();
    split.push(stream.subarray(0, cut));
    split.push(stream.subarray(cut));
    assert.equal(split.roundTrips, 3, `cut at ${cut}`);
  }
});
