import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { ERROR_STATUS, type ErrorCode, errorCode, sohError } from '../errors.ts';

/** graphql-js appends spelling suggestions; they would reveal fields outside the purpose (DESIGN §6). */
export function withoutSuggestions(message: string): string {
  return message.replace(/\s*Did you mean [^?]*\?/g, '');
}

function withCode(error: GraphQLError, fallback: ErrorCode): GraphQLError {
  const code = errorCode(error) ?? fallback;
  if (error.extensions?.['code'] === code && error.extensions?.['http']) return error;
  const source = error.originalError instanceof GraphQLError ? error.originalError : error;
  const status = ERROR_STATUS[code];
  return new GraphQLError(withoutSuggestions(error.message), {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    extensions: { ...source.extensions, code, ...(status ? { http: { status } } : {}) },
  });
}

/**
 * Gives every error the contract's code and HTTP status (DESIGN §8), whatever the Accept header:
 * parse failures, validation failures (without suggestions), bad variables. Unexpected errors are
 * masked by `maskError` below.
 */
export function useErrorContract(): Plugin {
  return {
    onParse() {
      return ({ result, replaceParseResult }) => {
        if (result instanceof Error && !errorCode(result)) {
          replaceParseResult(sohError('GRAPHQL_PARSE_FAILED', withoutSuggestions(result.message)));
        }
      };
    },
    onValidate() {
      return ({ valid, result, setResult }) => {
        if (!valid) setResult(result.map((error) => withCode(error as GraphQLError, 'GRAPHQL_VALIDATION_FAILED')));
      };
    },
    onExecute() {
      return {
        onExecuteDone({ result, setResult }) {
          if (!('errors' in result) || !result.errors?.length || result.data !== undefined) return;
          // No data at all: the request failed before execution, i.e. its variables did not coerce.
          setResult({ ...result, errors: result.errors.map((error) => withCode(error, 'BAD_USER_INPUT')) });
        },
      };
    },
  };
}

/** Yoga's error mask: errors with a contract code pass; everything else becomes a bare INTERNAL. */
export function maskError(error: unknown): Error {
  if (error instanceof GraphQLError) {
    const code = errorCode(error);
    if (code) return error.extensions?.['code'] === code ? error : withCode(error, code);
  }
  logInternalError(error);
  const path = error instanceof GraphQLError ? error.path : undefined;
  return new GraphQLError('Internal error', { path, extensions: { code: 'INTERNAL', http: { status: 500 } } });
}

/**
 * Logs an unexpected error for operators: its name and the code location, never its message,
 * which may quote input (a BSN) or partner data.
 */
function logInternalError(error: unknown): void {
  const original = error instanceof GraphQLError && error.originalError ? error.originalError : error;
  const name = original instanceof Error ? original.name : typeof original;
  const where = original instanceof Error ? (original.stack?.split('\n').find((line) => line.includes(' at '))?.trim() ?? '') : '';
  process.stderr.write(`${JSON.stringify({ level: 'error', event: 'internal_error', name, where, time: new Date().toISOString() })}\n`);
}
