import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { expect, it } from 'vitest';
import { openApiDocument, PREDICT_EXAMPLE, UNDOCUMENTED_ROUTES } from '#api/openapi';
import { predictBatchRequestSchema, predictRequestSchema } from '#prediction/api';
import { uploadFieldsSchema } from '#model/api';
import { ROOT } from '../../scripts/local/stack.ts';

/** The parts of the OpenAPI document these tests read. */
interface JsonSchema {
  $ref?: string;
  required?: string[];
  additionalProperties?: boolean;
  properties?: Record<string, unknown>;
}
interface WithContent {
  content: Record<string, { schema: JsonSchema }>;
}
interface Operation {
  security?: unknown;
  requestBody?: WithContent;
  responses: Record<string, WithContent>;
}

const document = openApiDocument() as {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, JsonSchema> };
};

it('is a valid OpenAPI 3.1 document', async () => {
  const result = await new Validator().validate(structuredClone(document));
  expect(result.errors ?? []).toEqual([]);
  expect(result.valid).toBe(true);
});

it('documents exactly the routes serverless.yml serves (less its viewer, /docs), and which of them need AWS credentials', () => {
  const yml = readFileSync(`${ROOT}/serverless.yml`, 'utf8');
  // A path with a parameter is quoted in serverless.yml ('/docs/{asset}': braces end a YAML flow mapping).
  const routes = [
    ...yml.matchAll(/httpApi: \{ method: (\w+), path: '?(\/[^,\s']*)'?(, authorizer: \{ type: aws_iam \})? \}/g),
  ];
  const all = routes.map(([, method, path]) => `${method} ${path}`);
  expect(all).toEqual(expect.arrayContaining(UNDOCUMENTED_ROUTES));
  const served = all.filter((route) => !UNDOCUMENTED_ROUTES.includes(route)).sort();
  const servedWithIam = routes
    .filter(([, , , iam]) => iam)
    .map(([, method, path]) => `${method} ${path}`)
    .sort();
  const operations = Object.entries(document.paths).flatMap(([path, byMethod]) =>
    Object.entries(byMethod).map(([method, operation]) => ({ route: `${method.toUpperCase()} ${path}`, operation })),
  );
  expect(served.length).toBeGreaterThan(8);
  expect(operations.map((o) => o.route).sort()).toEqual(served);
  expect(servedWithIam).toEqual([
    'POST /model/export-to-s3',
    'POST /model/promote',
    'POST /model/upload',
    'POST /model/upload-url',
  ]);
  expect(
    operations
      .filter((o) => o.operation.security)
      .map((o) => o.route)
      .sort(),
  ).toEqual(servedWithIam);
});

it('describes /predict with the seed fields, the rules the validation applies, and nothing else', () => {
  const request = document.components.schemas.PredictRequest!;
  expect(request.required).toEqual([
    'user_id',
    'projetos_min',
    'habilidades_min',
    'kw_contexto',
    'kw_processo',
    'kw_resultado',
    'consistencia_visual_score',
    'bio',
    'contatos',
  ]);
  expect(request.additionalProperties).toBe(false);
  expect(request.properties!.consistencia_visual_score).toEqual({ type: 'number', minimum: 0, maximum: 100 });
  expect(request.properties!.bio).toEqual({ type: 'boolean' });
  expect(document.paths['/predict']!.post!.responses['200']!.content['application/json']!.schema).toEqual({
    $ref: '#/components/schemas/Prediction',
  });
  expect(document.components.schemas.Prediction!.required).toContain('predicted_iq');
});

it('starts "Try it out" on the prediction routes from an example the validation accepts', () => {
  expect(predictRequestSchema.parse(PREDICT_EXAMPLE)).toEqual(PREDICT_EXAMPLE);
  const batch = document.paths['/predict/batch']!.post!.requestBody!.content['application/json']!.schema;
  expect(predictBatchRequestSchema.safeParse((batch as { examples: unknown[] }).examples[0]).success).toBe(true);
});

it('takes the model upload as multipart with the file and the seed form fields', () => {
  const form = document.paths['/model/upload']!.post!.requestBody!.content['multipart/form-data']!.schema;
  expect(form.required).toEqual(['file']);
  expect(Object.keys(form.properties!)).toEqual([
    'file',
    'model_name',
    'r2_score',
    'rmse',
    'mae',
    'register_in_mlflow',
    'export_to_s3',
    'promote',
  ]);
});

it('gives Swagger UI a file picker for the model and form values the upload accepts', () => {
  const form = document.paths['/model/upload']!.post!.requestBody!.content['multipart/form-data']!.schema;
  const fields = form.properties as Record<string, { type?: string; contentMediaType?: string; examples?: unknown[] }>;
  // OpenAPI 3.1's way to say "file"; Swagger UI 5 renders it as a file input.
  expect(fields.file).toMatchObject({ type: 'string', contentMediaType: 'application/octet-stream' });
  // Swagger UI sends every field it fills; without an example it fills in the word "string".
  const examples = Object.fromEntries(
    Object.entries(fields).flatMap(([name, f]) => (f.examples ? [[name, f.examples[0]]] : [])),
  );
  expect(Object.keys(examples).sort()).toEqual(
    Object.keys(fields)
      .filter((name) => name !== 'file')
      .sort(),
  );
  expect(uploadFieldsSchema.safeParse(examples).success).toBe(true);
});
