import { readFileSync } from 'node:fs';
import { beforeAll, expect, it } from 'vitest';
import { publishServingModel, readServingPointer, ServingModelCache } from '#prediction/serving';
import { putObject, sha256Hex } from '#aws/s3';
import { HttpError } from '#http/errors';
import { buildLinearRegressor } from '../../scripts/onnx-builder.ts';
import { SAMPLE_MODEL } from '../../scripts/local/stack.ts';
import { SEED_EXAMPLE } from '../helpers/fixtures.ts';

const row = { ...SEED_EXAMPLE, bio: 1, contatos: 1 };

async function publish(modelName: string, version: string, bytes: Uint8Array) {
  const key = `models/${modelName}/v${version}/${modelName}_v${version}_test.onnx`;
  await putObject(key, bytes);
  await publishServingModel({
    model_name: modelName,
    version,
    s3_key: key,
    sha256: sha256Hex(bytes),
    run_id: null,
    promoted_at: new Date().toISOString(),
  });
}

beforeAll(async () => {
  await publish('served', '1', readFileSync(SAMPLE_MODEL));
});

it('answers 503 with how to upload a model when none is serving', async () => {
  const cache = new ServingModelCache('never-uploaded', 1_000);
  const error = await cache.get().catch((e: unknown) => e);
  expect(error).toBeInstanceOf(HttpError);
  expect((error as HttpError).statusCode).toBe(503);
  expect((error as HttpError).message).toMatch(/\/model\/upload.*incoming\/never-uploaded\//);
});

it('loads the serving model once and keeps it', async () => {
  const cache = new ServingModelCache('served', 60_000);
  const first = await cache.get();
  expect(first.pointer.version).toBe('1');
  expect(await first.model.predict([row])).toEqual([82.5]);
  expect(await cache.get()).toBe(first);
});

it('picks up a newly promoted model after the refresh interval, without a restart', async () => {
  const cache = new ServingModelCache('promoted', 200);
  await publish('promoted', '1', readFileSync(SAMPLE_MODEL));
  expect((await cache.get()).pointer.version).toBe('1');

  const doubled = buildLinearRegressor({ coefficients: [8, 3, 5, 5, 5, 0.5, 6, 6], intercept: 4 });
  await publish('promoted', '2', doubled);
  // Within the interval the warm container keeps its model...
  expect((await cache.get()).pointer.version).toBe('1');
  await new Promise((r) => setTimeout(r, 250));
  // ...then the first request after it starts the reload, and the next ones get the new model.
  await cache.get();
  await new Promise((r) => setTimeout(r, 100));
  const current = await cache.get();
  expect(current.pointer.version).toBe('2');
  expect(await current.model.predict([row])).toEqual([165]);
  expect((await readServingPointer('promoted'))?.pointer.version).toBe('2');
});

it('keeps serving the last model when the new one cannot be loaded', async () => {
  const cache = new ServingModelCache('sticky', 100);
  await publish('sticky', '1', readFileSync(SAMPLE_MODEL));
  await cache.get();
  await publish('sticky', '2', new TextEncoder().encode('not a model'));
  await new Promise((r) => setTimeout(r, 150));
  await cache.get();
  await new Promise((r) => setTimeout(r, 50));
  expect((await cache.get()).pointer.version).toBe('1');
});

it('refuses a model file that is not the one the pointer names (overwritten since its promotion)', async () => {
  await publish('swapped', '1', readFileSync(SAMPLE_MODEL));
  const pointer = (await readServingPointer('swapped'))!.pointer;
  // A valid model, written over the promoted file's key.
  await putObject(pointer.s3_key, buildLinearRegressor({ coefficients: [8, 3, 5, 5, 5, 0.5, 6, 6], intercept: 4 }));
  const cold = new ServingModelCache('swapped', 100);
  const error = await cold.get().catch((e: unknown) => e);
  expect((error as HttpError).statusCode).toBe(503);
  expect(((error as HttpError).cause as Error).message).toMatch(
    /holds a file with sha256 [0-9a-f]{64}, not the [0-9a-f]{64} the serving pointer names/,
  );
});
