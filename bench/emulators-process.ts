/**
 * S3 and SQS emulators in a process of their own, so that the benchmark's handler does not share
 * its event loop with them (on AWS they are other machines). Prints one JSON line when ready.
 */
import { startS3, startSqs } from '../scripts/local/emulators.ts';

const [s3Port, sqsPort, directory] = process.argv.slice(2);
const s3 = await startS3({ port: Number(s3Port), directory: directory! });
const sqs = await startSqs({ port: Number(sqsPort) });
console.log(JSON.stringify({ s3: s3.url, sqs: sqs.url }));
process.on('SIGTERM', async () => {
  await sqs.stop();
  await s3.stop();
  process.exit(0);
});
