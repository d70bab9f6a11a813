#!/usr/bin/env bash
# Peer for scripts/bench.sh: the stock sqlite3 shell, no code at all.
#
#   1. import:  `.mode ascii`, `.separator "\037" "\n"` (unit separator between columns, which a
#      valid JSON line can never contain raw, newline between rows), `.import FILE raw` into a
#      one-column table raw(line): one row per input line, untouched.
#   2. insert:  one `INSERT INTO sse_lines(...) SELECT ... FROM raw WHERE json_valid(line)`
#      computing the contract's columns with SQLite's JSON functions: `line->>'$.event'` etc.,
#      meta_* as `(line->>'$.metadata')->>'$.pid'` falling back to the top level, `extra` as
#      json_group_object over json_each(line) minus the keys that have a column.
#      Lines that are not valid JSON are skipped (otherwise `->>` aborts the whole statement).
#
# Shell defaults otherwise (rollback journal, synchronous=FULL, 2 MB cache), no indexes. The
# database keeps the raw table too (dropping it costs more time and gives no space back).
# Needs sqlite3 >= 3.38 for `->>`.
#
# Usage: sqlite3_shell.sh INPUT DB      (SQLITE3=/path/to/sqlite3 to pick another shell)
# Prints on stderr: `sqlite3_shell: import X s, insert Y s, R rows`.
set -euo pipefail
export LC_ALL=C

if (($# != 2)); then
    echo "usage: $0 INPUT DB" >&2
    exit 2
fi
input=$1
db=$2
sqlite=${SQLITE3:-sqlite3}
case $input in
*'"'* | *\\*)
    printf '%s\n' "sqlite3_shell: the input path must not contain a double quote or a backslash" >&2
    exit 2
    ;;
esac

rm -f -- "$db" "$db-journal" "$db-wal" "$db-shm"

t0=$EPOCHREALTIME
"$sqlite" -bail "$db" <<SQL
CREATE TABLE raw(line TEXT);
.mode ascii
.separator "\\037" "\\n"
.import "$input" raw
SQL
t1=$EPOCHREALTIME

"$sqlite" -bail "$db" <<'SQL'
CREATE TABLE sse_lines (
    id INTEGER PRIMARY KEY,
    event TEXT,
    t TEXT,
    flow_id TEXT,
    round TEXT,
    data_count INTEGER,
    sid TEXT,
    meta_ver TEXT,
    meta_pid INTEGER,
    meta_cwd TEXT,
    meta_turn_id TEXT,
    metadata TEXT,
    extra TEXT,
    line TEXT
);
INSERT INTO sse_lines (event, t, flow_id, round, data_count, sid, meta_ver, meta_pid, meta_cwd,
                       meta_turn_id, metadata, extra, line)
SELECT
    line ->> '$.event',
    line ->> '$.t',
    line ->> '$.flow_id',
    line ->> '$.round',
    CAST(line ->> '$.data_count' AS INTEGER),
    line ->> '$.sid',
    coalesce(mj ->> '$.ver', line ->> '$.ver'),
    CAST(coalesce(mj ->> '$.pid', line ->> '$.pid') AS INTEGER),
    coalesce(mj ->> '$.cwd', line ->> '$.cwd'),
    coalesce(mj ->> '$.turn_id', line ->> '$.turn_id'),
    m,
    (SELECT CASE WHEN count(*) > 0 THEN json_group_object(key,
                CASE type WHEN 'true' THEN json('true') WHEN 'false' THEN json('false')
                          WHEN 'null' THEN json('null') WHEN 'object' THEN json(value)
                          WHEN 'array' THEN json(value) ELSE value END) END
       FROM json_each(line)
      WHERE key NOT IN ('event', 't', 'flow_id', 'round', 'data_count', 'sid', 'metadata', 'line')),
    line ->> '$.line'
FROM (SELECT line, m, CASE WHEN json_valid(m) THEN m END AS mj
        FROM (SELECT line, line ->> '$.metadata' AS m FROM raw WHERE json_valid(line)));
SQL
t2=$EPOCHREALTIME

rows=$("$sqlite" "$db" 'SELECT count(*) FROM sse_lines')
awk -v a="$t0" -v b="$t1" -v c="$t2" -v r="$rows" \
    'BEGIN { printf "sqlite3_shell: import %.3f s, insert %.3f s, %d rows\n", b - a, c - b, r }' >&2
