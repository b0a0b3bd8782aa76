/**
 * The benchmark's latency proxy adds the configured round-trip time (half each way), keeps the
 * byte order of a connection, and can change its delay while connections stay open.
 */
import assert from "node:assert/strict";
import { startLatencyProxy } from "../bench/lib/latency_proxy.ts";

/** An echo server on loopback; returns its port and a stop function. */
function echoServer(): { port: number; stop: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      conn.readable.pipeTo(conn.writable).catch(() => {}).finally(() => conns.delete(conn));
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    stop: () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const read = await conn.read(out.subarray(got));
    if (read === null) throw new Error("closed early");
    got += read;
  }
  return out;
}

Deno.test("latency proxy: one round trip costs the RTT, bytes keep their order", async () => {
  const echo = echoServer();
  const proxy = startLatencyProxy(echo.port, 30);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  try {
    const t0 = performance.now();
    await conn.write(new Uint8Array([1]));
    await readExactly(conn, 1);
    const rtt = performance.now() - t0;
    assert.ok(rtt >= 29, `round trip ${rtt.toFixed(1)} ms < 30 ms`);
    assert.ok(rtt < 200, `round trip ${rtt.toFixed(1)} ms`);

    // Many small writes in a row, the delay lowered in the middle: the echo keeps their order.
    const sent: number[] = [];
    for (let i = 0; i < 200; i++) {
      if (i === 100) proxy.rttMs = 0;
      sent.push(i);
      await conn.write(new Uint8Array([i]));
    }
    assert.deepEqual([...await readExactly(conn, 200)], sent);
  } finally {
    conn.close();
    proxy.close();
    echo.stop();
  }
});

Deno.test("latency proxy: no throughput cap, a large burst arrives one RTT later", async () => {
  const echo = echoServer();
  const proxy = startLatencyProxy(echo.port, 20);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  try {
    const payload = new Uint8Array(4 * 1024 * 1024).map((_, i) => i % 251);
    const t0 = performance.now();
    const writing = (async () => {
      for (let offset = 0; offset < payload.length;) {
        offset += await conn.write(payload.subarray(offset));
      }
    })();
    const echoed = await readExactly(conn, payload.length);
    await writing;
    const elapsed = performance.now() - t0;
    assert.deepEqual(echoed, payload);
    assert.ok(elapsed < 2000, `4 MiB took ${elapsed.toFixed(0)} ms through a 20 ms link`);
  } finally {
    conn.close();
    proxy.close();
    echo.stop();
  }
});
