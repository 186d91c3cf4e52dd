/**
 * Raw MLflow REST calls that the suite itself never makes, for tests that change a (fake) MLflow
 * server the way another MLflow user would: the same requests the MLflow clients send.
 */
const API = '/api/2.0/mlflow';

async function call(mlflowUrl: string, method: 'POST' | 'DELETE', path: string, body: unknown): Promise<void> {
  const response = await fetch(`${mlflowUrl}${API}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${API}${path} answered ${response.status}: ${await response.text()}`);
}

export const deleteAlias = (mlflowUrl: string, name: string, alias: string) =>
  call(mlflowUrl, 'DELETE', '/registered-models/alias', { name, alias });

export const setModelVersionTag = (mlflowUrl: string, name: string, version: string, key: string, value: string) =>
  call(mlflowUrl, 'POST', '/model-versions/set-tag', { name, version, key, value });
