/**
 * The membership formats, in detection order. To add a format, write one module exporting a
 * {@link MembershipFormat} (detect + parse into raw membership changes), list it here, and add its
 * example payloads to the tests. Choosing the format follows core/formats/registry.ts.
 */
import { FormatRegistry } from "../../core/formats/registry.ts";
import { PayloadFormatError } from "../../core/formats/parse.ts";
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

/** Names accepted by `?format=` on the membership webhook. */
export const MEMBERSHIP_FORMAT_NAMES: readonly string[] = MEMBERSHIP_FORMATS.map((f) => f.name);

/** The registry of {@link MEMBERSHIP_FORMATS}, or of the formats given. */
export function membershipRegistry(
  formats: readonly MembershipFormat[] = MEMBERSHIP_FORMATS,
): FormatRegistry<unknown, ParsedDelivery> {
  return new FormatRegistry(formats);
}

const DEFAULT_REGISTRY = membershipRegistry();

/**
 * Chooses the format of a JSON payload (forced or detected) and parses it; a delivery with no
 * participant is invalid. Throws `UnknownFormatError` or {@link PayloadFormatError}.
 */
export function parseMembershipDelivery(
  json: unknown,
  forced?: string | null,
  registry: FormatRegistry<unknown, ParsedDelivery> = DEFAULT_REGISTRY,
): ParsedDelivery {
  const parsed = registry.parse(json, forced, 0);
  if (parsed.kind === "changes" && parsed.changes.length === 0) {
    throw new PayloadFormatError([{ path: "(root)", message: "no participants" }]);
  }
  return parsed;
}
