// The processes the Node suites and benchmarks drive: semcached started from a TOML file (its
// port read from the port file it writes once listening) and a Redis 8 server on a free port,
// both stopped with SIGTERM. Node built-ins only, so every package directory can import it.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { join } from "node:path";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const freePort = () => new Promise((resolve) => {
  const s = createServer();
  s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

const reachable = (port) => new Promise((resolve) => {
  const c = connect(port, "127.0.0.1", () => { c.destroy(); resolve(true); });
  c.on("error", () => resolve(false));
});

// A Redis without persistence, its working files in `dir`.
export async function startRedis(binary, dir) {
  const port = await freePort();
  const child = spawn(binary, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                               "--dir", dir], { stdio: "ignore" });
  for (let i = 0; i < 200 && !(await reachable(port)); i++) await sleep(25);
  return { child, port };
}

// The [server] table every run uses: any free port, written to a file in `dir`, 2 threads.
export const serverTable = (dir) => `[server]
port = 0
port_file = "${join(dir, "port")}"
threads = 2
`;

// `toml` is written to dir/semcached.toml; data goes to dir/data.
export async function startSemcached(binary, dir, toml, { env = process.env, stdout = "inherit" } = {}) {
  writeFileSync(join(dir, "semcached.toml"), toml);
  const child = spawn(binary, ["serve", "--config", join(dir, "semcached.toml"), "--data-dir", join(dir, "data")],
                      { stdio: ["ignore", stdout, "inherit"], env });
  for (let i = 0; i < 500 && !existsSync(join(dir, "port")); i++) await sleep(20);
  const port = Number(readFileSync(join(dir, "port"), "utf8").trim());
  return { child, port, url: `http://127.0.0.1:${port}` };
}

// SIGTERM, then waits for the exit; a process already gone is left alone.
export async function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.on("exit", r));
  child.kill("SIGTERM");
  await exited;
}
