/**
 * What a webhook function supplies to the shared pipeline (core/webhook/handler.ts): only what is
 * its own — its formats, how its parsed deliveries become events and answer entries, its answer's
 * shape and its extra GET route. Everything else (method and size checks, body, signature,
 * Idempotency-Key, claims, health, errors) is the pipeline's.
 */
import type { MemoryClaimStore } from "../claims/memory_claim_store.ts";
import type { DeadLetters, RejectedItem } from "../dead_letters/dead_letter.ts";
import type { EventResult, ExactlyOnceProcessor } from "../exactly_once.ts";
import type { IgnoredDelivery } from "../formats/format.ts";
import type { FormatRegistry } from "../formats/registry.ts";
import type { IdempotencyLayer } from "../idempotency/layer.ts";
import type { Logger } from "../log.ts";
import type { WebhookAuthenticator } from "../webhook_auth.ts";
import type { FormInput } from "./body.ts";

/** One problem of a payload: where, and what. */
export interface Issue {
  path: string;
  message: string;
}

/** A parsed delivery's items after normalisation. */
export interface Normalized<E> {
  /** The valid events, in payload order: claimed and applied. */
  events: E[];
  /** Items that cannot be stored, with why (answered and kept as dead letters). */
  rejected: RejectedItem[];
  /** Items not processed (rejected or ignored), for the log line. */
  skipped: number;
  /** Set when every item is valid but not stored: the delivery is answered `ignored`. */
  ignoredReason?: string;
}

/** The `results` of an answer and whether the whole delivery was a copy. */
export interface Answer {
  results: unknown[];
  duplicate: boolean;
}

/** A webhook function's own part of the pipeline. */
export interface WebhookSpec<
  Input,
  Delivery extends { kind: string; format: string },
  E,
  N extends Normalized<E> = Normalized<E>,
> {
  /** The function's name, and the last path segment of its URL. */
  functionName: string;
  /** The Idempotency-Key layer's webhook type. */
  webhookType: string;
  /** Largest body accepted, in bytes. */
  maxBodyBytes: number;
  /** Whether form posts are read (before the signature check, which signs their fields). */
  readsForms: boolean;
  /** The formats' input: the JSON body, or the form of a form post. */
  input(body: Uint8Array, form: FormInput | undefined): Input;
  /** The formats understood, in detection order. */
  formats: FormatRegistry<Input, Delivery>;
  /** Refuses a parsed delivery that is invalid as a whole (throws `PayloadFormatError`). */
  check?(delivery: Delivery | IgnoredDelivery): void;
  /** Normalises a parsed delivery's items. */
  normalize(delivery: Delivery, receivedAt: number): N;
  /** The issues answered when no item is valid. */
  issues(normalized: N): Issue[];
  /** The answer's `results` (payload order) and whether the delivery was a copy. */
  answer(normalized: N, results: EventResult<E>[]): Answer;
  /** One event's result in the log line's `outcomes`. */
  describe(result: EventResult<E>): string;
  /** The 200 answer; JSON when not given. `results` is undefined for an ignored delivery. */
  respond?(format: string, body: Record<string, unknown>, results?: EventResult<E>[]): Response;
  /** Answers a GET that is not `/health` (405 without it). */
  get?(request: Request): Response;
  /** Extra fields of the health answer. */
  health?: Record<string, unknown>;
}

/** What the pipeline runs with, built once per function (see core/webhook_runtime.ts). */
export interface WebhookDeps<E> {
  processor: ExactlyOnceProcessor<E>;
  memory: MemoryClaimStore;
  /** Verifies deliveries; undefined only when unsigned webhooks are explicitly allowed. */
  authenticator?: WebhookAuthenticator;
  logger: Logger;
  /** The database name shown by the health response. */
  databaseName: string;
  /** The Idempotency-Key layer; without it every request is processed as if it had no key. */
  idempotency?: IdempotencyLayer;
  /** Keeps refused authenticated deliveries and rejected items; none kept without it. */
  deadLetters?: DeadLetters;
  now?: () => number;
}
