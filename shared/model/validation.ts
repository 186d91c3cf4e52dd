import { extname } from 'node:path';
import { PayloadTooLargeError, UnprocessableError, UnsupportedMediaTypeError } from '#http/errors';
import { OnnxModel, type ModelDescription } from '#model/onnx';
import { FEATURES } from '#prediction/features';

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

/**
 * Checks a model file completely, without side effects: the format, the graph (8 float features in,
 * one number out) and a trial run in ONNX Runtime. Returns what the file says about itself.
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
  await model.release();
  return model.description;
}
