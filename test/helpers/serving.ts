import { FEATURES, type FeatureRow } from '#prediction/features';
import type { ServingModelCache } from '#prediction/serving';

const ZEROS = Object.fromEntries(FEATURES.map((f) => [f, 0])) as FeatureRow;

/** Waits until a running predict function's cache serves `version`; answers its score for a row of zeros (its intercept). */
export async function servedVersion(cache: ServingModelCache, version: string): Promise<number> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const current = await cache.get();
    if (current.pointer.version === version) return (await current.model.predict([ZEROS]))[0]!;
    if (Date.now() > deadline) throw new Error(`still serving v${current.pointer.version}, expected v${version}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
