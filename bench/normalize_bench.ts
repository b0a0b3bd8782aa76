/**
 * Micro-benchmark: key normalisation per event (group JID, participant through
 * libphonenumber-js, event time, composite key), and the whole payload path (zod schema +
 * normalisation + key) for one delivery.
 *
 * Run: `deno bench -A bench/normalize_bench.ts` (or through `deno task bench`).
 */
import { dedupKey } from "../supabase/functions/_shared/membership/dedup_key.ts";
import {
  GenericPayloadSchema,
  parseGenericPayload,
} from "../supabase/functions/_shared/membership/formats/generic.ts";
import type { RawMembershipChange } from "../supabase/functions/_shared/membership/formats/delivery.ts";
import { normalizeChanges } from "../supabase/functions/_shared/membership/normalize.ts";

const now = Date.now();
const raw: RawMembershipChange = {
  action: "join",
  group: "120363025246125486@g.us",
  participant: "919963064165:12@s.whatsapp.net",
  timestamp: Math.floor(now / 1000),
  path: "participant",
};
const payload = {
  event: "join",
  groupJid: "120363025246125486@g.us",
  phone_number: "+91 99630 64165",
  timestamp: now - 1000,
  sessionId: "session-2",
};

Deno.bench({ name: "normalise one event and build its key", group: "normalisation" }, () => {
  const [event] = normalizeChanges([raw], now);
  if (dedupKey(event, 5000).length === 0) throw new Error("empty key");
});

Deno.bench({ name: "schema + normalise + key, one delivery", group: "normalisation" }, () => {
  const delivery = parseGenericPayload(GenericPayloadSchema.parse(payload));
  if (delivery.kind !== "changes") throw new Error("ignored");
  const [event] = normalizeChanges(delivery.changes, now);
  if (dedupKey(event, 5000).length === 0) throw new Error("empty key");
});
