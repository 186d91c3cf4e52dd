import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logger } from '#shared/log';

/**
 * The suite's own CloudWatch metrics (Powertools Metrics), in namespace HubFolio with the dimension
 * service=hubfolio: written as Embedded Metric Format lines in the function's log, one per
 * invocation (the flush is in every function's middy stack: shared/handler.ts), so that recording
 * one costs no API call. The tests and `npm start` turn them off (POWERTOOLS_METRICS_DISABLED).
 * serverless.yml's alarms name these metrics.
 */
const METRICS_NAMESPACE = 'HubFolio';

/**
 * Powertools' own notices go to the JSON logs. Most invocations record nothing (GET /health, an
 * empty relay run): its "no application metrics to publish" warning is the rule, not news.
 */
const notices = {
  debug: (message: string) => logger.debug(message),
  info: (message: string) => logger.info(message),
  warn: (message: string) =>
    message.startsWith('No application metrics') ? logger.debug(message) : logger.warn(message),
  error: (message: string) => logger.error(message),
};

export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'hubfolio', logger: notices });

/** Predictions answered by one call to predict(), by the model version that scored them, and how long the call took. */
export function recordPredictions(modelVersion: string, count: number, latencyMs: number): void {
  metrics.addDimension('model_version', modelVersion);
  metrics.addMetric('PredictionsServed', MetricUnit.Count, count);
  metrics.addMetric('PredictionLatency', MetricUnit.Milliseconds, latencyMs);
}

const REGISTRATION_METRICS = {
  registered: 'ModelsRegistered',
  refused: 'ModelsRefused',
  failed: 'ModelRegistrationsFailed',
} as const;

/**
 * What became of one model file handed to the registration service: registered (it has a version),
 * refused (not a usable model: nothing stored), failed (stored, but not versioned yet, or an error).
 */
export function recordRegistration(outcome: keyof typeof REGISTRATION_METRICS): void {
  metrics.addMetric(REGISTRATION_METRICS[outcome], MetricUnit.Count, 1);
}

/** What the telemetry forwarder did with a batch's predictions. */
export function recordTelemetry(counts: { delivered: number; retried: number; parked: number }): void {
  metrics.addMetric('TelemetryDelivered', MetricUnit.Count, counts.delivered);
  metrics.addMetric('TelemetryRetried', MetricUnit.Count, counts.retried);
  metrics.addMetric('TelemetryParked', MetricUnit.Count, counts.parked);
}

/** How long the oldest prediction ThingsBoard does not have yet has waited (0: none waits), each relay run. */
export function recordOldestUndelivered(seconds: number): void {
  metrics.addMetric('OldestUndeliveredAge', MetricUnit.Seconds, seconds);
}
