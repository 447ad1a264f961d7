import type { Plugin } from 'graphql-yoga';
import type { ExecutionResult } from 'graphql';
import { sohError } from '../errors.ts';
import type { AuditLog } from './log.ts';
import type { AuditRecord } from './records.ts';

/**
 * Writes a request's audit records and waits until they are durable before the result is
 * serialised. If the log cannot take them, the answer is replaced by AUDIT_UNAVAILABLE (503):
 * nothing is released unaudited (DESIGN §7, fail closed).
 */
export function useDurableAudit(options: {
  log: AuditLog;
  recordsFor(request: Request, result: ExecutionResult): AuditRecord[];
  /** Called once the request's fate is settled, written or not (ends spans, frees timers). */
  onFinished?(request: Request, result: ExecutionResult, written: boolean): void;
}): Plugin {
  return {
    async onResultProcess({ request, result, setResult }) {
      if (Array.isArray(result) || Symbol.asyncIterator in (result as object)) {
        setResult({ errors: [sohError('BAD_USER_INPUT', 'Batched and streamed operations are not supported.')] });
        return;
      }
      const executionResult = result as ExecutionResult;
      const records = options.recordsFor(request, executionResult);
      try {
        await options.log.appendAll(records);
      } catch {
        const refused = { errors: [sohError('AUDIT_UNAVAILABLE', 'The audit record could not be written; nothing was released.')] };
        setResult(refused);
        options.onFinished?.(request, refused, false);
        return;
      }
      options.onFinished?.(request, executionResult, true);
    },
  };
}
