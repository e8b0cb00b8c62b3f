-- The C++/Postgres boundary: a C++ exception thrown inside the guard that runs
-- Postgres code leaves Postgres's error state as it was, so the next error is
-- reported normally (not a jump into a frame that is gone: a crash).
\set VERBOSITY default
CREATE FUNCTION pg_temp.guard_check() RETURNS void LANGUAGE c
  AS 'pg_hyperline', 'hyperline_debug_guard_check';
SELECT pg_temp.guard_check();
SELECT 'the session goes on' AS after;
SELECT pg_temp.guard_check();
SELECT 'and again' AS after;
