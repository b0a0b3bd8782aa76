/**
 * The baseline handlers the benchmark compares against: what webhook handlers commonly do.
 *
 * They reuse the project's body reading, payload schema and normalisation, check the same HMAC
 * signature with WebCrypto, and
 * write the same table, so only the dedup differs:
 *
 * - `noDedup`: every delivery upserts unconditionally;
 * - `mapBucket`: a module-level Map keyed by `event:group:phone:floor(ts/5000)`, pruned by
 *   scanning every entry on each request;
 * - `redisCheckThenSet`: `GET` the key in Redis, then `SETEX` it when absent (racy across
 *   instances), through the same Upstash REST endpoint as the real handler.
 *
 * Each writes with the naive unconditional upsert, one statement per participant.
 */
import postgres from "postgres";
import { Redis } from "@upstash/redis";
import { MAX_BODY_BYTES } from "../../supabase/functions/_shared/core/config.ts";
import {
  GenericPayloadSchema,
  parseGenericPayload,
} from "../../supabase/functions/_shared/membership/formats/generic.ts";
import { readBodyLimited } from "../../supabase/functions/_shared/core/http.ts";
import { normalizeChanges } from "../../supabase/functions/_shared/membership/normalize.ts";
import type { MembershipEvent } from "../../supabase/functions/_shared/membership/event.ts";
import { WebhookAuthenticator } from "../../supabase/functions/_shared/core/webhook_auth.ts";

/** The baseline strategies. */
export const BASELINES = ["noDedup", "mapBucket", "redisCheckThenSet"] as const;

/** A baseline strategy's name. */
export type Baseline = typeof BASELINES[number];

/** Options of {@link createBaselineHandler}. */
export interface BaselineOptions {
  strategy: Baseline;
  databaseUrl: string;
  secret: string;
  /** Upstash REST URL and token, for `redisCheckThenSet`. */
  redis?: { url: string; token: string };
  /** Time bucket of the Map and Redis keys. */
  bucketMs?: number;
  /** How long a Map or Redis key lives. */
  ttlMs?: number;
}

/** A baseline handler and its counters. */
export interface BaselineHandler {
  fetch(request: Request): Promise<Response>;
  /** Counters for the benchmark. */
  stats(): { mapEntries: number; dbStatements: number; redisCommands: number };
  close(): Promise<void>;
}

/**
 * The scan-every-entry Map: the common quick fix, kept apart so the micro-benchmark measures
 * exactly what the `mapBucket` baseline runs.
 */
export class ScanMapDedup {
  readonly entries = new Map<string, number>();
  readonly #ttlMs: number;

  constructor(ttlMs: number) {
    this.#ttlMs = ttlMs;
  }

  /** Prunes expired entries by scanning all of them, then checks and sets `key`. */
  checkAndSet(key: string, now: number): boolean {
    for (const [k, expiresAt] of this.entries) {
      if (expiresAt <= now) this.entries.delete(k);
    }
    if (this.entries.has(key)) return false;
    this.entries.set(key, now + this.#ttlMs);
    return true;
  }
}

/** Builds a baseline handler. */
export function createBaselineHandler(options: BaselineOptions): BaselineHandler {
  const bucketMs = options.bucketMs ?? 5000;
  const ttlMs = options.ttlMs ?? 10 * 60 * 1000;
  const sql = postgres(options.databaseUrl, {
    max: 4,
    prepare: false,
    idle_timeout: 30,
    onnotice: () => {},
    connection: { application_name: `bench-${options.strategy}` },
  });
  // The project's own signature check, so that only the dedup differs.
  const authenticator = new WebhookAuthenticator({ shared: options.secret });
  const verify = (headers: Headers, body: Uint8Array<ArrayBuffer>) =>
    authenticator.verify(headers, body);
  const map = new ScanMapDedup(ttlMs);
  const redis = options.redis
    ? new Redis({
      url: options.redis.url,
      token: options.redis.token,
      retry: { retries: 0 },
      automaticDeserialization: false,
      enableTelemetry: false,
    })
    : undefined;
  let dbStatements = 0;
  let redisCommands = 0;

  const key = (e: MembershipEvent) =>
    `${e.action}:${e.groupJid}:${e.participant}:${Math.floor(e.at / bucketMs)}`;

  const isNew = async (e: MembershipEvent): Promise<boolean> => {
    if (options.strategy === "noDedup") return true;
    if (options.strategy === "mapBucket") return map.checkAndSet(key(e), Date.now());
    if (!redis) throw new Error("redisCheckThenSet needs redis");
    const k = `baseline:${key(e)}`;
    redisCommands++;
    if ((await redis.get(k)) !== null) return false;
    redisCommands++;
    await redis.setex(k, Math.ceil(ttlMs / 1000), "1");
    return true;
  };

  const upsert = async (e: MembershipEvent) => {
    dbStatements++;
    await sql`
      insert into public.whatsapp_group_members (group_jid, phone, status, last_event_at)
      values (${e.groupJid}, ${e.participant}, ${e.action === "join" ? "member" : "left"},
              ${new Date(e.at).toISOString()})
      on conflict (group_jid, phone) do update
        set status = excluded.status, last_event_at = excluded.last_event_at, updated_at = now()`;
  };

  return {
    async fetch(request: Request): Promise<Response> {
      try {
        if (request.method !== "POST") return Response.json({ error: "POST" }, { status: 405 });
        const body = await readBodyLimited(request, MAX_BODY_BYTES);
        await verify(request.headers, body);
        const parsed = GenericPayloadSchema.parse(JSON.parse(new TextDecoder().decode(body)));
        const delivery = parseGenericPayload(parsed);
        if (delivery.kind === "ignored") return Response.json({ success: true, ignored: true });
        const events = normalizeChanges(delivery.changes, Date.now());
        const outcomes: string[] = [];
        for (const event of events) {
          if (await isNew(event)) {
            await upsert(event);
            outcomes.push("applied");
          } else {
            outcomes.push("duplicate");
          }
        }
        return Response.json({ success: true, outcomes });
      } catch (error) {
        const message = error instanceof Error ? error.name : "error";
        return Response.json({ success: false, error: message }, { status: 500 });
      }
    },
    stats: () => ({ mapEntries: map.entries.size, dbStatements, redisCommands }),
    close: () => sql.end({ timeout: 1 }),
  };
}
