/**
 * The membership formats, in detection order. To add a format, write one module exporting a
 * {@link MembershipFormat} (detect + parse into raw membership changes), list it here, and add its
 * example payloads to the tests. Choosing the format follows core/formats/registry.ts.
 */
import { PayloadFormatError } from "../../core/formats/parse.ts";
import { FormatRegistry } from "../../core/formats/registry.ts";
import { baileysFormat } from "./baileys.ts";
import type { MembershipFormat, ParsedDelivery } from "./delivery.ts";
import { evolutionFormat } from "./evolution.ts";
import { genericFormat } from "./generic.ts";
import { metaFormat } from "./meta.ts";
import { wahaFormat } from "./waha.ts";
import { wwebjsFormat } from "./wwebjs.ts";

/** Every membership format, most specific first. */
export const MEMBERSHIP_FORMATS: readonly MembershipFormat[] = [
  metaFormat,
  wahaFormat,
  evolutionFormat,
  wwebjsFormat,
  baileysFormat,
  genericFormat,
];

/** The registry of {@link MEMBERSHIP_FORMATS}; its `names` are those `?format=` accepts. */
export const MEMBERSHIP_REGISTRY = new FormatRegistry(MEMBERSHIP_FORMATS);

/** Refuses a delivery with no participant ({@link PayloadFormatError}). */
export function requireParticipants(delivery: ParsedDelivery): void {
  if (delivery.kind === "changes" && delivery.changes.length === 0) {
    throw new PayloadFormatError([{ path: "(root)", message: "no participants" }]);
  }
}

/**
 * Chooses the format of a JSON payload (forced or detected) and parses it; a delivery with no
 * participant is invalid. Throws `UnknownFormatError` or {@link PayloadFormatError}.
 */
export function parseMembershipDelivery(json: unknown, forced?: string | null): ParsedDelivery {
  const parsed = MEMBERSHIP_REGISTRY.parse(json, forced, 0);
  requireParticipants(parsed);
  return parsed;
}
