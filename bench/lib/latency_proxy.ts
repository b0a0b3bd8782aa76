/**
 * A loopback TCP proxy that adds network distance: every chunk is held for half the round-trip
 * time in each direction, then forwarded in the order it was read (per connection and
 * direction). Reading never waits for the delay, so there is no throughput cap, only latency.
 * Connection set-up is not delayed: pools and keep-alive reuse their connections.
 *
 * The round-trip time can change while connections are open (`rttMs`); a chunk never overtakes
 * one read before it, so lowering it mid-stream keeps the byte order.
 *
 * `down` takes the target off the network as seen through the proxy: open connections are cut
 * and new ones are closed at once, until it is cleared.
 */
import type { BenchEnv } from "./context.ts";
import { startPgCountingProxy } from "./pg_counting_proxy.ts";

/** A running proxy. */
export interface LatencyProxy {
  port: number;
  /** Added round-trip time in ms (half each way); may be changed at any time. */
  rttMs: number;
  /** While true, open connections are cut and new ones closed at once (the target is "down"). */
  down: boolean;
  /** A URL like `url` but pointing at the proxy (same path, query and credentials). */
  urlFor(url: string): string;
  close(): void;
}

interface Held {
  due: number;
  chunk: Uint8Array;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function writeAll(to: Deno.Conn, chunk: Uint8Array): Promise<void> {
  for (let offset = 0; offset < chunk.length;) offset += await to.write(chunk.subarray(offset));
}

/** Forwards `from` → `to`, each chunk `delayMs()` after it was read, in read order. */
async function pipeDelayed(
  from: Deno.Conn,
  to: Deno.Conn,
  delayMs: () => number,
): Promise<void> {
  const queue: Held[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  const reading = (async () => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buffer);
        if (n === null) break;
        queue.push({ due: performance.now() + delayMs(), chunk: buffer.slice(0, n) });
        wake?.();
      }
    } catch { /* closed or reset: forward what was read, then end */ }
    ended = true;
    wake?.();
  })();
  try {
    for (;;) {
      const head = queue.shift();
      if (!head) {
        if (ended) break;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
        continue;
      }
      const wait = head.due - performance.now();
      if (wait > 0) await sleep(wait);
      await writeAll(to, head.chunk);
    }
    await to.closeWrite().catch(() => {});
  } catch {
    // The other side is gone: stop reading too.
    try {
      from.close();
    } catch { /* closed */ }
  }
  await reading;
}

/** Starts a proxy on 127.0.0.1 forwarding to 127.0.0.1:`targetPort` with `rttMs` added. */
export function startLatencyProxy(targetPort: number, rttMs = 0): LatencyProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const open = new Set<Deno.Conn>();
  const cut = () => {
    for (const c of open) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    open.clear();
  };
  let down = false;
  const proxy: LatencyProxy = {
    port,
    rttMs,
    get down() {
      return down;
    },
    set down(value: boolean) {
      down = value;
      if (value) cut();
    },
    urlFor(url: string) {
      const u = new URL(url);
      u.port = String(port);
      return u.toString();
    },
    close() {
      try {
        listener.close();
      } catch { /* closed */ }
      cut();
    },
  };
  const half = () => proxy.rttMs / 2;

  const handle = async (client: Deno.TcpConn) => {
    if (down) {
      client.close();
      return;
    }
    let server: Deno.TcpConn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
    } catch {
      client.close();
      return;
    }
    if (down) {
      // Taken down while connecting.
      client.close();
      server.close();
      return;
    }
    client.setNoDelay(true);
    server.setNoDelay(true);
    open.add(client);
    open.add(server);
    await Promise.allSettled([
      pipeDelayed(client, server, half),
      pipeDelayed(server, client, half),
    ]);
    for (const c of [client, server]) {
      open.delete(c);
      try {
        c.close();
      } catch { /* closed */ }
    }
  };

  (async () => {
    for await (const client of listener) handle(client).catch(() => {});
  })().catch(() => {});
  return proxy;
}

/** The run's servers seen from a distance: {@link startDistantEnv}. */
export interface DistantEnv {
  /** Like the run's, but PostgreSQL via a round-trip counter chained to `dbLink`, and the
   * Upstash endpoint via `upstashLink`. */
  env: BenchEnv;
  /** The latency proxy in front of PostgreSQL. */
  dbLink: LatencyProxy;
  /** The latency proxy in front of the Upstash endpoint. */
  upstashLink: LatencyProxy;
  close(): void;
}

/**
 * Puts a latency proxy between future instances and PostgreSQL (behind a fresh round-trip
 * counter) and another in front of the Upstash endpoint, both with no delay to begin with.
 */
export function startDistantEnv(env: BenchEnv): DistantEnv {
  const dbLink = startLatencyProxy(env.pg.port);
  const counter = startPgCountingProxy(dbLink.port);
  const upstashLink = startLatencyProxy(Number(new URL(env.upstash.url).port));
  return {
    env: {
      ...env,
      proxy: counter,
      upstash: { ...env.upstash, url: upstashLink.urlFor(env.upstash.url) },
    },
    dbLink,
    upstashLink,
    close() {
      counter.close();
      dbLink.close();
      upstashLink.close();
    },
  };
}
