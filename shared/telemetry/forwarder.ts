import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import type pg from 'pg';
import { config } from '#shared/config';
import { pool } from '#shared/db';
import { logger } from '#shared/log';
import { recordTelemetry } from '#shared/metrics';
import { packMessages, singleBody, type Prediction } from '#prediction/message';
import { recordConsumerOutcomes, type ConsumerOutcomes } from '#prediction/store';
import { sqs } from '#prediction/queue';
import { sendMessages, type OutgoingMessage } from '#aws/sqs';
import { thingsBoard, type DeliveryReport, type ThingsBoardClient } from '#clients/thingsboard/client';
import { toTelemetryPoint, type TelemetryPoint } from '#telemetry/points';
import { ATTRIBUTES, carriedAttributes, readRecord, text, type ReadRecord } from '#telemetry/records';

/**
 * The telemetry consumer: queued predictions → one ThingsBoard request per batch. A record holds one
 * prediction (a single message) or several (an envelope, from a batch: shared/prediction/message.ts);
 * each prediction is handled on its own, and what goes back on the queue goes per record.
 *
 * Every prediction ends in exactly one of five ways, and only the last is reported to SQS as failed;
 * each is recorded on the prediction's row, where the relay (shared/prediction/relay.ts) finds
 * whatever ThingsBoard does not have once its message is gone:
 * - delivered: ThingsBoard took the point; the row gets `delivered_at` and is done.
 * - waiting: ThingsBoard is not configured (THINGSBOARD_URL or its token unset): the record is
 *   acknowledged and the prediction waits in PostgreSQL, which the relay re-sends once it is
 *   configured; one warning per container says so. Nothing cycles through the queue meanwhile.
 * - parked: it can never be delivered as it is (not a prediction message, or ThingsBoard's parser
 *   refuses it, or ThingsBoard failed it for over an hour): the original body (for a bad entry of
 *   an envelope, that entry alone as a single message) goes to the DLQ with a `reason` attribute,
 *   where `npm run dlq:redrive` can send it back once the cause is fixed (the relay leaves parked
 *   rows alone).
 * - retried: ThingsBoard failed transiently (outage, rate limit, timeout) or refused its
 *   configuration (a wrong token or URL): a
 *   copy of the record's undelivered predictions goes back on the queue with a growing
 *   DelaySeconds and an `attempt` counter, and the original counts as handled. The queue's own
 *   redrive (5 receives, visibility 60 s) could hold an outage for about 4 minutes only; copies are
 *   new messages, so an outage of any length up to the retry window leaves the DLQ alone, and the
 *   copies come back at most 60 s apart, so a recovered ThingsBoard gets the whole backlog within
 *   about a minute.
 * - failed: a copy or a DLQ message could not be sent: SQS redelivers the whole original record,
 *   and its receive count (redrive to the DLQ after 5) is the fallback.
 * A re-sent point carries the prediction's own ts, so ThingsBoard overwrites it: any duplicate that
 * this at-least-once path makes (a copy sent but the original redelivered) never adds a data point.
 */

/** Whole-batch budget for ThingsBoard: the client waits 5 s per request and bisecting a poison batch of 50 takes about 12 requests; what is unfinished is retried. The Lambda timeout (serverless.yml) leaves room for the bookkeeping after it. */
const BATCH_DEADLINE_MS = 20_000;
/** Delays double from the base up to this multiple of it: 5, 10, 20, 40, 60, 60 … s by default. */
const MAX_DELAY_FACTOR = 12;
/** A message ThingsBoard keeps failing is parked after waiting this long in all. */
export const RETRY_WINDOW_SECONDS = 3_600;

/** The delay before the `attempt`-th retry (1-based). */
export function retryDelaySeconds(attempt: number, baseSeconds: number): number {
  return Math.min(baseSeconds * 2 ** Math.min(attempt - 1, 30), baseSeconds * MAX_DELAY_FACTOR);
}

/** How long a message has waited in retry delays after `attempts` failed deliveries. */
export function waitedSeconds(attempts: number, baseSeconds: number): number {
  const longest = baseSeconds * MAX_DELAY_FACTOR;
  let total = 0;
  let attempt = 1;
  for (; attempt <= attempts && retryDelaySeconds(attempt, baseSeconds) < longest; attempt += 1)
    total += retryDelaySeconds(attempt, baseSeconds);
  return total + Math.max(0, attempts - attempt + 1) * longest;
}

export interface ForwarderOptions {
  telemetry: ThingsBoardClient;
  sqs: SQSClient;
  queueUrl: string;
  /** Unset: parked records are reported failed instead, and the queue's redrive policy moves them. */
  dlqUrl: string | undefined;
  db: pg.Pool;
  retryBaseSeconds: number;
  batchDeadlineMs: number;
}

export type ForwardBatch = (records: SQSRecord[]) => Promise<SQSBatchResponse>;

/** What goes to the DLQ for one record: a body (the record's, or a part of it) and why. */
interface Parked {
  record: SQSRecord;
  body: string;
  reason: string;
  predictionId?: string;
}

/** What goes back on the queue for one record: the predictions still to deliver, and when. */
interface Retry {
  record: SQSRecord;
  bodies: string[];
  predictionIds: string[];
  attempt: number;
  delaySeconds: number;
}

/** A prediction of the batch, with the record it came in. */
interface Item {
  record: SQSRecord;
  read: ReadRecord;
  prediction: Prediction;
}

/** The items by record, each record's in the order they came. */
function byRecord(items: Item[]): Item[][] {
  const groups = new Map<SQSRecord, Item[]>();
  for (const item of items) {
    const group = groups.get(item.record);
    if (group) group.push(item);
    else groups.set(item.record, [item]);
  }
  return [...groups.values()];
}

/**
 * What re-sends these predictions of one record: a single message as it came, or (part of) an envelope
 * packed again, so that only what is still undelivered travels. (Retried entries lose fields this
 * consumer does not read; it reads all it needs.)
 */
function bodiesOf(items: Item[]): string[] {
  const [first] = items as [Item, ...Item[]];
  if (first.read.single) return [first.record.body];
  return packMessages(items.map((item) => item.prediction)).map((message) => message.body);
}

/** Builds a forwarder; what `options` leaves out comes from the container (configuration, clients, pool). */
export function createForwarder(options: Partial<ForwarderOptions> = {}): ForwardBatch {
  const o: ForwarderOptions = {
    telemetry: options.telemetry ?? thingsBoard(),
    sqs: options.sqs ?? sqs(),
    queueUrl: options.queueUrl ?? config().PREDICTIONS_QUEUE_URL,
    dlqUrl: 'dlqUrl' in options ? options.dlqUrl : config().PREDICTIONS_DLQ_URL,
    db: options.db ?? pool(),
    retryBaseSeconds: options.retryBaseSeconds ?? config().TELEMETRY_RETRY_BASE_SECONDS,
    batchDeadlineMs: options.batchDeadlineMs ?? BATCH_DEADLINE_MS,
  };
  /** Configuration problems this forwarder (the container's) has already reported. */
  const reportedConfiguration = new Set<string>();

  /** ThingsBoard's answer for the batch, or "all transient" when it does not finish in time. */
  async function deliver(points: TelemetryPoint[]): Promise<DeliveryReport> {
    const unfinished = (): DeliveryReport => ({ delivered: [], transient: [...points], permanent: [], requests: 0 });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<DeliveryReport>((resolve) => {
      timer = setTimeout(() => {
        logger.warn('ThingsBoard did not finish the batch in time; retrying it', {
          points: points.length,
          deadlineMs: o.batchDeadlineMs,
        });
        resolve(unfinished());
      }, o.batchDeadlineMs);
    });
    const delivery = o.telemetry.deliverPoints(points).catch((error: unknown) => {
      logger.error('telemetry client failed', { error: error as Error });
      return unfinished();
    });
    try {
      return await Promise.race([delivery, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Notes what became of each prediction, so that the relay re-sends only what ThingsBoard may not have. */
  async function recordOutcomes(outcomes: ConsumerOutcomes): Promise<void> {
    try {
      await recordConsumerOutcomes(o.db, outcomes);
    } catch (error) {
      // Failing the records would only re-send them. Unrecorded rows look silent to the relay, which
      // re-sends them after its grace: ThingsBoard overwrites the points it has.
      logger.error('could not record delivered_at; the points were delivered and the relay will send them again', {
        predictions: outcomes.delivered.length,
        error: error as Error,
      });
    }
  }

  let warnedWaiting = false;
  /** Once per container: the predictions are not lost, they wait for an operator. */
  function warnWaiting(reason: string, count: number): void {
    if (warnedWaiting) return;
    warnedWaiting = true;
    logger.warn('ThingsBoard is not configured: predictions wait in PostgreSQL and are sent once it is', {
      reason,
      waiting: count,
    });
  }

  /** Sends the messages; returns the records of those that could not be sent (SQS must redeliver them). */
  async function send(
    queueUrl: string,
    what: string,
    messages: Array<Omit<OutgoingMessage, 'id'> & { record: SQSRecord }>,
  ): Promise<SQSRecord[]> {
    if (messages.length === 0) return [];
    // A record may become several messages (an envelope's bad entries, the rest retried): ids are positions.
    const { failed } = await sendMessages(
      o.sqs,
      queueUrl,
      messages.map((message, i) => ({ ...message, id: String(i) })),
    );
    if (failed.length > 0)
      logger.error(`could not send ${what}; SQS will redeliver the originals`, {
        count: failed.length,
        reason: failed[0]!.reason,
      });
    return [...new Set(failed.map((f) => messages[Number(f.id)]!.record))];
  }

  async function park(parked: Parked[]): Promise<SQSRecord[]> {
    // A line per record, with the SQS message id: what `npm run dlq:redrive` and the DLQ show.
    for (const p of parked)
      logger.warn('parked an undeliverable message', {
        message_id: p.record.messageId,
        prediction_id: p.predictionId,
        reason: p.reason,
      });
    if (parked.length === 0) return [];
    if (!o.dlqUrl) {
      logger.error(
        'PREDICTIONS_DLQ_URL is not set: undeliverable messages stay on the queue until its redrive policy moves them',
        { count: parked.length },
      );
      return [...new Set(parked.map((p) => p.record))];
    }
    return send(
      o.dlqUrl,
      'parked messages to the DLQ',
      parked.map((p) => ({
        record: p.record,
        body: p.body,
        attributes: {
          ...carriedAttributes(p.record),
          [ATTRIBUTES.reason]: text(p.reason),
          ...(p.predictionId ? { [ATTRIBUTES.predictionId]: text(p.predictionId) } : {}),
        },
      })),
    );
  }

  async function retry(retries: Retry[]): Promise<SQSRecord[]> {
    return send(
      o.queueUrl,
      'retry copies to the queue',
      retries.flatMap((r) =>
        r.bodies.map((body) => ({
          record: r.record,
          body,
          delaySeconds: r.delaySeconds,
          attributes: {
            ...carriedAttributes(r.record),
            [ATTRIBUTES.attempt]: { DataType: 'Number', StringValue: String(r.attempt) },
          },
        })),
      ),
    );
  }

  /** A prediction parked alone: its record's body when that was all of it, else its own single message. */
  const parkedAlone = ({ record, read, prediction }: Item, reason: string): Parked => ({
    record,
    body: read.single ? record.body : singleBody(prediction),
    reason,
    predictionId: prediction.prediction_id,
  });

  return async function forwardBatch(records) {
    const parked: Parked[] = [];
    const retries: Retry[] = [];
    const byPoint = new Map<TelemetryPoint, Item>();
    for (const record of records) {
      const read = readRecord(record);
      for (const prediction of read.predictions)
        byPoint.set(toTelemetryPoint(prediction), { record, read, prediction });
      for (const unreadable of read.unreadable) parked.push({ record, ...unreadable });
    }

    // Not configured at all: nothing to try, and a copy on the queue would only come back a minute later.
    const missing = o.telemetry.missingConfiguration;
    if (missing !== undefined && byPoint.size > 0) warnWaiting(missing, byPoint.size);
    const report: DeliveryReport =
      missing === undefined
        ? await deliver([...byPoint.keys()])
        : { delivered: [], transient: [], permanent: [], requests: 0 };
    const item = (point: TelemetryPoint) => byPoint.get(point)!;
    const ids = (items: Item[]) => items.map(({ prediction }) => prediction.prediction_id);
    const parkedIds: string[] = [];

    for (const { point, reason } of report.permanent) {
      parked.push(parkedAlone(item(point), `ThingsBoard refused the data point: ${reason}`));
      parkedIds.push(item(point).prediction.prediction_id);
    }
    // What ThingsBoard did not take goes back (or to the DLQ) per record: an envelope's undelivered
    // predictions travel together again, with the record's own retry counter.
    for (const items of byRecord(report.transient.map(item))) {
      const { record, read } = items[0]!;
      const { attempt } = read;
      if (waitedSeconds(attempt, o.retryBaseSeconds) >= RETRY_WINDOW_SECONDS) {
        const minutes = Math.floor(waitedSeconds(attempt, o.retryBaseSeconds) / 60);
        const reason = `ThingsBoard unreachable for over ${minutes >= 60 ? 'an hour' : `${minutes} minutes`} (${attempt + 1} attempts)`;
        const predictionId = items.length === 1 ? items[0]!.prediction.prediction_id : undefined;
        for (const body of bodiesOf(items)) parked.push({ record, body, reason, predictionId });
        parkedIds.push(...ids(items));
      } else {
        retries.push({
          record,
          bodies: bodiesOf(items),
          predictionIds: ids(items),
          attempt: attempt + 1,
          delaySeconds: retryDelaySeconds(attempt + 1, o.retryBaseSeconds),
        });
      }
    }
    if (report.configuration) {
      // Waiting for an operator is not a failed delivery: the counter stays, and the copies wait the
      // longest delay so that an unconfigured stack costs one send per message a minute, not more.
      const delaySeconds = o.retryBaseSeconds * MAX_DELAY_FACTOR;
      // Said once per container and reason (a warning: nothing failed), not at every batch each minute.
      const { reason } = report.configuration;
      const log = reportedConfiguration.has(reason) ? logger.debug : logger.warn;
      reportedConfiguration.add(reason);
      log.call(logger, 'ThingsBoard is not configured correctly: predictions wait on the queue until it is', {
        reason,
        waiting: report.configuration.points.length,
        retryInSeconds: delaySeconds,
      });
      for (const items of byRecord(report.configuration.points.map(item))) {
        const { record, read } = items[0]!;
        retries.push({
          record,
          bodies: bodiesOf(items),
          predictionIds: ids(items),
          attempt: read.attempt,
          delaySeconds,
        });
      }
    }

    const delivered = report.delivered.map((point) => item(point).prediction.prediction_id);
    const outcomes: ConsumerOutcomes = {
      delivered,
      requeued: retries.flatMap((r) => r.predictionIds),
      parked: parkedIds,
      waiting: {
        ids: missing === undefined ? [] : ids([...byPoint.values()]),
        reason: `waiting for ThingsBoard: ${missing ?? ''}`,
      },
    };
    const [, unparked, unretried] = await Promise.all([recordOutcomes(outcomes), park(parked), retry(retries)]);
    const failures = new Set([...unparked, ...unretried]);
    // Predictions delivered and sent back to wait; messages parked (a malformed one holds no prediction).
    recordTelemetry({ delivered: delivered.length, retried: outcomes.requeued.length, parked: parked.length });
    logger.info('telemetry batch forwarded', {
      received: records.length,
      predictions: byPoint.size,
      delivered: delivered.length,
      parked: parked.length,
      retried: retries.length,
      waiting: outcomes.waiting.ids.length,
      failed: failures.size,
      requests: report.requests,
    });
    return { batchItemFailures: [...failures].map((record) => ({ itemIdentifier: record.messageId })) };
  };
}

let containerForwarder: ForwardBatch | undefined;

/** The container's forwarder, built on first use. */
export function forwardBatch(records: SQSRecord[]): Promise<SQSBatchResponse> {
  containerForwarder ??= createForwarder();
  return containerForwarder(records);
}
