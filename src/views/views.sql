-- The views of views.md (schema version 3): requests, tool_calls, sessions, usage_daily.
--
-- Pure SQL over sse_lines, for SQLite 3.35 and later (no `->>`, no aggregate ORDER BY, no
-- unixepoch()). `line` is `data: ` + JSON, and a payload is read only when it is valid JSON,
-- so that a damaged line gives NULL values instead of failing the query: every read is
--   json_extract(CASE WHEN json_valid(substr(line, 7)) THEN substr(line, 7) END, '$…')
-- "First" and "last" are by id (input order), never by t. Durations are julianday differences
-- in milliseconds, rounded half away from zero (SQLite's round) and cast, so that an INTEGER
-- column never holds a REAL.
--
-- How it stays fast (scripts/views_bench.sh): there is no index on `event`, so each product
-- part scans sse_lines once for its anchor lines (message_start; response.created and the end
-- events), then reads each request's own lines through idx_sse_flow_id or idx_sse_sid. It
-- never sorts all lines, and never carries `line` through a sort. JSON is parsed only on the
-- few lines that carry a fact. A filter on sid reaches idx_sse_sid through the window
-- subqueries (their PARTITION BY starts with sid); a window subquery is also what makes SQLite
-- compute a per-request subquery once instead of once per use.

DROP VIEW IF EXISTS usage_daily;
DROP VIEW IF EXISTS sessions;
DROP VIEW IF EXISTS tool_calls;
DROP VIEW IF EXISTS requests;

CREATE VIEW requests AS
WITH
-- A Claude request: the flow (claude.* lines of one sid and one flow_id `msg_…`) of a
-- message_start; a duplicated message_start (nth > 1) makes no second request.
-- `start`: the message_start's [model, input, cache read, cache creation, output tokens].
-- `facts`, in one pass over the flow: [first id, last id, lines, first content_block_delta,
-- message_stop, tool_use blocks, [[id, [stop_reason, input, cache read, cache creation,
-- output tokens]] of each message_delta]].
claude AS (
  SELECT s.id, s.sid, s.flow_id, s.t,
    row_number() OVER (PARTITION BY s.sid, s.flow_id ORDER BY s.id) AS nth,
    (SELECT json_extract(CASE WHEN json_valid(substr(m.line, 7)) THEN substr(m.line, 7) END,
        '$.payload.message.model',
        '$.payload.message.usage.input_tokens',
        '$.payload.message.usage.cache_read_input_tokens',
        '$.payload.message.usage.cache_creation_input_tokens',
        '$.payload.message.usage.output_tokens')
      FROM sse_lines m WHERE m.id = s.id) AS start,
    (SELECT json_array(min(l.id), max(l.id), count(*),
        min(CASE WHEN l.event = 'claude.content_block_delta' THEN l.id END),
        min(CASE WHEN l.event = 'claude.message_stop' THEN l.id END),
        count(CASE WHEN l.event = 'claude.content_block_start' AND json_extract(
          CASE WHEN json_valid(substr(l.line, 7)) THEN substr(l.line, 7) END,
          '$.payload.content_block.type') = 'tool_use' THEN 1 END),
        json('[' || coalesce(group_concat(CASE WHEN l.event = 'claude.message_delta'
          THEN json_array(l.id, json_extract(
            CASE WHEN json_valid(substr(l.line, 7)) THEN substr(l.line, 7) END,
            '$.payload.delta.stop_reason', '$.payload.usage.input_tokens',
            '$.payload.usage.cache_read_input_tokens',
            '$.payload.usage.cache_creation_input_tokens', '$.payload.usage.output_tokens'))
          END), '') || ']'))
      FROM sse_lines l
      -- `+` keeps the planner on idx_sse_flow_id (a flow is far smaller than a session).
      WHERE l.flow_id = s.flow_id AND +l.sid IS s.sid
        AND l.event >= 'claude.' AND l.event < 'claude/') AS facts
  -- A subquery of its own (DISTINCT keeps SQLite from merging it into the window's query,
  -- and costs nothing on unique ids), so that it scans the table in storage order: to get
  -- the window's order, SQLite would rather read every line through idx_sse_sid.
  FROM (SELECT DISTINCT id, sid, flow_id, t FROM sse_lines
    WHERE event = 'claude.message_start' AND +flow_id GLOB 'msg_*') AS s
),
-- A Codex response: the response.* lines of one sid from a response.created to the first
-- end event after it, or, when it has none (killed), to the line before the next
-- response.created of the sid.
codex_anchor AS (
  SELECT id, sid, event,
    lead(id) OVER (PARTITION BY sid ORDER BY id) AS next_id,
    lead(event) OVER (PARTITION BY sid ORDER BY id) AS next_event
  -- In storage order, as above; the range first: it is cheaper than the IN list for the lines
  -- it excludes.
  FROM (SELECT DISTINCT id, sid, event FROM sse_lines
    WHERE event >= 'response.c' AND event < 'response.j' AND event IN ('response.created',
      'response.completed', 'response.incomplete', 'response.failed'))
),
-- `facts`: [lines, first output delta, tool calls]; `created`: [id, model]; `ended`: [id,
-- model, status, incomplete reason, input, cached, output, reasoning tokens].
codex AS (
  SELECT a.id, a.sid,
    CASE WHEN a.next_event <> 'response.created' THEN a.next_id END AS end_id,
    row_number() OVER (PARTITION BY a.sid ORDER BY a.id) AS nth,
    (SELECT json_array(count(*),
        min(CASE WHEN l.event IN ('response.output_text.delta',
          'response.reasoning_summary_text.delta', 'response.function_call_arguments.delta',
          'response.custom_tool_call_input.delta') THEN l.id END),
        count(CASE WHEN l.event = 'response.output_item.done' AND json_extract(
          CASE WHEN json_valid(substr(l.line, 7)) THEN substr(l.line, 7) END, '$.item.type')
          IN ('function_call', 'custom_tool_call', 'local_shell_call') THEN 1 END))
      FROM sse_lines l
      WHERE l.sid IS a.sid AND l.id >= a.id
        AND l.id <= CASE WHEN a.next_event <> 'response.created' THEN a.next_id
          WHEN a.next_id IS NOT NULL THEN a.next_id - 1 ELSE 9223372036854775807 END
        AND l.event GLOB 'response.*') AS facts,
    (SELECT json_extract(CASE WHEN json_valid(substr(c.line, 7)) THEN substr(c.line, 7) END,
        '$.response.id', '$.response.model')
      FROM sse_lines c WHERE c.id = a.id) AS created,
    (SELECT json_extract(CASE WHEN json_valid(substr(e.line, 7)) THEN substr(e.line, 7) END,
        '$.response.id', '$.response.model', '$.response.status',
        '$.response.incomplete_details.reason', '$.response.usage.input_tokens',
        '$.response.usage.input_tokens_details.cached_tokens', '$.response.usage.output_tokens',
        '$.response.usage.output_tokens_details.reasoning_tokens')
      FROM sse_lines e
      WHERE e.id = CASE WHEN a.next_event <> 'response.created' THEN a.next_id END) AS ended
  FROM codex_anchor a
  WHERE a.event = 'response.created'
)
SELECT 'claude' AS product,
  fl.source_id, c.sid, fl.meta_cwd, fl.meta_pid, fl.round, fl.meta_turn_id,
  c.flow_id AS response_id,
  json_extract(c.start, '$[0]') AS model,
  c.t AS started_at,
  tk.t AS first_token_at,
  coalesce(st.t, la.t) AS ended_at,
  CAST(round((julianday(tk.t) - julianday(c.t)) * 86400000.0) AS INTEGER) AS ttft_ms,
  CAST(round((julianday(coalesce(st.t, la.t)) - julianday(c.t)) * 86400000.0) AS INTEGER)
    AS duration_ms,
  -- Each field of the last message_delta that carries it (they replace the message_start's
  -- one by one; output_tokens is cumulative: the last is the total).
  (SELECT json_extract(d.value, '$[1][0]') FROM json_each(c.facts, '$[6]') AS d
    WHERE json_type(d.value, '$[1][0]') NOT IN ('null')
    ORDER BY json_extract(d.value, '$[0]') DESC LIMIT 1) AS stop_reason,
  coalesce((SELECT json_extract(d.value, '$[1][1]') FROM json_each(c.facts, '$[6]') AS d
    WHERE json_type(d.value, '$[1][1]') NOT IN ('null')
    ORDER BY json_extract(d.value, '$[0]') DESC LIMIT 1),
    json_extract(c.start, '$[1]')) AS input_tokens,
  coalesce((SELECT json_extract(d.value, '$[1][2]') FROM json_each(c.facts, '$[6]') AS d
    WHERE json_type(d.value, '$[1][2]') NOT IN ('null')
    ORDER BY json_extract(d.value, '$[0]') DESC LIMIT 1),
    json_extract(c.start, '$[2]')) AS cache_read_tokens,
  coalesce((SELECT json_extract(d.value, '$[1][3]') FROM json_each(c.facts, '$[6]') AS d
    WHERE json_type(d.value, '$[1][3]') NOT IN ('null')
    ORDER BY json_extract(d.value, '$[0]') DESC LIMIT 1),
    json_extract(c.start, '$[3]')) AS cache_write_tokens,
  coalesce((SELECT json_extract(d.value, '$[1][4]') FROM json_each(c.facts, '$[6]') AS d
    WHERE json_type(d.value, '$[1][4]') NOT IN ('null')
    ORDER BY json_extract(d.value, '$[0]') DESC LIMIT 1),
    json_extract(c.start, '$[4]')) AS output_tokens,
  NULL AS reasoning_tokens,
  json_extract(c.facts, '$[5]') AS tool_calls,
  json_extract(c.facts, '$[2]') AS lines
FROM claude c
JOIN sse_lines fl ON fl.id = json_extract(c.facts, '$[0]')
JOIN sse_lines la ON la.id = json_extract(c.facts, '$[1]')
LEFT JOIN sse_lines tk ON tk.id = json_extract(c.facts, '$[3]')
LEFT JOIN sse_lines st ON st.id = json_extract(c.facts, '$[4]')
WHERE c.nth = 1
UNION ALL
SELECT 'codex',
  cr.source_id, x.sid, cr.meta_cwd, cr.meta_pid, cr.round, cr.meta_turn_id,
  coalesce(json_extract(x.created, '$[0]'), json_extract(x.ended, '$[0]')),
  coalesce(json_extract(x.created, '$[1]'), json_extract(x.ended, '$[1]')),
  cr.t,
  tk.t,
  en.t,
  CAST(round((julianday(tk.t) - julianday(cr.t)) * 86400000.0) AS INTEGER),
  CAST(round((julianday(en.t) - julianday(cr.t)) * 86400000.0) AS INTEGER),
  CASE WHEN json_extract(x.ended, '$[2]') = 'incomplete'
    THEN coalesce(json_extract(x.ended, '$[3]'), 'incomplete')
    ELSE json_extract(x.ended, '$[2]') END,
  json_extract(x.ended, '$[4]'),
  json_extract(x.ended, '$[5]'),
  NULL,
  json_extract(x.ended, '$[6]'),
  json_extract(x.ended, '$[7]'),
  json_extract(x.facts, '$[2]'),
  json_extract(x.facts, '$[0]')
FROM codex x
JOIN sse_lines cr ON cr.id = x.id
LEFT JOIN sse_lines tk ON tk.id = json_extract(x.facts, '$[1]')
LEFT JOIN sse_lines en ON en.id = x.end_id
-- Always true: it keeps `codex` a subquery of its own (see the header).
WHERE x.nth > 0;

CREATE VIEW tool_calls AS
WITH
-- Claude: a tool_use content block of a request's flow; its arguments are the
-- input_json_delta pieces of its index, joined in input order.
claude_block AS (
  SELECT b.id, b.source_id, b.sid, b.flow_id, b.t, b.meta_cwd,
    json_extract(CASE WHEN json_valid(substr(b.line, 7)) THEN substr(b.line, 7) END,
      '$.payload.content_block.type', '$.payload.index', '$.payload.content_block.id',
      '$.payload.content_block.name') AS block
  FROM sse_lines b
  WHERE b.event = 'claude.content_block_start' AND +b.flow_id GLOB 'msg_*'
),
-- Codex: an output item of a tool type, done inside a response (after its response.created,
-- not after that response's end event).
codex_item AS (
  SELECT id, sid, event,
    max(CASE WHEN event = 'response.created' THEN id END) OVER upto AS created_id,
    max(CASE WHEN event IN ('response.completed', 'response.incomplete', 'response.failed')
      THEN id END) OVER before AS ended_id
  -- In storage order (see `requests`); the range first.
  FROM (SELECT DISTINCT id, sid, event FROM sse_lines
    WHERE event >= 'response.c' AND event < 'response.p' AND event IN ('response.created',
      'response.completed', 'response.incomplete', 'response.failed',
      'response.output_item.done'))
  WINDOW upto AS (PARTITION BY sid ORDER BY id ROWS UNBOUNDED PRECEDING),
    before AS (PARTITION BY sid ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
codex_call AS (
  SELECT i.id, i.sid, i.created_id,
    (SELECT json_extract(CASE WHEN json_valid(substr(d.line, 7)) THEN substr(d.line, 7) END,
        '$.item.type', '$.item.call_id', '$.item.name', '$.item.arguments', '$.item.input')
      FROM sse_lines d WHERE d.id = i.id) AS item,
    row_number() OVER (PARTITION BY i.sid ORDER BY i.id) AS nth
  FROM codex_item i
  WHERE i.event = 'response.output_item.done' AND i.created_id IS NOT NULL
    AND (i.ended_id IS NULL OR i.ended_id < i.created_id)
)
SELECT 'claude' AS product, b.source_id, b.sid, b.flow_id AS response_id, b.t,
  json_extract(b.block, '$[2]') AS call_id,
  json_extract(b.block, '$[3]') AS name,
  -- An aggregate group_concat (the window form gives NULL for empty pieces): '' when every
  -- piece is empty, NULL when there is no piece.
  (SELECT group_concat(json_extract(p.piece, '$[2]'), '') FROM (
    SELECT d.id, CASE WHEN instr(d.line, 'input_json_delta') > 0 THEN json_extract(
        CASE WHEN json_valid(substr(d.line, 7)) THEN substr(d.line, 7) END,
        '$.payload.delta.type', '$.payload.index', '$.payload.delta.partial_json')
      END AS piece
    FROM sse_lines d
    WHERE d.flow_id = b.flow_id AND +d.sid IS b.sid AND d.id > b.id
      AND d.event = 'claude.content_block_delta'
    ORDER BY d.id) AS p
    WHERE json_extract(p.piece, '$[0]') = 'input_json_delta'
      AND json_extract(p.piece, '$[1]') = json_extract(b.block, '$[1]')) AS arguments,
  b.meta_cwd
FROM claude_block b
WHERE json_extract(b.block, '$[0]') = 'tool_use'
  AND EXISTS (SELECT 1 FROM sse_lines s
    WHERE s.flow_id = b.flow_id AND +s.sid IS b.sid AND s.event = 'claude.message_start')
UNION ALL
SELECT 'codex', d.source_id, c.sid,
  coalesce(
    (SELECT json_extract(CASE WHEN json_valid(substr(r.line, 7)) THEN substr(r.line, 7) END,
      '$.response.id') FROM sse_lines r WHERE r.id = c.created_id),
    (SELECT json_extract(CASE WHEN json_valid(substr(e.line, 7)) THEN substr(e.line, 7) END,
      '$.response.id') FROM sse_lines e
      WHERE e.sid IS c.sid AND e.id > c.id
        AND e.event IN ('response.completed', 'response.incomplete', 'response.failed')
      ORDER BY e.id LIMIT 1)),
  d.t,
  json_extract(c.item, '$[1]'),
  json_extract(c.item, '$[2]'),
  coalesce(json_extract(c.item, '$[3]'), json_extract(c.item, '$[4]')),
  d.meta_cwd
FROM codex_call c
JOIN sse_lines d ON d.id = c.id
WHERE json_extract(c.item, '$[0]') IN ('function_call', 'custom_tool_call', 'local_shell_call')
  AND c.nth > 0;

CREATE VIEW sessions AS
WITH
-- A session is the lines of one product (by event name: claude.*; response.*, turn.*,
-- codex.*) in one sid. Nearly every sid holds the lines of one product only: those are
-- summed in one pass over idx_sse_sid; the few others (both products, or lines of
-- neither) are summed again, product by product.
per_sid AS MATERIALIZED (
  SELECT sid, count(*) AS lines, min(id) AS first_id, max(id) AS last_id,
    max(CASE WHEN meta_cwd IS NOT NULL THEN id END) AS cwd_id,
    min(CASE WHEN event GLOB 'claude.*' THEN 1 WHEN event GLOB 'response.*'
      OR event GLOB 'turn.*' OR event GLOB 'codex.*' THEN 2 ELSE 0 END) AS pmin,
    max(CASE WHEN event GLOB 'claude.*' THEN 1 WHEN event GLOB 'response.*'
      OR event GLOB 'turn.*' OR event GLOB 'codex.*' THEN 2 ELSE 0 END) AS pmax
  FROM sse_lines
  GROUP BY sid
),
part AS (
  SELECT CASE pmin WHEN 1 THEN 'claude' ELSE 'codex' END AS product, sid, lines, first_id,
    last_id, cwd_id
  FROM per_sid
  WHERE pmin = pmax AND pmin > 0
  UNION ALL
  SELECT product, sid, count(*), min(id), max(id),
    max(CASE WHEN meta_cwd IS NOT NULL THEN id END)
  FROM (
    SELECT CASE WHEN event GLOB 'claude.*' THEN 'claude' WHEN event GLOB 'response.*'
        OR event GLOB 'turn.*' OR event GLOB 'codex.*' THEN 'codex' END AS product,
      sid, id, meta_cwd
    FROM sse_lines
    WHERE sid IN (SELECT sid FROM per_sid WHERE pmin <> pmax OR pmin = 0)
      OR sid IS NULL AND (SELECT pmin <> pmax OR pmin = 0 FROM per_sid WHERE sid IS NULL))
  WHERE product IS NOT NULL
  GROUP BY product, sid
),
summed AS (
  SELECT product, sid, count(*) AS requests,
    sum(input_tokens) AS input_tokens, sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens, sum(output_tokens) AS output_tokens,
    sum(reasoning_tokens) AS reasoning_tokens, sum(tool_calls) AS tool_calls
  FROM requests
  GROUP BY product, sid
)
SELECT p.product, p.sid,
  f.t AS first_at,
  l.t AS last_at,
  c.meta_cwd,
  coalesce(r.requests, 0) AS requests,
  r.input_tokens, r.cache_read_tokens, r.cache_write_tokens, r.output_tokens,
  r.reasoning_tokens,
  coalesce(r.tool_calls, 0) AS tool_calls,
  p.lines,
  CASE WHEN p.product = 'codex' THEN (
    SELECT json_extract(CASE WHEN json_valid(substr(k.line, 7)) THEN substr(k.line, 7) END,
      '$.payload.info.total_token_usage.total_tokens')
    FROM sse_lines k
    WHERE k.sid IS p.sid AND k.event = 'turn.token_count'
      AND json_type(CASE WHEN json_valid(substr(k.line, 7)) THEN substr(k.line, 7) END,
        '$.payload.info') NOT IN ('null')
    ORDER BY k.id DESC LIMIT 1) END AS reported_total_tokens
FROM part p
JOIN sse_lines f ON f.id = p.first_id
JOIN sse_lines l ON l.id = p.last_id
LEFT JOIN sse_lines c ON c.id = p.cwd_id
LEFT JOIN summed r ON r.product = p.product AND r.sid IS p.sid;

CREATE VIEW usage_daily AS
SELECT substr(started_at, 1, 10) AS day, product, model,
  count(*) AS requests,
  sum(input_tokens) AS input_tokens,
  sum(cache_read_tokens) AS cache_read_tokens,
  sum(cache_write_tokens) AS cache_write_tokens,
  sum(output_tokens) AS output_tokens,
  sum(reasoning_tokens) AS reasoning_tokens,
  sum(tool_calls) AS tool_calls,
  avg(ttft_ms) AS avg_ttft_ms,
  max(ttft_ms) AS max_ttft_ms
FROM requests
GROUP BY 1, 2, 3;
