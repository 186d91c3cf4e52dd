/**
 * What a model name and a model file name may be. Names become S3 key segments, S3 metadata, MLflow
 * names and PostgreSQL text (which cannot hold NUL): no slashes, no control characters. One rule
 * each for the configuration, the API's schemas, the drop folder and every other entry point.
 */
import { BadRequestError } from '#http/errors';

export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
export const MODEL_NAME_RULE =
  'must be 1-100 letters, digits, ".", "_" or "-", starting with a letter or digit (e.g. hubfolio-model)';

/** The name, or a 400 naming the rule it breaks. */
export function checkModelName(name: string): string {
  if (!MODEL_NAME_PATTERN.test(name)) {
    throw new BadRequestError(`Invalid model_name "${name}": ${MODEL_NAME_RULE}.`, [
      { field: 'model_name', message: MODEL_NAME_RULE },
    ]);
  }
  return name;
}

const MAX_FILE_NAME_CHARS = 200;
export const FILE_NAME_RULE = `must be a plain file name of 1-${MAX_FILE_NAME_CHARS} characters (no "/", "\\" or control characters)`;

/** Control characters (C0, DEL and C1, NUL included) and path separators. */
const UNSAFE_IN_FILE_NAME = /[/\\\p{Cc}]/u;

export const isPlainFileName = (name: string): boolean =>
  name.length > 0 && name.length <= MAX_FILE_NAME_CHARS && !UNSAFE_IN_FILE_NAME.test(name);

/** The file name, or a 400 (before anything is stored) naming `field`, the rule and the name with its control characters shown. */
export function checkFileName(name: string, field = 'filename'): string {
  if (!isPlainFileName(name)) {
    throw new BadRequestError(`Invalid file name ${JSON.stringify(name)}: ${FILE_NAME_RULE}.`, [
      { field, message: FILE_NAME_RULE },
    ]);
  }
  return name;
}
