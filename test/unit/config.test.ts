import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '#shared/config';

const required = {
  DATABASE_URL: 'postgres://u:p@db:5432/hubfolio',
  MODEL_BUCKET: 'hubfolio-models',
  PREDICTIONS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/hubfolio-predictions',
};

describe('parseConfig', () => {
  it('applies the seed defaults', () => {
    const config = parseConfig(required);
    expect(config).toMatchObject({
      MODEL_NAME: 'hubfolio-model',
      MLFLOW_EXPERIMENT_NAME: 'hubfolio-models',
      MODEL_REFRESH_SECONDS: 30,
    });
    expect(config.MLFLOW_TRACKING_URI).toBeUndefined();
  });

  it('holds no ThingsBoard tenant account: only npm run thingsboard:provision reads one', () => {
    const config = parseConfig({ ...required, THINGSBOARD_USERNAME: 'tenant@x', THINGSBOARD_PASSWORD: 'secret' });
    expect(Object.keys(config).filter((key) => /USERNAME|PASSWORD/.test(key))).toEqual([]);
  });

  it('treats empty optional variables as unset (serverless.yml passes empty strings)', () => {
    const config = parseConfig({
      ...required,
      MLFLOW_TRACKING_URI: '',
      THINGSBOARD_URL: '',
      AWS_ENDPOINT_URL: '',
      MODEL_SYNC_QUEUE_URL: '',
    });
    expect(config.MLFLOW_TRACKING_URI).toBeUndefined();
    expect(config.MODEL_SYNC_QUEUE_URL).toBeUndefined();
    expect(config.THINGSBOARD_URL).toBeUndefined();
  });

  it('names every missing variable', () => {
    expect(() => parseConfig({})).toThrow(
      new ConfigError('Invalid configuration: MODEL_BUCKET: is required; PREDICTIONS_QUEUE_URL: is required'),
    );
  });

  it.each([
    ['DATABASE_URL', 'mysql://db/x', /DATABASE_URL: expected a PostgreSQL URL/],
    ['MODEL_BUCKET', 'Bad_Bucket', /MODEL_BUCKET: expected a valid S3 bucket name/],
    ['MLFLOW_TRACKING_URI', 'localhost:5000', /MLFLOW_TRACKING_URI: expected an http\(s\) URL/],
    ['MODEL_NAME', '../etc', /MODEL_NAME: expected a model name/],
    ['MODEL_REFRESH_SECONDS', '600', /MODEL_REFRESH_SECONDS: expected at most 60 seconds/],
    [
      'MODEL_SYNC_QUEUE_URL',
      'hubfolio-model-sync',
      /MODEL_SYNC_QUEUE_URL: expected the SQS queue URL of the model-sync queue/,
    ],
  ])('refuses %s=%s naming the variable and what it expects', (name, value, message) => {
    expect(() => parseConfig({ ...required, [name]: value })).toThrow(message);
  });
});
