import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/**
 * How one of the stack's child processes ends: `ended` whenever it does; `died`, saying how, only
 * when it ends before `expectExit()` was called, that is a part that stopped by itself (never
 * resolves otherwise, so that `Promise.race` over the parts names the first that died).
 */
export function watchExit(child: ChildProcess, name: string, detail: () => string = () => '') {
  let expected = false;
  const ended = once(child, 'exit') as Promise<[code: number | null, signal: NodeJS.Signals | null]>;
  const died = ended.then(([code, signal]) =>
    expected
      ? new Promise<string>(() => {})
      : `${name} exited ${signal ? `on ${signal}` : `with code ${code}`}${detail()}`,
  );
  return {
    ended,
    died,
    expectExit: () => {
      expected = true;
    },
  };
}
