import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { CardholdError, type ErrorCode, errorCatalog, type FieldError } from '../shared/errors.ts';
import { isDatabaseUnavailable } from '../storage/database.ts';
import { toFieldErrors } from './validation.ts';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance: string;
  request_id: string;
  field?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export const problemType = (code: ErrorCode) => `urn:cardhold:error:${code}`;

/** Maps anything thrown in a request to an RFC 9457 problem. Messages of unknown errors are never exposed. */
export function toProblem(error: unknown, requestId: string): Problem {
  const base = (code: ErrorCode, detail?: string, field?: string, errors?: FieldError[]): Problem => ({
    type: problemType(code),
    title: errorCatalog[code].title,
    status: errorCatalog[code].status,
    detail: detail ?? errorCatalog[code].title,
    code,
    instance: `urn:cardhold:request:${requestId}`,
    request_id: requestId,
    ...(field ? { field } : {}),
    ...(errors && errors.length > 0 ? { errors } : {}),
  });

  if (error instanceof CardholdError) {
    const errors =
      error.errors ??
      (error.field ? [{ field: error.field, code: error.code, message: error.detail }] : undefined);
    return {
      ...error.extensions,
      ...base(error.code, error.detail, error.field ?? errors?.[0]?.field, errors),
    };
  }
  const fe = error as FastifyError & { validationContext?: string };
  if (fe && Array.isArray(fe.validation)) {
    const errors = toFieldErrors(fe.validation as never, fe.validationContext ?? 'body');
    const detail = `The ${fe.validationContext ?? 'request'} has ${errors.length === 1 ? 'an invalid field' : `${errors.length} invalid fields`}`;
    return base('request_invalid', detail, errors[0]?.field, errors);
  }
  switch (fe?.code) {
    case 'FST_ERR_CTP_INVALID_JSON':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      // The parser's own message quotes the body, which may hold a card number: never pass it on.
      return base('body_not_json', undefined, 'body');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return base('body_too_large', undefined, 'body');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return base('media_type_unsupported', 'Send the body as application/json', 'content-type');
    default:
      break;
  }
  if (error instanceof SyntaxError) return base('body_not_json', undefined, 'body');
  // Fail closed, and say why: a database that cannot be reached is a 503 like the other dependencies.
  if (isDatabaseUnavailable(error)) return base('storage_unavailable');
  // A platform-wide person named a merchant (cardhold-merchant) that does not exist, and the write met
  // the merchant's foreign key; the statement failed, so nothing was written.
  if (isMissingMerchant(error)) return base('merchant_not_found', undefined, 'cardhold-merchant');
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) return base('request_invalid', 'The request is malformed');
  return base('internal_error');
}

function isMissingMerchant(error: unknown): boolean {
  const { code, constraint_name: constraint } = (error ?? {}) as {
    code?: unknown;
    constraint_name?: unknown;
  };
  return code === '23503' && typeof constraint === 'string' && constraint.endsWith('_merchant_id_fkey');
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status).type('application/problem+json').send(JSON.stringify(problem));
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Adds extension members to this route's problems (the Stripe-compatible `error` object). */
    problemExtension?: (problem: Problem) => Record<string, unknown>;
  }
}

export function problemHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const plain = toProblem(error, String(request.id));
  const extend = request.routeOptions.config?.problemExtension;
  const problem = extend ? { ...plain, ...extend(plain) } : plain;
  logProblem(request, problem, error);
  return sendProblem(reply, problem);
}

/** One line per problem answered: server errors with their cause (messages only, redacted by pino). */
export function logProblem(request: FastifyRequest, problem: Problem, error: unknown): void {
  if (problem.status >= 500) {
    const cause = error instanceof Error ? error : undefined;
    request.log.error(
      {
        code: problem.code,
        err: cause ? { type: cause.name, message: cause.message, stack: cause.stack } : undefined,
      },
      'request failed',
    );
  } else {
    request.log.info({ code: problem.code, field: problem.field }, 'request rejected');
  }
}
