import { createServer } from 'node:http';

export interface FakeSsm {
  url: string;
  /** Every GetParameter request, as its input. */
  requests: Array<{ Name: string; WithDecryption?: boolean }>;
  close(): Promise<void>;
}

/**
 * SSM Parameter Store's GetParameter as the AWS SDK speaks it (JSON 1.1 protocol, POST /), answering
 * from `parameters` (SecureStrings, already decrypted) and ParameterNotFound otherwise. Signatures
 * are not checked. Enough for a packaged function that reads its secrets (shared/secrets.ts).
 */
export async function startFakeSsm(parameters: Record<string, string>): Promise<FakeSsm> {
  const requests: FakeSsm['requests'] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      response.setHeader('content-type', 'application/x-amz-json-1.1');
      if (request.headers['x-amz-target'] !== 'AmazonSSM.GetParameter') {
        response.statusCode = 400;
        response.end(
          JSON.stringify({ __type: 'InvalidAction', message: `not faked: ${request.headers['x-amz-target']}` }),
        );
        return;
      }
      const input = JSON.parse(body) as FakeSsm['requests'][number];
      requests.push(input);
      const value = parameters[input.Name];
      if (value === undefined) {
        response.statusCode = 400;
        response.end(JSON.stringify({ __type: 'ParameterNotFound', message: `${input.Name} not found` }));
        return;
      }
      response.end(JSON.stringify({ Parameter: { Name: input.Name, Type: 'SecureString', Value: value, Version: 1 } }));
    });
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}
