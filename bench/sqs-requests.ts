import type { SQSClient } from '@aws-sdk/client-sqs';

/** SQS bills every 64 KiB chunk of a request's payload as one request (a small request is one). */
const BILLED_CHUNK_BYTES = 64 * 1024;
const SENDS = new Set(['SendMessageCommand', 'SendMessageBatchCommand']);

export interface SqsSends {
  requests: number;
  billed: number;
  /** The message bodies' size in all, in bytes. */
  bytes: number;
}

/**
 * Counts the SendMessage and SendMessageBatch requests a client makes from now on, and what AWS bills
 * for them; `take()` returns the count so far and starts again from zero.
 */
export function countSqsSends(client: SQSClient): { take(): SqsSends } {
  let count: SqsSends = { requests: 0, billed: 0, bytes: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (SENDS.has(context.commandName ?? '')) {
        const input = args.input as { MessageBody?: string; Entries?: Array<{ MessageBody?: string }> };
        const bodies = input.Entries?.map((entry) => entry.MessageBody ?? '') ?? [input.MessageBody ?? ''];
        const bytes = bodies.reduce((sum, body) => sum + Buffer.byteLength(body), 0);
        count.requests += 1;
        count.bytes += bytes;
        count.billed += Math.max(1, Math.ceil(bytes / BILLED_CHUNK_BYTES));
      }
      return next(args);
    },
    { step: 'initialize', name: 'benchSqsSendCounter' },
  );
  return {
    take() {
      const taken = count;
      count = { requests: 0, billed: 0, bytes: 0 };
      return taken;
    },
  };
}
