/**
 * The message workload: incoming messages and the statuses of outgoing ones, as Cloud API
 * webhooks, each delivered by several sessions (one copy each) in a shuffled order, so statuses
 * of one message arrive out of order; then late retries of a tenth of them.
 */
import type { Delivery } from "../lib/workload.ts";
import { prng } from "../lib/workload.ts";

/** The Cloud API account of the workload. */
export const BENCH_ACCOUNT = "106540352242922";

/** Statuses each outgoing message reaches, in their real order. */
const STATUSES = ["sent", "delivered", "read"] as const;

/** The generated workload and what must become of it. */
export interface MessageWorkload {
  /** Ids of incoming messages: one row each. */
  incoming: string[];
  /** Ids of outgoing messages: one row each, final status `read`. */
  outgoing: string[];
  /** Real events: messages plus distinct statuses. */
  events: number;
  phases: Delivery[][];
  deliveries: number;
}

/** Generates `messages` incoming messages and half as many outgoing ones with three statuses. */
export function generateMessageWorkload(options: {
  messages: number;
  sessions: number;
  lateRetryShare: number;
  seed: number;
}): MessageWorkload {
  const random = prng(options.seed);
  const at = Math.floor(Date.now() / 1000) - 120;
  const customer = (n: number) => `5511${String(900_000_000 + n * 7).slice(-9)}`;
  const webhook = (value: Record<string, unknown>) =>
    JSON.stringify({
      object: "whatsapp_business_account",
      entry: [{
        id: "102290129340398",
        changes: [{
          field: "messages",
          value: {
            messaging_product: "whatsapp",
            metadata: { display_phone_number: "15550783881", phone_number_id: BENCH_ACCOUNT },
            ...value,
          },
        }],
      }],
    });
  const incoming: string[] = [];
  const outgoing: string[] = [];
  const bodies: string[] = [];
  for (let i = 0; i < options.messages; i++) {
    const id = `wamid.IN${String(i).padStart(8, "0")}${options.seed}`;
    incoming.push(id);
    bodies.push(webhook({
      contacts: [{ profile: { name: "Bench" }, wa_id: customer(i) }],
      messages: [{
        from: customer(i),
        id,
        timestamp: String(at + (i % 60)),
        type: "text",
        text: { body: `hello ${i}` },
      }],
    }));
  }
  for (let i = 0; i < Math.floor(options.messages / 2); i++) {
    const id = `wamid.OUT${String(i).padStart(8, "0")}${options.seed}`;
    outgoing.push(id);
    STATUSES.forEach((status, k) =>
      bodies.push(webhook({
        statuses: [{
          id,
          status,
          timestamp: String(at + k),
          recipient_id: customer(i),
          biz_opaque_callback_data: `r-${i}`,
        }],
      }))
    );
  }
  // Shuffled: the statuses of one message reach the instances in any order.
  for (let i = bodies.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [bodies[i], bodies[j]] = [bodies[j], bodies[i]];
  }
  const copies = (event: number, kind: Delivery["kind"]) =>
    Array.from({ length: options.sessions }, () => ({ event, body: bodies[event], kind }));
  const first = bodies.flatMap((_, event) => copies(event, "copy"));
  const late = bodies.flatMap((_, event) =>
    random() < options.lateRetryShare ? [{ event, body: bodies[event], kind: "late" as const }] : []
  );
  return {
    incoming,
    outgoing,
    events: bodies.length,
    phases: [first, late],
    deliveries: first.length + late.length,
  };
}
