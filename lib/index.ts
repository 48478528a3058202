export { methodGuard, guardRoute } from './method-guard';
export type { MethodGuardOptions, RouteHandlers, RouteMethod } from './method-guard';
export { responseEncoder } from './response-encoder';
export type { ResponseEncoderOptions } from './response-encoder';
export { problemHandler } from './problem-handler';
export type { ProblemBody, ProblemHandlerOptions, ProblemLogEntry } from './problem-handler';
export { notFound } from './not-found';
export { problem, isOwnProblem } from './errors';
export type { ProblemError, ProblemField, ProblemInit } from './errors';
export { markSecret } from './secrets';
export { asyncMiddleware } from './async';
export { validatedPassword, setValidatedPassword, clearValidatedPassword } from './request-password';
export { passwordBody } from './password-body';
export type { PasswordBodyOptions, PasswordBodyType } from './password-body';
export type {
  PasswordComposition,
  PasswordContext,
  PasswordContextWords,
  PasswordNormalization,
  PasswordRulesOptions,
} from './password-validator';
export { requireOwnership, ownership } from './ownership';
export type { OwnedBy, OwnerReader, OwnershipGuard, RequireOwnershipOptions } from './ownership';
export { requestUser, signedInstanceIdentity } from './identity';
export type {
  InstancePrincipal,
  Principal,
  PrincipalId,
  PrincipalResolver,
  RequestUserOptions,
  SignedInstanceIdentityOptions,
  UserPrincipal,
} from './identity';
