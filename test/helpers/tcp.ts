import { createConnection, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  /** host:port of the proxy, to put in a URL in place of the target's. */
  address: string;
  port: number;
  /**
   * The dependency hangs: connections are accepted, nothing is forwarded either way, and no answer
   * ever comes (what a server stuck in GC, a full disk or a half-open network path looks like).
   */
  freeze(): void;
  thaw(): void;
  stop(): Promise<void>;
}

/**
 * A TCP proxy to `target` (host:port) that can be frozen; without a target it is frozen for good:
 * a server that accepts connections and never answers.
 */
export async function startTcpProxy(target?: string): Promise<TcpProxy> {
  let frozen = !target;
  const sockets = new Set<Socket>();
  const pipes: Array<{ from: Socket; to: Socket }> = [];
  const apply = ({ from, to }: { from: Socket; to: Socket }) => {
    if (frozen) {
      // Unpiped and paused, the bytes wait in the socket's buffer until a thaw (none are lost).
      from.unpipe(to);
      from.pause();
    } else {
      from.pipe(to);
    }
  };
  const set = (freeze: boolean) => {
    if (frozen === freeze) return;
    frozen = freeze;
    for (const pipe of pipes) apply(pipe);
  };
  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    if (!target) return;
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    const upstream = createConnection({ host, port });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    const pair = [
      { from: client, to: upstream },
      { from: upstream, to: client },
    ];
    pipes.push(...pair);
    for (const pipe of pair) apply(pipe);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${port}`,
    port,
    freeze: () => set(true),
    thaw: () => set(false),
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
