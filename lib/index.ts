export { methodGuard, guardRoute } from './method-guard';
export type { MethodGuardOptions, RouteHandlers, RouteMethod } from './method-guard';
export { responseEncoder } from './response-encoder';
export type { ResponseEncoderOptions } from './response-encoder';
export { problemHandler } from './problem-handler';
export type { ProblemBody, ProblemHandlerOptions, ProblemLogEntry } from './problem-handler';
export { openStackComputeFormat, plainTextFormat, problemJsonFormat, proxyStatuses } from './error-format';
export type { ErrorDescription, ErrorFormat, ErrorFormatter, FormattedError, StatusMap } from './error-format';
export { notFound } from './not-found';
export { problem, isOwnProblem } from './errors';
export type { ProblemError, ProblemField, ProblemInit } from './errors';
export { markSecret } from './secrets';
export { asyncMiddleware } from './async';
export { validatedPassword, setValidatedPassword, clearValidatedPassword } from './request-password';
export { hashAndStore, storedPassword } from './hashing-storer';
export type { HashAndStoreOptions, StoredPassword } from './hashing-storer';
export { encryptAndStore, revealSecret, revealedSecret, sealedSecret } from './sealing-storer';
export type { EncryptAndStoreOptions, RevealSecretOptions, SealedSecret } from './sealing-storer';
export { localKeyRing } from './key-ring';
export type { KeyProvider, LocalKeyRingOptions } from './key-ring';
export { verifyPassword, passwordVerifier, verifiedPassword } from './password-verifier';
export type {
  CandidateReader,
  PasswordVerification,
  PasswordVerifierOptions,
  VerifiedPassword,
  VerifyPasswordOptions,
} from './password-verifier';
export { HashLimiter, defaultHashLimiter } from './hash-limiter';
export type { HashLimiterOptions } from './hash-limiter';
export type { PasswordScheme } from './password-hashing';
export type { RecordIdReader } from './record-id';
export { MemoryStore } from './stores/memory-store';
export { SqliteStore } from './stores/sqlite-store';
export type { SqliteStoreOptions } from './stores/sqlite-store';
export { assertStore } from './stores/store';
export type { MaybePromise, PasswordRecord, PasswordStore } from './stores/store';
export { passwordBody } from './password-body';
export type { PasswordBodyOptions, PasswordBodyType, PasswordLocation } from './password-body';
export type { PasswordQueryOptions } from './password-query';
export type {
  PasswordComposition,
  PasswordContext,
  PasswordContextWords,
  PasswordNormalization,
  PasswordRulesOptions,
} from './password-validator';
export type { SqliteDatabase, SqliteStatement } from './stores/sqlite-store';
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
export { passwordRoutes } from './password-routes';
export type { PasswordRoutesHashing, PasswordRoutesOptions, PasswordState } from './password-routes';
export { RedisStore } from './stores/redis-store';
export type { RedisStoreClient, RedisStoreOptions } from './stores/redis-store';
export { guessLimit } from './guess-limit';
export type { GuessLimitOptions, GuessLimitStore } from './guess-limit';
export { migratePasswords } from './password-migration';
export type {
  MigratePasswordsOptions,
  MigrationFailure,
  MigrationProgress,
  MigrationSummary,
} from './password-migration';
export type { LegacyScheme } from './legacy-hashing';
export { MetadataChunks } from './stores/metadata-chunks';
export type { LegacyPasswordSource, MetadataChunksOptions } from './stores/metadata-chunks';
