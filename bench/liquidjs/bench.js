// bench.js: renders the payload template with LiquidJS in a loop and prints
// nanoseconds per render (parse once, render many times, as our engine does).
const { Liquid } = require('liquidjs');

const template =
  '{"customer_id": "{{ row.customer_id }}", "event_type": "api_call", ' +
  '"timestamp": "{{ row.created_at }}", "record": {"id": "{{ row.event_id }}", ' +
  '"durationInMs": {{ row.duration_ms }}, "isVerified": {{ row.is_verified }}}}';

// Same row as bench/micro/liquid_bench.cpp. created_at is given as the ISO text
// our engine prints, which spares LiquidJS any date formatting.
const data = {
  row: {
    customer_id: 'cus_8f2a1c',
    event_type: 'api_call',
    created_at: '2024-12-20T16:04:11.123Z',
    event_id: 'evt_0001',
    duration_ms: 1234,
    is_verified: true,
  },
  old: null,
  model: 'api_calls',
  operation: 'insert',
};

const engine = new Liquid();
const tpl = engine.parse(template);
let sink = '';
// Warm up the JIT, then time.
for (let i = 0; i < 20000; i++) sink = engine.renderSync(tpl, data);
const n = Number(process.env.ITERATIONS || 200000);
const start = process.hrtime.bigint();
for (let i = 0; i < n; i++) sink = engine.renderSync(tpl, data);
const ns = Number(process.hrtime.bigint() - start) / n;
if (!sink.includes('cus_8f2a1c')) throw new Error('unexpected output: ' + sink);
console.log(JSON.stringify({ ns_per_render: ns, output: sink }));
