import { extname } from 'node:path';
import { PayloadTooLargeError, UnprocessableError, UnsupportedMediaTypeError } from '#http/errors';
import { OnnxModel, type ModelDescription } from '#model/onnx';
import {
  COUNT_FEATURES,
  FEATURES,
  FLAG_FEATURES,
  MAX_COUNT,
  MAX_SCORE,
  SCORE_FEATURE,
  type FeatureName,
  type FeatureRow,
} from '#prediction/features';

/**
 * What a model file must be before anything is stored or registered. Every refusal says what to
 * fix: a file of another format (a pickled scikit-learn model above all) is a 415 with how to
 * convert it; an ONNX file that is not a usable HubFólio model is a 422 (shared/model/onnx.ts).
 */

/** The largest file registered from the drop folder; far above any HubFólio model, well inside Lambda's memory. */
export const MAX_MODEL_BYTES = 100 * 1024 * 1024;

const CONVERSION_HINT =
  'Convert the trained model with skl2onnx: `from skl2onnx import to_onnx; ' +
  'onx = to_onnx(model, X[:1].astype(numpy.float32)); open("model.onnx", "wb").write(onx.SerializeToString())`, ' +
  `where X holds the ${FEATURES.length} columns in this order: ${FEATURES.join(', ')}. ` +
  'Then upload model.onnx (docs/model-workflow.md walks through it).';

interface ForeignFormat {
  name: string;
  extensions: string[];
  magic: (bytes: Uint8Array) => boolean;
}

const startsWith = (bytes: Uint8Array, ...prefix: number[]) => prefix.every((b, i) => bytes[i] === b);

/** Formats models are commonly saved in that are not ONNX, by extension or by their first bytes. */
const FOREIGN_FORMATS: ForeignFormat[] = [
  {
    name: 'a Python pickle (pickle/joblib, as scikit-learn models are usually saved)',
    extensions: ['.pkl', '.pickle', '.joblib', '.sav'],
    // Pickle protocols 2-5 start with PROTO (0x80) and the protocol number.
    magic: (b) => b[0] === 0x80 && b[1] !== undefined && b[1] >= 2 && b[1] <= 5,
  },
  {
    name: 'a zip archive (PyTorch, Keras or NumPy)',
    extensions: ['.pt', '.pth', '.keras', '.zip', '.npz'],
    magic: (b) => startsWith(b, 0x50, 0x4b, 0x03, 0x04),
  },
  { name: 'an HDF5 file (Keras)', extensions: ['.h5', '.hdf5'], magic: (b) => startsWith(b, 0x89, 0x48, 0x44, 0x46) },
  { name: 'a gzip file', extensions: ['.gz'], magic: (b) => startsWith(b, 0x1f, 0x8b) },
];

/** 415 when the file is recognisably another model format than ONNX. */
export function refuseForeignFormat(bytes: Uint8Array, fileName: string): void {
  const extension = extname(fileName).toLowerCase();
  const format = FOREIGN_FORMATS.find((f) => f.extensions.includes(extension) || f.magic(bytes));
  if (format) {
    throw new UnsupportedMediaTypeError(
      `${fileName} is ${format.name}, not an ONNX model; HubFólio serves ONNX models only. ${CONVERSION_HINT}`,
    );
  }
}

/** Values of each feature the probe rows take: both ends of its documented range and a spread between. */
const PROBE_LEVELS: Record<FeatureName, readonly number[]> = {
  ...(Object.fromEntries(
    COUNT_FEATURES.map((name) => [name, [0, 1, 2, 3, 5, 10, 20, 50, 100, 1_000, MAX_COUNT]]),
  ) as Record<(typeof COUNT_FEATURES)[number], number[]>),
  [SCORE_FEATURE]: [0, 12.5, 25, 50, 62.5, 75, 87.5, MAX_SCORE],
  ...(Object.fromEntries(FLAG_FEATURES.map((name) => [name, [0, 1]])) as Record<
    (typeof FLAG_FEATURES)[number],
    number[]
  >),
};

/** The lowest and the highest level of a feature: the ends of its documented range. */
const ends = (name: FeatureName) => [PROBE_LEVELS[name][0]!, PROBE_LEVELS[name].at(-1)!];

/**
 * Portfolios a model must score to a finite number before it may serve: every corner of the
 * documented ranges (2^8 rows: counts 0 or MAX_COUNT, score 0 or 100, flags 0 or 1), where a
 * linear model is largest, and 64 rows that mix the levels between, where a tree may split. A model
 * that overflows float32 there (a coefficient of 3e38 times a count of 2) would fail every such
 * prediction once promoted. Deterministic, so that a refusal reproduces.
 */
const PROBE_ROWS: FeatureRow[] = [
  ...Array.from(
    { length: 2 ** FEATURES.length },
    (_, corner) =>
      Object.fromEntries(FEATURES.map((name, bit) => [name, ends(name)[(corner >> bit) & 1]])) as FeatureRow,
  ),
  ...Array.from(
    { length: 64 },
    (_, i) =>
      Object.fromEntries(
        FEATURES.map((name, f) => {
          const levels = PROBE_LEVELS[name];
          // Strides of different primes per feature: the rows do not move in step.
          return [name, levels[(i * [1, 3, 5, 7, 11, 13, 17, 19][f]! + f) % levels.length]];
        }),
      ) as FeatureRow,
  ),
];

const describeRow = (row: FeatureRow) => FEATURES.map((name) => `${name}=${row[name]}`).join(', ');

/** 422 naming a portfolio in the documented ranges that the model does not score to a finite number. */
async function probe(model: OnnxModel, fileName: string): Promise<void> {
  let scores: number[];
  try {
    scores = await model.predict(PROBE_ROWS);
  } catch (error) {
    throw new UnprocessableError(
      `${fileName} fails on a batch of ${PROBE_ROWS.length} rows across the documented feature ranges (${(error as Error).message}).`,
      { cause: error },
    );
  }
  const bad = scores.findIndex((score) => !Number.isFinite(score));
  if (bad === -1) return;
  throw new UnprocessableError(
    `${fileName} returns ${scores[bad]} for the portfolio ${describeRow(PROBE_ROWS[bad]!)}; a HubFólio model must return a ` +
      `finite number for every portfolio in the documented ranges (counts 0-${MAX_COUNT}, ${SCORE_FEATURE} 0-${MAX_SCORE}, ` +
      `${FLAG_FEATURES.join(' and ')} 0 or 1). Check for coefficients that overflow float32 (largest about 3.4e38) and retrain or rescale.`,
  );
}

/**
 * Checks a model file completely, without side effects: the format, the graph (8 float features in,
 * one number out), a trial run in ONNX Runtime and finite scores across the documented feature
 * ranges. Returns what the file says about itself.
 */
export async function validateModelFile(bytes: Uint8Array, fileName: string): Promise<ModelDescription> {
  if (bytes.byteLength === 0)
    throw new UnprocessableError(`${fileName} is empty; upload the .onnx file your converter wrote.`);
  if (bytes.byteLength > MAX_MODEL_BYTES) {
    throw new PayloadTooLargeError(
      `${fileName} is ${bytes.byteLength} bytes; model files may be at most ${MAX_MODEL_BYTES} bytes.`,
    );
  }
  refuseForeignFormat(bytes, fileName);
  const model = await OnnxModel.load(bytes);
  try {
    await probe(model, fileName);
  } finally {
    await model.release();
  }
  return model.description;
}
