import { GraphQLError } from 'graphql';

/** The error codes of the contract (DESIGN §8) with the HTTP status of a request that fails as a whole. */
export const ERROR_STATUS = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  PURPOSE_FORBIDS_FIELD: 403,
  GRAPHQL_PARSE_FAILED: 400,
  GRAPHQL_VALIDATION_FAILED: 400,
  BAD_USER_INPUT: 400,
  QUERY_TOO_COMPLEX: 400,
  METHOD_NOT_ALLOWED: 405,
  RATE_LIMITED: 429,
  AUDIT_UNAVAILABLE: 503,
  ISSUER_UNAVAILABLE: 503,
  PARTNER_UNAVAILABLE: undefined,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorDetails {
  field?: string;
  purpose?: string;
  partner?: string;
  /** PARTNER_UNAVAILABLE in accessLog: the requests themselves, not a part of their timelines, may be missing. */
  requestsUnchecked?: true;
  /** Why, in words safe to show: never a BSN, a path or partner data. */
  reason?: string;
  headers?: Record<string, string>;
}

/** One error type for every boundary: a stable code, structured details and the HTTP status. */
export function sohError(code: ErrorCode, message: string, details: ErrorDetails = {}): GraphQLError {
  const { headers, ...rest } = details;
  const status = ERROR_STATUS[code];
  // `spec: false`: the status holds whatever the Accept header (yoga would otherwise answer 200
  // to application/json for errors it marks as its own).
  const http = status === undefined && headers === undefined ? undefined : { status, headers, spec: false };
  return new GraphQLError(message, {
    extensions: { code, ...rest, ...(http ? { http } : {}) },
  });
}

export function errorCode(error: unknown): ErrorCode | undefined {
  if (error instanceof GraphQLError) {
    const code = error.extensions?.['code'];
    if (typeof code === 'string' && code in ERROR_STATUS) return code as ErrorCode;
    if (error.originalError) return errorCode(error.originalError);
  }
  return undefined;
}

export function unauthenticated(reason: string): GraphQLError {
  return sohError('UNAUTHENTICATED', 'The access token is missing or invalid.', {
    reason,
    headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
  });
}

/** The token's issuer's keys cannot be fetched now: no verdict on the token, so no 401 either. */
export function issuerUnavailable(): GraphQLError {
  return sohError('ISSUER_UNAVAILABLE', "The token's issuer cannot be reached to verify it; try again shortly.", {
    reason: 'the issuer key set could not be fetched',
    headers: { 'Retry-After': '5' },
  });
}
