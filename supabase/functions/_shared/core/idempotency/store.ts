/**
 * The narrow interface between the idempotency layer and where its records live. The table is the
 * record; caches only hold copies of completed responses.
 */

/** A response as stored: status, content type and body bytes. */
export interface StoredResponse {
  status: number;
  contentType: string | null;
  body: Uint8Array;
}

/** What {@link IdempotencyStore.begin} is asked to record. */
export interface BeginInput {
  scope: string;
  key: string;
  webhookType: string;
  fingerprint: string;
  leaseMs: number;
  ttlSeconds: number;
  sourceIp?: string;
}

/** The answer of the lookup-or-lock. */
export type BeginOutcome =
  | { kind: "started"; token: string }
  | { kind: "replay"; response: StoredResponse; expiresAt: number }
  | { kind: "mismatch" }
  | { kind: "in_progress"; retryAfterMs: number };

/** A store of idempotency records (one implementation per backend). */
export interface IdempotencyStore {
  /** Short name shown by health responses. */
  readonly name: string;
  /** Lookup-or-lock in one round trip. */
  begin(input: BeginInput): Promise<BeginOutcome>;
  /** Stores the response of the attempt holding `token`; false when its lease was taken over. */
  complete(scope: string, key: string, token: string, response: StoredResponse): Promise<boolean>;
  /** Deletes the record of the attempt holding `token`, so a retry runs. */
  release(scope: string, key: string, token: string): Promise<boolean>;
  /** Adds replays a cache served to the records' `replay_count` (one write for many). */
  countReplays(replays: readonly { scope: string; key: string; count: number }[]): Promise<void>;
  close(): Promise<void>;
}

/** The store could not be reached or failed; never read as "replay" or "in progress". */
export class IdempotencyStoreUnavailableError extends Error {
  constructor(options?: { cause?: unknown }) {
    super("the idempotency store is unavailable", options);
    this.name = "IdempotencyStoreUnavailableError";
  }
}

/** A shared cache of completed responses (e.g. Upstash Redis): a copy, never the record. */
export interface SharedResponseCache {
  readonly name: string;
  /** The cached response when its fingerprint matches; undefined on a miss. Throws on failure. */
  get(
    scope: string,
    key: string,
    fingerprint: string,
  ): Promise<{ response: StoredResponse; expiresAt: number } | undefined>;
  /** Caches a completed response until `expiresAt` (epoch ms). Throws on failure. */
  set(
    scope: string,
    key: string,
    fingerprint: string,
    response: StoredResponse,
    expiresAt: number,
  ): Promise<void>;
}
