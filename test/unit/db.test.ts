import { expect, it } from 'vitest';
import { isDatabaseUnavailable } from '#shared/db';

const withCode = (code: string) => Object.assign(new Error('x'), { code });

it('tells an unreachable or unavailable database from a refused statement', () => {
  // Not reachable now: the caller may retry.
  expect(isDatabaseUnavailable(withCode('ECONNREFUSED'))).toBe(true);
  expect(isDatabaseUnavailable(withCode('ETIMEDOUT'))).toBe(true);
  expect(isDatabaseUnavailable(new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')]))).toBe(true);
  expect(isDatabaseUnavailable(withCode('57P01'))).toBe(true); // admin shutdown
  expect(isDatabaseUnavailable(withCode('08006'))).toBe(true); // connection failure
  expect(isDatabaseUnavailable(withCode('53300'))).toBe(true); // too many connections
  expect(isDatabaseUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
  expect(isDatabaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
  expect(isDatabaseUnavailable(new Error('Query read timeout'))).toBe(true); // pg's query_timeout
  expect(isDatabaseUnavailable(withCode('57014'))).toBe(true); // cancelled by statement_timeout
  // The statement itself was refused: retrying the same request would not help.
  expect(isDatabaseUnavailable(withCode('23505'))).toBe(false); // unique violation
  expect(isDatabaseUnavailable(withCode('22P02'))).toBe(false); // invalid input
  expect(isDatabaseUnavailable(withCode('080'))).toBe(false);
  expect(isDatabaseUnavailable(new Error('boom'))).toBe(false);
  expect(isDatabaseUnavailable(undefined)).toBe(false);
});
