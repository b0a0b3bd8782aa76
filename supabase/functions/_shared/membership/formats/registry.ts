/**
 * The gateway formats the webhook understands, in detection order. To add a format, write one
 * module exporting a {@link WebhookFormat} (detect + parse into raw membership changes), list it
 * here, and add its example payloads to the tests.
 */
import { baileysFormat } from "./baileys.ts";
import {
  isObject,
  type ParsedDelivery,
  PayloadFormatError,
  type WebhookFormat,
} from "./delivery.ts";
import { evolutionFormat } from "./evolution.ts";
import { genericFormat } from "./generic.ts";
import { metaFormat } from "./meta.ts";
import { wahaFormat } from "./waha.ts";
import { wwebjsFormat } from "./wwebjs.ts";

/** Every supported format, most specific first. */
export const FORMATS: readonly WebhookFormat[] = [
  metaFormat,
  wahaFormat,
  evolutionFormat,
  wwebjsFormat,
  baileysFormat,
  genericFormat,
];

/** Names accepted by `?format=`. */
export const FORMAT_NAMES: readonly string[] = FORMATS.map((f) => f.name);

/** Raised when `?format=` names no known format, or no format recognises the payload. */
export class UnknownFormatError extends Error {
  constructor(message: string, names: readonly string[] = FORMAT_NAMES) {
    super(`${message}; supported formats: ${names.join(", ")}`);
    this.name = "UnknownFormatError";
  }
}

/**
 * Detects the payload's format (or uses the forced one) and parses it, with {@link FORMATS} or
 * the formats given. Throws {@link UnknownFormatError} or {@link PayloadFormatError}.
 */
export function parseDelivery(
  json: unknown,
  forced?: string | null,
  formats: readonly WebhookFormat[] = FORMATS,
): ParsedDelivery {
  const names = formats.map((f) => f.name);
  let format: WebhookFormat | undefined;
  if (forced) {
    format = formats.find((f) => f.name === forced);
    if (!format) throw new UnknownFormatError(`unknown format "${forced.slice(0, 32)}"`, names);
  } else {
    format = formats.find((f) => f.detect(json));
    if (!format) {
      throw new UnknownFormatError(
        isObject(json) ? "payload matches no supported format" : "payload must be a JSON object",
        names,
      );
    }
  }
  const parsed = format.parse(json);
  if (parsed.kind === "changes" && parsed.changes.length === 0) {
    throw new PayloadFormatError([{ path: "(root)", message: "no participants" }]);
  }
  return parsed;
}
