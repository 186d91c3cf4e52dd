import { describe, expect, it } from 'vitest';
import { predictRequestSchema } from '#prediction/api';
import { classify, toIq } from '#prediction/features';
import { SEED_EXAMPLE } from '../helpers/fixtures.ts';

describe('classify', () => {
  it.each([
    [100, 'Excelente'],
    [85, 'Excelente'],
    [84.99, 'Bom'],
    [70, 'Bom'],
    [69.99, 'Regular'],
    [50, 'Regular'],
    [49.99, 'Insuficiente'],
    [0, 'Insuficiente'],
  ])('%d is %s', (iq, expected) => {
    expect(classify(iq)).toBe(expected);
  });
});

describe('toIq', () => {
  it('rounds to 2 decimals', () => expect(toIq(82.456)).toBe(82.46));
  it('clamps above 100', () => expect(toIq(183)).toBe(100));
  it('clamps below 0', () => expect(toIq(-4.2)).toBe(0));
});

describe('predictRequestSchema', () => {
  const valid = SEED_EXAMPLE;

  it('accepts the seed example, with or without portfolio_id', () => {
    expect(predictRequestSchema.parse(valid)).toEqual(valid);
    expect(predictRequestSchema.parse({ ...valid, portfolio_id: 9 }).portfolio_id).toBe(9);
    expect(predictRequestSchema.parse({ ...valid, portfolio_id: null }).portfolio_id).toBeNull();
  });

  it('accepts a fractional visual score at the bounds', () => {
    expect(predictRequestSchema.safeParse({ ...valid, consistencia_visual_score: 0 }).success).toBe(true);
    expect(predictRequestSchema.safeParse({ ...valid, consistencia_visual_score: 99.5 }).success).toBe(true);
    expect(predictRequestSchema.safeParse({ ...valid, consistencia_visual_score: 100 }).success).toBe(true);
  });

  it.each([
    ['user_id', -1],
    ['user_id', 2 ** 53],
    ['portfolio_id', 1.5],
    ['projetos_min', 100_001],
    ['consistencia_visual_score', -0.1],
    ['consistencia_visual_score', 'NaN'],
    ['contatos', 0],
    ['bio', null],
  ])('refuses %s = %s and names the field', (field, value) => {
    const result = predictRequestSchema.safeParse({ ...valid, [field]: value });
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.path).toEqual([field]);
  });
});
