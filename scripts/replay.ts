/**
 * `deno task replay <function> [--ids 1,2] [--since <ISO time>] [--reason <text>]
 * [--database-url <url>]`: replays dead letters of one webhook function through today's code, as
 * `POST /functions/v1/webhook-replay` does, straight against a database. The webhook reads its
 * usual settings (Redis, dedup windows, …) from the environment (no secret is needed: replays are
 * trusted); the database is `--database-url`, else SUPABASE_DB_URL. Prints one JSON line per dead
 * letter, then the counts; exits 1 when a letter is still refused or not found.
 */
import { parseArgs } from "node:util";
import type { ReplaySelection } from "../supabase/functions/_shared/core/dead_letters/store.ts";
import { PostgresDeadLetterReplayStore } from "../supabase/functions/_shared/core/dead_letters/store.ts";
import {
  parseReplaySelection,
  replayDeadLetters,
} from "../supabase/functions/_shared/core/dead_letters/replay.ts";
import { createLogger } from "../supabase/functions/_shared/core/log.ts";
import { replayTargetsFromEnv } from "../supabase/functions/webhook-replay/handler.ts";

const USAGE = "usage: deno task replay <whatsapp-membership-webhook|whatsapp-message-webhook> " +
  "[--ids 1,2] [--since <ISO time>] [--reason <text>] [--database-url <url>]";

/** Runs the CLI; returns the exit status. */
export async function main(args: string[], env: Record<string, string | undefined>) {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        ids: { type: "string" },
        since: { type: "string" },
        reason: { type: "string" },
        "database-url": { type: "string" },
      },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const [fn] = parsed.positionals;
  const databaseUrl = parsed.values["database-url"] ?? env.SUPABASE_DB_URL;
  if (!fn || parsed.positionals.length > 1 || !databaseUrl) {
    console.error(USAGE);
    return 2;
  }
  let selection: ReplaySelection;
  try {
    selection = parseReplaySelection(
      parsed.values.ids
        ? { ids: parsed.values.ids.split(",").map((id) => Number(id.trim())) }
        : { function: fn, since: parsed.values.since, reason: parsed.values.reason },
    );
  } catch {
    console.error(`bad --ids, --since or --reason\n${USAGE}`);
    return 2;
  }
  const logger = createLogger("error", { fn: "replay" });
  const targets = replayTargetsFromEnv({ ...env, SUPABASE_DB_URL: databaseUrl }, fn, logger);
  const store = new PostgresDeadLetterReplayStore({
    url: databaseUrl,
    timeoutMs: 10_000,
    applicationName: "deno-task-replay",
  });
  try {
    const answers = await replayDeadLetters(selection, {
      store,
      // --ids replays only letters of this function.
      webhooks: targets.webhooks,
      logger,
    });
    const counts: Record<string, number> = {};
    for (const answer of answers) {
      console.log(JSON.stringify(answer));
      counts[answer.result] = (counts[answer.result] ?? 0) + 1;
    }
    console.log(JSON.stringify({ counts }));
    return answers.some((a) => a.result === "still_refused" || a.result === "not_found") ? 1 : 0;
  } finally {
    await store.close();
    await targets.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args, Deno.env.toObject()));
