'use strict';
/**
 * A local osls plugin: one CloudWatch alarm on Errors and one on Throttles for every function of the
 * service, made from the compiled functions so that a function added to serverless.yml is watched
 * without anyone remembering to. One alarm per function rather than a metric-math alarm over all of
 * them: such an alarm takes at most 10 metrics (the service has more functions), and the alarm's
 * name tells at once which function fails. They notify the stack's AlarmTopic (serverless.yml).
 */
const WATCHED = [
  { metric: 'Errors', suffix: 'ErrorsAlarm', what: 'failed (an uncaught error, a crash or a timeout)' },
  { metric: 'Throttles', suffix: 'ThrottlesAlarm', what: 'was throttled (reserved or account concurrency exhausted)' },
];

/** The alarms of one function, by logical id. */
function functionAlarms(functionLogicalId, functionName) {
  const alarms = {};
  for (const { metric, suffix, what } of WATCHED) {
    alarms[`${functionLogicalId}${suffix}`] = {
      Type: 'AWS::CloudWatch::Alarm',
      Properties: {
        AlarmName: `${functionName}-${metric.toLowerCase()}`,
        AlarmDescription: `${functionName} ${what} in the last 5 minutes (README: Operations).`,
        Namespace: 'AWS/Lambda',
        MetricName: metric,
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionLogicalId } }],
        Statistic: 'Sum',
        Period: 300,
        EvaluationPeriods: 1,
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: 'AlarmTopic' }],
        OKActions: [{ Ref: 'AlarmTopic' }],
      },
    };
  }
  return alarms;
}

class FunctionAlarms {
  constructor(serverless) {
    this.hooks = {
      // After the functions are compiled and the custom resources merged (AlarmTopic among them).
      'before:package:finalize': () => {
        const { Resources } = serverless.service.provider.compiledCloudFormationTemplate;
        const naming = serverless.getProvider('aws').naming;
        for (const name of serverless.service.getAllFunctions()) {
          const { name: functionName } = serverless.service.getFunction(name);
          Object.assign(Resources, functionAlarms(naming.getLambdaLogicalId(name), functionName));
        }
      },
    };
  }
}

module.exports = FunctionAlarms;
