/**
 * `npm run build:layer`: the onnxruntime-node Lambda layer in layers/onnxruntime/nodejs/node_modules,
 * with only what runs on Lambda x86_64: the JS API, onnxruntime-common and the linux-x64 binaries
 * (~46 MB instead of the ~290 MB npm package that ships every OS). serverless.yml marks the package
 * external, so functions require() it from the layer (/opt/nodejs/node_modules).
 * `npm run build:layer -- --dir DIR` builds it in DIR instead of layers/onnxruntime (the packaged-function
 * tests unpack it as /opt).
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { parseScriptArgs } from './usage.ts';

const values = parseScriptArgs({
  command: 'npm run build:layer',
  description:
    'Builds the onnxruntime-node Lambda layer in layers/onnxruntime/nodejs/node_modules: the JS API and the\n' +
    'linux-x64 binaries only. `npm run deploy` runs it first.',
  options: {
    dir: { type: 'string', valueName: 'DIR', description: 'build it in DIR instead (DIR/nodejs/node_modules)' },
  },
});

const ROOT = resolve(import.meta.dirname, '..');
const layerDir = resolve(values.dir ?? resolve(ROOT, 'layers/onnxruntime'));
const target = join(layerDir, 'nodejs/node_modules');
const require = createRequire(import.meta.url);
const packageDir = (name: string) => dirname(require.resolve(`${name}/package.json`));

rmSync(join(layerDir, 'nodejs'), { recursive: true, force: true });
const ort = packageDir('onnxruntime-node');
const { version } = JSON.parse(readFileSync(join(ort, 'package.json'), 'utf8')) as { version: string };
for (const part of ['package.json', 'LICENSE', 'dist', 'lib', 'bin/napi-v6/linux/x64']) {
  try {
    mkdirSync(dirname(join(target, 'onnxruntime-node', part)), { recursive: true });
    cpSync(join(ort, part), join(target, 'onnxruntime-node', part), { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || part !== 'LICENSE') throw error;
  }
}
// onnxruntime-common exports no package.json: find it beside onnxruntime-node (hoisted) or inside it.
const common = [join(ort, 'node_modules/onnxruntime-common'), join(dirname(ort), 'onnxruntime-common')].find((dir) =>
  existsSync(dir),
);
if (!common) throw new Error('onnxruntime-common is not installed; run npm ci');
cpSync(common, join(target, 'onnxruntime-common'), { recursive: true });
console.log(`layer: onnxruntime-node ${version} (linux-x64) in ${target}`);
