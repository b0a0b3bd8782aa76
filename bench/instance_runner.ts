/**
 * One function instance for the benchmark, as its own process.
 *
 * `BENCH_STRATEGY=ours` serves the real functions exactly as the local runner does
 * (`loadFunctions` + `createRouter` from `scripts/serve_functions.ts`, configured from the
 * environment); the baseline strategies serve a handler from `lib/baselines.ts`. Either way
 * `GET /__bench/stats` answers the process's heap and the dedup Map's resident entries.
 *
 * Environment: PORT, BENCH_STRATEGY, and SUPABASE_DB_URL, WEBHOOK_SECRET,
 * UPSTASH_REDIS_REST_URL/TOKEN as the functions read them.
 */
import { installEdgeRuntime } from "../scripts/lib/edge_runtime.ts";
import { createRouter, loadFunctions, type Router } from "../scripts/serve_functions.ts";
import { type Baseline, BASELINES, createBaselineHandler } from "./lib/baselines.ts";
import {
  createMessageBaselineHandler,
  MESSAGE_BASELINES,
  type MessageBaseline,
} from "./messages/baselines.ts";

/** The function the benchmark drives. */
export const FUNCTION_PATH = "/functions/v1/whatsapp-membership-webhook";

/** What `GET /__bench/stats` answers. */
export interface InstanceStats {
  strategy: string;
  heapUsedBytes: number;
  /** Memory held outside the V8 heap for JavaScript objects (buffers). */
  externalBytes: number;
  rssBytes: number;
  /** Entries resident in the dedup Map (the memory tier for `ours`). */
  mapEntries: number;
  /** Statements the baseline sent to the database (not known for `ours`: see the proxy). */
  dbStatements?: number;
}

async function main(): Promise<void> {
  const strategy = Deno.env.get("BENCH_STRATEGY") ?? "ours";
  const port = Number(Deno.env.get("PORT") ?? 0);
  let route: Router;
  let stats: (info: Deno.ServeHandlerInfo) => Promise<InstanceStats>;
  if (strategy === "ours") {
    installEdgeRuntime();
    route = createRouter(await loadFunctions());
    stats = async (info) => {
      const health = await route(new Request(`http://local${FUNCTION_PATH}/health`), info);
      const body = await health.json() as { tiers: { memory: { size: number } } };
      const memory = Deno.memoryUsage();
      return {
        strategy,
        heapUsedBytes: memory.heapUsed,
        externalBytes: memory.external,
        rssBytes: memory.rss,
        mapEntries: body.tiers.memory.size,
      };
    };
  } else if ((MESSAGE_BASELINES as readonly string[]).includes(strategy)) {
    const redisUrl = Deno.env.get("UPSTASH_REDIS_REST_URL");
    const handler = createMessageBaselineHandler({
      strategy: strategy as MessageBaseline,
      databaseUrl: Deno.env.get("SUPABASE_DB_URL")!,
      secret: Deno.env.get("WEBHOOK_SECRET")!,
      redis: redisUrl
        ? { url: redisUrl, token: Deno.env.get("UPSTASH_REDIS_REST_TOKEN")! }
        : undefined,
    });
    route = (request) => handler.fetch(request);
    stats = () => {
      const memory = Deno.memoryUsage();
      return Promise.resolve({
        strategy,
        heapUsedBytes: memory.heapUsed,
        externalBytes: memory.external,
        rssBytes: memory.rss,
        mapEntries: 0,
      });
    };
  } else if ((BASELINES as readonly string[]).includes(strategy)) {
    const redisUrl = Deno.env.get("UPSTASH_REDIS_REST_URL");
    const handler = createBaselineHandler({
      strategy: strategy as Baseline,
      databaseUrl: Deno.env.get("SUPABASE_DB_URL")!,
      secret: Deno.env.get("WEBHOOK_SECRET")!,
      redis: redisUrl
        ? { url: redisUrl, token: Deno.env.get("UPSTASH_REDIS_REST_TOKEN")! }
        : undefined,
    });
    route = (request) => handler.fetch(request);
    stats = () => {
      const s = handler.stats();
      const memory = Deno.memoryUsage();
      return Promise.resolve({
        strategy,
        heapUsedBytes: memory.heapUsed,
        externalBytes: memory.external,
        rssBytes: memory.rss,
        mapEntries: s.mapEntries,
        dbStatements: s.dbStatements,
      });
    };
  } else {
    throw new Error(`unknown BENCH_STRATEGY ${strategy}`);
  }
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen: () => {} },
    (request, info) => {
      // The runner's own paths, told apart without parsing the URL (it is on the measured path).
      if (request.url.includes("/__bench/")) {
        if (request.url.endsWith("/__bench/stats")) {
          return stats(info).then((s) => Response.json(s));
        }
        if (request.url.endsWith("/__bench/ready")) return new Response("ok");
      }
      return route(request, info);
    },
  );
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      server.shutdown().then(() => Deno.exit(0));
    });
  }
}

if (import.meta.main) await main();
