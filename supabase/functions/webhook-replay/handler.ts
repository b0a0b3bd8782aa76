/**
 * The webhook-replay handler: `POST` with `{ "ids": [...] }` or `{ "function": "...", "since":
 * "...", "reason": "..." }` runs the selected dead letters (public.webhook_dead_letters) again
 * through today's code of their webhook, in process, and answers per dead letter `applied`,
 * `duplicate`, `unchanged`, `stale` or `still_refused` (with the new reason), recording the result
 * on the row. For the service role only (its JWT, or a secret API key): any other caller gets 401
 * (no or invalid credential) or 403 (a valid JWT of another role, or a publishable key).
 */
import type { AuthConfig } from "../_shared/core/auth_config.ts";
import { CallerAuth } from "../_shared/core/caller_auth.ts";
import { parseConfig } from "../_shared/core/config.ts";
import type { ReplayableWebhook } from "../_shared/core/dead_letters/dead_letter.ts";
import { parseReplaySelection, replayDeadLetters } from "../_shared/core/dead_letters/replay.ts";
import {
  type DeadLetterReplayStore,
  PostgresDeadLetterReplayStore,
} from "../_shared/core/dead_letters/store.ts";
import {
  type FetchHandler,
  handlerFromEnv,
  toErrorResponse,
} from "../_shared/core/error_response.ts";
import {
  HttpError,
  jsonResponse,
  MalformedJsonError,
  MethodNotAllowedError,
  readBodyLimited,
} from "../_shared/core/http.ts";
import { ForbiddenRoleError } from "../_shared/core/jwt.ts";
import { createLogger, type Logger } from "../_shared/core/log.ts";
import { parseMessageSettings } from "../_shared/messages/config.ts";
import {
  createMembershipWebhookFromConfig,
  FUNCTION_NAME as MEMBERSHIP,
} from "../whatsapp-membership-webhook/handler.ts";
import {
  createMessageWebhookFromConfig,
  FUNCTION_NAME as MESSAGES,
} from "../whatsapp-message-webhook/handler.ts";
import { parseReplayConfig } from "./config.ts";

export type { FetchHandler };

/** The function's name. */
export const FUNCTION_NAME = "webhook-replay";

const MAX_REQUEST_BYTES = 64 * 1024;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The webhooks dead letters can be replayed through, by function name. */
export type ReplayTargets = Record<string, ReplayableWebhook>;

/** Builds the handler from its dependencies. */
export function createReplayHandler(
  deps: {
    auth: AuthConfig;
    store: DeadLetterReplayStore;
    /** Built on first use (they read their own configuration). */
    webhooks: () => ReplayTargets;
    logger: Logger;
  },
): FetchHandler {
  const auth = new CallerAuth(deps.auth);
  return async (request) => {
    try {
      if ((await auth.authenticate(request)).kind !== "service") {
        throw new ForbiddenRoleError("webhook-replay is for the service role only");
      }
      if (request.method !== "POST") throw new MethodNotAllowedError(request.method, "POST");
      const body = await readBodyLimited(request, MAX_REQUEST_BYTES);
      let json: unknown;
      try {
        json = JSON.parse(utf8.decode(body));
      } catch (error) {
        throw new MalformedJsonError(error);
      }
      const selection = parseReplaySelection(json);
      const webhooks = deps.webhooks();
      if ("function" in selection && !(selection.function in webhooks)) {
        throw new HttpError(400, "unknown_function", `no webhook named ${selection.function}`, {
          details: Object.keys(webhooks).map((name) => ({ path: "function", message: name })),
        });
      }
      const results = await replayDeadLetters(selection, {
        store: deps.store,
        webhooks,
        logger: deps.logger,
      });
      const counts: Record<string, number> = {};
      for (const r of results) counts[r.result] = (counts[r.result] ?? 0) + 1;
      return jsonResponse(200, { results, counts });
    } catch (error) {
      return toErrorResponse(error, deps.logger);
    }
  };
}

/**
 * The webhooks as their functions build them from the same environment (secrets, tiers,
 * database), without the Idempotency-Key layer; `only` builds one of them. Their signature check
 * never runs (a replay is trusted), so they are built even when no webhook secret is set.
 */
export function replayTargetsFromEnv(
  env: Record<string, string | undefined>,
  only?: string,
  logger?: Logger,
): { webhooks: ReplayTargets; close(): Promise<void> } {
  const values = { ...env, ALLOW_UNSIGNED_WEBHOOKS: "true" };
  const webhooks: ReplayTargets = {};
  const closers: (() => Promise<void>)[] = [];
  if (!only || only === MEMBERSHIP) {
    const built = createMembershipWebhookFromConfig(parseConfig(values), logger);
    webhooks[MEMBERSHIP] = built.handler;
    closers.push(built.close);
  }
  if (!only || only === MESSAGES) {
    const built = createMessageWebhookFromConfig(
      parseConfig(values),
      parseMessageSettings(values),
      logger,
    );
    webhooks[MESSAGES] = built.handler;
    closers.push(built.close);
  }
  if (only && closers.length === 0) {
    throw new Error(`no webhook named ${only}; use ${MEMBERSHIP} or ${MESSAGES}`);
  }
  return {
    webhooks,
    close: async () => {
      for (const close of closers) await close();
    },
  };
}

/** The handler for `index.ts`: reads the environment once, on the first request. */
export function replayHandlerFromEnv(
  env: () => Record<string, string | undefined> = () => Deno.env.toObject(),
): FetchHandler {
  return handlerFromEnv(FUNCTION_NAME, (values) => {
    const config = parseReplayConfig(values);
    const logger = createLogger(config.logLevel, { fn: FUNCTION_NAME });
    let targets: ReplayTargets | undefined;
    return createReplayHandler({
      auth: config.auth,
      store: new PostgresDeadLetterReplayStore({
        url: config.databaseUrl,
        timeoutMs: config.timeoutMs,
        applicationName: FUNCTION_NAME,
      }),
      webhooks: () => (targets ??= replayTargetsFromEnv(values, undefined, logger).webhooks),
      logger,
    });
  }, env);
}
