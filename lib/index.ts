// HTTP: what reaches the wire (finding 4, finding 7, the error model, security events).
export { methodGuard, guardRoute } from './http/method-guard';
export type { MethodGuardOptions, RouteHandlers, RouteMethod } from './http/method-guard';
export { responseEncoder } from './http/response-encoder';
export type { ResponseEncoderOptions } from './http/response-encoder';
export { problemHandler } from './http/problem-handler';
export type { ProblemBody, ProblemHandlerOptions, ProblemLogEntry } from './http/problem-handler';
export { openStackComputeFormat, plainTextFormat, problemJsonFormat, proxyStatuses } from './http/error-formats';
export type { ErrorDescription, ErrorFormat, ErrorFormatter, FormattedError, StatusMap } from './http/error-formats';
export { notFound } from './http/not-found';
export { securityEvents, reportSecurityEvent } from './http/security-events';
export type {
  SecurityEvent,
  SecurityEventDetails,
  SecurityEventLevel,
  SecurityEventSink,
  SecurityEventStats,
  SecurityEventType,
  SecurityEvents,
  SecurityEventsOptions,
} from './http/security-events';

// Access: who may touch which record (finding 1), and brute-force limits.
export { requireOwnership, ownership } from './access/ownership';
export type { OwnedBy, OwnerReader, OwnershipGuard, RequireOwnershipOptions } from './access/ownership';
export { requestUser, signedInstanceIdentity } from './access/identities';
export type {
  InstancePrincipal,
  Principal,
  PrincipalId,
  PrincipalResolver,
  RequestUserOptions,
  SignedInstanceIdentityOptions,
  UserPrincipal,
} from './access/identities';
export type { RecordIdReader, RecordIdSource } from './access/record-id';
export { guessLimit } from './access/guess-limit';
export type { GuessLimitOptions, GuessLimitStore } from './access/guess-limit';
export { requireCurrentPassword } from './access/require-current-password';
export type { RequireCurrentPasswordOptions } from './access/require-current-password';

// Body: one bounded read, validation and content rules (findings 3, 5 and 6).
export { passwordBody } from './body/password-body';
export type { PasswordBodyOptions, PasswordBodyType, PasswordLocation } from './body/password-body';
export type { PasswordQueryOptions } from './body/password-query';
export type {
  PasswordComposition,
  PasswordContext,
  PasswordContextWords,
  PasswordNormalization,
  PasswordRulesOptions,
} from './body/password-rules';
export { validatedPassword, setValidatedPassword, clearValidatedPassword, submittedPassword } from './body/validated-password';
export { noBody } from './body/no-body';

// Hashing: secrets that are only ever checked (finding 2).
export { hashAndStore, storedPassword } from './hashing/hash-and-store';
export type { HashAndStoreOptions, StoredPassword } from './hashing/hash-and-store';
export { verifyPassword, passwordVerifier, verifiedPassword } from './hashing/verify-password';
export type {
  CandidateReader,
  PasswordVerification,
  PasswordVerifierOptions,
  VerifiedPassword,
  VerifyPasswordOptions,
} from './hashing/verify-password';
export { HashLimiter, defaultHashLimiter } from './hashing/hash-limiter';
export type { HashLimiterOptions } from './hashing/hash-limiter';
export type { PasswordScheme } from './hashing/bcrypt';
export type { LegacyScheme } from './hashing/legacy-schemes';

// Sealing: secrets handed back to their owner (finding 2).
export { encryptAndStore, revealSecret, revealedSecret, sealedSecret } from './sealing/encrypt-and-store';
export type { EncryptAndStoreOptions, RevealSecretOptions, SealedSecret } from './sealing/encrypt-and-store';
export { localKeyRing } from './sealing/key-ring';
export type { KeyProvider, LocalKeyRingOptions } from './sealing/key-ring';

// Stores.
export { assertStore } from './stores/store';
export type { MaybePromise, PasswordRecord, PasswordSource, PasswordStore } from './stores/store';
export { MemoryStore } from './stores/memory-store';
export { SqliteStore } from './stores/sqlite-store';
export type { SqliteDatabase, SqliteStatement, SqliteStoreOptions } from './stores/sqlite-store';
export { RedisStore } from './stores/redis-store';
export type { RedisStoreClient, RedisStoreOptions } from './stores/redis-store';

// Migration of existing records.
export { migratePasswords } from './migration/migrate-passwords';
export type {
  MigratePasswordsOptions,
  MigrationFailure,
  MigrationProgress,
  MigrationSummary,
} from './migration/migrate-passwords';
export { MetadataChunks } from './migration/metadata-chunks';
export type { LegacyPasswordSource, MetadataChunksOptions, SourceMechanism } from './migration/metadata-chunks';

// The whole retrofit in one call.
export { passwordRoutes } from './preset/password-routes';
export type { PasswordRoutesHashing, PasswordRoutesOptions, PasswordState } from './preset/password-routes';

// Building blocks for an app's own middlewares and error handling.
export { problem, isOwnProblem } from './internal/errors';
export type { ProblemError, ProblemField, ProblemInit } from './internal/errors';
export { markSecret } from './internal/secrets';
export { asyncMiddleware } from './internal/async';
export { refusalLog } from './internal/refusal-log';
export type { RefusalEntry } from './internal/refusal-log';
