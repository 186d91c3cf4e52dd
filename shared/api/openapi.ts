import * as z from 'zod';
import { MAX_JSON_BODY_BYTES } from '#http/validation';
import {
  exportRequestSchema,
  infoQuerySchema,
  MAX_UPLOAD_BYTES,
  promoteRequestSchema,
  uploadFieldsSchema,
  uploadUrlRequestSchema,
} from '#model/api';
import {
  errorResponseSchema,
  exportResponseSchema,
  healthReportSchema,
  modelInfoSchema,
  predictBatchResponseSchema,
  promoteResponseSchema,
  uploadResponseSchema,
  uploadUrlResponseSchema,
} from '#api/responses';
import {
  MAX_BATCH_ITEMS,
  predictBatchRequestSchema,
  predictRequestSchema,
  predictResponseSchema,
} from '#prediction/api';

/**
 * The OpenAPI 3.1 document of the HTTP API (GET /openapi.json), generated from the zod schemas
 * that validate the requests and type the responses, so it cannot disagree with the code.
 * serverless.yml's httpApi routes are the list of paths; a test holds the two together.
 */

type Json = Record<string, unknown>;

/**
 * Routes serverless.yml serves that the document leaves out on purpose: the pages that show the
 * document (Swagger UI at /docs, its files, and / pointing there) are its viewer, not operations of
 * the API; listed, they would clutter Swagger UI with routes that answer HTML.
 */
export const UNDOCUMENTED_ROUTES = ['GET /', 'GET /docs', 'GET /docs/{asset}'];

/** A schema as JSON Schema 2020-12, which OpenAPI 3.1 embeds as is. */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Json {
  // Transforms (form text to numbers, stage names to their case) are described by their input.
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json;
  return rest;
}

/** The response bodies, by the name the document gives them (components.schemas). */
export const RESPONSE_SCHEMAS = {
  Prediction: predictResponseSchema,
  PredictBatchResponse: predictBatchResponseSchema,
  Health: healthReportSchema,
  UploadResponse: uploadResponseSchema,
  UploadUrlResponse: uploadUrlResponseSchema,
  ExportResponse: exportResponseSchema,
  PromoteResponse: promoteResponseSchema,
  ModelInfo: modelInfoSchema,
  Error: errorResponseSchema,
};

/**
 * The request Swagger UI's "Try it out" starts from (the README's example). Generated from the
 * schema instead, it would be every field at its maximum.
 */
export const PREDICT_EXAMPLE = {
  user_id: 1,
  portfolio_id: 42,
  projetos_min: 3,
  habilidades_min: 10,
  kw_contexto: 4,
  kw_processo: 3,
  kw_resultado: 4,
  consistencia_visual_score: 80,
  bio: true,
  contatos: true,
};

const COMPONENTS = {
  PredictRequest: { ...jsonSchema(predictRequestSchema, 'input'), examples: [PREDICT_EXAMPLE] },
  ...(Object.fromEntries(
    Object.entries(RESPONSE_SCHEMAS).map(([name, schema]) => [name, jsonSchema(schema, 'output')]),
  ) as Record<keyof typeof RESPONSE_SCHEMAS, Json>),
};
type ComponentName = keyof typeof COMPONENTS;

const ref = (name: ComponentName) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json) => ({ content: { 'application/json': { schema } } });
const answer = (description: string, name: ComponentName) => ({ description, ...json(ref(name)) });
const errors = (clientErrors: string) => ({
  '4XX': answer(clientErrors, 'Error'),
  '5XX': answer(
    'A dependency failed or was too slow; `detail` says which when it is safe to (503 and 504: retry after the Retry-After seconds)',
    'Error',
  ),
});
const jsonBody = (schema: Json) => ({ required: true, ...json(schema) });
/** Routes that change what serves take SigV4-signed requests (serverless.yml: authorizer aws_iam). */
const IAM = { security: [{ awsSigV4: [] }] };

/**
 * What Swagger UI fills the upload form with. It sends every field it fills, and a field without an
 * example gets the word "string", which the form's rules refuse: these values make "Try it out" work
 * as it comes (the README's upload example).
 */
const UPLOAD_FORM_EXAMPLES: Record<string, string> = {
  model_name: 'hubfolio-model',
  r2_score: '0.85',
  rmse: '12.5',
  mae: '9.2',
  register_in_mlflow: 'true',
  export_to_s3: 'true',
  promote: 'true',
};

const withExamples = (properties: Record<string, Json>, examples: Record<string, string>) =>
  Object.fromEntries(
    Object.entries(properties).map(([name, schema]) => [
      name,
      name in examples ? { ...schema, examples: [examples[name]] } : schema,
    ]),
  );

export function openApiDocument(): Json {
  const formFields = jsonSchema(uploadFieldsSchema, 'input');
  return {
    openapi: '3.1.0',
    info: {
      title: 'HubFólio Functions',
      version: '1.0.0',
      description:
        'Portfolio quality index (IQ) predictions from the serving ONNX model, stored in PostgreSQL and streamed to ThingsBoard; ' +
        'model upload, registration in MLflow, export to S3 and promotion.',
    },
    paths: {
      '/predict': {
        post: {
          summary: "One portfolio's IQ, stored and queued for the dashboard",
          requestBody: jsonBody(ref('PredictRequest')),
          responses: {
            '200': answer('The prediction', 'Prediction'),
            ...errors(
              `Invalid body (400, naming each field), over ${MAX_JSON_BODY_BYTES} bytes (413), not sent as application/json (415), or a portfolio the serving model returns no finite score for (422)`,
            ),
          },
        },
      },
      '/predict/batch': {
        post: {
          summary: `Up to ${MAX_BATCH_ITEMS} predictions in one request`,
          requestBody: jsonBody({
            ...jsonSchema(predictBatchRequestSchema, 'input'),
            examples: [{ items: [PREDICT_EXAMPLE] }],
          }),
          responses: {
            '200': answer('One result per item, in order', 'PredictBatchResponse'),
            ...errors(
              'Invalid body (400), too large (413), not sent as application/json (415), or rows the serving model returns no finite score for (422, each named in `errors`; nothing is stored)',
            ),
          },
        },
      },
      '/health': {
        get: {
          summary: 'Dependency status',
          responses: {
            '200': answer('healthy, or degraded when only MLflow or ThingsBoard fail or are not configured', 'Health'),
            '503': answer('unhealthy: PostgreSQL, S3 or SQS fail', 'Health'),
          },
        },
      },
      '/model/upload': {
        post: {
          summary: 'Upload an ONNX model: validate, store, register in MLflow, export to S3 and promote',
          ...IAM,
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': {
                schema: {
                  ...formFields,
                  properties: {
                    file: {
                      type: 'string',
                      contentMediaType: 'application/octet-stream',
                      description: `The .onnx file, at most ${MAX_UPLOAD_BYTES} bytes (larger: /model/upload-url)`,
                    },
                    ...withExamples(formFields.properties as Record<string, Json>, UPLOAD_FORM_EXAMPLES),
                  },
                  required: ['file'],
                },
              },
            },
          },
          responses: {
            '200': answer('Registered (or already registered: same file, same version)', 'UploadResponse'),
            '202': answer('Stored; registration or promotion finishes once MLflow answers', 'UploadResponse'),
            ...errors('Invalid field (400), too large (413), not ONNX (415) or not a valid HubFólio model (422)'),
          },
        },
      },
      '/model/upload-url': {
        post: {
          summary: 'A presigned S3 PUT into the drop folder, for files too large for /model/upload',
          ...IAM,
          requestBody: jsonBody(jsonSchema(uploadUrlRequestSchema, 'input')),
          responses: {
            '200': answer('PUT the file to `url` before it expires', 'UploadUrlResponse'),
            ...errors('Invalid body (400) or not sent as application/json (415)'),
          },
        },
      },
      '/model/export-to-s3': {
        post: {
          summary: 'Export a version (by stage, version or alias) to models/ in S3',
          ...IAM,
          requestBody: jsonBody(jsonSchema(exportRequestSchema, 'input')),
          responses: {
            '200': answer('Exported (or already exported)', 'ExportResponse'),
            ...errors('Invalid body (400), no such version (404) or not sent as application/json (415)'),
          },
        },
      },
      '/model/info': {
        get: {
          summary: 'The serving model and its versions in MLflow',
          parameters: Object.entries(
            (jsonSchema(infoQuerySchema, 'input').properties ?? {}) as Record<string, Json>,
          ).map(([name, schema]) => ({
            name,
            in: 'query',
            required: false,
            schema,
          })),
          responses: {
            '200': answer('What serves, and what MLflow knows', 'ModelInfo'),
            ...errors('Invalid model_name (400)'),
          },
        },
      },
      '/model/promote': {
        post: {
          summary: 'Move the production alias/stage, and so the serving model, to a version',
          ...IAM,
          requestBody: jsonBody(jsonSchema(promoteRequestSchema, 'input')),
          responses: {
            '200': answer('Promoted', 'PromoteResponse'),
            ...errors('Invalid body (400), no such version (404) or not sent as application/json (415)'),
          },
        },
      },
      '/openapi.json': {
        get: {
          summary: 'This document',
          responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': {} } } },
        },
      },
    },
    components: {
      schemas: COMPONENTS,
      securitySchemes: {
        awsSigV4: {
          type: 'apiKey',
          name: 'Authorization',
          in: 'header',
          description:
            'AWS Signature Version 4 (API Gateway IAM authorization), e.g. curl --aws-sigv4 "aws:amz:REGION:execute-api"',
          'x-amazon-apigateway-authtype': 'awsSigv4',
        },
      },
    },
  };
}
