/**
 * `npm run dlq:redrive`: moves every message of the predictions dead-letter queue back to the
 * predictions queue once the cause is fixed (ThingsBoard back, a token set, a consumer that reads a
 * new message version), with a fresh retry counter, and says how many it moved.
 *
 * Against AWS or an emulator, set PREDICTIONS_QUEUE_URL and PREDICTIONS_DLQ_URL (and
 * AWS_ENDPOINT_URL_SQS for an emulator). With neither set it works on the local stack of
 * `npm start`: the queues hubfolio-local-predictions[-dlq] on AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL
 * when the stack uses an external emulator, else on the embedded fauxqs that the running `npm start`
 * names in .local/stack.json. No database needed.
 */
import { pathToFileURL } from 'node:url';
import {
  DeleteMessageBatchCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SQSClient,
  type MessageAttributeValue,
} from '@aws-sdk/client-sqs';
import { ATTRIBUTES } from '#telemetry/records';
import { sendMessages } from '#aws/sqs';
import { S3RVER_CREDENTIALS } from './local/emulators.ts';
import { readRunningStack } from './local/running.ts';
import { parseScriptArgs } from './usage.ts';

export interface RedriveOptions {
  sqs: SQSClient;
  dlqUrl: string;
  queueUrl: string;
  /** How long a received message stays hidden while it is being moved (it reappears if the move fails). */
  visibilitySeconds?: number;
}

export interface RedriveResult {
  moved: number;
  /** Messages that stay in the DLQ because re-sending them failed, with the first reason. */
  failed: number;
  failureReason?: string;
}

const OURS = new Set<string>(Object.values(ATTRIBUTES));

/** The message's attributes without the consumer's own (retry counter, parking reason): a redriven message starts afresh. */
function carried(
  attributes: Record<string, MessageAttributeValue> | undefined,
): Record<string, MessageAttributeValue> | undefined {
  const kept = Object.entries(attributes ?? {}).filter(([name]) => !OURS.has(name));
  return kept.length > 0 ? Object.fromEntries(kept) : undefined;
}

/**
 * Moves the DLQ's messages to the queue: each is deleted from the DLQ only after the queue took it
 * (a crash in between leaves a duplicate, which ThingsBoard overwrites, never a loss). A message
 * that arrives in the DLQ after the redrive started (a poison message parked again by a running
 * consumer) is left there, so the redrive always ends.
 */
export async function redriveDlq(options: RedriveOptions): Promise<RedriveResult> {
  const { sqs, dlqUrl, queueUrl } = options;
  const startedAt = Date.now();
  const result: RedriveResult = { moved: 0, failed: 0 };
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: dlqUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1, // a long poll asks every SQS server, so an empty answer means empty
        VisibilityTimeout: options.visibilitySeconds ?? 60,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['SentTimestamp'],
      }),
    );
    if (Messages.length === 0) return result;
    // Parked up to the millisecond the redrive started: one sent in that same millisecond was parked before it.
    const toMove = Messages.filter((m) => Number(m.Attributes?.SentTimestamp ?? 0) <= startedAt);
    if (toMove.length === 0) continue;
    const { sent, failed } = await sendMessages(
      sqs,
      queueUrl,
      toMove.map((m) => ({ id: m.ReceiptHandle!, body: m.Body ?? '', attributes: carried(m.MessageAttributes) })),
    );
    if (failed.length > 0) {
      result.failed += failed.length;
      result.failureReason ??= failed[0]!.reason;
    }
    if (sent.length === 0) return result; // the queue takes nothing: stop rather than spin
    for (let i = 0; i < sent.length; i += 10) {
      const entries = sent
        .slice(i, i + 10)
        .map((receiptHandle, j) => ({ Id: String(j), ReceiptHandle: receiptHandle }));
      const out = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: dlqUrl, Entries: entries }));
      // Not deleted: it is back in the DLQ after its visibility timeout and also on the queue; a
      // second delivery overwrites the same data point, so it still counts as moved.
      if (out.Failed?.length)
        console.warn(`warning: ${out.Failed.length} moved messages could not be deleted from the DLQ`);
    }
    result.moved += sent.length;
  }
}

/** The queues to work on, from the environment or the local stack's defaults. */
async function queuesFromEnv(
  env: NodeJS.ProcessEnv,
): Promise<{ sqs: SQSClient; queueUrl: string; dlqUrl: string; where: string }> {
  const region = env.AWS_REGION || 'us-east-1';
  const endpoint = env.AWS_ENDPOINT_URL_SQS || env.AWS_ENDPOINT_URL;
  if (env.PREDICTIONS_QUEUE_URL || env.PREDICTIONS_DLQ_URL) {
    if (!env.PREDICTIONS_QUEUE_URL || !env.PREDICTIONS_DLQ_URL) {
      throw new Error(
        'Set both PREDICTIONS_QUEUE_URL and PREDICTIONS_DLQ_URL, or neither to use the local stack of `npm start`.',
      );
    }
    const sqs = new SQSClient({ region, ...(endpoint ? { endpoint } : {}) });
    return {
      sqs,
      queueUrl: env.PREDICTIONS_QUEUE_URL,
      dlqUrl: env.PREDICTIONS_DLQ_URL,
      where: endpoint ?? `AWS ${region}`,
    };
  }
  const running = endpoint ? undefined : readRunningStack();
  const localEndpoint = endpoint ?? running?.sqs;
  if (!localEndpoint) {
    throw new Error(
      'No queues to work on: `npm start` is not running here (it writes .local/stack.json), and neither ' +
        'PREDICTIONS_QUEUE_URL and PREDICTIONS_DLQ_URL nor AWS_ENDPOINT_URL_SQS are set.',
    );
  }
  // The embedded SQS accepts any signature; the stack signs with the s3rver pair.
  const credentials = env.AWS_ACCESS_KEY_ID
    ? undefined
    : { accessKeyId: S3RVER_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: S3RVER_CREDENTIALS.AWS_SECRET_ACCESS_KEY };
  const sqs = new SQSClient({
    region,
    endpoint: localEndpoint,
    maxAttempts: 1,
    ...(credentials ? { credentials } : {}),
  });
  if (running) return { sqs, queueUrl: running.queueUrl, dlqUrl: running.dlqUrl, where: localEndpoint };
  const url = async (name: string) => {
    try {
      return (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
    } catch (error) {
      throw new Error(
        `Cannot find the queue ${name} at ${localEndpoint} (${(error as Error).message || (error as Error).name}). ` +
          'Is `npm start` running? Otherwise set PREDICTIONS_QUEUE_URL and PREDICTIONS_DLQ_URL (and AWS_ENDPOINT_URL_SQS for an emulator).',
        { cause: error },
      );
    }
  };
  const [queueUrl, dlqUrl] = await Promise.all([
    url('hubfolio-local-predictions'),
    url('hubfolio-local-predictions-dlq'),
  ]);
  return { sqs, queueUrl, dlqUrl, where: localEndpoint };
}

async function main(): Promise<void> {
  parseScriptArgs({
    command: 'npm run dlq:redrive',
    description:
      'Moves every message of the predictions dead-letter queue back to the predictions queue, with a fresh retry\n' +
      'count, once the cause is fixed, and says how many it moved. Without queue URLs it works on the running `npm start`.',
    environment: {
      'PREDICTIONS_QUEUE_URL, PREDICTIONS_DLQ_URL': 'the queues (both, or neither for the local stack)',
      AWS_ENDPOINT_URL_SQS: 'an SQS emulator (LocalStack) instead of AWS',
      LOCAL_DATA_DIR: 'where the running `npm start` says what it runs (.local)',
    },
  });
  // Lambda runs Node 22; the SDK's notice about this machine's Node 20 would bury the one line that matters.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { sqs, queueUrl, dlqUrl, where } = await queuesFromEnv(process.env);
  const { moved, failed, failureReason } = await redriveDlq({ sqs, queueUrl, dlqUrl });
  console.log(`Moved ${moved} message${moved === 1 ? '' : 's'} from ${dlqUrl} to ${queueUrl} (${where}).`);
  if (failed > 0) {
    console.error(
      `${failed} could not be moved and stay in the dead-letter queue (${failureReason}); run the command again.`,
    );
    process.exitCode = 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: Error) => {
    console.error(`dlq:redrive failed: ${error.message}`);
    process.exit(1);
  });
}
