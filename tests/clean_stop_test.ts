/**
 * Clean starts and stops: a started PostgreSQL accepts logins at once (even when it had to
 * recover from a crash first) and a started Redis answers PING; SIGINT or SIGTERM sent to the
 * process of `deno task dev`, `deno task test` or `deno task bench` (the Deno process itself, as a
 * supervisor or an editor's stop button sends it) stops every server and instance it started.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { freePort } from "../scripts/lib/ports.ts";
import { startPostgres } from "../scripts/lib/postgres_server.ts";
import { readProcess } from "../scripts/lib/process_tree.ts";
import { redisPing } from "../scripts/lib/readiness.ts";
import { startRedis } from "../scripts/lib/redis_server.ts";
import {
  descendantsMatching,
  exitOf,
  killLeftovers,
  listening,
  startDenoCommand,
  stillRunning,
  until,
} from "./support/processes.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function tempDir(prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  // PostgreSQL may run as another user (under root): it must reach its data directory.
  await Deno.chmod(dir, 0o755);
  return dir;
}

Deno.test(
  "readiness: after a crash restart PostgreSQL takes logins the moment start resolves",
  opts,
  async () => {
    const dir = await tempDir("wa-ready-");
    const pg = await startPostgres({
      dataDir: `${dir}/pgdata`,
      port: freePort(),
      logFile: `${dir}/pg.log`,
    });
    try {
      for (let round = 0; round < 3; round++) {
        const writer = postgres(pg.url, { max: 1, onnotice: () => {} });
        await writer`create table if not exists ready_probe (n int)`;
        await writer`insert into ready_probe select generate_series(1, 50000)`;
        await writer.end();
        // An immediate shutdown (as a crash): the next start replays the WAL while its port is open.
        const postmaster = Number(
          (await Deno.readTextFile(`${dir}/pgdata/postmaster.pid`)).split("\n")[0],
        );
        Deno.kill(postmaster, "SIGQUIT");
        await until(() => readProcess(postmaster) === undefined, "postmaster exit", 30_000);
        await new Promise((r) => setTimeout(r, 50));
        await pg.start();
        const logins = await Promise.allSettled(
          Array.from({ length: 10 }, async () => {
            const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
            try {
              return (await sql<{ n: number }[]>`select count(*)::int as n from ready_probe`)[0].n;
            } finally {
              await sql.end();
            }
          }),
        );
        const failed = logins.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
        assert.deepEqual(
          failed.map((r) => String(r.reason?.message ?? r.reason)),
          [],
          `round ${round}`,
        );
      }
    } finally {
      await pg.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

Deno.test("readiness: a started Redis answers PING at once", opts, async () => {
  const redis = await startRedis({ port: freePort() });
  try {
    assert.equal(await redisPing(redis.port), true);
  } finally {
    await redis.stop();
  }
  assert.equal(await listening(redis.port), false);
});

// SIGINT to `deno task dev` (what `./scripts/dev.sh` becomes: it execs all the way), which passes
// it on to scripts/dev.ts; SIGTERM to scripts/dev.ts itself.
const DEV_COMMANDS = {
  SIGINT: { label: "deno task dev", args: ["task", "dev", "--with-redis"] },
  SIGTERM: { label: "scripts/dev.ts", args: ["run", "-A", "scripts/dev.ts", "--with-redis"] },
};

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(
    `${DEV_COMMANDS[signal].label}: ${signal} to its process stops its servers and the runner`,
    opts,
    async () => {
      const state = await tempDir("wa-dev-stop-");
      const pgPort = freePort();
      const port = freePort();
      const dev = startDenoCommand(DEV_COMMANDS[signal].args, {
        LOCAL_STATE_DIR: state,
        PG_PORT: String(pgPort),
        PORT: String(port),
        LOG_LEVEL: "error",
      });
      let started: ReturnType<typeof descendantsMatching> = [];
      try {
        const [, redisPort, upstashPort] = await dev.waitForOutput(
          /Redis on redis:\/\/127\.0\.0\.1:(\d+), Upstash-compatible endpoint on http:\/\/127\.0\.0\.1:(\d+)/,
        );
        await until(async () => {
          try {
            const r = await fetch(
              `http://127.0.0.1:${port}/functions/v1/whatsapp-membership-webhook/health`,
            );
            await r.body?.cancel();
            return r.ok;
          } catch {
            return false;
          }
        }, "the functions answer");
        started = descendantsMatching(dev.child.pid, /./);
        assert.ok(started.some((p) => p.cmdline.includes(`${state}/postgres`)), "PostgreSQL runs");
        assert.ok(started.some((p) => p.cmdline.includes("redis-server")), "Redis runs");

        Deno.kill(dev.child.pid, signal);
        const status = await exitOf(dev);
        assert.ok(status, `dev.ts exited on ${signal}:\n${dev.output()}`);
        for (const p of [pgPort, Number(redisPort), Number(upstashPort), port]) {
          assert.equal(await listening(p), false, `port ${p} closed`);
        }
        assert.deepEqual(stillRunning(started).map((p) => p.cmdline), [], "nothing left running");
      } finally {
        await exitOf(dev, 1);
        killLeftovers(started);
        await Deno.remove(state, { recursive: true }).catch(() => {});
      }
    },
  );
}

Deno.test(
  "deno task test: SIGTERM to its process stops its servers and the tests' own",
  opts,
  async () => {
    const work = await tempDir("wa-test-stop-");
    const holdFile = `${work}/hold.json`;
    const run = startDenoCommand(
      ["run", "-A", "scripts/test.ts", "tests/fixtures/hold_servers.ts"],
      {
        HOLD_FILE: holdFile,
      },
    );
    let started: ReturnType<typeof descendantsMatching> = [];
    try {
      await until(
        () => Deno.stat(holdFile).then(() => true, () => false),
        () => `the held servers (output so far:\n${run.output()})`,
        240_000,
      );
      const held = JSON.parse(await Deno.readTextFile(holdFile));
      started = descendantsMatching(run.child.pid, /./);
      const ports = [
        Number(new URL(held.databaseUrl).port),
        Number(new URL(held.redisUrl).port),
        held.ownRedisPort,
        Number(new URL(held.runnerUrl).port),
      ];
      for (const p of ports) assert.equal(await listening(p), true, `port ${p} open before`);

      Deno.kill(run.child.pid, "SIGTERM");
      const status = await exitOf(run);
      assert.ok(status, "test.ts exited");
      assert.notEqual(status.code, 0);
      for (const p of ports) assert.equal(await listening(p), false, `port ${p} closed`);
      assert.deepEqual(stillRunning(started).map((p) => p.cmdline), [], "nothing left running");
    } finally {
      await exitOf(run, 1);
      killLeftovers(started);
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
);

Deno.test(
  "deno task bench: SIGINT to its process stops its PostgreSQL, Redis and instances",
  opts,
  async () => {
    const bench = startDenoCommand(["run", "-A", "bench/run.ts", "--quick", "--no-write"], {});
    let started: ReturnType<typeof descendantsMatching> = [];
    try {
      await until(
        () => descendantsMatching(bench.child.pid, /instance_runner\.ts/).length > 0,
        () => `a bench instance runs (output so far:\n${bench.output()})`,
      );
      started = descendantsMatching(bench.child.pid, /./);
      assert.ok(started.some((p) => /postgres -D/.test(p.cmdline)), "PostgreSQL runs");
      assert.ok(started.some((p) => p.cmdline.includes("redis-server")), "Redis runs");

      Deno.kill(bench.child.pid, "SIGINT");
      const status = await exitOf(bench);
      assert.ok(status, "the bench exited");
      assert.deepEqual(stillRunning(started).map((p) => p.cmdline), [], "nothing left running");
    } finally {
      await exitOf(bench, 1);
      killLeftovers(started);
    }
  },
);

/** Runs scripts/dev.sh with only the tools bootstrap.sh needs on PATH (no redis-server). */
async function devShWithoutRedis(args: string[]): Promise<{ aptGet: string; output: string }> {
  const bin = await Deno.makeTempDir({ prefix: "wa-devsh-" });
  try {
    for (const tool of ["bash", "dirname", "ls", "sort", "tail"]) {
      const found = await new Deno.Command("bash", { args: ["-c", `command -v ${tool}`] }).output();
      await Deno.symlink(new TextDecoder().decode(found.stdout).trim(), `${bin}/${tool}`);
    }
    // As root with apt-get, which records what it is asked for and installs nothing.
    await Deno.writeTextFile(`${bin}/id`, "#!/bin/sh\necho 0\n");
    await Deno.writeTextFile(
      `${bin}/apt-get`,
      `#!/bin/sh\necho "$*" >> ${bin}/apt-get.log\n[ "$1" = update ] && exit 0\nexit 1\n`,
    );
    await Deno.chmod(`${bin}/id`, 0o755);
    await Deno.chmod(`${bin}/apt-get`, 0o755);
    const out = await new Deno.Command(`${bin}/bash`, {
      args: ["scripts/dev.sh", ...args],
      cwd: new URL("../", import.meta.url).pathname,
      clearEnv: true,
      env: {
        PATH: bin,
        HOME: Deno.env.get("HOME") ?? "/tmp",
        ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
        // Should the stack start after all, it stops at once: no database there.
        SUPABASE_DB_URL: "postgres://postgres@127.0.0.1:1/none",
        PORT: String(freePort()),
      },
      stdin: "null",
    }).output();
    const aptGet = await Deno.readTextFile(`${bin}/apt-get.log`).catch(() => "");
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    return { aptGet, output: decode(out.stdout) + decode(out.stderr) };
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
}

Deno.test(
  "dev.sh --with-redis installs redis-server when missing (and only with it)",
  opts,
  async () => {
    const withRedis = await devShWithoutRedis(["--with-redis"]);
    assert.match(withRedis.aptGet, /^install .*\bredis-server\b/m, withRedis.output);
    const without = await devShWithoutRedis([]);
    assert.doesNotMatch(without.aptGet, /redis-server/, without.output);
  },
);
