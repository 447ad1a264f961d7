import { parentPort, workerData } from 'node:worker_threads';
import { AuditWriter, type WriterOptions } from './writer.ts';
import type { AuditRecord } from './records.ts';

/**
 * The audit log's worker thread. Batches that arrive while a commit waits for the disk are
 * committed together in the next one (group commit); each batch is acknowledged only after the
 * commit that holds it returned.
 */
const writer = new AuditWriter(workerData as WriterOptions);
let pending: { id: number; records: AuditRecord[] }[] = [];
let scheduled = false;

function flush(): void {
  scheduled = false;
  const batches = pending;
  pending = [];
  try {
    writer.commit(batches.flatMap((batch) => batch.records));
    parentPort!.postMessage({ ids: batches.map((batch) => batch.id), ok: true });
  } catch (error) {
    parentPort!.postMessage({ ids: batches.map((batch) => batch.id), ok: false, error: (error as Error).name + ': ' + (error as Error).message });
  }
}

parentPort!.on('message', (message: { id: number; records: AuditRecord[] } | 'close') => {
  if (message === 'close') {
    if (pending.length) flush();
    writer.close();
    process.exit(0);
  }
  pending.push(message);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
});
