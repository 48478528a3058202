import type BetterSqlite3 from 'better-sqlite3';

/**
 * `better-sqlite3`, loaded on first use: it is an optional peer dependency (a native
 * module built at install time), so an app on another store never needs it installed.
 * Throws an error naming the install command when it is missing.
 */
export function loadBetterSqlite3(user: string): typeof BetterSqlite3 {
  try {
    return require('better-sqlite3') as typeof BetterSqlite3;
  } catch (error) {
    // Only the package itself missing: a broken install (its native binding) keeps its own error.
    if (
      (error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' &&
      (error as Error).message.startsWith("Cannot find module 'better-sqlite3'")
    ) {
      throw new Error(
        `${user} needs the better-sqlite3 package, which is not installed: run "npm install better-sqlite3" in your project.`,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
}
