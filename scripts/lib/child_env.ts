/**
 * The environment a child Deno process needs to find its cache, and nothing else: local servers
 * and function instances are started with `clearEnv` plus exactly the variables they are given.
 */

/** HOME, PATH and Deno's cache locations of this process, where set. */
export function childProcessEnv(): Record<string, string> {
  const keep: Record<string, string> = {};
  for (const name of ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) keep[name] = value;
  }
  return keep;
}
