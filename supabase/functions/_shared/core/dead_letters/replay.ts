/**
 * Replays dead letters through today's code of their webhook, in process (the signature was
 * checked when they were kept). Each row is claimed with one atomic update first, so two replays
 * at once never run the same letter, and the webhook's exactly-once lifecycle makes a replay of
 * something already applied change nothing.
 */
import { z } from "zod";
import { InvalidPayloadError } from "../http.ts";
import type { Logger } from "../log.ts";
import type { ReplayableWebhook, ReplayResult } from "./dead_letter.ts";
import { replayResult } from "./dead_letter.ts";
import type { DeadLetterReplayStore, ReplaySelection } from "./store.ts";

/** The answer for one dead letter. */
export interface ReplayAnswer {
  id: number;
  function: string;
  result: ReplayResult | "not_found";
  /** Why it is still refused (or was not run). */
  reason?: string;
}

/** How long a replay holds a claimed letter. */
export const REPLAY_LEASE_SECONDS = 60;
/** At most this many letters per replay call. */
export const REPLAY_LIMIT = 500;

const SelectionSchema = z.union([
  z.object({ ids: z.array(z.number().int().positive()).min(1).max(REPLAY_LIMIT) }).strict(),
  z.object({
    function: z.string().min(1).max(100),
    since: z.iso.datetime({ offset: true }).optional(),
    reason: z.string().min(1).max(500).optional(),
  }).strict(),
]);

/** Parses `{ "ids": [...] }` or `{ "function": "...", "since": "...", "reason": "..." }`. */
export function parseReplaySelection(json: unknown): ReplaySelection {
  const parsed = SelectionSchema.safeParse(json);
  if (!parsed.success) {
    throw new InvalidPayloadError([{
      path: "(root)",
      message: 'expected { "ids": [1, 2] } or { "function": "…", "since": "…", "reason": "…" }',
    }]);
  }
  const value = parsed.data;
  if ("ids" in value) return { ids: value.ids };
  return {
    function: value.function,
    since: value.since ? new Date(value.since) : undefined,
    reason: value.reason,
  };
}

/** Replays the selected dead letters, one after another, and answers for each. */
export async function replayDeadLetters(
  selection: ReplaySelection,
  deps: {
    store: DeadLetterReplayStore;
    webhooks: Record<string, ReplayableWebhook>;
    logger: Logger;
  },
): Promise<ReplayAnswer[]> {
  const letters = await deps.store.claim(selection, REPLAY_LEASE_SECONDS, REPLAY_LIMIT);
  const answers: ReplayAnswer[] = [];
  if ("ids" in selection) {
    const found = new Set(letters.map((l) => l.id));
    for (const id of selection.ids) {
      if (!found.has(id)) answers.push({ id, function: "", result: "not_found" });
    }
  }
  let failure: unknown;
  for (const letter of letters) {
    const answer = { id: letter.id, function: letter.functionName };
    if (letter.truncated) {
      answers.push({
        ...answer,
        result: "still_refused",
        reason: "the body was truncated when kept: not replayable",
      });
      continue;
    }
    if (!letter.token) {
      answers.push({ ...answer, result: "duplicate", reason: "another replay is running it" });
      continue;
    }
    const webhook = deps.webhooks[letter.functionName];
    if (failure !== undefined || !webhook) {
      await deps.store.finish(letter.id, letter.token, null);
      if (failure !== undefined) continue;
      answers.push({
        ...answer,
        result: "still_refused",
        reason: `no webhook named ${letter.functionName} here`,
      });
      continue;
    }
    try {
      const run = await webhook.replay({
        authScheme: letter.authScheme,
        query: letter.query,
        headers: letter.headers,
        body: letter.body,
        receivedAt: letter.receivedAt.getTime(),
      });
      const { result, reason } = replayResult(letter, run);
      await deps.store.finish(letter.id, letter.token, result, reason);
      answers.push(reason === undefined ? { ...answer, result } : { ...answer, result, reason });
      deps.logger.info("dead letter replayed", { id: letter.id, result });
    } catch (error) {
      // An outage: give this claim and the rest back, and answer with the error.
      await deps.store.finish(letter.id, letter.token, null).catch(() => {});
      failure = error;
    }
  }
  if (failure !== undefined) throw failure;
  return answers;
}
