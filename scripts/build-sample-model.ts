/**
 * Writes models/hubfolio-sample.onnx (`npm run build:sample-model`): the model the suite serves
 * before anyone uploads a trained one, and the model the tests and the benchmark use.
 *
 * It is a linear regression written down rather than trained, stored the way skl2onnx stores
 * sklearn's LinearRegression (one ai.onnx.ml LinearRegressor node, input "float_input" [N, 8],
 * output "variable" [N, 1]), so that its predictions are known exactly:
 *
 *   IQ = 2.0 + Σ coefficient × feature      (booleans as 0/1; not clipped — the caller clips)
 *
 *   feature                     coefficient   why
 *   projetos_min                4.0           each project shown
 *   habilidades_min             1.5           each skill listed
 *   kw_contexto                 2.5           each context keyword
 *   kw_processo                 2.5           each process keyword
 *   kw_resultado                2.5           each result keyword
 *   consistencia_visual_score   0.25          0-100 score → up to 25 points
 *   bio                         3.0           has a bio
 *   contatos                    3.0           has contacts
 *   (intercept)                 2.0
 *
 * The seed guide's example (3 projects, 10 skills, keywords 4/3/4, visual score 80, bio, contacts)
 * scores 12 + 15 + 10 + 7.5 + 10 + 20 + 3 + 3 + 2 = 82.5 ("Bom"); an empty portfolio scores 2;
 * a strong one (10 projects, 25 skills, 10 of each keyword, 100, bio, contacts) scores 183, above 100.
 * Every coefficient is exact in float32, so float32 inference reproduces these sums.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FEATURES, type FeatureName } from '#prediction/features';
import { buildLinearRegressor } from './onnx-builder';
import { parseScriptArgs } from './usage.ts';

export const SAMPLE_MODEL_COEFFICIENTS: Readonly<Record<FeatureName, number>> = {
  projetos_min: 4.0,
  habilidades_min: 1.5,
  kw_contexto: 2.5,
  kw_processo: 2.5,
  kw_resultado: 2.5,
  consistencia_visual_score: 0.25,
  bio: 3.0,
  contatos: 3.0,
};
export const SAMPLE_MODEL_INTERCEPT = 2.0;

/** Where the committed sample model lives, relative to the repository root. */
export const SAMPLE_MODEL_PATH = 'models/hubfolio-sample.onnx';

export function buildSampleModel(): Uint8Array {
  return buildLinearRegressor({
    coefficients: FEATURES.map((name) => SAMPLE_MODEL_COEFFICIENTS[name]),
    intercept: SAMPLE_MODEL_INTERCEPT,
    features: FEATURES,
    algorithm: 'LinearRegression',
  });
}

// Only write when run as a script: the tests import buildSampleModel to compare it with the committed file.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  parseScriptArgs({
    command: 'npm run build:sample-model',
    description: `Writes ${SAMPLE_MODEL_PATH}, the linear model served before any upload, from the coefficients in scripts/build-sample-model.ts.`,
  });
  const target = resolve(dirname(fileURLToPath(import.meta.url)), '..', SAMPLE_MODEL_PATH);
  mkdirSync(dirname(target), { recursive: true });
  const bytes = buildSampleModel();
  writeFileSync(target, bytes);
  console.log(`wrote ${SAMPLE_MODEL_PATH} (${bytes.length} bytes)`);
}
