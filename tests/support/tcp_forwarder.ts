/**
 * A loopback TCP forwarder that can be stopped and started, to cut a client off from a server
 * (PostgreSQL) as an outage would, without stopping the server other tests use.
 */

/** A forwarder from a local port to a target port. */
export interface TcpForwarder {
  port: number;
  /** Closes the listener and every open connection: clients see the server as down. */
  stop(): void;
  /** Listens again on the same port. */
  start(): void;
}

/** Starts forwarding 127.0.0.1:<port> → 127.0.0.1:<targetPort>. */
export function startTcpForwarder(targetPort: number): TcpForwarder {
  let listener: Deno.Listener | undefined;
  let port = 0;
  const open = new Set<Deno.Conn>();

  const accept = async (l: Deno.Listener) => {
    for await (const client of l) {
      Deno.connect({ hostname: "127.0.0.1", port: targetPort }).then((server) => {
        open.add(client);
        open.add(server);
        const close = () => {
          for (const c of [client, server]) {
            open.delete(c);
            try {
              c.close();
            } catch { /* closed */ }
          }
        };
        Promise.allSettled([
          client.readable.pipeTo(server.writable),
          server.readable.pipeTo(client.writable),
        ]).finally(close);
      }, () => client.close());
    }
  };

  const forwarder: TcpForwarder = {
    get port() {
      return port;
    },
    start() {
      if (listener) return;
      listener = Deno.listen({ hostname: "127.0.0.1", port });
      port = (listener.addr as Deno.NetAddr).port;
      accept(listener).catch(() => {});
    },
    stop() {
      listener?.close();
      listener = undefined;
      for (const c of open) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      open.clear();
    },
  };
  forwarder.start();
  return forwarder;
}
