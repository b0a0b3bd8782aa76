/**
 * HTTP load on one instance of the membership function (wrk, many connections) beside the
 * ceilings measured in the same run: a bare `Deno.serve` handler parsing the same JSON, a bare
 * handler that also reads the raw bytes and verifies the same HMAC, and pgbench running the apply
 * function.
 */
import { type BenchEnv, redisCommand, type ResolvedOptions, sleep } from "../lib/context.ts";
import { startInstances } from "../lib/instances.ts";
import {
  autocannonLoad,
  ensureWrk,
  type LoadFigure,
  pgbenchApply,
  type PgbenchFigure,
  writeUniqueBodies,
  wrkLoad,
} from "../lib/load.ts";
import type { BenchResult } from "../lib/result.ts";
import { freePort } from "../../scripts/lib/ports.ts";
import { MESSAGE_PATH } from "../messages/scenarios.ts";
import { instanceEnv, POOL_MAX, SECRET, signatureOf, truncateMembership } from "./env.ts";

/** `--only=duplicate-path`: only the duplicate-path figure and the two ceilings. */
export const DUPLICATE_PATH_ONLY = "duplicate-path";

/** Which ceiling `bench/bare_server.ts` serves. */
type BareMode = "json" | "hmac";

async function startBareServer(
  mode: BareMode,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../bare_server.ts", import.meta.url).pathname],
    env: { PORT: String(port), BARE_MODE: mode, WEBHOOK_SECRET: SECRET },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; i < 300; i++) {
    try {
      const r = await fetch(url, { method: "POST", body: "{}" });
      await r.arrayBuffer();
      break;
    } catch {
      await sleep(50);
    }
  }
  return {
    url,
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/** A Cloud API webhook with one incoming message (the message webhook's duplicate path). */
function messageDuplicateBody(): string {
  return JSON.stringify({
    object: "whatsapp_business_account",
    entry: [{
      id: "102290129340398",
      changes: [{
        field: "messages",
        value: {
          messaging_product: "whatsapp",
          metadata: { display_phone_number: "15550783881", phone_number_id: "106540352242922" },
          contacts: [{ profile: { name: "Load" }, wa_id: "5511988887777" }],
          messages: [{
            from: "5511988887777",
            id: "wamid.LOADDUPLICATE0001",
            timestamp: String(Math.floor(Date.now() / 1000) - 60),
            type: "text",
            text: { body: "hello" },
          }],
        },
      }],
    }],
  });
}

/** The HTTP load figures and ceilings. */
export async function httpLoad(
  env: BenchEnv,
  o: ResolvedOptions,
  log: (line: string) => void,
): Promise<BenchResult["http"]> {
  const duration = o.quick ? 2 : 5;
  const connections = 50;
  const onlyDuplicatePath = o.only.includes(DUPLICATE_PATH_ONLY);
  const hasWrk = await ensureWrk(log);
  await truncateMembership(env);
  await redisCommand(env, ["FLUSHALL"]);
  const dupBody = JSON.stringify({
    event: "join",
    groupJid: "120363888000000001@g.us",
    participant: "919900001111@s.whatsapp.net",
    timestamp: Date.now() - 60_000,
    sessionId: "load",
  });
  const signed = { text: dupBody, signature: signatureOf(SECRET, dupBody) };
  const direct = (redis: boolean): Record<string, string> => ({
    ...instanceEnv(env, { id: "", label: "", strategy: "ours", redis }),
    SUPABASE_DB_URL: env.pg.url,
  });
  const load = (url: string, body: { text: string; signature?: string }) =>
    hasWrk
      ? wrkLoad({ url, connections, durationS: duration, workDir: env.work, body })
      : autocannonLoad({ url, connections, durationS: duration, body });
  const ceiling = async (mode: BareMode) => {
    const server = await startBareServer(mode);
    return await load(server.url, signed).finally(() => server.stop());
  };

  log(`HTTP load (${hasWrk ? "wrk" : "autocannon"}, ${connections} connections, ${duration} s)…`);
  const bareFigure = await ceiling("json");
  log(`  bare Deno.serve: ${bareFigure.requestsPerS.toFixed(0)} req/s`);
  const bareHmac = await ceiling("hmac");
  log(`  bare Deno.serve + raw bytes + HMAC: ${bareHmac.requestsPerS.toFixed(0)} req/s`);

  const [withRedis] = await startInstances(1, "ours", direct(true));
  let duplicatePath: LoadFigure;
  let messageDuplicatePath: LoadFigure | undefined;
  let uniquePath: LoadFigure | undefined;
  let uniquePathWithRedis: LoadFigure | undefined;
  let note: string | undefined;
  try {
    duplicatePath = await load(withRedis.url, signed);
    log(`  ours, duplicate path: ${duplicatePath.requestsPerS.toFixed(0)} req/s`);
    // The message webhook on the same instance: one Cloud API message delivered again and again.
    const message = messageDuplicateBody();
    messageDuplicatePath = await load(
      withRedis.baseUrl + MESSAGE_PATH,
      { text: message, signature: signatureOf(SECRET, message) },
    );
    log(`  ours, message duplicate path: ${messageDuplicatePath.requestsPerS.toFixed(0)} req/s`);
    if (hasWrk && !onlyDuplicatePath) {
      const lines = o.quick ? 20_000 : 80_000;
      const file = `${env.work}/unique-redis.tsv`;
      await writeUniqueBodies(file, lines, SECRET, 1);
      uniquePathWithRedis = await wrkLoad({
        url: withRedis.url,
        connections,
        durationS: duration,
        workDir: env.work,
        uniqueFile: { path: file, lines },
      });
      log(`  ours + Redis, unique path: ${uniquePathWithRedis.requestsPerS.toFixed(0)} req/s`);
    }
  } finally {
    await withRedis.stop();
  }
  if (onlyDuplicatePath) {
    note = "--only=duplicate-path: the unique path and pgbench were not measured";
  } else if (hasWrk) {
    const [noRedis] = await startInstances(1, "ours", direct(false));
    try {
      const lines = o.quick ? 20_000 : 80_000;
      const file = `${env.work}/unique.tsv`;
      await writeUniqueBodies(file, lines, SECRET, 2);
      uniquePath = await wrkLoad({
        url: noRedis.url,
        connections,
        durationS: duration,
        workDir: env.work,
        uniqueFile: { path: file, lines },
      });
      log(`  ours, unique path: ${uniquePath.requestsPerS.toFixed(0)} req/s`);
    } finally {
      await noRedis.stop();
    }
  } else {
    note = "wrk unavailable: the unique path needs per-request signed bodies and was not measured";
  }

  const pgbench: PgbenchFigure[] = [];
  if (!onlyDuplicatePath) log("pgbench ceilings…");
  for (const clients of onlyDuplicatePath ? [] : [1, POOL_MAX, 8]) {
    pgbench.push(
      await pgbenchApply({ port: env.pg.port, clients, durationS: duration, workDir: env.work }),
    );
    log(`  pgbench, ${clients} client(s): ${pgbench.at(-1)!.tps.toFixed(0)} tx/s`);
  }
  await truncateMembership(env);
  return {
    bare: bareFigure,
    bareHmac,
    duplicatePath,
    messageDuplicatePath,
    uniquePath: uniquePath ?? duplicatePath,
    uniquePathWithRedis,
    pgbench,
    instancePoolSize: POOL_MAX,
    note,
  };
}
