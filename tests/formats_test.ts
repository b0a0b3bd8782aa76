/**
 * Format detection and parsing of each gateway's example payloads, down to normalised events.
 */
import assert from "node:assert/strict";
import { PayloadFormatError } from "../supabase/functions/_shared/core/formats/parse.ts";
import { UnknownFormatError } from "../supabase/functions/_shared/core/formats/registry.ts";
import {
  MEMBERSHIP_REGISTRY,
  parseMembershipDelivery,
} from "../supabase/functions/_shared/membership/formats/registry.ts";
import { normalizeChanges } from "../supabase/functions/_shared/membership/normalize.ts";
import {
  baileysObjects,
  baileysStrings,
  evolutionObjects,
  evolutionStrings,
  EXAMPLE,
  metaAdd,
  metaMessage,
  metaRemove,
  sessions,
  wahaLegacyJoin,
  wahaParticipants,
  wwebjsWrapped,
} from "./fixtures/gateway_examples.ts";

const NOW = Date.UTC(2025, 10, 2, 1, 0, 0);

function events(json: unknown, forced?: string) {
  const delivery = parseMembershipDelivery(json, forced);
  assert.equal(delivery.kind, "changes", JSON.stringify(delivery));
  if (delivery.kind !== "changes") throw new Error("unreachable");
  return {
    format: delivery.format,
    events: normalizeChanges(delivery.changes, NOW, delivery.paths),
  };
}

Deno.test("evolution: participant objects pair the LID with its phone", () => {
  const { format, events: [e] } = events(evolutionObjects);
  assert.equal(format, "evolution");
  assert.deepEqual(
    { action: e.action, group: e.groupJid, participant: e.participant, lid: e.lid },
    { action: "join", group: EXAMPLE.group, participant: EXAMPLE.phone, lid: `lid:${EXAMPLE.lid}` },
  );
  // No event time in Evolution payloads: date_time is the send time, never used.
  assert.equal(e.atSource, "received");
  assert.equal(e.at, NOW);
});

Deno.test("evolution: JID strings with participantsData; untrustworthy phones are ignored", () => {
  const { events: list } = events(evolutionStrings);
  assert.deepEqual(list.map((e) => [e.action, e.participant, e.lid]), [
    ["leave", EXAMPLE.phone, `lid:${EXAMPLE.lid}`],
    ["leave", EXAMPLE.other, undefined],
  ]);
  const fallback = structuredClone(evolutionStrings);
  // Evolution's fallback puts the LID's own digits in phoneNumber: that is not a phone.
  fallback.data.participantsData[0].phoneNumber = EXAMPLE.lid;
  assert.equal(events(fallback).events[0].participant, `lid:${EXAMPLE.lid}`);
});

Deno.test("evolution: other events and actions are acknowledged and ignored", () => {
  assert.equal(
    parseMembershipDelivery({ ...evolutionObjects, event: "messages.upsert", data: {} }).kind,
    "ignored",
  );
  const modify = structuredClone(evolutionObjects);
  modify.data.action = "modify";
  assert.equal(parseMembershipDelivery(modify).kind, "ignored");
});

Deno.test("waha: group.v2.participants with pn; ms timestamps; legacy group.join", () => {
  const { format, events: [e] } = events(wahaParticipants);
  assert.equal(format, "waha");
  // payload.timestamp is milliseconds (NOWEB); the envelope's per-session timestamp is not used.
  assert.deepEqual([e.action, e.participant, e.lid, e.at, e.atSource], [
    "leave",
    EXAMPLE.phone,
    `lid:${EXAMPLE.lid}`,
    1760000000120,
    "payload",
  ]);
  const legacy = events(wahaLegacyJoin);
  assert.deepEqual(legacy.events.map((x) => [x.action, x.participant]), [["join", EXAMPLE.other]]);
});

Deno.test("waha: self join/leave name the session's account; other events are ignored", () => {
  const join = events({
    ...wahaParticipants,
    event: "group.v2.join",
    payload: { group: { id: EXAMPLE.group, subject: "x" }, timestamp: NOW - 1000 },
  });
  assert.deepEqual(join.events.map((e) => [e.action, e.participant, e.lid, e.at]), [
    ["join", "+51900000000", "lid:45848826278102", NOW - 1000],
  ]);
  assert.equal(
    parseMembershipDelivery({ ...wahaParticipants, event: "message", payload: {} }).kind,
    "ignored",
  );
});

Deno.test("baileys: objects and device-suffixed strings; promote is handled", () => {
  const objects = events(baileysObjects);
  assert.equal(objects.format, "baileys");
  assert.deepEqual(objects.events.map((e) => [e.action, e.participant]), [[
    "leave",
    EXAMPLE.phone,
  ]]);
  const strings = events(baileysStrings);
  assert.deepEqual(strings.events.map((e) => [e.action, e.participant]), [[
    "promote",
    EXAMPLE.other,
  ]]);
  const wrapped = events({ event: "group-participants.update", data: baileysStrings });
  assert.equal(wrapped.format, "baileys");
});

Deno.test("wwebjs: wrapped and raw notifications; WhatsApp's own timestamp", () => {
  const wrapped = events(wwebjsWrapped);
  assert.equal(wrapped.format, "wwebjs");
  // The example's timestamp is months old: kept as the event's own time, never replaced by the
  // receive time (the lifecycle answers an event beyond the ordering horizon `stale`).
  const notificationTime = wwebjsWrapped.data.notification.timestamp * 1000;
  assert.deepEqual(wrapped.events.map((e) => [e.action, e.participant, e.at, e.atSource]), [
    ["join", EXAMPLE.other, notificationTime, "payload"],
  ]);
  const raw = events({ ...wwebjsWrapped.data.notification, timestamp: NOW / 1000 - 60 });
  assert.deepEqual(raw.events.map((e) => [e.at, e.atSource]), [[NOW - 60_000, "payload"]]);
  const subject = { ...wwebjsWrapped.data.notification, type: "subject" };
  assert.equal(parseMembershipDelivery(subject).kind, "ignored");
});

Deno.test("meta: adds and removes; opaque group ids; other fields ignored", () => {
  const add = events(metaAdd);
  assert.equal(add.format, "meta");
  assert.deepEqual(add.events.map((e) => [e.action, e.groupJid, e.participant]), [
    ["join", EXAMPLE.group, EXAMPLE.other],
  ]);
  const remove = events(metaRemove);
  assert.deepEqual(remove.events.map((e) => [e.action, e.groupJid, e.participant]), [
    ["leave", "meta:Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MQ==", EXAMPLE.other],
  ]);
  assert.equal(parseMembershipDelivery(metaMessage).kind, "ignored");
  const joinRequest = structuredClone(metaAdd);
  joinRequest.entry[0].changes[0].value.groups[0].type = "group_join_request_created";
  assert.equal(parseMembershipDelivery(joinRequest).kind, "ignored");
});

Deno.test("detection: every builder is recognised as its own format", () => {
  for (const [name, build] of Object.entries(sessions)) {
    const json = build("s1", EXAMPLE.group, "join", [{ digits: EXAMPLE.otherDigits }], NOW);
    const delivery = parseMembershipDelivery(json);
    assert.equal(delivery.format, name);
  }
});

Deno.test("?format= forces a parser; unknown names and shapes list the supported formats", () => {
  assert.equal(parseMembershipDelivery(baileysStrings, "baileys").format, "baileys");
  assert.throws(() => parseMembershipDelivery(baileysStrings, "meta"), PayloadFormatError);
  assert.throws(() => parseMembershipDelivery(baileysStrings, "telegram"), (error: Error) => {
    assert.ok(error instanceof UnknownFormatError);
    for (const name of MEMBERSHIP_REGISTRY.names) assert.ok(error.message.includes(name));
    return true;
  });
  assert.throws(() => parseMembershipDelivery({ hello: 1 }), UnknownFormatError);
  assert.throws(() => parseMembershipDelivery([1, 2]), UnknownFormatError);
});

Deno.test("invalid payloads of a known format name the bad field", () => {
  const bad = structuredClone(evolutionObjects) as Record<string, unknown>;
  (bad.data as Record<string, unknown>).action = "explode";
  assert.throws(() => parseMembershipDelivery(bad), (error: PayloadFormatError) => {
    assert.deepEqual(error.issues.map((i) => i.path), ["data.action"]);
    return true;
  });
});
