/**
 * HubFólio ONNX models: what a model must look like (inspectModel) and how it predicts (OnnxModel).
 *
 * A HubFólio model takes one float tensor [N, 8] — the 8 features below, one row per portfolio —
 * and returns one number per row ([N] or [N, 1]). Everything else is refused with an
 * UnprocessableError (422) that says what is wrong and how to fix it, so that a bad upload never
 * becomes the serving model.
 *
 * Inspection parses the protobuf itself because ONNX Runtime's JS API exposes neither
 * metadata_props (where the column order and algorithm live) nor the graph.
 */
import onnxProto from 'onnx-proto';
import type { onnx } from 'onnx-proto';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { BadRequestError, UnprocessableError } from '#http/errors';
import { FEATURES, type FeatureName, type FeatureRow } from '#prediction/features';

export interface ModelDescription {
  /** metadata `algorithm`, else derived from the graph's operators, else the graph's name. */
  algorithm: string;
  /** The model's column order (a permutation of FEATURES). */
  features: FeatureName[];
  inputName: string;
  outputName: string;
  /** e.g. "skl2onnx 1.16.0"; empty when the file does not say. */
  producer: string;
  irVersion: number;
  /** Version of the default (ai.onnx) operator set; undefined when the model imports none. */
  opsetVersion: number | undefined;
  /** Every imported operator set, by domain ('' is ai.onnx). */
  opsets: Record<string, number>;
  metadata: Record<string, string>;
}

// onnx-proto is CommonJS with `module.exports = root`: Node's ESM loader only sees a default export.
const { ModelProto, TensorProto } = onnxProto.onnx;
const DataType = TensorProto.DataType;

const WIDTH = FEATURES.length;
const EXPECTED_INPUT = `a float tensor [N, ${WIDTH}] with the columns ${FEATURES.join(', ')}`;
const CONVERT_HINT = `e.g. skl2onnx initial_types=[('float_input', FloatTensorType([None, ${WIDTH}]))]`;

const NUMERIC_OUTPUTS = new Set<number>([
  DataType.FLOAT,
  DataType.DOUBLE,
  DataType.FLOAT16,
  DataType.BFLOAT16,
  DataType.INT8,
  DataType.INT16,
  DataType.INT32,
  DataType.INT64,
  DataType.UINT8,
  DataType.UINT16,
  DataType.UINT32,
  DataType.UINT64,
]);

/** How an operator's name reads as an algorithm when the metadata does not say. */
const ALGORITHM_BY_OP: Record<string, string> = {
  LinearRegressor: 'LinearRegression',
  TreeEnsembleRegressor: 'TreeEnsembleRegressor',
  TreeEnsemble: 'TreeEnsembleRegressor',
  MatMul: 'LinearModel',
  Gemm: 'LinearModel',
};

/** protobufjs decodes int64 fields as Long objects when the `long` package is present. */
type Int64 = number | { toNumber(): number } | null | undefined;
const toNumber = (value: Int64): number => (value == null ? 0 : typeof value === 'number' ? value : value.toNumber());

const typeName = (elemType: number): string => (DataType[elemType] ?? `type ${elemType}`).toLowerCase();

function refuse(message: string): never {
  throw new UnprocessableError(message);
}

type Graph = onnx.IGraphProto;
type Dimension = onnx.TensorShapeProto.IDimension;

/** onnx-proto types every repeated field as optional; absent reads as empty. */
const list = <T>(values: T[] | null | undefined): T[] => values ?? [];

function decode(bytes: Uint8Array): onnx.ModelProto & { graph: Graph } {
  let model: onnx.ModelProto;
  try {
    model = ModelProto.decode(bytes);
  } catch (error) {
    throw new UnprocessableError(
      `The file is not a valid ONNX model (${(error as Error).message}); upload the .onnx file your converter wrote.`,
      { cause: error },
    );
  }
  // Protobuf decoding is lenient: bytes that happen to parse still lack a graph with inputs and outputs.
  const graph = model.graph;
  if (!graph || !list(graph.node).length || !list(graph.input).length || !list(graph.output).length) {
    refuse(
      'The file is not a valid ONNX model (no graph with nodes, inputs and outputs); upload the .onnx file your converter wrote.',
    );
  }
  return model as onnx.ModelProto & { graph: Graph };
}

const fixedSize = (dim: Dimension): number | undefined =>
  toNumber(dim.dimValue) > 0 ? toNumber(dim.dimValue) : undefined;

/**
 * The width a symbolic [N, F] input really has, read from the first node that consumes it:
 * MatMul/Gemm with a constant weight (its row count), or LinearRegressor (coefficients / targets).
 * A tree ensemble only names the columns it splits on, which bounds the width but does not fix it,
 * so such a model (like any other graph) must declare the width. ONNX Runtime itself accepts any
 * width for a symbolic dimension, so an unresolved one is refused rather than trusted.
 */
function resolveSymbolicWidth(graph: Graph, inputName: string): number | undefined {
  const node = list(graph.node).find((n) => list(n.input).includes(inputName));
  if (!node) return undefined;
  const [first, second] = list(node.input);
  // The weight must be a constant: its shape is then fixed, unlike that of another input.
  const weightDims = () =>
    first === inputName ? list(list(graph.initializer).find((t) => t.name === second)?.dims) : [];
  const attribute = (name: string) => list(node.attribute).find((a) => a.name === name);
  switch (node.opType) {
    case 'MatMul': {
      const dims = weightDims();
      return dims.length === 2 ? toNumber(dims[0]) : undefined;
    }
    case 'Gemm': {
      const dims = weightDims();
      if (toNumber(attribute('transA')?.i) !== 0 || dims.length !== 2) return undefined;
      return toNumber(dims[toNumber(attribute('transB')?.i) ? 1 : 0]);
    }
    case 'LinearRegressor': {
      const coefficients = list(attribute('coefficients')?.floats).length;
      const targets = toNumber(attribute('targets')?.i) || 1;
      return coefficients > 0 && coefficients % targets === 0 ? coefficients / targets : undefined;
    }
    default:
      return undefined;
  }
}

/** Checks the one input and returns its name. */
function checkInput(graph: Graph): string {
  // Older exporters list initializers among the inputs; they are constants, not inputs.
  const constants = new Set(list(graph.initializer).map((t) => t.name));
  const inputs = list(graph.input).filter((i) => !constants.has(i.name));
  if (inputs.length !== 1) {
    refuse(
      `The model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); HubFólio models take exactly one: ${EXPECTED_INPUT}.`,
    );
  }
  const input = inputs[0]!;
  const name = input.name ?? '';
  const tensor = input.type?.tensorType;
  if (!tensor) refuse(`The model's input "${name}" is not a tensor; HubFólio models take ${EXPECTED_INPUT}.`);
  if (tensor.elemType !== DataType.FLOAT) {
    refuse(
      `The model's input "${name}" is ${typeName(tensor.elemType ?? 0)}; HubFólio models take float32: ${EXPECTED_INPUT} (${CONVERT_HINT}).`,
    );
  }
  const dims = list(tensor.shape?.dim);
  if (dims.length !== 2) {
    refuse(
      `The model's input "${name}" has ${tensor.shape ? `rank ${dims.length}` : 'no declared shape'}; HubFólio models take ${EXPECTED_INPUT} (${CONVERT_HINT}).`,
    );
  }
  const [batch, width] = dims as [Dimension, Dimension];
  // Predictions run in batches; a model exported for a fixed batch size would fail on the first batch of another size.
  const batchSize = fixedSize(batch);
  if (batchSize !== undefined) {
    refuse(
      `The model's input "${name}" has a fixed batch size of ${batchSize}; HubFólio predicts batches, so the first dimension must be symbolic (${CONVERT_HINT}).`,
    );
  }
  const actual = fixedSize(width) ?? resolveSymbolicWidth(graph, name);
  if (actual === undefined) {
    refuse(
      `The model's input "${name}" has a symbolic width ("${width.dimParam || '?'}") that the graph does not fix; export it with a fixed width of ${WIDTH} (${CONVERT_HINT}).`,
    );
  }
  if (actual !== WIDTH) {
    refuse(
      `The model's input has ${actual} features; HubFólio models take ${WIDTH}: ${FEATURES.join(', ')}. Retrain on exactly these columns.`,
    );
  }
  return name;
}

/** Checks the one output and returns its name. */
function checkOutput(graph: Graph): string {
  const outputs = list(graph.output);
  if (outputs.length !== 1) {
    refuse(
      `The model has ${outputs.length} outputs (${outputs.map((o) => o.name).join(', ')}); HubFólio models return exactly one: the predicted IQ, [N] or [N, 1].`,
    );
  }
  const output = outputs[0]!;
  const name = output.name ?? '';
  const tensor = output.type?.tensorType;
  if (!tensor || !NUMERIC_OUTPUTS.has(tensor.elemType ?? 0)) {
    const kind = tensor ? typeName(tensor.elemType ?? 0) : 'not a tensor';
    refuse(
      `The model's output "${name}" is ${kind}; HubFólio models return a number per row (a regressor, not a classifier): float [N] or [N, 1].`,
    );
  }
  // An undeclared shape is left to the trial run in OnnxModel.load, which counts what comes out.
  if (tensor.shape) {
    const dims = list(tensor.shape.dim);
    const columns = dims.length === 2 ? fixedSize(dims[1]!) : undefined;
    if (dims.length < 1 || dims.length > 2 || (columns !== undefined && columns !== 1)) {
      const shown = dims.map((d) => fixedSize(d) ?? (d.dimParam || '?')).join(', ');
      refuse(
        `The model's output "${name}" has shape [${shown}]; HubFólio models return one number per row: [N] or [N, 1].`,
      );
    }
  }
  return name;
}

/** metadata `features`: comma-separated or a JSON array, and a permutation of FEATURES. */
function parseFeatures(raw: string | undefined): FeatureName[] {
  if (raw === undefined) return [...FEATURES];
  let parsed: unknown;
  try {
    parsed = raw.trim().startsWith('[') ? JSON.parse(raw) : raw.split(',');
  } catch {
    refuse(
      `The model's metadata "features" is not a valid JSON array (${raw}); list the ${WIDTH} features in column order, e.g. "${FEATURES.join(',')}".`,
    );
  }
  const names = Array.isArray(parsed) ? parsed.map((n) => String(n).trim()) : [];
  const unknown = names.filter((n) => !(FEATURES as readonly string[]).includes(n));
  const missing = FEATURES.filter((f) => !names.includes(f));
  if (unknown.length || missing.length || names.length !== WIDTH) {
    const problems = [
      unknown.length ? `unknown: ${unknown.join(', ')}` : '',
      missing.length ? `missing: ${missing.join(', ')}` : '',
      !unknown.length && !missing.length ? 'a feature is listed twice' : '',
    ].filter(Boolean);
    refuse(
      `The model's metadata "features" must list each of the ${WIDTH} features once, in column order (${problems.join('; ')}); expected a permutation of ${FEATURES.join(', ')}.`,
    );
  }
  return names as FeatureName[];
}

/** Parses and checks a model file; throws UnprocessableError naming what to fix. */
export function inspectModel(bytes: Uint8Array): ModelDescription {
  const model = decode(bytes);
  const { graph } = model;
  const inputName = checkInput(graph);
  const outputName = checkOutput(graph);
  const metadata: Record<string, string> = Object.fromEntries(
    list(model.metadataProps).map((p) => [p.key ?? '', p.value ?? '']),
  );
  const opsets: Record<string, number> = Object.fromEntries(
    list(model.opsetImport).map((o) => [o.domain ?? '', toNumber(o.version)]),
  );
  const knownOp = list(graph.node).find((n) => n.opType && ALGORITHM_BY_OP[n.opType]);
  return {
    algorithm: metadata.algorithm?.trim() || (knownOp && ALGORITHM_BY_OP[knownOp.opType!]) || graph.name || 'unknown',
    features: parseFeatures(metadata.features),
    inputName,
    outputName,
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
    irVersion: toNumber(model.irVersion),
    opsetVersion: opsets[''] ?? opsets['ai.onnx'],
    opsets,
    metadata,
  };
}

/** A checked model with its ONNX Runtime session; build one per model version and keep it. */
export class OnnxModel {
  private constructor(
    readonly description: ModelDescription,
    private readonly session: InferenceSession,
  ) {}

  /** Inspects, opens a session and makes one trial prediction; throws UnprocessableError if any step fails. */
  static async load(bytes: Uint8Array): Promise<OnnxModel> {
    const description = inspectModel(bytes);
    let session: InferenceSession;
    try {
      // One thread: the models are tiny, and a Lambda container serves one request at a time.
      session = await InferenceSession.create(bytes, {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
      });
    } catch (error) {
      throw new UnprocessableError(
        `ONNX Runtime cannot load the model (${(error as Error).message}); re-export it and check that onnxruntime opens it before uploading.`,
        { cause: error },
      );
    }
    const model = new OnnxModel(description, session);
    try {
      await model.trialRun();
    } catch (error) {
      await model.release();
      throw error;
    }
    return model;
  }

  /** One prediction per row, in row order; rows carry booleans already as 0/1. */
  async predict(rows: readonly FeatureRow[]): Promise<number[]> {
    if (rows.length === 0) return [];
    const { features } = this.description;
    const data = new Float32Array(rows.length * features.length);
    rows.forEach((row, r) => {
      features.forEach((name, c) => {
        const value = row[name];
        if (typeof value !== 'number' || !Number.isFinite(value)) {
          throw new BadRequestError(`${name} must be a finite number`, [
            { field: name, message: 'expected a finite number' },
          ]);
        }
        data[r * features.length + c] = value;
      });
    });
    const values = await this.run(new Tensor('float32', data, [rows.length, features.length]));
    if (values.length !== rows.length) {
      throw new Error(`model returned ${values.length} values for ${rows.length} rows`);
    }
    return values;
  }

  /** Frees the native session; call when a newer model replaces this one. */
  async release(): Promise<void> {
    await this.session.release();
  }

  private async run(input: Tensor): Promise<number[]> {
    const results = await this.session.run({ [this.description.inputName]: input });
    const output = results[this.description.outputName];
    // BigInt64Array for int64 outputs: Number() converts both kinds.
    return Array.from(output?.data as ArrayLike<number | bigint>, Number);
  }

  /** The declared shapes can lie or be symbolic: one all-zeros row must give exactly one finite number. */
  private async trialRun(): Promise<void> {
    let values: number[];
    try {
      values = await this.run(new Tensor('float32', new Float32Array(WIDTH), [1, WIDTH]));
    } catch (error) {
      throw new UnprocessableError(
        `The model fails on a row of ${WIDTH} zeros (${(error as Error).message}); check it with onnxruntime on input shape [1, ${WIDTH}].`,
        { cause: error },
      );
    }
    if (values.length !== 1 || !Number.isFinite(values[0])) {
      throw new UnprocessableError(
        `The model returns ${values.length === 1 ? `a non-finite value (${values[0]})` : `${values.length} values`} for one row; HubFólio models return exactly one finite number per row.`,
      );
    }
  }
}
