import { GraphQLError, type ValidationRule } from 'graphql';
import { type Plugin, processRegularResult } from 'graphql-yoga';
import { ERROR_STATUS, type ErrorCode, errorCode, sohError } from '../errors.ts';

/**
 * graphql-js messages quote the offending input and suggest spellings. Input may be a BSN or a
 * location (DESIGN §8: never in an error), and suggestions would reveal fields outside the
 * purpose (§6), so both are cut; what is left names the variable, argument or type at fault.
 */
export function safeMessage(message: string): string {
  return message
    .replace(/\s*Did you mean [^?]*\?/g, '')
    .replace(/(Invalid (?:Unicode|character) escape sequence): ".*$/s, '$1.')
    .replace(/Field ".*?" is not defined by type/gs, 'A field is not defined by type')
    .replace(/ got invalid value .*?(?=(?: at "[^"]*")?; )/s, ' got an invalid value')
    .replace(/(cannot represent[^:;]*?)(?:: .*?)?(?=;|$)/gs, '$1')
    .replace(/, found .*$/s, ', found an invalid value.')
    .replace(/Unexpected (\w+) ".*?"/gs, 'Unexpected $1')
    .replace(/Value ".*?" does not exist in/gs, 'The value does not exist in')
    .replace(/Enum "([^"]+)" cannot represent .*$/s, 'Enum "$1" cannot represent the value.')
    // Whatever form of quoting a message finds next: no message of ours has a number this long,
    // a decimal (a coordinate), or nine digits with separators (a BSN written `1234 567 82`).
    .replace(/\d(?:[\s.]?\d){7,}/g, '…')
    .replace(/\d+\.\d+/g, '…');
}

/**
 * A variable that did not coerce. graphql-js prints the whole value into the message, where a
 * key of the caller's own (`"note; x"`) can end what a pattern takes for it; the message is built
 * again from its parts instead: the variable's name and the reason, itself made safe.
 */
function variableMessage(error: GraphQLError): string | null {
  const variable = /^Variable "\$(\w+)" got invalid value /.exec(error.message);
  const reason = error.originalError;
  if (!variable || !(reason instanceof Error) || !error.message.endsWith(`; ${reason.message}`)) return null;
  // Where in the variable, when graphql-js says: the input type's own field names and list indices.
  const at = / at "(\w+(?:\.\w+|\[\d+\])*)"$/.exec(error.message.slice(0, -(reason.message.length + 2)));
  return safeMessage(`Variable "$${variable[1]}" got an invalid value${at ? ` at "${at[1]}"` : ''}: ${reason.message}`);
}

/** Re-issues an error with the contract's code, its HTTP status whatever the Accept header, and a safe message. */
function withCode(error: GraphQLError, fallback: ErrorCode): GraphQLError {
  const code = errorCode(error) ?? fallback;
  const source = error.originalError instanceof GraphQLError ? error.originalError : error;
  // yoga marks HTTP errors `spec: true` unless told otherwise, which turns them into 200 for
  // application/json; the contract's status holds whatever the Accept header (DESIGN §8). An error
  // that goes next to data says so with a status of its own (200: the answer is partial).
  const { http, ...extensions } = (source.extensions ?? {}) as { http?: { status?: number; headers?: Record<string, string> } };
  const status = http?.status ?? ERROR_STATUS[code];
  const headers = http?.headers;
  return new GraphQLError(variableMessage(error) ?? safeMessage(error.message), {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    extensions: { ...extensions, code, ...(status || headers ? { http: { status, spec: false, ...(headers ? { headers } : {}) } } : {}) },
  });
}

/**
 * Only queries are served. graphql-js validates a mutation or subscription against a schema
 * without that root type as valid and fails it only when executing, as an unexpected error.
 */
const QueriesOnly: ValidationRule = (context) => ({
  OperationDefinition(node) {
    if (node.operation !== 'query') context.reportError(new GraphQLError(`Only queries are served, not a ${node.operation}.`, { nodes: node }));
  },
});

/**
 * Gives every error the contract's code and HTTP status (DESIGN §8), whatever the Accept header:
 * parse failures, validation failures (without suggestions), bad variables. Unexpected errors are
 * masked by `maskError` below. Every answer is JSON: for an Accept it cannot serve yoga answers an
 * empty 406 after the request has run, and for text/event-stream or multipart/mixed a stream whose
 * 200 hides the code's status.
 */
export function useErrorContract(): Plugin {
  return {
    onResultProcess({ resultProcessor, setResultProcessor }) {
      if (resultProcessor !== processRegularResult) setResultProcessor(processRegularResult, 'application/json');
    },
    onParse() {
      return ({ result, replaceParseResult }) => {
        if (result instanceof Error && !errorCode(result)) replaceParseResult(sohError('GRAPHQL_PARSE_FAILED', safeMessage(result.message)));
      };
    },
    onValidate({ addValidationRule }) {
      addValidationRule(QueriesOnly);
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

/**
 * Yoga's own refusals of a malformed HTTP request (a body that is not JSON or not an object, no
 * query, an unknown parameter, a method it does not serve) carry an HTTP 4xx status and no code.
 * Their messages may quote the body, so only their gist is kept.
 */
function requestError(error: GraphQLError): GraphQLError | undefined {
  const status = (error.extensions?.['http'] as { status?: unknown } | undefined)?.status;
  if (error.originalError || typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  const message = error.message.startsWith('Unexpected parameter')
    ? 'Unexpected parameter in the request body.'
    : error.message.replace(/ but (?:received|given) .*$/s, '.');
  return status === 405
    ? sohError('METHOD_NOT_ALLOWED', 'Operations are accepted only by POST.', { headers: { Allow: 'POST' } })
    : sohError('GRAPHQL_PARSE_FAILED', `The request does not parse: ${message}`);
}

/** Yoga's error mask: errors with a contract code pass; everything else becomes a bare INTERNAL. */
export function maskError(error: unknown): Error {
  if (error instanceof GraphQLError) {
    const code = errorCode(error);
    if (code) return withCode(error, code);
    const refused = requestError(error);
    if (refused) return refused;
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
