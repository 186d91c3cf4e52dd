import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UnprocessableError } from '#http/errors';
import { OnnxModel, inspectModel } from '#model/onnx';
import { validateModelFile } from '#model/validation';
import { FEATURES, featureRow, type FeatureName, type FeatureRow } from '#prediction/features';
import { SEED_EXAMPLE as SEED_REQUEST } from '../helpers/fixtures.ts';
import {
  SAMPLE_MODEL_COEFFICIENTS,
  SAMPLE_MODEL_INTERCEPT,
  SAMPLE_MODEL_PATH,
  buildSampleModel,
} from '../../scripts/build-sample-model';
import {
  buildFeatureSumModel,
  buildInt64InputModel,
  buildLinearRegressor,
  buildStringOutputModel,
  buildTreeEnsembleRegressor,
  buildTwoInputModel,
} from '../../scripts/onnx-builder';

const sampleBytes = readFileSync(new URL(`../../${SAMPLE_MODEL_PATH}`, import.meta.url));

/** The guide's example request, booleans as 0/1. */
const SEED_EXAMPLE: FeatureRow = featureRow(SEED_REQUEST);
const EMPTY: FeatureRow = Object.fromEntries(FEATURES.map((f) => [f, 0])) as FeatureRow;

/** Deterministic, varied rows (no Math.random: a failure must reproduce). */
function rows(count: number): FeatureRow[] {
  return Array.from({ length: count }, (_, i) => ({
    projetos_min: i % 11,
    habilidades_min: (i * 7) % 31,
    kw_contexto: (i * 3) % 13,
    kw_processo: (i * 5) % 9,
    kw_resultado: (i * 2) % 7,
    consistencia_visual_score: (i * 37) % 101,
    bio: i % 2,
    contatos: (i >> 1) % 2,
  }));
}

const sampleFormula = (row: FeatureRow) =>
  FEATURES.reduce((sum, f) => sum + SAMPLE_MODEL_COEFFICIENTS[f] * row[f], SAMPLE_MODEL_INTERCEPT);

async function expectRefusal(bytes: Uint8Array, message: RegExp) {
  const error = await OnnxModel.load(bytes).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UnprocessableError);
  expect((error as Error).message).toMatch(message);
}

const COEFFICIENTS = FEATURES.map((f) => SAMPLE_MODEL_COEFFICIENTS[f]);

describe('sample model', () => {
  it('is what build-sample-model writes, byte for byte', () => {
    expect(Buffer.from(buildSampleModel()).equals(sampleBytes)).toBe(true);
  });

  it('is described as a LinearRegression over the canonical features', () => {
    expect(inspectModel(sampleBytes)).toMatchObject({
      algorithm: 'LinearRegression',
      features: [...FEATURES],
      inputName: 'float_input',
      outputName: 'variable',
      opsetVersion: 13,
    });
  });

  it('scores the seed example 82.5, an empty portfolio 2', async () => {
    const model = await OnnxModel.load(sampleBytes);
    expect(await model.predict([SEED_EXAMPLE, EMPTY])).toEqual([82.5, 2]);
  });

  it('predicts the documented linear formula', async () => {
    const model = await OnnxModel.load(sampleBytes);
    const input = rows(50);
    const predictions = await model.predict(input);
    for (const [i, p] of predictions.entries()) expect(p).toBeCloseTo(sampleFormula(input[i]!), 4);
  });

  it('returns one number per row for a batch of 1,000', async () => {
    const model = await OnnxModel.load(sampleBytes);
    const input = rows(1000);
    const predictions = await model.predict(input);
    expect(predictions).toHaveLength(1000);
    expect(predictions[999]).toBeCloseTo(sampleFormula(input[999]!), 4);
  });

  it('returns nothing for no rows', async () => {
    const model = await OnnxModel.load(sampleBytes);
    expect(await model.predict([])).toEqual([]);
  });
});

describe('feature order', () => {
  const reversed = [...FEATURES].reverse() as FeatureName[];

  it('follows the metadata: permuted columns with permuted coefficients predict the same', async () => {
    const permuted = await OnnxModel.load(
      buildLinearRegressor({
        coefficients: reversed.map((f) => SAMPLE_MODEL_COEFFICIENTS[f]),
        intercept: SAMPLE_MODEL_INTERCEPT,
        features: reversed,
      }),
    );
    const canonical = await OnnxModel.load(sampleBytes);
    expect(permuted.description.features).toEqual(reversed);
    expect(await permuted.predict(rows(20))).toEqual(await canonical.predict(rows(20)));
  });

  it('accepts the metadata as a JSON array', () => {
    const bytes = buildLinearRegressor({
      coefficients: COEFFICIENTS,
      intercept: 0,
      metadata: { features: JSON.stringify(reversed) },
    });
    expect(inspectModel(bytes).features).toEqual(reversed);
  });

  it('is canonical without metadata, and the algorithm comes from the operator', () => {
    const bytes = buildLinearRegressor({ coefficients: COEFFICIENTS, intercept: 0, useMlOp: false });
    expect(inspectModel(bytes)).toMatchObject({ features: [...FEATURES], algorithm: 'LinearModel' });
  });
});

describe('accepted variants', () => {
  it('runs MatMul + Add like the LinearRegressor', async () => {
    const model = await OnnxModel.load(
      buildLinearRegressor({ coefficients: COEFFICIENTS, intercept: SAMPLE_MODEL_INTERCEPT, useMlOp: false }),
    );
    expect(await model.predict([SEED_EXAMPLE])).toEqual([82.5]);
  });

  it('accepts a symbolic width that the LinearRegressor coefficients fix at 8', async () => {
    const model = await OnnxModel.load(
      buildLinearRegressor({ coefficients: COEFFICIENTS, intercept: 2, symbolicWidth: true }),
    );
    expect(await model.predict([SEED_EXAMPLE])).toEqual([82.5]);
  });

  it('accepts a symbolic width that the MatMul weight fixes at 8', async () => {
    const model = await OnnxModel.load(
      buildLinearRegressor({ coefficients: COEFFICIENTS, intercept: 2, symbolicWidth: true, useMlOp: false }),
    );
    expect(await model.predict([SEED_EXAMPLE])).toEqual([82.5]);
  });

  it('runs a TreeEnsembleRegressor over 8 features', async () => {
    const model = await OnnxModel.load(
      buildTreeEnsembleRegressor({
        stumps: [
          { feature: 5, threshold: 50, whenLessOrEqual: 20, whenGreater: 70 }, // consistencia_visual_score
          { feature: 0, threshold: 2, whenLessOrEqual: 0, whenGreater: 10 }, // projetos_min
        ],
      }),
    );
    expect(model.description.algorithm).toBe('TreeEnsembleRegressor');
    expect(await model.predict([SEED_EXAMPLE, EMPTY])).toEqual([80, 20]);
  });
});

describe('refusals', () => {
  it('refuses bytes that are not ONNX', async () => {
    await expectRefusal(new TextEncoder().encode('this is not an onnx model, just text'), /not a valid ONNX model/);
  });

  it('refuses a truncated model file', async () => {
    await expectRefusal(sampleBytes.subarray(0, Math.floor(sampleBytes.length / 2)), /not a valid ONNX model/);
  });

  it('refuses 5 features', async () => {
    await expectRefusal(
      buildLinearRegressor({ coefficients: [1, 1, 1, 1, 1], intercept: 0 }),
      /input has 5 features; HubFólio models take 8: projetos_min, /,
    );
  });

  it('refuses 9 features', async () => {
    await expectRefusal(
      buildLinearRegressor({ coefficients: [...COEFFICIENTS, 1], intercept: 0 }),
      /input has 9 features/,
    );
  });

  it('refuses 9 features hidden behind a symbolic width', async () => {
    await expectRefusal(
      buildLinearRegressor({ coefficients: [...COEFFICIENTS, 1], intercept: 0, symbolicWidth: true }),
      /input has 9 features/,
    );
  });

  it('refuses a symbolic width the graph does not fix', async () => {
    await expectRefusal(buildFeatureSumModel({ symbolicWidth: true }), /symbolic width \("F"\).*fixed width of 8/);
  });

  it('refuses a tree ensemble with a symbolic width', async () => {
    const stumps = [{ feature: 0, threshold: 1, whenLessOrEqual: 0, whenGreater: 1 }];
    await expectRefusal(buildTreeEnsembleRegressor({ stumps, symbolicWidth: true }), /symbolic width/);
  });

  it('refuses a fixed batch size', async () => {
    await expectRefusal(
      buildLinearRegressor({ coefficients: COEFFICIENTS, intercept: 0, batchSize: 1 }),
      /fixed batch size of 1; .*first dimension must be symbolic/,
    );
  });

  it('refuses a string output', async () => {
    await expectRefusal(buildStringOutputModel(), /output "label" is string; .*return a number per row/);
  });

  it('refuses two inputs', async () => {
    await expectRefusal(
      buildTwoInputModel(),
      /model has 2 inputs \(float_input, offset\); HubFólio models take exactly one/,
    );
  });

  it('refuses an int64 input', async () => {
    await expectRefusal(buildInt64InputModel(), /input "int_input" is int64; HubFólio models take float32/);
  });

  it('refuses features metadata naming an unknown feature', async () => {
    const features = [...FEATURES.slice(0, 7), 'idade'];
    await expectRefusal(
      buildLinearRegressor({ coefficients: COEFFICIENTS, intercept: 0, features }),
      /"features".*unknown: idade; missing: contatos/,
    );
  });

  it('refuses features metadata listing a feature twice', async () => {
    const features = [...FEATURES.slice(0, 7), 'bio'];
    await expectRefusal(
      buildLinearRegressor({ coefficients: COEFFICIENTS, intercept: 0, features }),
      /"features".*missing: contatos/,
    );
  });

  it('refuses features metadata that is broken JSON', async () => {
    await expectRefusal(
      buildLinearRegressor({ coefficients: COEFFICIENTS, intercept: 0, metadata: { features: '["projetos_min",' } }),
      /"features" is not a valid JSON array/,
    );
  });
});

describe('scores across the documented feature ranges', () => {
  const refusal = (bytes: Uint8Array) =>
    validateModelFile(bytes, 'model.onnx').then(
      () => expect.unreachable('the model was accepted'),
      (error: unknown) => error as UnprocessableError,
    );

  it('accepts the sample model', async () => {
    expect((await validateModelFile(sampleBytes, 'sample.onnx')).features).toEqual([...FEATURES]);
  });

  it('refuses a linear model that overflows float32 for large counts, naming the portfolio', async () => {
    // Finite for a row of zeros (the trial run), Infinity from projetos_min = 2 on.
    const error = await refusal(buildLinearRegressor({ coefficients: [3e38, ...COEFFICIENTS.slice(1)], intercept: 0 }));
    expect(error).toBeInstanceOf(UnprocessableError);
    expect(error.message).toMatch(/model\.onnx returns Infinity for the portfolio projetos_min=100000, /);
    expect(error.message).toMatch(/finite number for every portfolio in the documented ranges \(counts 0-100000/);
  });

  it('refuses a tree whose leaves add up to Infinity only where two splits meet', async () => {
    const stumps = [
      { feature: 1, threshold: 7, whenLessOrEqual: 0, whenGreater: 3e38 },
      { feature: 6, threshold: 0.5, whenLessOrEqual: 0, whenGreater: 3e38 },
    ];
    const error = await refusal(buildTreeEnsembleRegressor({ stumps }));
    expect(error.message).toMatch(/returns Infinity for the portfolio .*bio=1/);
  });
});
