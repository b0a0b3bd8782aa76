/**
 * The benchmark workload: unique join/leave events over a few hundred groups and phones, each
 * delivered by several gateway sessions, plus late retries, with the expected final state known.
 *
 * Every (group, phone) pair gets a sequence of 1 to 3 alternating events (join; join → leave;
 * join → leave → join), all inside one dedup window, so the third kind is a real rejoin that a
 * fixed-bucket cache takes for a duplicate. The k-th event of every pair is sent in phase k, so a
 * pair's events reach the functions in order while the copies of each event race each other.
 */

/** Options of {@link generateWorkload}. */
export interface WorkloadOptions {
  /** Unique real events (M). */
  events: number;
  /** Gateway sessions delivering each event (copies per event), 1 to 4. */
  sessions: number;
  /** Share of events that get one more, late, delivery after everything else (0 to 1). */
  lateRetryShare: number;
  /** Number of groups the pairs are drawn from. */
  groups: number;
  /** Number of phones the pairs are drawn from. */
  phones: number;
  /** Width of the dedup window the event times are laid out in. */
  windowMs: number;
  /** Seed of the pseudo-random generator, so every strategy gets the same workload. */
  seed: number;
  /** Start of the event times, epoch ms (must be recent for source timestamps to be used). */
  baseTime: number;
}

/** One real event. */
export interface WorkloadEvent {
  id: number;
  /** Index of the pair in {@link Workload.pairs}. */
  pair: number;
  action: "join" | "leave";
  /** Source timestamp, epoch ms. */
  at: number;
}

/** One HTTP delivery: a JSON body for the generic payload format. */
export interface Delivery {
  /** The event it carries. */
  event: number;
  /** The body as sent. */
  body: string;
  /** A copy from a session (`copy`) or a late retry of an old event (`late`). */
  kind: "copy" | "late";
}

/** A (group, phone) pair and what must become of it. */
export interface WorkloadPair {
  /** Normalised group JID, as stored. */
  groupJid: string;
  /** E.164 phone, as stored. */
  phone: string;
  /** Real state changes the pair's events make (one per event: they alternate). */
  expectedChanges: number;
  /** Final status after all events. */
  expectedStatus: "member" | "left";
}

/** The generated workload. */
export interface Workload {
  pairs: WorkloadPair[];
  events: WorkloadEvent[];
  /** Deliveries in send order: phase k holds copies of every pair's k-th event; the last phase holds late retries. */
  phases: Delivery[][];
  /** Deliveries in all phases. */
  deliveries: number;
}

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** Generates the workload; the same options always give the same workload. */
export function generateWorkload(options: WorkloadOptions): Workload {
  const random = prng(options.seed);
  const groups = Array.from(
    { length: options.groups },
    (_, i) => `120363${String(100_000_000_000 + i * 7919).padStart(12, "0")}@g.us`,
  );
  // Indian mobile numbers (+91 9…), valid for libphonenumber-js.
  const phones = Array.from(
    { length: options.phones },
    (_, i) => `9199${String(10_000_000 + i * 104_729).slice(-8)}`,
  );
  const pairs: WorkloadPair[] = [];
  const events: WorkloadEvent[] = [];
  const used = new Set<string>();
  const byPhase: WorkloadEvent[][] = [[], [], []];
  // Each pair's events sit in its own dedup window, 1 s apart, so rejoins share the join's bucket.
  const windowStart = Math.floor(options.baseTime / options.windowMs) * options.windowMs;
  while (events.length < options.events) {
    const g = Math.floor(random() * groups.length);
    const p = Math.floor(random() * phones.length);
    const id = `${g}:${p}`;
    if (used.has(id)) {
      if (used.size >= groups.length * phones.length) throw new Error("not enough pairs");
      continue;
    }
    used.add(id);
    const r = random();
    const length = Math.min(r < 0.6 ? 1 : r < 0.85 ? 2 : 3, options.events - events.length);
    const pair = pairs.length;
    // A third of single events sit at the end of their bucket, so that sessions' jittered copies
    // straddle the bucket boundary.
    const offset = length === 1 && random() < 0.33 ? options.windowMs - 150 : 200;
    const start = windowStart - (1 + (pair % 600)) * options.windowMs + offset;
    for (let k = 0; k < length; k++) {
      const event: WorkloadEvent = {
        id: events.length,
        pair,
        action: k % 2 === 0 ? "join" : "leave",
        at: start + k * 1000,
      };
      events.push(event);
      byPhase[k].push(event);
    }
    pairs.push({
      groupJid: groups[g],
      phone: `+${phones[p]}`,
      expectedChanges: length,
      expectedStatus: length % 2 === 1 ? "member" : "left",
    });
  }

  const rawPhone = (pair: WorkloadPair) => pair.phone.slice(1);
  const body = (event: WorkloadEvent, session: number): string => {
    const pair = pairs[event.pair];
    // Sessions name the participant differently and report slightly different times, as real
    // gateways do; normalisation must map them all to one key.
    const who = session % 2 === 0
      ? { participant: `${rawPhone(pair)}@s.whatsapp.net` }
      : { phone_number: `+${rawPhone(pair).slice(0, 2)} ${rawPhone(pair).slice(2)}` };
    const jitter = session === 0 ? 0 : Math.floor(random() * 300);
    return JSON.stringify({
      event: event.action,
      groupJid: pair.groupJid,
      ...who,
      timestamp: event.at + jitter,
      sessionId: `session-${session + 1}`,
    });
  };

  const phases: Delivery[][] = byPhase.filter((p) => p.length > 0).map((phase) =>
    shuffle(phase.slice(), random).flatMap((event) =>
      Array.from({ length: options.sessions }, (_, s) => ({
        event: event.id,
        body: body(event, s),
        kind: "copy" as const,
      }))
    )
  );
  const late: Delivery[] = [];
  for (const event of events) {
    if (random() < options.lateRetryShare) {
      late.push({
        event: event.id,
        body: body(event, Math.floor(random() * options.sessions)),
        kind: "late",
      });
    }
  }
  if (late.length > 0) phases.push(shuffle(late, random));
  return {
    pairs,
    events,
    phases,
    deliveries: phases.reduce((n, p) => n + p.length, 0),
  };
}
