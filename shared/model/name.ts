/**
 * What a model name may be. Names become S3 key segments and MLflow names: no slashes, no spaces,
 * no control characters. One rule for the configuration, the API's schemas and every other entry point.
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
