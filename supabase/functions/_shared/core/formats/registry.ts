/**
 * The formats a webhook understands, in detection order, and the one rule choosing the format of
 * a delivery for every webhook:
 *
 * - `?format=<name>` forces a format; a name no format has is {@link UnknownFormatError}. The
 *   forced format must still recognise the payload (its `detect`): when it does not, the delivery
 *   is refused as an invalid payload of that format ({@link PayloadFormatError}), never parsed
 *   leniently or detected as another format.
 * - Without `?format=`, the first format whose `detect` accepts the payload parses it; none is
 *   {@link UnknownFormatError}.
 */
import type { Format, IgnoredDelivery } from "./format.ts";
import { isObject, PayloadFormatError } from "./parse.ts";

/** Raised when `?format=` names no known format, or no format recognises the payload. */
export class UnknownFormatError extends Error {
  /** The names of the formats the webhook understands. */
  readonly names: readonly string[];
  constructor(message: string, names: readonly string[]) {
    super(`${message}; supported formats: ${names.join(", ")}`);
    this.names = names;
    this.name = "UnknownFormatError";
  }
}

/** A webhook's formats, most specific first. */
export class FormatRegistry<Input, Delivery> {
  /** Names accepted by `?format=`, in detection order. */
  readonly names: readonly string[];

  constructor(readonly formats: readonly Format<Input, Delivery>[]) {
    this.names = formats.map((f) => f.name);
  }

  /** The first format recognising the input, if any. */
  detect(input: Input): Format<Input, Delivery> | undefined {
    return this.formats.find((f) => f.detect(input));
  }

  /**
   * The format of a delivery (the forced one, or the detected one), by the rule above. Throws
   * {@link UnknownFormatError} or {@link PayloadFormatError}.
   */
  choose(input: Input, forced?: string | null): Format<Input, Delivery> {
    if (forced) {
      const format = this.formats.find((f) => f.name === forced);
      if (!format) {
        throw new UnknownFormatError(`unknown format "${forced.slice(0, 32)}"`, this.names);
      }
      if (!format.detect(input)) {
        throw new PayloadFormatError([
          { path: "(root)", message: `payload is not of the "${format.name}" format` },
        ]);
      }
      return format;
    }
    const format = this.detect(input);
    if (format) return format;
    throw new UnknownFormatError(
      isObject(input) ? "payload matches no supported format" : "payload must be a JSON object",
      this.names,
    );
  }

  /** Chooses the format and parses the input with it. */
  parse(input: Input, forced: string | null | undefined, receivedAt: number) {
    return this.choose(input, forced).parse(input, receivedAt) as Delivery | IgnoredDelivery;
  }
}
