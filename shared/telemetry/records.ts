import type { MessageAttributeValue } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import type * as z from 'zod';
import { fieldIssues } from '#http/validation';
import {
  envelopeSchema,
  MESSAGE_VERSIONS,
  predictionMessageSchema,
  predictionSchema,
  type Prediction,
} from '#prediction/message';

/**
 * What the telemetry consumer reads from a queue record (one prediction, or an envelope of them),
 * and the attributes of the copies it re-queues or parks.
 */

export const ATTRIBUTES = { attempt: 'attempt', reason: 'reason', predictionId: 'prediction_id' } as const;

/** Ceiling for an `attempt` attribute read back from SQS (the counter is ours, but a message is anyone's). */
const MAX_ATTEMPT_VALUE = 100_000;
const MAX_ATTRIBUTE_CHARS = 1_000;
const KNOWN_VERSIONS: number[] = Object.values(MESSAGE_VERSIONS);

/** Part of a record that can never be delivered as it is: it goes to the DLQ as `body`, with its reason. */
interface Unreadable {
  body: string;
  reason: string;
  predictionId?: string;
}

export interface ReadRecord {
  /** The failed deliveries behind the record (0 for a fresh message), shared by its predictions. */
  attempt: number;
  /** A single message: its body, as it came, is what a retried or parked copy sends. */
  single: boolean;
  predictions: Prediction[];
  unreadable: Unreadable[];
}

function attemptOf(record: SQSRecord): number {
  const value = Number(record.messageAttributes?.[ATTRIBUTES.attempt]?.stringValue);
  return Number.isInteger(value) && value > 0 ? Math.min(value, MAX_ATTEMPT_VALUE) : 0;
}

const issues = (error: z.ZodError) =>
  fieldIssues(error)
    .map((issue) => `${issue.field}: ${issue.message}`)
    .join('; ');

const asObject = (value: unknown): Record<string, unknown> | undefined =>
  value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;

const idOf = (value: unknown) => {
  const id = asObject(value)?.['prediction_id'];
  return typeof id === 'string' ? id : undefined;
};

/** A bad envelope entry parked alone: as the single message it would have been, so that a redrive can retry it once fixed. */
function entryBody(entry: unknown): string {
  const fields = asObject(entry);
  if (!fields) return JSON.stringify(entry);
  const { version: _, ...rest } = fields;
  return JSON.stringify({ version: MESSAGE_VERSIONS.single, ...rest });
}

/**
 * Reads a record: the predictions it holds, and what of it can never be delivered (not JSON, a version
 * this consumer does not read, a malformed prediction), which is parked, never retried. In an
 * envelope each entry is read on its own: a bad one is parked alone and the rest are delivered.
 */
export function readRecord(record: SQSRecord): ReadRecord {
  const read: ReadRecord = { attempt: attemptOf(record), single: false, predictions: [], unreadable: [] };
  const refuse = (reason: string, predictionId?: string): ReadRecord => {
    read.unreadable.push({ body: record.body, reason, ...(predictionId ? { predictionId } : {}) });
    return read;
  };
  let body: unknown;
  try {
    body = JSON.parse(record.body);
  } catch (error) {
    return refuse(`the body is not JSON (${(error as Error).message})`);
  }
  const version = asObject(body)?.['version'];
  if (typeof version === 'number' && !KNOWN_VERSIONS.includes(version)) {
    return refuse(
      `message version ${version} is not one this consumer reads (versions ${KNOWN_VERSIONS.join(' and ')})`,
      idOf(body),
    );
  }
  if (version === MESSAGE_VERSIONS.envelope) {
    const envelope = envelopeSchema.safeParse(body);
    if (!envelope.success) return refuse(`not a prediction envelope: ${issues(envelope.error)}`);
    const entries = envelope.data.predictions;
    entries.forEach((entry, i) => {
      const result = predictionSchema.safeParse(entry);
      if (result.success) read.predictions.push(result.data);
      else
        read.unreadable.push({
          body: entryBody(entry),
          reason: `not a prediction message (entry ${i + 1} of ${entries.length} of an envelope): ${issues(result.error)}`,
          ...(idOf(entry) ? { predictionId: idOf(entry) } : {}),
        });
    });
    return read;
  }
  const result = predictionMessageSchema.safeParse(body);
  if (!result.success) return refuse(`not a prediction message: ${issues(result.error)}`, idOf(body));
  const { version: _, ...prediction } = result.data;
  read.single = true;
  read.predictions.push(prediction);
  return read;
}

/** SQS takes only XML characters in attribute values, and they count toward the message size. */
function attributeText(text: string): string {
  const clean = text.replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD]/g, '?');
  return clean.length > MAX_ATTRIBUTE_CHARS ? `${clean.slice(0, MAX_ATTRIBUTE_CHARS)}…` : clean;
}

export const text = (value: string): MessageAttributeValue => ({
  DataType: 'String',
  StringValue: attributeText(value),
});

/** The record's own attributes in the SDK's shape, less the ones this consumer sets. */
export function carriedAttributes(record: SQSRecord): Record<string, MessageAttributeValue> {
  const ours = new Set<string>(Object.values(ATTRIBUTES));
  const carried: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(record.messageAttributes ?? {})) {
    if (ours.has(name)) continue;
    carried[name] = {
      DataType: value.dataType,
      ...(value.stringValue !== undefined ? { StringValue: value.stringValue } : {}),
      ...(value.binaryValue !== undefined ? { BinaryValue: Buffer.from(value.binaryValue, 'base64') } : {}),
    };
  }
  return carried;
}
