/**
 * A loopback TCP proxy in front of PostgreSQL that counts database round trips.
 *
 * It reads the frontend side of the wire protocol and counts every message that makes the server
 * answer what the client then waits on: `Query` (simple protocol), `Sync` (extended protocol) and
 * `Flush` (postgres.js without prepared statements sends Parse/Describe/Flush and waits for the
 * parameter types before Bind/Execute/Sync: two round trips). Connection set-up is counted apart.
 * Bytes are forwarded unchanged.
 */

/** A running proxy. */
export interface PgCountingProxy {
  port: number;
  /** Counters since start. */
  stats: { roundTrips: number; connections: number };
  /** A URL like `url` but pointing at the proxy. */
  urlFor(url: string): string;
  close(): void;
}

const UNTYPED_NEGOTIATION = new Set([80877103, 80877104]); // SSLRequest, GSSENCRequest
/** Query, Sync, Flush. */
const ANSWERED = new Set([0x51, 0x53, 0x48]);

/** Counts the round trips in a client → server byte stream split into arbitrary chunks. */
export class FrontendMessageCounter {
  roundTrips = 0;
  #startup = true;
  #buffer = new Uint8Array(0);

  /** Feeds a chunk of client → server bytes. */
  push(chunk: Uint8Array): void {
    const data = new Uint8Array(this.#buffer.length + chunk.length);
    data.set(this.#buffer);
    data.set(chunk, this.#buffer.length);
    let offset = 0;
    for (;;) {
      if (this.#startup) {
        if (data.length - offset < 8) break;
        const view = new DataView(data.buffer, offset);
        const length = view.getInt32(0);
        if (data.length - offset < length) break;
        const code = view.getInt32(4);
        offset += length;
        if (!UNTYPED_NEGOTIATION.has(code)) this.#startup = false;
        continue;
      }
      if (data.length - offset < 5) break;
      const type = data[offset];
      const length = new DataView(data.buffer, offset + 1).getInt32(0);
      if (data.length - offset < 1 + length) break;
      if (ANSWERED.has(type)) this.roundTrips++;
      offset += 1 + length;
    }
    this.#buffer = data.slice(offset);
  }
}

/** Starts a proxy on 127.0.0.1 forwarding to 127.0.0.1:`targetPort`. */
export function startPgCountingProxy(targetPort: number): PgCountingProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const stats = { roundTrips: 0, connections: 0 };
  const open = new Set<Deno.Conn>();

  const handle = async (client: Deno.Conn) => {
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
    } catch {
      client.close();
      return;
    }
    stats.connections++;
    open.add(client);
    open.add(server);
    const counter = new FrontendMessageCounter();
    const upstream = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        const before = counter.roundTrips;
        counter.push(chunk);
        stats.roundTrips += counter.roundTrips - before;
        controller.enqueue(chunk);
      },
    });
    await Promise.allSettled([
      client.readable.pipeThrough(upstream).pipeTo(server.writable),
      server.readable.pipeTo(client.writable),
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

  return {
    port,
    stats,
    urlFor(url: string) {
      const u = new URL(url);
      u.port = String(port);
      return u.toString();
    },
    close() {
      try {
        listener.close();
      } catch { /* closed */ }
      for (const c of open) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      open.clear();
    },
  };
}
