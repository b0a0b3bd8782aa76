/**
 * What a gateway format is, for any webhook: a name, a cheap structural check, and a parser from
 * the webhook's input (a JSON value, or a form post) to the webhook's own delivery shape.
 */

/** A valid delivery that carries nothing to store, answered 200 `ignored`. */
export interface IgnoredDelivery {
  kind: "ignored";
  /** The format that recognised it. */
  format: string;
  /** Why it is ignored (logged and answered). */
  reason: string;
}

/** One gateway format: how to recognise its payloads and how to parse them. */
export interface Format<Input, Delivery> {
  /** Name used by `?format=` and in responses. */
  readonly name: string;
  /** Whether the input looks like this format (cheap, structural). */
  detect(input: Input): boolean;
  /**
   * Parses a payload of this format (`receivedAt`: the receive time, for formats that resolve
   * event times while parsing); throws `PayloadFormatError` (core/formats/parse.ts).
   */
  parse(input: Input, receivedAt?: number): Delivery | IgnoredDelivery;
}
