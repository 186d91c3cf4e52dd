import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import AdmZip from 'adm-zip';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanEnv,
  packageService,
  serverless,
  serviceFunctions,
  type LambdaFunction,
  type Template,
} from '../helpers/packaged.ts';

/**
 * What a plain `serverless package` makes, before anything is deployed: one small bundle per function
 * with ONNX Runtime left to the layer, one IAM role per function with only what its code calls, and
 * a deploy that refuses this package because it was made without DATABASE_URL.
 */

const work = mkdtempSync(join(tmpdir(), 'hubfolio-package-'));
const packageDir = join(work, 'package');
let template: Template;
let functions: Map<string, LambdaFunction>;

beforeAll(async () => {
  await packageService(packageDir);
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
    expect(entries.filter((e) => /\.node$|libonnxruntime|onnxruntime|node_modules\/|\.ts$/.test(e))).toEqual([]);
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
  const role = template.Resources[functions.get(name)!.Properties.Role['Fn::GetAtt'][0]]!;
  const policies = role.Properties.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }>;
  return policies.flatMap((policy) =>
    policy.PolicyDocument.Statement.flatMap((statement) => {
      expect(statement.Effect).toBe('Allow');
      return [statement.Action]
        .flat()
        .flatMap((action) =>
          [statement.Resource].flat().map((resource) => `${action} ${resourceName(name, resource)}`),
        );
    }),
  );
}
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}
function resourceName(fn: string, resource: unknown): string {
  if (typeof resource === 'string') return resource.replace(BUCKET, 'bucket');
  const getAtt = (resource as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
  if (getAtt) return getAtt[0];
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
const eventSource = (queue: string) =>
  ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'].map((a) => `${a} ${queue}`);

/** What each function's code calls (README: least privilege), and so all its role may do. */
const ROLES: Record<string, string[]> = {
  predict: [list, ...readServing, 'sqs:SendMessage PredictionsQueue'],
  predictBatch: [list, ...readServing, 'sqs:SendMessage PredictionsQueue'],
  health: [list, ...readServing, 'sqs:GetQueueAttributes PredictionsQueue'],
  openapi: [],
  relay: ['sqs:SendMessage PredictionsQueue'],
  modelUpload: [list, ...readServing, readUploads, 's3:PutObject bucket/uploads/*', ...exportAndPublish],
  modelUploadUrl: ['s3:PutObject bucket/incoming/*'],
  modelExport: [list, ...readServing, readUploads, 's3:PutObject bucket/models/*'],
  modelInfo: [list, ...readServing],
  modelPromote: [list, ...readServing, readUploads, ...exportAndPublish],
  modelIngest: [
    list,
    ...readServing,
    readUploads,
    's3:GetObject bucket/incoming/*',
    's3:GetObject bucket/rejected/*',
    's3:PutObject bucket/uploads/*',
    ...exportAndPublish,
    's3:PutObject bucket/rejected/*',
  ],
  modelSync: [
    ...eventSource('ModelSyncQueue'),
    list,
    ...readServing,
    readUploads,
    ...exportAndPublish,
    'sqs:SendMessage ModelSyncQueue',
  ],
  telemetryForwarder: [
    ...eventSource('PredictionsQueue'),
    'sqs:SendMessage PredictionsQueue',
    'sqs:SendMessage PredictionsDeadLetterQueue',
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

describe('a deploy', () => {
  it('refuses the package made without DATABASE_URL before CloudFormation starts, naming it', async () => {
    // Credentials that AWS would refuse, so that nothing could deploy if the check let it through.
    const env = { ...cleanEnv(), AWS_ACCESS_KEY_ID: 'AKIAREFUSED', AWS_SECRET_ACCESS_KEY: 'refused' };
    const refused = await serverless(['deploy', '--package', packageDir], env).then(
      () => 'deployed',
      (error: Error) => error.message,
    );
    expect(refused).toMatch(/Refusing to deploy: DATABASE_URL is not set; expected a PostgreSQL URL/);
    expect(refused).not.toMatch(/CloudFormation stack|Uploading/);
  });
});
