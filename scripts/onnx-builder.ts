/**
 * Builds small ONNX models as bytes, with the `onnx-proto` protobuf definitions: the sample model
 * (scripts/build-sample-model.ts) and the good and bad models the tests need. No training happens
 * here; every model is a formula written down, so that tests can compute the expected output.
 *
 * Output is deterministic: no timestamps or random names, and protobufjs encodes fields in a fixed
 * order, so the same spec gives the same bytes on every run (the committed sample model relies on it).
 */
import onnxProto from 'onnx-proto';
import type { onnx } from 'onnx-proto';

// onnx-proto is CommonJS with `module.exports = root`: Node's ESM loader only sees a default export.
const { ModelProto, TensorProto, AttributeProto } = onnxProto.onnx;
const DataType = TensorProto.DataType;

/** Who wrote the file; a constant (not package.json's version) so that the bytes never change. */
const PRODUCER_NAME = 'hubfolio-functions';
const PRODUCER_VERSION = '1';
/** IR 8 is what onnx-proto 8 describes; opset 13 is the first with ReduceSum's `axes` as an input. */
const IR_VERSION = 8;
const DEFAULT_OPSET = 13;
/** ai.onnx.ml 3: LinearRegressor (v1) and TreeEnsembleRegressor (v3) both resolve under it. */
const ML_OPSET = 3;
const ML_DOMAIN = 'ai.onnx.ml';

/** skl2onnx's names for a regressor's input and output. */
const DEFAULT_INPUT = 'float_input';
const DEFAULT_OUTPUT = 'variable';
const BATCH_DIM = 'N';
const WIDTH_DIM = 'F';

type Dim = number | string;

// ---------------------------------------------------------------- protobuf helpers

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

function tensorValue(name: string, elemType: onnx.TensorProto.DataType, dims: readonly Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function floatInitializer(name: string, dims: number[], values: readonly number[]): onnx.ITensorProto {
  return { name, dims, dataType: DataType.FLOAT, floatData: [...values] };
}

function int64Initializer(name: string, dims: number[], values: readonly number[]): onnx.ITensorProto {
  return { name, dims, dataType: DataType.INT64, int64Data: [...values] };
}

const A = AttributeProto.AttributeType;
const attr = {
  int: (name: string, i: number): onnx.IAttributeProto => ({ name, type: A.INT, i }),
  ints: (name: string, ints: readonly number[]): onnx.IAttributeProto => ({ name, type: A.INTS, ints: [...ints] }),
  floats: (name: string, floats: readonly number[]): onnx.IAttributeProto => ({
    name,
    type: A.FLOATS,
    floats: [...floats],
  }),
  string: (name: string, s: string): onnx.IAttributeProto => ({ name, type: A.STRING, s: utf8(s) }),
  strings: (name: string, strings: readonly string[]): onnx.IAttributeProto => ({
    name,
    type: A.STRINGS,
    strings: strings.map(utf8),
  }),
};

interface ModelParts {
  graphName: string;
  nodes: onnx.INodeProto[];
  inputs: onnx.IValueInfoProto[];
  outputs: onnx.IValueInfoProto[];
  initializers?: onnx.ITensorProto[];
  usesMl?: boolean;
  metadata?: Record<string, string>;
}

function encodeModel(parts: ModelParts): Uint8Array {
  const opsetImport: onnx.IOperatorSetIdProto[] = [{ domain: '', version: DEFAULT_OPSET }];
  if (parts.usesMl) opsetImport.push({ domain: ML_DOMAIN, version: ML_OPSET });
  const model: onnx.IModelProto = {
    irVersion: IR_VERSION,
    opsetImport,
    producerName: PRODUCER_NAME,
    producerVersion: PRODUCER_VERSION,
    graph: {
      name: parts.graphName,
      node: parts.nodes,
      input: parts.inputs,
      output: parts.outputs,
      initializer: parts.initializers ?? [],
    },
    // Sorted so that the order callers list metadata in never changes the bytes.
    metadataProps: Object.entries(parts.metadata ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, value]) => ({ key, value })),
  };
  return ModelProto.encode(ModelProto.create(model)).finish();
}

/** `features` (comma-separated, column order) and `algorithm`, as the inspector reads them. */
function describeMetadata(options: {
  features?: readonly string[];
  algorithm?: string;
  metadata?: Record<string, string>;
}) {
  const metadata: Record<string, string> = { ...options.metadata };
  if (options.features) metadata.features = options.features.join(',');
  if (options.algorithm) metadata.algorithm = options.algorithm;
  return metadata;
}

interface CommonOptions {
  /** Canonical feature names in column order, stored as metadata `features`. */
  features?: readonly string[];
  /** Stored as metadata `algorithm`. */
  algorithm?: string;
  /** Any other metadata_props (e.g. a raw `features` value); `features`/`algorithm` above win. */
  metadata?: Record<string, string>;
  /** Declare the input as [N, F] instead of [N, width]. */
  symbolicWidth?: boolean;
  /** Declare a fixed batch size instead of the symbolic N (only the linear regressor honours it). */
  batchSize?: number;
  inputName?: string;
  outputName?: string;
}

// ---------------------------------------------------------------- good models

export interface LinearRegressorSpec extends CommonOptions {
  /** One weight per input column; the input's width is coefficients.length. */
  coefficients: readonly number[];
  intercept: number;
  /** true (default): one `ai.onnx.ml` LinearRegressor node, as skl2onnx writes LinearRegression. false: MatMul + Add. */
  useMlOp?: boolean;
}

/** y = x · coefficients + intercept, output [N, 1] float. */
export function buildLinearRegressor(spec: LinearRegressorSpec): Uint8Array {
  const width = spec.coefficients.length;
  const inputName = spec.inputName ?? DEFAULT_INPUT;
  const outputName = spec.outputName ?? DEFAULT_OUTPUT;
  const batch = spec.batchSize ?? BATCH_DIM;
  const input = tensorValue(inputName, DataType.FLOAT, [batch, spec.symbolicWidth ? WIDTH_DIM : width]);
  const output = tensorValue(outputName, DataType.FLOAT, [batch, 1]);
  const metadata = describeMetadata(spec);
  const useMlOp = spec.useMlOp ?? true;

  if (useMlOp) {
    return encodeModel({
      graphName: 'LinearRegression',
      usesMl: true,
      nodes: [
        {
          name: 'LinearRegressor',
          opType: 'LinearRegressor',
          domain: ML_DOMAIN,
          input: [inputName],
          output: [outputName],
          attribute: [
            attr.floats('coefficients', spec.coefficients),
            attr.floats('intercepts', [spec.intercept]),
            attr.int('targets', 1),
          ],
        },
      ],
      inputs: [input],
      outputs: [output],
      metadata,
    });
  }
  return encodeModel({
    graphName: 'LinearModel',
    nodes: [
      { name: 'MatMul', opType: 'MatMul', input: [inputName, 'coefficients'], output: ['product'] },
      { name: 'Add', opType: 'Add', input: ['product', 'intercept'], output: [outputName] },
    ],
    inputs: [input],
    outputs: [output],
    initializers: [
      floatInitializer('coefficients', [width, 1], spec.coefficients),
      floatInitializer('intercept', [1], [spec.intercept]),
    ],
    metadata,
  });
}

/** One regression stump: value = x[feature] <= threshold ? whenLessOrEqual : whenGreater. */
interface Stump {
  feature: number;
  threshold: number;
  whenLessOrEqual: number;
  whenGreater: number;
}

export interface TreeEnsembleSpec extends CommonOptions {
  /** Trees of depth 1; the prediction is the sum of their leaves. */
  stumps: readonly Stump[];
  /** Declared input width (default 8). */
  width?: number;
}

/** An `ai.onnx.ml` TreeEnsembleRegressor (aggregate SUM) over stumps, output [N, 1] float. */
export function buildTreeEnsembleRegressor(spec: TreeEnsembleSpec): Uint8Array {
  const inputName = spec.inputName ?? DEFAULT_INPUT;
  const outputName = spec.outputName ?? DEFAULT_OUTPUT;
  // Each stump is a tree of three nodes: 0 = branch, 1 = leaf (true: x <= threshold), 2 = leaf (false).
  const perTree = <T>(values: (stump: Stump, tree: number) => T[]) => spec.stumps.flatMap((s, t) => values(s, t));
  return encodeModel({
    graphName: 'TreeEnsembleRegressor',
    usesMl: true,
    nodes: [
      {
        name: 'TreeEnsembleRegressor',
        opType: 'TreeEnsembleRegressor',
        domain: ML_DOMAIN,
        input: [inputName],
        output: [outputName],
        attribute: [
          attr.int('n_targets', 1),
          attr.string('aggregate_function', 'SUM'),
          attr.string('post_transform', 'NONE'),
          attr.ints(
            'nodes_treeids',
            perTree((_, t) => [t, t, t]),
          ),
          attr.ints(
            'nodes_nodeids',
            perTree(() => [0, 1, 2]),
          ),
          attr.ints(
            'nodes_featureids',
            perTree((s) => [s.feature, 0, 0]),
          ),
          attr.floats(
            'nodes_values',
            perTree((s) => [s.threshold, 0, 0]),
          ),
          attr.strings(
            'nodes_modes',
            perTree(() => ['BRANCH_LEQ', 'LEAF', 'LEAF']),
          ),
          attr.ints(
            'nodes_truenodeids',
            perTree(() => [1, 0, 0]),
          ),
          attr.ints(
            'nodes_falsenodeids',
            perTree(() => [2, 0, 0]),
          ),
          attr.ints(
            'target_ids',
            perTree(() => [0, 0]),
          ),
          attr.ints(
            'target_treeids',
            perTree((_, t) => [t, t]),
          ),
          attr.ints(
            'target_nodeids',
            perTree(() => [1, 2]),
          ),
          attr.floats(
            'target_weights',
            perTree((s) => [s.whenLessOrEqual, s.whenGreater]),
          ),
        ],
      },
    ],
    inputs: [tensorValue(inputName, DataType.FLOAT, [BATCH_DIM, spec.symbolicWidth ? WIDTH_DIM : (spec.width ?? 8)])],
    outputs: [tensorValue(outputName, DataType.FLOAT, [BATCH_DIM, 1])],
    metadata: describeMetadata(spec),
  });
}

/**
 * y = sum of the input's columns (ReduceSum over axis 1), output [N, 1]. Nothing in this graph
 * says how many columns it expects, so with `symbolicWidth` its width cannot be resolved.
 */
export function buildFeatureSumModel(options: CommonOptions & { width?: number } = {}): Uint8Array {
  const inputName = options.inputName ?? DEFAULT_INPUT;
  const outputName = options.outputName ?? DEFAULT_OUTPUT;
  return encodeModel({
    graphName: 'FeatureSum',
    nodes: [
      {
        name: 'ReduceSum',
        opType: 'ReduceSum',
        input: [inputName, 'axes'],
        output: [outputName],
        attribute: [attr.int('keepdims', 1)],
      },
    ],
    inputs: [
      tensorValue(inputName, DataType.FLOAT, [BATCH_DIM, options.symbolicWidth ? WIDTH_DIM : (options.width ?? 8)]),
    ],
    outputs: [tensorValue(outputName, DataType.FLOAT, [BATCH_DIM, 1])],
    initializers: [int64Initializer('axes', [1], [1])],
    metadata: describeMetadata(options),
  });
}

// ---------------------------------------------------------------- bad models

const ONES = Array.from({ length: 8 }, () => 1);

/** A valid linear model over 8 float columns whose output is cast to strings ([N, 1] string). */
export function buildStringOutputModel(): Uint8Array {
  return encodeModel({
    graphName: 'StringOutput',
    nodes: [
      { name: 'MatMul', opType: 'MatMul', input: [DEFAULT_INPUT, 'coefficients'], output: ['score'] },
      {
        name: 'Cast',
        opType: 'Cast',
        input: ['score'],
        output: ['label'],
        attribute: [attr.int('to', DataType.STRING)],
      },
    ],
    inputs: [tensorValue(DEFAULT_INPUT, DataType.FLOAT, [BATCH_DIM, 8])],
    outputs: [tensorValue('label', DataType.STRING, [BATCH_DIM, 1])],
    initializers: [floatInitializer('coefficients', [8, 1], ONES)],
  });
}

/** y = x · 1 + offset with two graph inputs: x [N, 8] and offset [N, 1]. */
export function buildTwoInputModel(): Uint8Array {
  return encodeModel({
    graphName: 'TwoInputs',
    nodes: [
      { name: 'MatMul', opType: 'MatMul', input: [DEFAULT_INPUT, 'coefficients'], output: ['product'] },
      { name: 'Add', opType: 'Add', input: ['product', 'offset'], output: [DEFAULT_OUTPUT] },
    ],
    // The initializer is also listed as an input, as older exporters do; it must not count as one.
    inputs: [
      tensorValue(DEFAULT_INPUT, DataType.FLOAT, [BATCH_DIM, 8]),
      tensorValue('offset', DataType.FLOAT, [BATCH_DIM, 1]),
      tensorValue('coefficients', DataType.FLOAT, [8, 1]),
    ],
    outputs: [tensorValue(DEFAULT_OUTPUT, DataType.FLOAT, [BATCH_DIM, 1])],
    initializers: [floatInitializer('coefficients', [8, 1], ONES)],
  });
}

/** y = float(x) · 1 with an int64 input [N, 8]. */
export function buildInt64InputModel(): Uint8Array {
  return encodeModel({
    graphName: 'Int64Input',
    nodes: [
      {
        name: 'Cast',
        opType: 'Cast',
        input: ['int_input'],
        output: [DEFAULT_INPUT],
        attribute: [attr.int('to', DataType.FLOAT)],
      },
      { name: 'MatMul', opType: 'MatMul', input: [DEFAULT_INPUT, 'coefficients'], output: [DEFAULT_OUTPUT] },
    ],
    inputs: [tensorValue('int_input', DataType.INT64, [BATCH_DIM, 8])],
    outputs: [tensorValue(DEFAULT_OUTPUT, DataType.FLOAT, [BATCH_DIM, 1])],
    initializers: [floatInitializer('coefficients', [8, 1], ONES)],
  });
}
