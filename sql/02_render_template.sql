-- The Liquid engine alone.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_hyperline CASCADE;
CREATE EXTENSION pg_hyperline;
RESET client_min_messages;
SELECT hyperline.render_template('Hello {{ name | upcase }}!', '{"name": "ada"}');
SELECT hyperline.render_template('{% if n > 2 %}big{% else %}small{% endif %}', '{"n": 3}');
SELECT hyperline.render_template('{{ items | join: ", " }} ({{ items | size }})', '{"items": ["a", "b", "c"]}');
SELECT hyperline.render_template('{{ price | times: 100 | round }}', '{"price": 12.345}');
SELECT hyperline.render_template('{{ missing | default: "n/a" }}');
SELECT hyperline.render_template('{% assign x = "a,b" | split: "," %}{{ x | last }}');
SELECT hyperline.render_template('{{ "2024-12-20T16:04:11Z" | date: "%Y/%m/%d %H:%M" }}');
SELECT hyperline.render_template('{%- raw -%}{{ not rendered }}{%- endraw -%}');
SELECT hyperline.render_template('a {{- " b " -}} c');
-- errors name the problem
SELECT hyperline.render_template('{% if x %}unclosed');
SELECT hyperline.render_template('{{ 1 | divided_by: 0 }}');
SELECT hyperline.render_template('{{ x }}', '[1, 2]');
