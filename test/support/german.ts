// PostgreSQL's messages in German, for tests that the service decides nothing
// from words PostgreSQL translates (SQLSTATEs and the 'V' severity don't change).

export const germanMessages = "de_DE.UTF-8";

/** Why a German session could not be had, and how to fix the machine. */
export const howToAddGerman =
  "the OS lacks the de_DE.UTF-8 locale that this test sets as PostgreSQL's lc_messages: as root, run " +
  "`apt-get install -y locales && localedef --no-archive -i de_DE -f UTF-8 de_DE.UTF-8` (.ci/run does); " +
  "--no-archive lets a PostgreSQL already running load it without a restart";

/** Why German sessions still got English messages. */
export const howToAddCatalog =
  "PostgreSQL answered in English with lc_messages = de_DE.UTF-8: its German message catalog " +
  "(/usr/share/locale/de/LC_MESSAGES/postgres-*.mo, from the postgresql package) is missing";
