/**
 * AWS Signature Version 4, checked the way S3 checks it, for the embedded S3: s3rver 3.7 checks no
 * V4 signature at all (its authentication middleware accepts any), so a presigned URL could write
 * any key, any size, with any metadata. Both forms are checked: the Authorization header (SDK
 * clients) and the query string (presigned URLs), each against the one pair of keys the local
 * stack signs with.
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** How far a header-signed request's time may be from the server's, as S3 allows. */
const MAX_SKEW_MS = 15 * 60 * 1000;

export interface SignedRequest {
  method: string;
  /** The path and query exactly as received (S3 signs the path as the client encoded it). */
  url: string;
  headers: IncomingHttpHeaders;
}

/** Why S3 would refuse the request: an S3 error code and message. */
export interface Refusal {
  code: 'AccessDenied' | 'SignatureDoesNotMatch' | 'InvalidAccessKeyId' | 'AuthorizationQueryParametersError';
  message: string;
}

const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256 = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');
/** RFC 3986 encoding, as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
const encode = (text: string) =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function parseQuery(query: string): Array<[string, string]> {
  if (!query) return [];
  return query.split('&').map((pair) => {
    const at = pair.indexOf('=');
    const [key, value] = at === -1 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
    return [decodeURIComponent(key), decodeURIComponent(value)];
  });
}

/** 20250115T120000Z → its time in ms. */
const amzTime = (stamp: string) =>
  Date.parse(
    `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(9, 11)}:${stamp.slice(11, 13)}:${stamp.slice(13, 15)}Z`,
  );

interface Claim {
  credential: string;
  signedHeaders: string[];
  signature: string;
  amzDate: string;
  payloadHash: string;
  /** The query parameters that the signature covers. */
  query: Array<[string, string]>;
}

/** What the request says it was signed with, or a refusal when it is not signed (well). */
function claimOf(request: SignedRequest, query: Array<[string, string]>, now: number): Claim | Refusal {
  const params = new Map(query);
  const authorization = request.headers.authorization;
  if (params.get('X-Amz-Algorithm') === ALGORITHM) {
    const [credential, signedHeaders, signature, amzDate, expires] = [
      'X-Amz-Credential',
      'X-Amz-SignedHeaders',
      'X-Amz-Signature',
      'X-Amz-Date',
      'X-Amz-Expires',
    ].map((name) => params.get(name));
    if (!credential || !signedHeaders || !signature || !amzDate || !expires) {
      return { code: 'AuthorizationQueryParametersError', message: 'The presigned URL is missing a parameter.' };
    }
    if (now > amzTime(amzDate) + Number(expires) * 1000)
      return { code: 'AccessDenied', message: 'Request has expired' };
    return {
      credential,
      signedHeaders: signedHeaders.split(';'),
      signature,
      amzDate,
      payloadHash: params.get('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD',
      query: query.filter(([name]) => name !== 'X-Amz-Signature'),
    };
  }
  if (authorization?.startsWith(`${ALGORITHM} `)) {
    const parts = new Map(
      authorization
        .slice(ALGORITHM.length + 1)
        .split(',')
        .map((part) => {
          const at = part.indexOf('=');
          return [part.slice(0, at).trim(), part.slice(at + 1).trim()] as [string, string];
        }),
    );
    const amzDate = String(request.headers['x-amz-date'] ?? '');
    const payloadHash = request.headers['x-amz-content-sha256'];
    if (!parts.get('Credential') || !parts.get('SignedHeaders') || !parts.get('Signature') || !amzDate) {
      return { code: 'AccessDenied', message: 'The Authorization header is malformed.' };
    }
    if (typeof payloadHash !== 'string') {
      return { code: 'AccessDenied', message: 'Missing required header for this request: x-amz-content-sha256' };
    }
    if (Math.abs(now - amzTime(amzDate)) > MAX_SKEW_MS) {
      return {
        code: 'AccessDenied',
        message: 'The difference between the request time and the current time is too large.',
      };
    }
    return {
      credential: parts.get('Credential')!,
      signedHeaders: parts.get('SignedHeaders')!.split(';'),
      signature: parts.get('Signature')!,
      amzDate,
      payloadHash,
      query,
    };
  }
  return { code: 'AccessDenied', message: 'Requests must be signed with AWS Signature Version 4.' };
}

/**
 * Checks a request's SigV4 signature; null when it holds, else why S3 would refuse it. `secretOf`
 * gives the secret key of an access key id (undefined for an unknown one).
 */
export function checkSignature(
  request: SignedRequest,
  secretOf: (accessKeyId: string) => string | undefined,
  now = Date.now(),
): Refusal | null {
  const at = request.url.indexOf('?');
  const path = at === -1 ? request.url : request.url.slice(0, at);
  const claim = claimOf(request, parseQuery(at === -1 ? '' : request.url.slice(at + 1)), now);
  if ('code' in claim) return claim;
  const [accessKeyId, date, region, service, terminator] = claim.credential.split('/');
  const secret = accessKeyId ? secretOf(accessKeyId) : undefined;
  if (!secret) return { code: 'InvalidAccessKeyId', message: 'The AWS Access Key Id you provided does not exist.' };
  if (!date || !region || !service || terminator !== 'aws4_request') {
    return { code: 'AccessDenied', message: 'The credential scope is malformed.' };
  }
  const canonicalQuery = claim.query
    .map(([name, value]) => [encode(name), encode(value)])
    .sort(([a, x], [b, y]) => (a! < b! ? -1 : a! > b! ? 1 : x! < y! ? -1 : x! > y! ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
  const canonicalHeaders = claim.signedHeaders
    .map((name) => {
      const value = request.headers[name];
      const text = Array.isArray(value) ? value.join(',') : (value ?? '');
      return `${name}:${text.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const canonicalRequest = [
    request.method,
    path,
    canonicalQuery,
    canonicalHeaders,
    claim.signedHeaders.join(';'),
    claim.payloadHash,
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = [ALGORITHM, claim.amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
  const expected = createHmac('sha256', key).update(stringToSign, 'utf8').digest();
  const given = Buffer.from(claim.signature, 'hex');
  if (given.length === expected.length && timingSafeEqual(given, expected)) return null;
  return {
    code: 'SignatureDoesNotMatch',
    message: 'The request signature we calculated does not match the signature you provided.',
  };
}
