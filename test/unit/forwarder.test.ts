import { randomUUID } from 'node:crypto';
import type { SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { RETRY_WINDOW_SECONDS, retryDelaySeconds, waitedSeconds } from '#telemetry/forwarder';
import { readRecord } from '#telemetry/records';

const record = (body: string, attempt?: string): SQSRecord =>
  ({
    messageId: randomUUID(),
    receiptHandle: 'rh',
    body,
    attributes: {},
    messageAttributes:
      attempt === undefined
        ? {}
        : { attempt: { dataType: 'Number', stringValue: attempt, stringListValues: [], binaryListValues: [] } },
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:q',
    awsRegion: 'us-east-1',
  }) as SQSRecord;

const message = (overrides: Record<string, unknown> = {}) =>
  JSON.stringify({
    version: 1,
    prediction_id: randomUUID(),
    ts: 1_736_942_400_000,
    created_at: '2025-01-15T12:00:00.000Z',
    predicted_iq: 82.5,
    classification: 'Bom',
    user_id: 1,
    portfolio_id: null,
    model_name: 'hubfolio-model',
    model_version: '3',
    ...overrides,
  });

describe('retry schedule', () => {
  it('doubles from 5 s and stays at 60 s by default', () => {
    expect([1, 2, 3, 4, 5, 6, 40].map((attempt) => retryDelaySeconds(attempt, 5))).toEqual([5, 10, 20, 40, 60, 60, 60]);
  });

  it('scales with the base (tests use 1 s: delays up to 12 s)', () => {
    expect([1, 2, 3, 4, 5, 6].map((attempt) => retryDelaySeconds(attempt, 1))).toEqual([1, 2, 4, 8, 12, 12]);
  });

  it('adds up the waits: 5 + 10 + 20 + 40, then 60 s each', () => {
    expect([0, 1, 4, 5, 7].map((attempts) => waitedSeconds(attempts, 5))).toEqual([0, 5, 75, 135, 255]);
  });

  it('keeps retrying through a 10-minute outage and gives up only after about an hour', () => {
    // Every attempt inside a 10-minute outage is still a retry, not a park.
    let attempts = 0;
    while (waitedSeconds(attempts, 5) < 600) attempts += 1;
    expect(waitedSeconds(attempts, 5)).toBeLessThan(RETRY_WINDOW_SECONDS);
    // The first attempt count whose waits reach the window: about an hour, one delay at most beyond it.
    let parkedAfter = 0;
    while (waitedSeconds(parkedAfter, 5) < RETRY_WINDOW_SECONDS) parkedAfter += 1;
    expect(parkedAfter).toBe(63);
    expect(waitedSeconds(parkedAfter, 5)).toBeLessThan(RETRY_WINDOW_SECONDS + 60);
  });
});

const prediction = (overrides: Record<string, unknown> = {}) => {
  const { version: _, ...rest } = JSON.parse(message(overrides));
  return rest;
};

describe('readRecord', () => {
  it('reads a single message and its retry counter', () => {
    expect(readRecord(record(message(), '4'))).toMatchObject({
      attempt: 4,
      single: true,
      predictions: [{ predicted_iq: 82.5, classification: 'Bom' }],
      unreadable: [],
    });
  });

  it('counts a fresh message, or a counter that is not a positive whole number, as attempt 0', () => {
    expect(readRecord(record(message()))).toMatchObject({ attempt: 0 });
    expect(readRecord(record(message(), 'soon'))).toMatchObject({ attempt: 0 });
    expect(readRecord(record(message(), '-3'))).toMatchObject({ attempt: 0 });
  });

  it('refuses a body that is not JSON and says so, to park it as it came', () => {
    const read = readRecord(record('{"version":1,'));
    expect(read.predictions).toEqual([]);
    expect(read.unreadable).toEqual([
      { body: '{"version":1,', reason: expect.stringContaining('the body is not JSON') },
    ]);
  });

  it('refuses a message version it does not read, keeping the prediction id for the parking record', () => {
    const id = randomUUID();
    const body = message({ version: 3, prediction_id: id });
    expect(readRecord(record(body)).unreadable).toEqual([
      { body, predictionId: id, reason: 'message version 3 is not one this consumer reads (versions 1 and 2)' },
    ]);
  });

  it('names each field that breaks the message schema', () => {
    const [unreadable] = readRecord(record(message({ classification: 'Ótimo', ts: 'yesterday' }))).unreadable;
    expect(unreadable!.reason).toMatch(/^not a prediction message: .*ts: .*classification: /);
  });

  it('reads each entry of an envelope on its own: a bad one becomes a single message to park alone', () => {
    const good = [prediction(), prediction({ classification: 'Excelente' })];
    const bad = prediction({ predicted_iq: 'high' });
    const read = readRecord(record(JSON.stringify({ version: 2, predictions: [good[0], bad, good[1]] }), '2'));

    expect(read).toMatchObject({ attempt: 2, single: false, predictions: good });
    expect(read.unreadable).toEqual([
      {
        body: JSON.stringify({ version: 1, ...bad }),
        predictionId: bad.prediction_id,
        reason: expect.stringMatching(/^not a prediction message \(entry 2 of 3 of an envelope\): predicted_iq: /),
      },
    ]);
  });

  it('refuses an envelope without predictions as a whole', () => {
    const body = JSON.stringify({ version: 2, predictions: {} });
    expect(readRecord(record(body))).toMatchObject({
      predictions: [],
      unreadable: [{ body, reason: expect.stringMatching(/^not a prediction envelope: predictions: /) }],
    });
  });
});
