import { describe, expect, it } from 'vitest';
import { UnsupportedMediaTypeError } from '#http/errors';
import { decodeS3Key } from '#model/ingest';
import { exportSelector, flagText, promotionTarget } from '#model/api';
import { exportKey } from '#model/storage';
import { refuseForeignFormat } from '#model/validation';

describe('export keys', () => {
  it('follow the seed: models/{name}/v{N}/{name}_v{N}_{YYYYMMDD_HHMMSS}.onnx in UTC', () => {
    expect(exportKey('hubfolio-model', '1', new Date('2025-01-15T12:00:00.789Z'))).toBe(
      'models/hubfolio-model/v1/hubfolio-model_v1_20250115_120000.onnx',
    );
  });
});

describe('S3 event keys', () => {
  it('decode "+" as a space and percent escapes as UTF-8', () => {
    expect(decodeS3Key('incoming/m/Modelo+%C3%B3timo+%2B1.onnx')).toBe('incoming/m/Modelo ótimo +1.onnx');
  });
});

describe('foreign model formats', () => {
  const refusal = (bytes: number[], name: string) => {
    try {
      refuseForeignFormat(Uint8Array.from(bytes), name);
      return undefined;
    } catch (error) {
      return error;
    }
  };

  it.each([
    [[0x80, 0x04, 0x95], 'model.onnx', /Python pickle/],
    [[0x08, 0x07], 'model.pkl', /Python pickle/],
    [[0x08, 0x07], 'model.joblib', /Python pickle/],
    [[0x50, 0x4b, 0x03, 0x04], 'model.bin', /zip archive/],
    [[0x89, 0x48, 0x44, 0x46], 'model.bin', /HDF5/],
  ])('refuses %j named %s with a 415 that explains the conversion', (bytes, name, kind) => {
    const error = refusal(bytes, name);
    expect(error).toBeInstanceOf(UnsupportedMediaTypeError);
    expect((error as Error).message).toMatch(kind);
    expect((error as Error).message).toMatch(/skl2onnx.*projetos_min, habilidades_min/);
  });

  it('lets anything else through to the ONNX checks (which answer 422)', () => {
    expect(refusal([0x08, 0x07, 0x12], 'model.onnx')).toBeUndefined();
    expect(refusal([0x68, 0x69], 'notes.txt')).toBeUndefined();
  });
});

describe('request fields', () => {
  it('read form booleans the way people write them', () => {
    expect(['true', 'True', '1', 'yes', 'on'].map((v) => flagText.parse(v))).toEqual([true, true, true, true, true]);
    expect(['false', 'FALSE', '0', 'no', 'off'].map((v) => flagText.parse(v))).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
    expect(flagText.safeParse('maybe').success).toBe(false);
  });

  it('promote without alias and stage means the serving pair', () => {
    expect(promotionTarget({ version: '2' })).toEqual({ alias: 'production', stage: 'Production' });
    expect(promotionTarget({ version: '2', alias: 'challenger' })).toEqual({ alias: 'challenger' });
    expect(promotionTarget({ version: '2', stage: 'Staging' })).toEqual({ stage: 'Staging' });
  });

  it('export names exactly one selector', () => {
    expect(exportSelector({ stage: 'Production' })).toEqual({ stage: 'Production' });
    expect(exportSelector({ version: '3' })).toEqual({ version: '3' });
    expect(exportSelector({ alias: 'production' })).toEqual({ alias: 'production' });
  });
});
