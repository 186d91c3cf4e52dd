import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import AdmZip from 'adm-zip';
import type { APIGatewayProxyResultV2 } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEATURES } from '#prediction/features';
import { POOL_MAX } from '#shared/db';
import { s3NotificationEvent, toLambdaRecord } from '../../scripts/local/bridge.ts';
import { queueArn, s3Client, sqsClient } from '../../scripts/local/resources.ts';
import { buildLinearRegressor } from '../../scripts/onnx-builder.ts';
import { startFakeMlflow } from '../fakes/mlflow.ts';
import { startFakeSsm } from '../fakes/ssm.ts';
import { startFakeThingsBoard } from '../fakes/thingsboard.ts';
import { drainQueue, query, SEED_EXAMPLE, testEndpoints } from '../helpers/fixtures.ts';
import { httpEvent, invokeHttp } from '../helpers/lambda.ts';
import {
  buildLayer,
  cleanEnv,
  lambdaNode,
  packageService,
  run,
  serverless,
  serviceFunctions,
  startFunction,
  type LambdaFunction,
  type Template,
} from '../helpers/packaged.ts';

/**
 * What `serverless package` makes, before anything is deployed: one small bundle per function with
 * ONNX Runtime left to the layer, one IAM role per function with only what its code calls (the
 * secrets' SSM parameters included), no secret in any function's environment, and a deploy that
 * refuses a package made without the database's parameter; and every function of it, unzipped
 * beside the layer, answering a real event of its kind under Node 22. One file, so that the
 * packages are made once and one after the other (osls builds both in the repository's .serverless/).
 */

const work = mkdtempSync(join(tmpdir(), 'hubfolio-package-'));
const packageDir = join(work, 'package');
/** The same service packaged as CI does, with none of the settings (nothing ships from it). */
const bareDir = join(work, 'bare');
const optDir = join(work, 'opt');
let template: Template;
let functions: Map<string, LambdaFunction>;
let node22: string;

/**
 * What `npm run deploy` is given (README: Deploying): the names of the secrets' SSM parameters, a
 * VPC, an address for the alarms.
 */
const DEPLOY_SETTINGS = {
  DATABASE_URL_PARAMETER: '/hubfolio/dev/database-url',
  THINGSBOARD_URL: 'https://thingsboard.example.com',
  THINGSBOARD_DEVICE_TOKEN_PARAMETER: '/hubfolio/dev/thingsboard-device-token',
  VPC_SUBNET_IDS: 'subnet-0abc12345,subnet-0def67890',
  VPC_SECURITY_GROUP_IDS: 'sg-0123abcd',
  ALARM_EMAIL: 'ops@example.com',
};

beforeAll(async () => {
  [node22] = await Promise.all([
    lambdaNode(),
    buildLayer(optDir),
    packageService(packageDir, DEPLOY_SETTINGS).then(() => packageService(bareDir)),
  ]);
  template = JSON.parse(readFileSync(join(packageDir, 'cloudformation-template-update-stack.json'), 'utf8'));
  functions = serviceFunctions(template);
}, 600_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A few MB: the bundles are ~1 MB; the raw package was ~122 MB per function. */
const MAX_ZIP_BYTES = 5 * 2 ** 20;
const FUNCTIONS = [
  'predict',
  'predictBatch',
  'health',
  'openapi',
  'docs',
  'relay',
  'modelUpload',
  'modelUploadUrl',
  'modelExport',
  'modelInfo',
  'modelPromote',
  'modelIngest',
  'modelSync',
  'telemetryForwarder',
];

describe('a plain `serverless package`', () => {
  it('packages every function', () => {
    expect([...functions.keys()].sort()).toEqual([...FUNCTIONS].sort());
  });

  it.each(FUNCTIONS)('ships %s as one small esbuild bundle, without ONNX Runtime', (name) => {
    const fn = functions.get(name)!;
    const zip = join(packageDir, `${name}.zip`);
    expect(fn.Properties.Code.S3Key.endsWith(`/${name}.zip`)).toBe(true);
    expect(statSync(zip).size).toBeLessThan(MAX_ZIP_BYTES);
    const entries = new AdmZip(zip).getEntries().map((entry) => entry.entryName);
    const handlerFile = `${fn.Properties.Handler.slice(0, fn.Properties.Handler.lastIndexOf('.'))}.js`;
    expect(entries).toContain(handlerFile);
    // No native code, no installed packages, no TypeScript: a bundle, and ONNX Runtime from the layer.
    // The one exception: docs reads Swagger UI's three built files at run time (shared/api/docs.ts).
    const allowed = name === 'docs' ? /^node_modules\/swagger-ui-dist\/[\w.-]+\.(js|css|png)$/ : /^$/;
    const foreign = entries.filter((e) => !allowed.test(e));
    expect(foreign.filter((e) => /\.node$|libonnxruntime|onnxruntime|node_modules\/|\.ts$/.test(e))).toEqual([]);
  });

  it('gives every function the onnxruntime layer, which the bundles require by name', () => {
    for (const fn of functions.values())
      expect(fn.Properties.Layers).toEqual([{ 'Fn::ImportValue': 'hubfolio-onnxruntime-layer-dev-arn' }]);
    const predict = new AdmZip(join(packageDir, 'predict.zip')).readAsText('functions/predict/handler.js');
    expect(predict).toContain('require("onnxruntime-node")');
  });
});

const BUCKET = 'arn:aws:s3:::hubfolio-dev-models';
/** Every action a function's role allows, as "action resource", with resources named for reading. */
function grants(name: string): string[] {
  return statements(name).flatMap((statement) => {
    expect(statement.Effect).toBe('Allow');
    return [statement.Action]
      .flat()
      .flatMap((action) => [statement.Resource].flat().map((resource) => `${action} ${resourceName(name, resource)}`));
  });
}
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}
/** Every statement of a function's role. */
function statements(name: string): Statement[] {
  const role = template.Resources[functions.get(name)!.Properties.Role['Fn::GetAtt'][0]]!;
  const policies = role.Properties.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }>;
  return policies.flatMap((policy) => policy.PolicyDocument.Statement);
}
/** This account's and region's ARNs, as CloudFormation joins them, read: "parameter /name", "kms key/*". */
const ARN_PREFIX = /^arn:\{AWS::Partition\}:(ssm|kms):\{AWS::Region\}:\{AWS::AccountId\}:/;
function resourceName(fn: string, resource: unknown): string {
  if (typeof resource === 'string') return resource.replace(BUCKET, 'bucket');
  const getAtt = (resource as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
  if (getAtt) return getAtt[0];
  const join = (resource as { 'Fn::Join'?: [string, Array<string | { Ref: string }>] })['Fn::Join'];
  if (join)
    return join[1]
      .map((part) => (typeof part === 'string' ? part : `{${part.Ref}}`))
      .join(join[0])
      .replace(ARN_PREFIX, (_, service: string) => (service === 'ssm' ? '' : 'kms '))
      .replace(/^parameter/, 'parameter ');
  const condition = (resource as { 'Fn::If'?: [string, unknown, unknown] })['Fn::If'];
  if (condition) return `${resourceName(fn, condition[1])} if ${condition[0]}`;
  const sub = (resource as { 'Fn::Sub'?: string })['Fn::Sub'] ?? '';
  return sub.includes(`:log-group:/aws/lambda/hubfolio-functions-dev-${fn}:`)
    ? 'own log group'
    : JSON.stringify(resource);
}

const LOGS = ['logs:CreateLogStream', 'logs:CreateLogGroup', 'logs:PutLogEvents'].map((a) => `${a} own log group`);
const list = 's3:ListBucket bucket';
const readServing = ['s3:GetObject bucket/serving/*', 's3:GetObject bucket/models/*'];
const readUploads = 's3:GetObject bucket/uploads/*';
const exportAndPublish = ['s3:PutObject bucket/models/*', 's3:PutObject bucket/serving/*'];
/** The secrets' parameters (DEPLOY_SETTINGS), and their decryption through SSM. */
const readDatabaseUrl = ['ssm:GetParameter parameter /hubfolio/dev/database-url', 'kms:Decrypt kms key/*'];
const readTelemetrySecrets = [
  ...readDatabaseUrl,
  'ssm:GetParameter parameter /hubfolio/dev/thingsboard-device-token if DeviceTokenParameterGiven',
];
/** An asynchronous invocation's on-failure destination, which Lambda sends to with the function's role. */
const reportFailure = 'sqs:SendMessage FailedInvocationsQueue';
const eventSource = (queue: string) =>
  ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'].map((a) => `${a} ${queue}`);

/** What each function's code calls (README: least privilege), and so all its role may do. */
const ROLES: Record<string, string[]> = {
  predict: [list, ...readServing, 'sqs:SendMessage PredictionsQueue', ...readDatabaseUrl],
  predictBatch: [list, ...readServing, 'sqs:SendMessage PredictionsQueue', ...readDatabaseUrl],
  health: [list, ...readServing, 'sqs:GetQueueAttributes PredictionsQueue', ...readTelemetrySecrets],
  openapi: [],
  docs: [],
  relay: ['sqs:SendMessage PredictionsQueue', ...readTelemetrySecrets, reportFailure],
  modelUpload: [
    list,
    ...readServing,
    readUploads,
    's3:PutObject bucket/uploads/*',
    ...exportAndPublish,
    ...readDatabaseUrl,
  ],
  modelUploadUrl: ['s3:PutObject bucket/incoming/*'],
  modelExport: [list, ...readServing, readUploads, 's3:PutObject bucket/models/*', ...readDatabaseUrl],
  modelInfo: [list, ...readServing, ...readDatabaseUrl],
  modelPromote: [list, ...readServing, readUploads, ...exportAndPublish, ...readDatabaseUrl],
  modelIngest: [
    list,
    ...readServing,
    readUploads,
    's3:GetObject bucket/incoming/*',
    's3:PutObject bucket/uploads/*',
    ...exportAndPublish,
    ...readDatabaseUrl,
    reportFailure,
  ],
  modelSync: [
    ...eventSource('ModelSyncQueue'),
    list,
    ...readServing,
    readUploads,
    ...exportAndPublish,
    'sqs:SendMessage ModelSyncQueue',
    ...readDatabaseUrl,
    reportFailure,
  ],
  telemetryForwarder: [
    ...eventSource('PredictionsQueue'),
    'sqs:SendMessage PredictionsQueue',
    'sqs:SendMessage PredictionsDeadLetterQueue',
    ...readTelemetrySecrets,
  ],
};

describe('the compiled template’s IAM roles', () => {
  it.each(FUNCTIONS)('let %s do only what its code calls', (name) => {
    expect(grants(name).sort()).toEqual([...LOGS, ...ROLES[name]!].sort());
  });

  it('give each function a role of its own, and hold no other role for functions', () => {
    const roles = [...functions.values()].map((fn) => fn.Properties.Role['Fn::GetAtt'][0]);
    expect(new Set(roles).size).toBe(FUNCTIONS.length);
    const allRoles = Object.entries(template.Resources).filter(([, r]) => r.Type === 'AWS::IAM::Role');
    // The one other role is osls's own, for the custom resource that adds the bucket notification.
    expect(allRoles.map(([id]) => id).sort()).toEqual([...roles, 'IamRoleCustomResourcesLambdaExecution'].sort());
  });

  it('keep predict from writing S3, relay from S3 altogether, and all but modelUploadUrl out of incoming/', () => {
    expect(grants('predict').filter((g) => /s3:(Put|Delete)/.test(g))).toEqual([]);
    expect(grants('relay').filter((g) => g.startsWith('s3:'))).toEqual([]);
    const writers = FUNCTIONS.filter((name) => grants(name).includes('s3:PutObject bucket/incoming/*'));
    expect(writers).toEqual(['modelUploadUrl']);
  });
});

/** Every Lambda function of a template (osls's custom-resource one too) and its environment. */
const environments = (of: Template) =>
  Object.entries(of.Resources)
    .filter(([, resource]) => resource.Type === 'AWS::Lambda::Function')
    .map(([id, resource]) => [id, (resource as LambdaFunction).Properties.Environment?.Variables ?? {}] as const);
const PLAIN_SECRETS = ['DATABASE_URL', 'THINGSBOARD_DEVICE_TOKEN', 'THINGSBOARD_USERNAME', 'THINGSBOARD_PASSWORD'];
const USES_DATABASE = FUNCTIONS.filter((name) => !['openapi', 'docs', 'modelUploadUrl'].includes(name));
const USES_THINGSBOARD = ['health', 'relay', 'telemetryForwarder'];

describe('the compiled template’s secrets', () => {
  it('puts no secret in plain text in any function’s environment', () => {
    for (const [id, variables] of environments(template)) {
      expect(
        Object.keys(variables).filter((name) => PLAIN_SECRETS.includes(name)),
        id,
      ).toEqual([]);
      expect(JSON.stringify(variables), id).not.toMatch(/postgres(ql)?:\/\//);
    }
  });

  it('gives the parameters’ names only to the functions that read them', () => {
    const given = (variable: string) =>
      FUNCTIONS.filter((name) => variable in (functions.get(name)!.Properties.Environment?.Variables ?? {}));
    expect(given('DATABASE_URL_PARAMETER')).toEqual(USES_DATABASE);
    expect(given('THINGSBOARD_DEVICE_TOKEN_PARAMETER')).toEqual(USES_THINGSBOARD);
    for (const name of USES_DATABASE)
      expect(functions.get(name)!.Properties.Environment!.Variables).toMatchObject({
        DATABASE_URL_PARAMETER: '/hubfolio/dev/database-url',
        // Amazon's CAs, RDS's among them, for sslmode=verify-full (Node 20+ runtimes leave them out).
        NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
      });
  });

  it('lets the roles decrypt the parameters only through SSM in their own region', () => {
    const decrypts = FUNCTIONS.flatMap(statements).filter((statement) => statement.Action.includes('kms:Decrypt'));
    expect(decrypts).toHaveLength(USES_DATABASE.length);
    for (const statement of decrypts)
      expect(statement.Condition).toEqual({
        StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['ssm.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } },
      });
  });

  it('grants the device token’s parameter only when one is given', async () => {
    const condition = (of: Template) => (of as Template & { Conditions: Record<string, unknown> }).Conditions;
    expect(condition(template)).toMatchObject({
      DeviceTokenParameterGiven: { 'Fn::Not': [{ 'Fn::Equals': ['/hubfolio/dev/thingsboard-device-token', ''] }] },
    });
    expect(condition(bareTemplate())).toMatchObject({
      DeviceTokenParameterGiven: { 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] },
    });
  });
});

/** The template's resources of a type, by logical id. */
const resourcesOf = (type: string, of: Template = template) =>
  Object.fromEntries(Object.entries(of.Resources).filter(([, resource]) => resource.Type === type));
const logicalId = (name: string) => `${name[0]!.toUpperCase()}${name.slice(1)}LambdaFunction`;
const alarmActions = { AlarmActions: [{ Ref: 'AlarmTopic' }], OKActions: [{ Ref: 'AlarmTopic' }] };
const bareTemplate = (): Template =>
  JSON.parse(readFileSync(join(bareDir, 'cloudformation-template-update-stack.json'), 'utf8'));

describe('the compiled template’s operations', () => {
  it('watches every function’s errors and throttles, one alarm each, notifying the alarm topic', () => {
    const alarms = resourcesOf('AWS::CloudWatch::Alarm');
    for (const name of FUNCTIONS)
      for (const metric of ['Errors', 'Throttles'])
        expect(alarms[`${logicalId(name)}${metric}Alarm`]?.Properties, `${name} ${metric}`).toMatchObject({
          Namespace: 'AWS/Lambda',
          MetricName: metric,
          Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId(name) } }],
          Statistic: 'Sum',
          Threshold: 0,
          ComparisonOperator: 'GreaterThanThreshold',
          ...alarmActions,
        });
  });

  it('alarms on parked predictions, failed asynchronous invocations and predictions not delivered in 10 minutes', () => {
    const alarms = resourcesOf('AWS::CloudWatch::Alarm');
    const queueDepth = (queue: string) => ({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queue, 'QueueName'] } }],
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      ...alarmActions,
    });
    expect(alarms.PredictionsDeadLetterQueueAlarm?.Properties).toMatchObject(queueDepth('PredictionsDeadLetterQueue'));
    expect(alarms.FailedInvocationsAlarm?.Properties).toMatchObject(queueDepth('FailedInvocationsQueue'));
    // The metric the relay records (shared/metrics.ts), in seconds.
    expect(alarms.UndeliveredPredictionsAlarm?.Properties).toMatchObject({
      Namespace: 'HubFolio',
      MetricName: 'OldestUndeliveredAge',
      Dimensions: [{ Name: 'service', Value: 'hubfolio' }],
      Statistic: 'Maximum',
      Threshold: 600,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      ...alarmActions,
    });
    expect(Object.keys(alarms)).toHaveLength(FUNCTIONS.length * 2 + 3);
  });

  it('mails the alarms to ALARM_EMAIL when it is given', () => {
    expect(template.Resources.AlarmTopic?.Type).toBe('AWS::SNS::Topic');
    expect(template.Resources.AlarmEmailSubscription).toMatchObject({
      Condition: 'AlarmEmailGiven',
      Properties: { TopicArn: { Ref: 'AlarmTopic' }, Protocol: 'email', Endpoint: 'ops@example.com' },
    });
    const condition = (of: Template) => (of as unknown as { Conditions: Record<string, unknown> }).Conditions;
    expect(condition(template).AlarmEmailGiven).toEqual({ 'Fn::Not': [{ 'Fn::Equals': ['ops@example.com', ''] }] });
    expect(condition(bareTemplate()).AlarmEmailGiven).toEqual({ 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] });
  });

  it('sends what S3 events and schedules failed to the failed-invocations queue, after their retries', () => {
    const configs = Object.values(resourcesOf('AWS::Lambda::EventInvokeConfig')).map(({ Properties }) => Properties);
    const onFailure = { OnFailure: { Destination: { 'Fn::GetAtt': ['FailedInvocationsQueue', 'Arn'] } } };
    expect(configs).toEqual(
      expect.arrayContaining(
        [
          ['relay', 0],
          ['modelSync', 0],
          ['modelIngest', 2],
        ].map(([name, retries]) =>
          expect.objectContaining({
            FunctionName: { Ref: logicalId(name as string) },
            DestinationConfig: onFailure,
            MaximumRetryAttempts: retries,
          }),
        ),
      ),
    );
    expect(configs).toHaveLength(3);
  });

  it('reserves the prediction routes’ concurrency, sized with the database pool', () => {
    const reserved = ['predict', 'predictBatch'].map(
      (name) =>
        (functions.get(name)!.Properties as { ReservedConcurrentExecutions?: number }).ReservedConcurrentExecutions,
    );
    expect(reserved).toEqual([10, 4]);
    // Connections they may open at most: well under a small RDS instance's max_connections (~100 per GiB).
    expect((reserved[0]! + reserved[1]!) * POOL_MAX).toBeLessThanOrEqual(60);
  });

  it('throttles the API’s routes and keeps its access log with the request ids', () => {
    const stage = template.Resources.HttpApiStage!.Properties as {
      DefaultRouteSettings: unknown;
      AccessLogSettings: { DestinationArn: unknown; Format: string };
    };
    expect(stage.DefaultRouteSettings).toEqual({ ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 });
    expect(stage.AccessLogSettings.DestinationArn).toEqual({ 'Fn::GetAtt': ['HttpApiLogGroup', 'Arn'] });
    expect(JSON.parse(stage.AccessLogSettings.Format)).toMatchObject({
      requestId: '$context.requestId',
      routeKey: '$context.routeKey',
      status: '$context.status',
      responseLatency: '$context.responseLatency',
    });
    expect(template.Resources.HttpApiLogGroup?.Properties).toMatchObject({ RetentionInDays: 30 });
  });

  it('runs the functions in the VPC given, with the role that lets them, and in none otherwise', () => {
    const vpcConfig = { SecurityGroupIds: ['sg-0123abcd'], SubnetIds: ['subnet-0abc12345', 'subnet-0def67890'] };
    const roleOf = (of: Template, fn: LambdaFunction) => of.Resources[fn.Properties.Role['Fn::GetAtt'][0]]!.Properties;
    for (const fn of functions.values()) {
      expect((fn.Properties as { VpcConfig?: unknown }).VpcConfig).toEqual(vpcConfig);
      expect(JSON.stringify(roleOf(template, fn).ManagedPolicyArns)).toContain('AWSLambdaVPCAccessExecutionRole');
    }
    const bare = bareTemplate();
    for (const fn of serviceFunctions(bare).values()) {
      expect((fn.Properties as { VpcConfig?: unknown }).VpcConfig).toBeUndefined();
      expect(JSON.stringify(roleOf(bare, fn).ManagedPolicyArns ?? [])).not.toContain('AWSLambdaVPCAccessExecutionRole');
    }
  });
});

describe('a deploy', () => {
  it('refuses the package made without DATABASE_URL_PARAMETER before CloudFormation starts, naming it', async () => {
    // Credentials that AWS would refuse, so that nothing could deploy if the check let it through.
    const env = { ...cleanEnv(), AWS_ACCESS_KEY_ID: 'AKIAREFUSED', AWS_SECRET_ACCESS_KEY: 'refused' };
    const refused = await serverless(['deploy', '--package', bareDir], env).then(
      () => 'deployed',
      (error: Error) => error.message,
    );
    expect(refused).toMatch(/Refusing to deploy: DATABASE_URL_PARAMETER is not set; expected an SSM parameter name/);
    expect(refused).not.toMatch(/CloudFormation stack|Uploading/);
  });
});

const mlflow = await startFakeMlflow();
const thingsboard = await startFakeThingsBoard();
const deviceToken = thingsboard.addDevice('HubFólio Predictions').token;
afterAll(() => Promise.all([mlflow.close(), thingsboard.close()]));

// Each test starts a Node 22 process per function it invokes (a cold start each time).
describe('every packaged function under Node 22, unzipped as /var/task beside the layer as /opt', {
  timeout: 120_000,
}, () => {
  /** The function's environment from the template, with this test's database, emulators and fakes. */
  function environmentOf(fn: LambdaFunction): Record<string, string> {
    const env: Record<string, unknown> = {
      ...fn.Properties.Environment?.Variables,
      DATABASE_URL: process.env.DATABASE_URL,
      MODEL_BUCKET: process.env.MODEL_BUCKET,
      PREDICTIONS_QUEUE_URL: process.env.PREDICTIONS_QUEUE_URL,
      PREDICTIONS_DLQ_URL: process.env.TEST_DLQ_URL,
      MODEL_SYNC_QUEUE_URL: process.env.MODEL_SYNC_QUEUE_URL,
      AWS_REGION: process.env.AWS_REGION,
      AWS_ENDPOINT_URL_S3: process.env.AWS_ENDPOINT_URL_S3,
      AWS_ENDPOINT_URL_SQS: process.env.AWS_ENDPOINT_URL_SQS,
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY,
      MLFLOW_TRACKING_URI: mlflow.url,
      THINGSBOARD_URL: thingsboard.url,
      THINGSBOARD_DEVICE_TOKEN: deviceToken,
      POWERTOOLS_LOG_LEVEL: 'WARN',
      // Lambda's CA file is not on this machine (Node would warn that it cannot load it).
      NODE_EXTRA_CA_CERTS: '',
    };
    // What the template leaves to CloudFormation (the queue URLs) must all have a local value above.
    for (const [name, value] of Object.entries(env)) expect(typeof value, name).toBe('string');
    return env as Record<string, string>;
  }

  /** Starts the packaged function, invokes it once with `event` and stops it. */
  async function invoke(name: string, event: unknown, layer = optDir): Promise<unknown> {
    const fn = functions.get(name)!;
    const zip = join(packageDir, `${name}.zip`);
    const taskDir = join(work, 'functions', name);
    const environment = environmentOf(fn);
    const running = await startFunction({ node: node22, zip, fn, taskDir, optDir: layer, environment });
    try {
      return await running.invoke(event);
    } finally {
      await running.stop();
    }
  }
  /** An HTTP route's function as invokeHttp calls one: its answers are held to the OpenAPI document. */
  const route = (name: string) => (event: unknown) => invoke(name, event) as Promise<APIGatewayProxyResultV2>;
  const post = (name: string, path: string, body: unknown) =>
    invokeHttp(route(name), httpEvent({ path, body: JSON.stringify(body) }));
  const get = (name: string, path: string) => invokeHttp(route(name), httpEvent({ method: 'GET', path }));
  const scheduled = (rule: string) => ({
    version: '0',
    id: crypto.randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '000000000000',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: [`arn:aws:events:us-east-1:000000000000:rule/${rule}`],
    detail: {},
  });
  const modelFile = (intercept: number) =>
    buildLinearRegressor({
      coefficients: FEATURES.map(() => 0.5),
      intercept,
      features: FEATURES,
      algorithm: 'LinearRegression',
    });
  const predictionIds: string[] = [];

  it('runs Node 22, the runtime Lambda uses', async () => {
    expect(await run(node22, ['--version'])).toMatch(/^v22\./);
  });

  it('openapi: GET /openapi.json answers the document', async () => {
    const { status, body } = await get('openapi', '/openapi.json');
    expect(status).toBe(200);
    expect(body.openapi).toMatch(/^3\.1/);
  });

  it('docs: GET /docs answers Swagger UI, and its bundle comes from the zip', async () => {
    const page = (await route('docs')(httpEvent({ method: 'GET', path: '/docs' }))) as {
      statusCode: number;
      body: string;
    };
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('/docs/swagger-ui-bundle.js');
    const assetEvent = httpEvent({ method: 'GET', path: '/docs/swagger-ui-bundle.js' });
    assetEvent.pathParameters = { asset: 'swagger-ui-bundle.js' };
    const bundle = (await route('docs')(assetEvent)) as { statusCode: number; headers: Record<string, string> };
    expect(bundle.statusCode).toBe(200);
    expect(bundle.headers['content-type']).toMatch(/javascript/);
  });

  it('modelUpload: a multipart POST /model/upload registers, exports and promotes the model', async () => {
    const form = new FormData();
    form.append('file', new Blob([modelFile(10)]), 'model.onnx');
    form.append('r2_score', '0.9');
    const request = new Request('http://localhost/model/upload', { method: 'POST', body: form });
    const body = Buffer.from(await request.arrayBuffer());
    const headers = { 'content-type': request.headers.get('content-type')! };
    const answer = await invokeHttp(route('modelUpload'), httpEvent({ path: '/model/upload', body, headers }));
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ mlflow_registered: true, mlflow_model_version: '1', promoted: true });
  });

  it('health: GET /health finds every dependency and the model', async () => {
    const { status, body } = await get('health', '/health');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      status: 'healthy',
      postgres_connected: true,
      sqs_connected: true,
      model_loaded: true,
    });
  });

  it('predict: POST /predict scores with ONNX Runtime from the layer, stores and queues', async () => {
    const { status, body } = await post('predict', '/predict', SEED_EXAMPLE);
    expect(status).toBe(200);
    // 10 + 0.5 × (3 + 10 + 4 + 3 + 4 + 80 + 1 + 1): the uploaded model's own score.
    expect(body).toMatchObject({ model_version: '1', predicted_iq: 63, classification: 'Regular' });
    predictionIds.push(body.prediction_id);
  });

  it('predict takes ONNX Runtime from the layer alone: without it, it cannot load', async () => {
    const withoutLayer = invoke('predict', httpEvent({ path: '/predict', body: JSON.stringify(SEED_EXAMPLE) }), work);
    await expect(withoutLayer).rejects.toThrow(/Cannot find module 'onnxruntime-node'/);
  });

  it('predictBatch: POST /predict/batch answers in order', async () => {
    const items = [SEED_EXAMPLE, { ...SEED_EXAMPLE, user_id: 2 }];
    const { status, body } = await post('predictBatch', '/predict/batch', { items });
    expect(status).toBe(200);
    expect(body.items.map((item: { user_id: number }) => item.user_id)).toEqual([1, 2]);
    predictionIds.push(...body.items.map((item: { prediction_id: string }) => item.prediction_id));
  });

  it('relay: a scheduled run re-sends a prediction whose send failed', async () => {
    await query('UPDATE predictions SET enqueue_attempts = 1 WHERE id = $1', [predictionIds[0]]);
    expect(await invoke('relay', scheduled('relay'))).toEqual({ sent: 1, failed: 0, waiting: false });
  });

  it('relay, as deployed: reads the database URL and the device token from SSM, each once', async () => {
    const ssm = await startFakeSsm({
      [DEPLOY_SETTINGS.DATABASE_URL_PARAMETER]: process.env.DATABASE_URL!,
      [DEPLOY_SETTINGS.THINGSBOARD_DEVICE_TOKEN_PARAMETER]: deviceToken,
    });
    const fn = functions.get('relay')!;
    // The template's environment names the parameters; no plain secret is left to win over them.
    const { DATABASE_URL: _, THINGSBOARD_DEVICE_TOKEN: __, ...environment } = environmentOf(fn);
    const running = await startFunction({
      node: node22,
      zip: join(packageDir, 'relay.zip'),
      fn,
      taskDir: join(work, 'functions', 'relay-ssm'),
      optDir,
      environment: { ...environment, AWS_ENDPOINT_URL_SSM: ssm.url },
    });
    try {
      // Not waiting: the token came from SSM; no error: so did the database URL. (lambda-local loads the
      // bundle anew for every invocation, a cold start each: test/unit/secrets.test.ts holds the cache.)
      expect(await running.invoke(scheduled('relay'))).toMatchObject({ failed: 0, waiting: false });
    } finally {
      await running.stop();
      await ssm.close();
    }
    expect(ssm.requests.sort((a, b) => a.Name.localeCompare(b.Name))).toEqual([
      { Name: DEPLOY_SETTINGS.DATABASE_URL_PARAMETER, WithDecryption: true },
      { Name: DEPLOY_SETTINGS.THINGSBOARD_DEVICE_TOKEN_PARAMETER, WithDecryption: true },
    ]);
  });

  it('telemetryForwarder: an SQS batch reaches ThingsBoard; a malformed record is parked, none fails', async () => {
    const arn = await queueArn(sqsClient(testEndpoints()), process.env.PREDICTIONS_QUEUE_URL!);
    const records = (await drainQueue()).map((message) => toLambdaRecord(message, arn, 'us-east-1'));
    // /predict's message, /predict/batch's envelope of two, and the relay's copy of one of them.
    expect(records).toHaveLength(3);
    const malformed = { ...records[0]!, messageId: crypto.randomUUID(), body: 'not a prediction' };
    const result = await invoke('telemetryForwarder', { Records: [...records, malformed] });
    expect(result).toEqual({ batchItemFailures: [] });
    const delivered = thingsboard.points(deviceToken).filter((point) => point.key === 'prediction_id');
    expect(delivered.map((point) => point.value).sort()).toEqual([...predictionIds].sort());
    expect(await drainQueue(process.env.TEST_DLQ_URL)).toHaveLength(1);
  });

  it('modelInfo, modelExport, modelPromote: the /model routes answer for version 1', async () => {
    const info = await get('modelInfo', '/model/info');
    expect(info.status).toBe(200);
    expect(info.body).toMatchObject({ model_loaded: true, serving: { version: '1', stage: 'Production' } });
    const exported = await post('modelExport', '/model/export-to-s3', { stage: 'Production' });
    expect(exported.status).toBe(200);
    expect(exported.body).toMatchObject({ version: '1', already_exported: true });
    const promoted = await post('modelPromote', '/model/promote', { version: '1' });
    expect(promoted.status).toBe(200);
  });

  it('modelUploadUrl: POST /model/upload-url presigns a PUT into the drop folder', async () => {
    const { status, body } = await post('modelUploadUrl', '/model/upload-url', {
      filename: 'big.onnx',
      file_size: 1024,
    });
    expect(status).toBe(200);
    expect(body.key).toBe('incoming/hubfolio-model/big.onnx');
    expect(new URL(body.url).searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('modelIngest: an S3 ObjectCreated event under incoming/ registers the dropped file', async () => {
    const key = 'incoming/hubfolio-model/dropped.onnx';
    const bytes = modelFile(20);
    const put = await s3Client(testEndpoints()).send(
      new PutObjectCommand({ Bucket: process.env.MODEL_BUCKET, Key: key, Body: bytes }),
    );
    const event = s3NotificationEvent(process.env.MODEL_BUCKET!, key, bytes.length, put.ETag!, 'us-east-1');
    expect(await invoke('modelIngest', event)).toEqual([
      expect.objectContaining({ key, outcome: 'registered', model_name: 'hubfolio-model', version: '2' }),
    ]);
  });

  it('modelSync: a scheduled run looks at MLflow and asks for its second look 30 s later', async () => {
    expect(await invoke('modelSync', scheduled('modelSync'))).toMatchObject({ mlflow: 'reachable' });
    const { Attributes } = await sqsClient(testEndpoints()).send(
      new GetQueueAttributesCommand({
        QueueUrl: process.env.MODEL_SYNC_QUEUE_URL,
        AttributeNames: ['ApproximateNumberOfMessagesDelayed'],
      }),
    );
    expect(Number(Attributes?.ApproximateNumberOfMessagesDelayed)).toBe(1);
  });
});
