import assert from "node:assert/strict";
import { timeBucket } from "../supabase/functions/_shared/core/copy_window.ts";
import { dedupKey } from "../supabase/functions/_shared/membership/dedup_key.ts";
import {
  InvalidTimestampError,
  MAX_FUTURE_SKEW_MS,
  ORDERING_HORIZON_MS,
  parseTimestamp,
  resolveEventTime,
} from "../supabase/functions/_shared/whatsapp/event_time.ts";
import type { MembershipEvent } from "../supabase/functions/_shared/membership/event.ts";
import { normalizeChanges } from "../supabase/functions/_shared/membership/normalize.ts";

const WINDOW = 5000;
const T = Date.UTC(2026, 10, 22, 5, 0, 0); // a bucket boundary: divisible by 5000

function event(overrides: Partial<MembershipEvent> = {}): MembershipEvent {
  return {
    action: "join",
    groupJid: "120363025246125486@g.us",
    participant: "+919963064165",
    at: T,
    atSource: "payload",
    ...overrides,
  };
}

Deno.test("timestamps: ISO-8601, epoch seconds and milliseconds, as numbers or digits", () => {
  assert.equal(parseTimestamp(T / 1000), T);
  assert.equal(parseTimestamp(String(T / 1000)), T);
  assert.equal(parseTimestamp(T), T);
  assert.equal(parseTimestamp(String(T)), T);
  assert.equal(parseTimestamp("2026-11-22T05:00:00Z"), T);
  assert.equal(parseTimestamp("2026-11-22T05:00:00.000Z"), T);
  assert.equal(parseTimestamp("2026-11-22T10:30:00+05:30"), T);
  assert.equal(parseTimestamp("2026-11-22 05:00:00"), T);
  for (const bad of ["yesterday", "2026-13-45T99:00:00Z", "-5", "0"]) {
    assert.throws(() => parseTimestamp(bad), InvalidTimestampError, bad);
  }
});

Deno.test("event time: the source time is used however old, a future one capped at receipt", () => {
  assert.deepEqual(resolveEventTime(undefined, T), { at: T, source: "received" });
  assert.deepEqual(resolveEventTime(T / 1000 - 60, T), { at: T - 60_000, source: "payload" });
  // A sender clock running ahead: capped at the receive time, so it cannot make later events old.
  assert.deepEqual(resolveEventTime(T / 1000 + 60, T), { at: T, source: "payload" });
  const future = T + MAX_FUTURE_SKEW_MS + 1000;
  assert.deepEqual(resolveEventTime(future, T), { at: T, source: "received" });
  // An old event stays old: the receive time would make a captured delivery replayed later new.
  const ancient = T - ORDERING_HORIZON_MS - 1000;
  assert.deepEqual(resolveEventTime(ancient, T), { at: ancient, source: "payload" });
});

Deno.test("key: per-delivery fields never enter it; JID flavours give the same key", () => {
  const received = T + 100;
  const a = normalizeChanges([{
    action: "join",
    group: "120363025246125486@g.us",
    participant: "919963064165:3@s.whatsapp.net",
    timestamp: T / 1000,
    path: "participant",
  }], received);
  const b = normalizeChanges([{
    action: "join",
    group: "120363025246125486",
    participant: "+91 99630 64165",
    timestamp: String(T),
    path: "participant",
  }], received + 40);
  assert.equal(dedupKey(a[0], WINDOW), dedupKey(b[0], WINDOW));
  assert.equal(dedupKey(a[0], WINDOW), `join|120363025246125486@g.us|+919963064165|${T / WINDOW}`);
});

Deno.test("key: bucket edges", () => {
  assert.equal(timeBucket(T, WINDOW), timeBucket(T + WINDOW - 1, WINDOW));
  assert.notEqual(timeBucket(T - 1, WINDOW), timeBucket(T, WINDOW));
  assert.notEqual(dedupKey(event({ at: T - 1 }), WINDOW), dedupKey(event({ at: T }), WINDOW));
  assert.equal(dedupKey(event({ at: T }), WINDOW), dedupKey(event({ at: T + 4999 }), WINDOW));
});

Deno.test("key: action, group and participant each change the key", () => {
  const base = dedupKey(event(), WINDOW);
  assert.notEqual(dedupKey(event({ action: "leave" }), WINDOW), base);
  assert.notEqual(dedupKey(event({ groupJid: "120363000000000001@g.us" }), WINDOW), base);
  assert.notEqual(dedupKey(event({ participant: "+14155552671" }), WINDOW), base);
});

Deno.test("normalise: every problem is reported with its path", () => {
  assert.throws(
    () =>
      normalizeChanges([
        {
          action: "join",
          group: "nope",
          participant: "abc",
          timestamp: "never",
          path: "participants.0",
        },
        {
          action: "join",
          group: "nope",
          participant: "919963064165",
          timestamp: "never",
          path: "participants.1",
        },
      ], T),
    (error: Error & { issues?: { path: string }[] }) => {
      const paths = error.issues!.map((i) => i.path).sort();
      assert.deepEqual(paths, ["groupJid", "participants.0", "timestamp"]);
      return true;
    },
  );
});
