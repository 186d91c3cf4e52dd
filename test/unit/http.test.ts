import { describe, expect, it, vi } from 'vitest';
import { BadRequestError, HttpError, NotFoundError, ServiceUnavailableError } from '#http/errors';
import { ANSWER_BEFORE_DEADLINE_MS, httpHandler } from '#http/handler';
import { jsonBody } from '#http/validation';
import { multipartBody } from '#http/multipart';
import { logger } from '#shared/log';
import { httpEvent, invokeHttp, lambdaContext } from '../helpers/lambda.ts';

const throwing = (error: Error) => httpHandler(async () => Promise.reject(error));
const get = (handler: ReturnType<typeof httpHandler>) => invokeHttp(handler, httpEvent({ method: 'GET', path: '/x' }));

describe('httpHandler error mapping', () => {
  it('answers a 4xx with its message and field issues', async () => {
    const { status, body } = await get(
      throwing(new BadRequestError('Invalid request: bio: wrong', [{ field: 'bio', message: 'wrong' }])),
    );
    expect(status).toBe(400);
    expect(body).toEqual({ detail: 'Invalid request: bio: wrong', errors: [{ field: 'bio', message: 'wrong' }] });
  });

  it('answers a 404 with its message', async () => {
    expect(await get(throwing(new NotFoundError('no such model')))).toEqual({
      status: 404,
      body: { detail: 'no such model' },
    });
  });

  it('never leaks the message of an unexpected error', async () => {
    const { status, body } = await get(throwing(new Error('password=hunter2 at db.internal:5432')));
    expect(status).toBe(500);
    expect(body).toEqual({ detail: 'Internal server error' });
  });

  it('hides a plain 5xx HttpError message', async () => {
    expect((await get(throwing(new HttpError(502, 'upstream said: secret')))).body).toEqual({
      detail: 'Internal server error',
    });
  });

  it('shows a 503 written for the caller', async () => {
    expect(await get(throwing(new ServiceUnavailableError('No serving model; upload one')))).toEqual({
      status: 503,
      body: { detail: 'No serving model; upload one' },
    });
  });

  it('tells the caller of a 503 when to retry', async () => {
    const handler = throwing(new ServiceUnavailableError('The database is unavailable; retry shortly.'));
    const result = (await handler(httpEvent({ method: 'GET', path: '/x' }), lambdaContext())) as {
      headers: Record<string, string>;
    };
    expect(result.headers['retry-after']).toMatch(/^\d+$/);
  });

  it('logs a refusal with its reason', async () => {
    // Powertools drops a `message` key (it is the line's own); the reason must survive into the line.
    // (The tests' POWERTOOLS_DEV routes the lines through the global console.)
    const lines: string[] = [];
    const info = vi.spyOn(console, 'info').mockImplementation((line) => lines.push(String(line)));
    const level = logger.getLevelName();
    logger.setLogLevel('INFO');
    try {
      await get(throwing(new BadRequestError('bio: must be true or false')));
    } finally {
      logger.setLogLevel(level);
      info.mockRestore();
    }
    const refused = lines.map((line) => JSON.parse(line)).find((entry) => entry.message === 'request refused');
    expect(refused).toMatchObject({ status: 400, reason: 'bio: must be true or false' });
  });
});

describe('httpHandler deadline', () => {
  it('answers 504 in the API error shape before the function would time out', async () => {
    const hanging = httpHandler(() => new Promise(() => {}));
    const started = Date.now();
    const result = (await hanging(httpEvent({ method: 'GET', path: '/x' }), {
      ...lambdaContext(),
      getRemainingTimeInMillis: () => ANSWER_BEFORE_DEADLINE_MS + 300,
    })) as { statusCode: number; body: string; headers: Record<string, string> };
    expect(Date.now() - started).toBeLessThan(ANSWER_BEFORE_DEADLINE_MS);
    expect(result.statusCode).toBe(504);
    expect(JSON.parse(result.body).detail).toMatch(/did not finish in time.*retry shortly/);
    expect(result.headers['retry-after']).toMatch(/^\d+$/);
  });
});

describe('jsonBody', () => {
  it('parses a body sent as application/json, with or without parameters', () => {
    for (const type of ['application/json', 'Application/JSON; charset=utf-8', 'application/merge-patch+json']) {
      expect(jsonBody(httpEvent({ path: '/x', body: '{"a":1}', headers: { 'content-type': type } }))).toEqual({ a: 1 });
    }
  });
  it.each(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', ''])(
    'refuses a body sent as "%s" with 415 saying what to send',
    (type) => {
      const event = httpEvent({ path: '/x', body: '{"a":1}', headers: { 'content-type': type } });
      expect(() => jsonBody(event)).toThrow(
        expect.objectContaining({ statusCode: 415, message: expect.stringMatching(/Content-Type: application\/json/) }),
      );
    },
  );
  it('refuses a body over the limit before parsing it', () => {
    expect(() => jsonBody(httpEvent({ path: '/x', body: '[1,2,3]' }), 4)).toThrow(
      /7 bytes; this route accepts at most 4 bytes/,
    );
  });
  it('quotes the parser on malformed JSON', () => {
    expect(() => jsonBody(httpEvent({ path: '/x', body: '{"a":' }))).toThrow(/Malformed JSON body: .+/);
  });
});

describe('multipart bodies', () => {
  const form = httpHandler(
    async (event) => ({ statusCode: 200, body: Object.keys(event.body as unknown as object) }),
    multipartBody({
      maxFileBytes: 1024,
      maxBodyBytes: 4096,
      howTo: 'send a form',
      tooLarge: () => new HttpError(413, 'too large'),
    }),
  );
  const post = (body: string) =>
    invokeHttp(form, httpEvent({ path: '/x', body, headers: { 'content-type': 'multipart/form-data; boundary=XYZ' } }));
  const part = '--XYZ\r\nContent-Disposition: form-data; name="file"; filename="m.onnx"\r\n\r\nabc';

  it('reads a complete form', async () => {
    expect(await post(`${part}\r\n--XYZ--\r\n`)).toEqual({ status: 200, body: ['file'] });
  });

  it('refuses a body cut short inside a file part with 415, instead of crashing the process', async () => {
    const { status, body } = await post(part);
    expect(status).toBe(415);
    expect(body.detail).toMatch(/ends before its closing boundary "--XYZ--".*send a form/);
  });
});
