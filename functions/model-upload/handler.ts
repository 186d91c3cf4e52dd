import { httpHandler } from '#http/handler';
import { readUploadForm, uploadForm, uploadResponse } from '#model/api';
import { registerModelFile } from '#model/registration';

/**
 * POST /model/upload (multipart, as the seed): the ONNX file is validated, stored, versioned in
 * MLflow with its metrics, exported to S3 and, unless promote=false, made the serving model.
 * 200 when done, 202 when the file is stored but MLflow was unreachable (finished later).
 */
export const handler = httpHandler(async (event) => {
  const upload = readUploadForm(event);
  const outcome = await registerModelFile(
    {
      bytes: upload.bytes,
      fileName: upload.fileName,
      modelName: upload.modelName,
      metrics: upload.metrics,
      source: 'upload',
    },
    { register: upload.register, export: upload.export, promote: upload.promote ? 'now' : 'never' },
  );
  return uploadResponse(outcome);
}, uploadForm());
