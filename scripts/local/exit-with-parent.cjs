// Preloaded (node --require) into serverless-offline by scripts/local/offline.ts: the IPC channel to
// the local stack closes when the stack's process dies in any way, even SIGKILL, and then this
// process ends its whole process group (its workers and anything they started) instead of holding
// the API's ports as an orphan.
const { isMainThread } = require('node:worker_threads');

if (isMainThread && process.channel) {
  process.channel.unref(); // the channel alone must not keep serverless-offline running
  process.on('disconnect', () => {
    try {
      process.kill(-process.pid, 'SIGKILL');
    } catch {
      process.exit(1);
    }
  });
}
