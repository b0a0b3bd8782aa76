/**
 * The message formats the webhook understands, in detection order. To add a gateway, write one
 * module exporting a {@link MessageFormat}, list it here, and add its example payloads to the
 * tests.
 */
import type { DeliveryInput, MessageFormat, ParsedMessages } from "./delivery.ts";
import { evolutionFormat } from "./evolution.ts";
import { metaFormat } from "./meta.ts";
import { twilioFormat } from "./twilio.ts";
import { wahaFormat } from "./waha.ts";

/** Every supported format, most specific first. */
export const MESSAGE_FORMATS: readonly MessageFormat[] = [
  metaFormat,
  twilioFormat,
  wahaFormat,
  evolutionFormat,
];

/** Names accepted by `?format=`. */
export const MESSAGE_FORMAT_NAMES: readonly string[] = MESSAGE_FORMATS.map((f) => f.name);

/** Raised when `?format=` names no known format, or no format recognises the payload. */
export class UnknownMessageFormatError extends Error {
  constructor(message: string, names: readonly string[] = MESSAGE_FORMAT_NAMES) {
    super(`${message}; supported formats: ${names.join(", ")}`);
    this.name = "UnknownMessageFormatError";
  }
}

/**
 * Detects the format (or uses the forced one) and parses the delivery, with
 * {@link MESSAGE_FORMATS} or the formats given.
 */
export function parseMessages(
  input: DeliveryInput,
  receivedAt: number,
  forced?: string | null,
  formats: readonly MessageFormat[] = MESSAGE_FORMATS,
): ParsedMessages {
  const names = formats.map((f) => f.name);
  let format: MessageFormat | undefined;
  if (forced) {
    format = formats.find((f) => f.name === forced);
    if (!format) {
      throw new UnknownMessageFormatError(`unknown format "${forced.slice(0, 32)}"`, names);
    }
    if (!format.detect(input)) {
      throw new UnknownMessageFormatError(`payload is not of the "${format.name}" format`, names);
    }
  } else {
    format = formats.find((f) => f.detect(input));
    if (!format) throw new UnknownMessageFormatError("payload matches no supported format", names);
  }
  return format.parse(input, receivedAt);
}
