import { SSMProvider } from '@aws-lambda-powertools/parameters/ssm';
import { type GetParameterCommand, ParameterNotFound, SSMClient } from '@aws-sdk/client-ssm';
import { describe, expect, it, vi } from 'vitest';
import { parseConfig } from '#shared/config';
import { databaseUrl, deviceToken, loadSecrets } from '#shared/secrets';
import { UpstreamUnavailableError } from '#clients/errors';

const base = {
  MODEL_BUCKET: 'hubfolio-models',
  PREDICTIONS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/hubfolio-predictions',
};

/** Powertools' SSMProvider over a real SSMClient whose `send` answers from `store` instead of AWS. */
function fakeSsm(store: Record<string, string>) {
  const client = new SSMClient({ region: 'us-east-1' });
  const send = vi.spyOn(client, 'send').mockImplementation(async (command: unknown) => {
    const { Name } = (command as GetParameterCommand).input;
    const value = store[Name!];
    if (value === undefined) throw new ParameterNotFound({ message: 'not found', $metadata: {} });
    return { Parameter: { Name, Type: 'SecureString', Value: value } };
  });
  return { provider: new SSMProvider({ awsSdkV3Client: client }), send };
}
/** Every GetParameter request the fake received, as its input. */
const requests = (send: ReturnType<typeof fakeSsm>['send']) =>
  send.mock.calls.map(([command]) => (command as GetParameterCommand).input);

describe('secrets', () => {
  it('take the plain variable when it is set, without asking SSM', async () => {
    const settings = parseConfig({
      ...base,
      DATABASE_URL: 'postgres://local@db/hubfolio',
      DATABASE_URL_PARAMETER: '/hubfolio/plain/database-url',
      THINGSBOARD_DEVICE_TOKEN: 'local-token',
    });
    const { provider, send } = fakeSsm({ '/hubfolio/plain/database-url': 'postgres://ssm@db/hubfolio' });
    await loadSecrets(settings, provider);
    expect(send).not.toHaveBeenCalled();
    expect(databaseUrl(settings)).toBe('postgres://local@db/hubfolio');
    expect(deviceToken(settings)).toBe('local-token');
  });

  it('read each parameter once per container, decrypted, and keep it for every later invocation', async () => {
    const settings = parseConfig({
      ...base,
      DATABASE_URL_PARAMETER: '/hubfolio/prod/database-url',
      THINGSBOARD_DEVICE_TOKEN_PARAMETER: '/hubfolio/prod/thingsboard-device-token',
    });
    const { provider, send } = fakeSsm({
      '/hubfolio/prod/database-url': 'postgres://app:s3cret@db.internal:5432/hubfolio?sslmode=verify-full',
      '/hubfolio/prod/thingsboard-device-token': 'device-token',
    });
    await loadSecrets(settings, provider);
    await loadSecrets(settings, provider);
    await loadSecrets(settings, provider);
    expect(requests(send).sort((a, b) => a.Name!.localeCompare(b.Name!))).toEqual([
      { Name: '/hubfolio/prod/database-url', WithDecryption: true },
      { Name: '/hubfolio/prod/thingsboard-device-token', WithDecryption: true },
    ]);
    expect(databaseUrl(settings)).toBe('postgres://app:s3cret@db.internal:5432/hubfolio?sslmode=verify-full');
    expect(deviceToken(settings)).toBe('device-token');
  });

  it('leave an optional secret unset when neither its variable nor its parameter is given', async () => {
    const settings = parseConfig({ ...base, DATABASE_URL_PARAMETER: '/hubfolio/optional/database-url' });
    const { provider, send } = fakeSsm({ '/hubfolio/optional/database-url': 'postgres://db/x' });
    await loadSecrets(settings, provider);
    expect(requests(send)).toEqual([{ Name: '/hubfolio/optional/database-url', WithDecryption: true }]);
    expect(deviceToken(settings)).toBeUndefined();
  });

  it('refuse to answer from SSM before loadSecrets has read the parameter', () => {
    const settings = parseConfig({ ...base, DATABASE_URL_PARAMETER: '/hubfolio/unread/database-url' });
    expect(() => databaseUrl(settings)).toThrow(/DATABASE_URL comes from SSM .* before loadSecrets\(\) read it/);
  });

  it('name the parameter that cannot be read, and try again at the next invocation', async () => {
    const settings = parseConfig({ ...base, DATABASE_URL_PARAMETER: '/hubfolio/missing/database-url' });
    const { provider, send } = fakeSsm({});
    await expect(loadSecrets(settings, provider)).rejects.toThrow(
      /^DATABASE_URL_PARAMETER: could not read \/hubfolio\/missing\/database-url from SSM/,
    );
    await expect(loadSecrets(settings, provider)).rejects.toThrow(/could not read/);
    expect(send).toHaveBeenCalledTimes(2);
  });

  it('make an SSM outage a 503 that asks to retry', async () => {
    const settings = parseConfig({ ...base, DATABASE_URL_PARAMETER: '/hubfolio/outage/database-url' });
    const { provider, send } = fakeSsm({});
    send.mockRejectedValue(new UpstreamUnavailableError('SSM is unavailable (not reachable); retry shortly.'));
    const error = await loadSecrets(settings, provider).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect(error).toMatchObject({ statusCode: 503 });
  });
});

describe('the configuration of secrets', () => {
  it('needs DATABASE_URL or DATABASE_URL_PARAMETER where the database is used, and says so', () => {
    expect(() => databaseUrl(parseConfig(base))).toThrow(
      'DATABASE_URL: is required (or DATABASE_URL_PARAMETER, the SSM parameter that holds it)',
    );
  });

  it.each([
    'database-url',
    '/aws/reserved',
    '/ssm/reserved',
    '/hubfolio/prod/database url',
    '/hubfolio//x',
    'arn:aws:ssm:us-east-1:123456789012:parameter/x',
  ])('refuses the parameter name %s', (name) => {
    expect(() => parseConfig({ ...base, DATABASE_URL_PARAMETER: name })).toThrow(
      /DATABASE_URL_PARAMETER: expected an SSM parameter name such as \/hubfolio\/prod\/database-url/,
    );
  });
});
