import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { randomBytes } from 'node:crypto';
import { build } from 'esbuild';

/**
 * The functions as the local stack serves them: compiled by esbuild into ES modules, one per
 * handler with the shared code in common chunks, which serverless-offline imports as plain
 * JavaScript (serverless.yml's custom.serverless-offline.location points it here).
 *
 * Why not the .ts files through tsx: serverless-offline's in-process runner resolves the handler
 * again on every invocation (file checks, the nearest package.json, then import()), and with tsx's
 * loader registered that import() is a round trip to the loader's thread: about 0.6–1 ms of CPU per
 * request on these machines, against 0.05 ms for a plain module. Compiling up front also moves
 * TypeScript's transform out of the first requests and reports a syntax error at start.
 *
 * The output lives under the repository's .local/ (not a temp dir) so that the bundles' imports of
 * packages resolve to its node_modules. Each stack gets a folder of its own, removed at stop;
 * folders left by stacks that were killed are removed by the next build.
 */
export async function buildHandlers(root: string): Promise<{ location: string; remove(): Promise<void> }> {
  const parent = join(root, '.local', 'handlers');
  mkdirSync(parent, { recursive: true });
  for (const name of readdirSync(parent)) {
    const pid = Number(name.split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && !isRunning(pid))
      rmSync(join(parent, name), { recursive: true, force: true });
  }
  const outdir = join(parent, `${process.pid}-${randomBytes(4).toString('hex')}`);
  const functions = readdirSync(join(root, 'functions'), { withFileTypes: true }).filter((e) => e.isDirectory());
  await build({
    absWorkingDir: root,
    entryPoints: functions.map((fn) => `functions/${fn.name}/handler.ts`),
    outdir,
    outbase: root,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: `node${process.versions.node.split('.')[0]}`,
    // Packages stay in node_modules, loaded once for every function, as tsx loaded them.
    packages: 'external',
    chunkNames: 'chunks/[name]-[hash]',
    // Stack traces point into the TypeScript sources (serverless-offline runs with --enable-source-maps).
    sourcemap: 'linked',
    sourcesContent: false,
    logLevel: 'silent',
  });
  // ES modules by their own package.json, the first one serverless-offline's per-request lookup finds.
  writeFileSync(join(outdir, 'package.json'), '{ "type": "module" }\n');
  return {
    location: relative(root, outdir),
    remove: async () => rmSync(outdir, { recursive: true, force: true }),
  };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
