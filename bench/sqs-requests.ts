import type { SQSClient } from '@aws-sdk/client-sqs';

/** SQS bills every 64 KiB chunk of a request's payload as one request (a small request is one). */
const BILLED_CHUNK_BYTES = 64 * 1024;
const SENDS = new Set(['SendMessageCommand', 'SendMessageBatchCommand']);

export interface SqsSends {
  requests: number;
  billed: number;
  /** The message bodies' size in all, in bytes. */
  bytes: number;
  /** How long each request took, in ms. */
  durationsMs: number[];
}

const none = (): SqsSends => ({ requests: 0, billed: 0, bytes: 0, durationsMs: [] });

/**
 * Counts the SendMessage and SendMessageBatch requests a client makes from now on, what AWS bills
 * for them and how long each took; `take()` returns the count so far and starts again from zero.
 */
export function countSqsSends(client: SQSClient): { take(): SqsSends } {
  let count = none();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (!SENDS.has(context.commandName ?? '')) return next(args);
      const input = args.input as { MessageBody?: string; Entries?: Array<{ MessageBody?: string }> };
      const bodies = input.Entries?.map((entry) => entry.MessageBody ?? '') ?? [input.MessageBody ?? ''];
      const bytes = bodies.reduce((sum, body) => sum + Buffer.byteLength(body), 0);
      const counted = count;
      counted.requests += 1;
      counted.bytes += bytes;
      counted.billed += Math.max(1, Math.ceil(bytes / BILLED_CHUNK_BYTES));
      const started = performance.now();
      try {
        return await next(args);
      } finally {
        counted.durationsMs.push(performance.now() - started);
      }
    },
    { step: 'initialize', name: 'benchSqsSendCounter' },
  );
  return {
    take() {
      const taken = count;
      count = none();
      return taken;
    },
  };
}
