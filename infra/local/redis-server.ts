import { connect } from "node:net";
import { GiveUpWaiting, startProcess, waitFor, type ManagedProcess } from "./child-process.ts";

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

/**
 * A private redis-server with no persistence: Redis holds only leases and
 * counters that expire or can be rebuilt, so there is nothing to keep.
 */
export async function startRedisServer(options: { port: number; binary?: string }): Promise<RedisServer> {
  const { port, binary = "redis-server" } = options;
  const process = startProcess(
    binary,
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no"],
    { name: "redis" },
  );
  await waitFor(`redis-server on port ${port}`, async () => {
    if (process.child.exitCode !== null) throw new GiveUpWaiting(`redis-server exited with ${process.child.exitCode}`);
    return ping(port);
  });
  return { url: `redis://127.0.0.1:${port}`, port, process, stop: () => process.stop() };
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => { socket.destroy(); resolve(data.toString().startsWith("+PONG")); });
    socket.once("error", () => resolve(false));
  });
}
