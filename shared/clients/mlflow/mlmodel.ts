/**
 * The MLflow model format of an ONNX model (what mlflow.onnx.save_model writes): the model file's
 * name, and MLmodel with the environment files it names.
 */
import { randomUUID } from 'node:crypto';

export const ONNX_MODEL_FILE = 'model.onnx';
/** The MLflow release whose model format is written (the one the contract was observed on). */
const MLFLOW_VERSION = '2.17.0';
const ONNX_VERSION = '1.17.0';
const ONNXRUNTIME_VERSION = '1.19.2';
const PYTHON_VERSION = '3.11.9';

/** MLmodel and the environment files it names, keyed by file name; MLmodel comes last. */
export function onnxModelFiles(input: { runId: string; modelSize: number; fileName: string }): Record<string, string> {
  const requirements = [`mlflow==${MLFLOW_VERSION}`, `onnx==${ONNX_VERSION}`, `onnxruntime==${ONNXRUNTIME_VERSION}`];
  // Python's str(datetime.utcnow()): '2025-01-15 12:00:00.123000'
  const created = new Date().toISOString().replace('T', ' ').replace('Z', '000');
  // YAML keys sorted, as yaml.safe_dump writes them; JSON strings are valid YAML scalars.
  const mlmodel = [
    'artifact_path: model',
    'flavors:',
    '  onnx:',
    '    code: null',
    `    data: ${ONNX_MODEL_FILE}`,
    '    onnx_session_options: null',
    `    onnx_version: ${ONNX_VERSION}`,
    '    providers:',
    '    - CPUExecutionProvider',
    '  python_function:',
    `    data: ${ONNX_MODEL_FILE}`,
    '    env:',
    '      conda: conda.yaml',
    '      virtualenv: python_env.yaml',
    '    loader_module: mlflow.onnx',
    `    python_version: ${PYTHON_VERSION}`,
    'metadata:',
    `  source_file_name: ${JSON.stringify(input.fileName)}`,
    `mlflow_version: ${MLFLOW_VERSION}`,
    `model_size_bytes: ${input.modelSize}`,
    `model_uuid: ${randomUUID().replaceAll('-', '')}`,
    `run_id: ${input.runId}`,
    `utc_time_created: '${created}'`,
    '',
  ].join('\n');
  return {
    'requirements.txt': `${requirements.join('\n')}\n`,
    'python_env.yaml': [
      `python: ${PYTHON_VERSION}`,
      'build_dependencies:',
      '- pip',
      '- setuptools',
      '- wheel',
      'dependencies:',
      '- -r requirements.txt',
      '',
    ].join('\n'),
    'conda.yaml': [
      'channels:',
      '- conda-forge',
      'dependencies:',
      `- python=${PYTHON_VERSION}`,
      '- pip',
      '- pip:',
      ...requirements.map((r) => `  - ${r}`),
      'name: mlflow-env',
      '',
    ].join('\n'),
    MLmodel: mlmodel,
  };
}
