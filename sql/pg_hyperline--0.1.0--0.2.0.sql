-- pg_hyperline 0.1.0 -> 0.2.0 upgrade (ALTER EXTENSION pg_hyperline UPDATE).
--
-- Every schema change of 0.2.0 is made here and in pg_hyperline--0.2.0.sql; the
-- upgrade test (test/t/008_upgrade.pl) checks that both give the same objects.
\echo Use "ALTER EXTENSION pg_hyperline UPDATE" to load this file. \quit
