import { parentPort } from 'node:worker_threads';
import { DomainXmlError, parseDomainXml } from './disks.js';

/**
 * The worker side of parseDomainXmlAsync: parses one domain XML per message, off the daemon's
 * event loop. Errors travel as text; the caller rebuilds the error type its callers expect.
 */
export interface ParseJob {
  id: number;
  xml: string;
}

export type ParseAnswer = { id: number; ok: true; value: ReturnType<typeof parseDomainXml> } | { id: number; ok: false; domainXmlError: boolean; message: string };

const port = parentPort;
if (!port) throw new Error('parse-worker.js runs only as a worker thread of parse-async.js');

port.on('message', (job: ParseJob) => {
  let answer: ParseAnswer;
  try {
    answer = { id: job.id, ok: true, value: parseDomainXml(job.xml) };
  } catch (err) {
    answer = { id: job.id, ok: false, domainXmlError: err instanceof DomainXmlError, message: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(answer);
});
