-- bench/sql/rows.sql: the rows every variant inserts (:n rows; ids evt_1..evt_n).
-- Used by bench.py as the SELECT of `INSERT INTO <table> <this>`; whole-second
-- timestamps so the PL/pgSQL payload and the template's are byte-identical.
SELECT 'evt_' || g, 'cus_' || (g % 1000), 'api_call',
       timestamptz '2024-12-20 00:00:00+00' + g * interval '1 second',
       (g % 5000)::int, g % 3 = 0
FROM generate_series(1, :n) g
