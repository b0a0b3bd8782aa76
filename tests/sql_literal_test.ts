/**
 * Values written into simple-protocol SQL as literals: every string, byte and JSON value comes back
 * from the real PostgreSQL exactly as sent, whatever quotes, backslashes or dollar signs it holds;
 * values without a safe literal are refused.
 */
import assert from "node:assert/strict";
import { oneTrip, oneTripText } from "../supabase/functions/_shared/core/db/one_trip.ts";
import {
  jsonb,
  quoteString,
  sqlLiteral,
} from "../supabase/functions/_shared/core/db/sql_literal.ts";
import { sqlClient } from "./support/env.ts";

const TRICKY = [
  "",
  "plain",
  "it's",
  "''",
  "\\",
  "\\'",
  "'\\",
  "\\\\'; select 1; --",
  "'); drop table public.whatsapp_messages; --",
  "$$",
  "$tag$ $$ $1",
  "E'x'",
  "/* open comment",
  "line\nbreak\r\ttab",
  "\u0001\u001f\u007f",
  "नमस्ते 👋🏽 ‮",
  "\ud800 lone surrogate",
];

Deno.test("sql literal: strings are escape-string constants; NUL and non-finite numbers refused", () => {
  assert.equal(quoteString("it's \\ x"), "E'it''s \\\\ x'");
  assert.equal(sqlLiteral(null), "null");
  assert.equal(sqlLiteral(undefined), "null");
  assert.equal(sqlLiteral(true), "true");
  assert.equal(sqlLiteral(12), "E'12'");
  assert.equal(sqlLiteral(12n), "E'12'::int8");
  assert.equal(sqlLiteral(new Uint8Array([0, 255])), "E'\\\\x00ff'::bytea");
  assert.equal(sqlLiteral(jsonb({ a: "'" })), `E'{"a":"''"}'::jsonb`);
  assert.throws(() => sqlLiteral("a\0b"), TypeError);
  assert.throws(() => sqlLiteral(Number.NaN), TypeError);
  assert.throws(() => sqlLiteral(Infinity), TypeError);
  assert.throws(() => sqlLiteral(new Date(Number.NaN)), TypeError);
  assert.throws(() => sqlLiteral(jsonb(undefined)), TypeError);
  assert.throws(() => sqlLiteral({} as never), TypeError);
  assert.throws(() => sqlLiteral(["a"] as never), TypeError);
});

Deno.test("one trip: the timeout travels in the same message, as set local", () => {
  assert.equal(
    oneTripText(["select ", " as v"], ["x"], 1500.2),
    "set local statement_timeout = 1501; select E'x' as v",
  );
  assert.equal(oneTripText(["select 1"], [], 0), "select 1");
});

Deno.test("one trip: tricky values come back from PostgreSQL exactly as sent", async () => {
  const sql = sqlClient(1);
  const call = oneTrip(sql, 5000);
  try {
    for (const text of TRICKY) {
      const expected = text.replace("\ud800", "\ufffd"); // UTF-8 cannot carry a lone surrogate
      const [row] = await call<{ v: string; after: number }>`select ${text}::text as v, 1 as after`;
      assert.deepEqual(row, { v: expected, after: 1 }, JSON.stringify(text));
      // As JSON, the same answer as postgres.js's own parameter (jsonb refuses a lone surrogate).
      const value = { text, list: [text] };
      const literal = await call<{ v: unknown }>`select ${jsonb(value)} as v`
        .then(([r]) => r.v, (e: Error) => e.message);
      const parameter = await sql<{ v: unknown }[]>`select ${sql.json(value)} as v`
        .then(([r]) => r.v, (e: Error) => e.message);
      assert.deepEqual(literal, parameter, JSON.stringify(text));
      if (!text.includes("\ud800")) assert.deepEqual(literal, { text, list: [text] });
    }
    const bytes = new Uint8Array(256).map((_, i) => i);
    const [row] = await call<
      { b: Uint8Array; t: Date; i: number; f: number; yes: boolean; z: boolean }
    >`
      select ${bytes} as b, ${new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6))} as t,
             ${-7}::int as i, ${0.25}::float8 as f, ${true} as yes, ${null}::text is null as z`;
    assert.deepEqual(new Uint8Array(row.b), bytes);
    assert.equal(row.t.toISOString(), "2026-01-02T03:04:05.006Z");
    assert.deepEqual([row.i, row.f, row.yes, row.z], [-7, 0.25, true, true]);
    // A statement that returns no rows, and one that returns none at all.
    assert.deepEqual([...await call`select 1 where false`], []);
    assert.deepEqual(
      [...await call`update public.whatsapp_messages set body = body where false`],
      [],
    );
  } finally {
    await sql.end();
  }
});
