//! `--flows`: coherent Claude messages and Codex responses, with the answers the views of
//! views.md must give on them (`--expect`).
//!
//! Each agent session plans one step at a time (a Claude message, a Codex response with the
//! `turn.*` lines around it) as a list of lines with their times; sessions are interleaved by
//! time, as several processes appending to one file are. The expected rows come from what was
//! planned and written, line by line as each is emitted ([`Oracle::emit`]), never from reading
//! the output back: a run cut short by `--lines` is answered for what it wrote.
//!
//! The traps views.md names are planned on purpose, in rotation so that even a small file has
//! each of them (`"view":"traps"` in the expectations counts them): a duplicated
//! `message_start`, several cumulative `message_delta`, tool input in many `partial_json`
//! pieces, two tool blocks in one message, a tool without parameters (one empty piece) and one
//! with no piece at all, a message with no delta, a response killed before its end, one whose
//! `response.created` has no model, `incomplete` and `failed` ends, `turn.token_count` with
//! `info` null then cumulative, flows that are not messages, and `t` that goes backwards.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::{self, Write};

use super::{
    CLAUDE_MODELS, CODEX_TOOLS, CWDS, Esc, Key, Layout, LineCtx, Product, ProductArg, Rng, Session,
    Sink, alnum, escape, escape_std, format_t, hex, lit, num, prose, uuid_v4, uuid_v7, versions,
    write_envelope,
};

const CODEX_MODELS: [&str; 3] = ["gpt-5-codex", "gpt-5", "gpt-5.1-codex"];
const CLAUDE_TOOLS: [&str; 6] = ["Bash", "Read", "Edit", "Grep", "Glob", "TodoWrite"];

/// What a run of `--flows` is asked for.
pub(crate) struct FlowOpts {
    pub seed: u64,
    pub lines: Option<u64>,
    pub bytes: Option<u64>,
    pub product: ProductArg,
    pub bom: bool,
    pub no_final_newline: bool,
}

// ------------------------------------------------------------------------------------------
// Planned lines
// ------------------------------------------------------------------------------------------

/// Traps, planned in rotation: a message or response that is not plain gets the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trap {
    DuplicateStart,
    CumulativeDeltas,
    TwoTools,
    EmptyToolInput,
    NoPiece,
    NoDelta,
    NoStop,
    RequestLineFirst,
    Killed,
    NoModel,
    Incomplete,
    Failed,
    LocalShell,
}

const CLAUDE_TRAPS: [Trap; 8] = [
    Trap::DuplicateStart,
    Trap::CumulativeDeltas,
    Trap::TwoTools,
    Trap::EmptyToolInput,
    Trap::NoPiece,
    Trap::NoDelta,
    Trap::NoStop,
    Trap::RequestLineFirst,
];

const CODEX_TRAPS: [Trap; 5] = [
    Trap::Killed,
    Trap::NoModel,
    Trap::Incomplete,
    Trap::Failed,
    Trap::LocalShell,
];

/// Token counts as the vendors report them; `None` where a field is absent or null.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tokens {
    input: Option<i64>,
    cache_read: Option<i64>,
    cache_write: Option<i64>,
    output: Option<i64>,
    reasoning: Option<i64>,
}

/// What one line tells about requests, tool calls and sessions.
#[derive(Clone, Debug)]
enum Effect {
    None,
    ClaudeStart {
        model: &'static str,
        usage: Tokens,
    },
    ClaudeDelta,
    ClaudeToolStart {
        index: u32,
        call_id: Vec<u8>,
        name: &'static str,
    },
    ClaudePiece {
        index: u32,
        piece: Vec<u8>,
    },
    /// A `message_delta`: each field present replaces the one before.
    ClaudeMessageDelta {
        stop_reason: Option<&'static str>,
        usage: Tokens,
    },
    ClaudeStop,
    CodexCreated {
        response_id: Vec<u8>,
        model: Option<&'static str>,
    },
    CodexDelta,
    CodexTool {
        call_id: Vec<u8>,
        name: Option<&'static str>,
        arguments: Option<Vec<u8>>,
    },
    CodexEnd {
        model: &'static str,
        stop_reason: &'static str,
        usage: Tokens,
    },
    /// A `turn.token_count`: the session total when `info` is not null.
    TokenCount(Option<i64>),
}

/// One line to write: when, under which flow, and its payload (the JSON after `data: `).
struct Planned {
    /// Order of the line among all sessions' lines (ms).
    at: i64,
    /// The `t` written, which may lag behind `at` (writers flush late).
    t: i64,
    event: &'static str,
    flow_id: Vec<u8>,
    round: Vec<u8>,
    data_count: u64,
    turn_id: Vec<u8>,
    /// Codex metadata omits `cwd` while it is unknown.
    cwd_known: bool,
    cwd: &'static str,
    payload: Vec<u8>,
    effect: Effect,
    trap: Option<&'static str>,
}

// ------------------------------------------------------------------------------------------
// Sessions
// ------------------------------------------------------------------------------------------

/// One agent process (or a Claude subagent sharing its session id).
struct Agent {
    env: Session,
    /// `(turn_id, cwd_known, cwd)` the envelope's metadata was last built for.
    meta_for: (Vec<u8>, bool, &'static str),
    /// The folder of the lines being planned (the envelope has the one last written).
    cwd: &'static str,
    /// Planning time: the end of the last planned line.
    clock: i64,
    plan: VecDeque<Planned>,
    steps_left: u32,
    // Claude
    round: Vec<u8>,
    in_round: u32,
    side_flows: u64,
    // Codex
    turn: u64,
    responses_in_turn: u32,
    resp_flow: Vec<u8>,
    resp_count: u64,
    turn_count: u64,
    seq: u64,
    model: &'static str,
    cwd_known: bool,
    totals: [i64; 5],
}

fn blank_session(
    product: Product,
    layout: Layout,
    esc: Esc,
    sid: Vec<u8>,
    pid: u32,
    cwd: &'static str,
    ver: &'static str,
) -> Session {
    let mut cwd_disk = Vec::new();
    escape(&mut cwd_disk, cwd.as_bytes(), esc);
    Session {
        product,
        layout,
        esc,
        sid,
        pid,
        cwd,
        ver,
        cwd_in_meta: true,
        flow_style: super::FlowStyle::Sid,
        turn: 0,
        turn_id: Vec::new(),
        flow_id: Vec::new(),
        round: Vec::new(),
        item_id: Vec::new(),
        data_count: 0,
        seq: 0,
        block: 0,
        block_kind: super::BlockKind::Text,
        metadata_raw: Vec::new(),
        metadata_disk: Vec::new(),
        cwd_disk,
        queue: VecDeque::new(),
        body_left: 0,
        more: 0,
        lines_left: 0,
        overhead: [0; 64],
    }
}

impl Agent {
    fn new(rng: &mut Rng, product: Product, clock: i64, parent: Option<&Agent>) -> Agent {
        let env = match parent {
            Some(p) => {
                let e = &p.env;
                blank_session(product, e.layout, e.esc, e.sid.clone(), e.pid, e.cwd, e.ver)
            }
            None => {
                let layout = match (product, rng.below(100)) {
                    (Product::Claude, 0..=9) => Layout::ClaudeOldest,
                    (Product::Claude, 10..=24) => Layout::ClaudeFooter,
                    (Product::Claude, _) => Layout::ClaudeCurrent,
                    (Product::Codex, 0..=14) => Layout::CodexAligned,
                    (Product::Codex, 15..=69) => Layout::CodexCurrent,
                    (Product::Codex, _) => Layout::CodexNewest,
                };
                let esc = match rng.below(100) {
                    0..=89 => Esc::Std,
                    90..=95 => Esc::Ascii,
                    _ => Esc::Slash,
                };
                let mut sid = Vec::with_capacity(36);
                match product {
                    Product::Claude => uuid_v4(&mut sid, rng),
                    Product::Codex => uuid_v7(&mut sid, rng, clock),
                }
                let pid = rng.range(1000, 99_999) as u32;
                let ver = rng.word(versions(layout));
                blank_session(product, layout, esc, sid, pid, rng.word(&CWDS), ver)
            }
        };
        // Most sessions are short; a tenth are long ones (a day's work in one session).
        let long = rng.percent(10);
        let steps_left = match product {
            Product::Claude if parent.is_some() => rng.range(2, 8) as u32,
            Product::Claude if long => rng.range(40, 300) as u32,
            Product::Claude => rng.range(4, 40) as u32,
            Product::Codex if long => rng.range(14, 80) as u32,
            Product::Codex => rng.range(2, 14) as u32,
        };
        let mut round = Vec::with_capacity(36);
        uuid_v7(&mut round, rng, clock);
        let mut resp_flow = env.sid.clone();
        if env.layout == Layout::CodexAligned && rng.percent(50) {
            lit(&mut resp_flow, "__responses");
        }
        Agent {
            cwd: env.cwd,
            env,
            meta_for: (b"-".to_vec(), false, ""),
            clock,
            plan: VecDeque::new(),
            steps_left,
            round,
            in_round: 0,
            side_flows: 0,
            turn: 0,
            responses_in_turn: 0,
            resp_flow,
            resp_count: 0,
            turn_count: 0,
            seq: 0,
            model: rng.word(&CODEX_MODELS),
            // A third of Codex sessions start before their folder is known.
            cwd_known: product == Product::Claude || !rng.percent(33),
            totals: [0; 5],
        }
    }

    fn has_round(&self) -> bool {
        self.env.layout.keys().contains(&Key::Round)
    }

    fn line(&self, at: i64, event: &'static str, flow_id: &[u8], data_count: u64) -> Planned {
        Planned {
            at,
            t: at,
            event,
            flow_id: flow_id.to_vec(),
            round: self.round.clone(),
            data_count,
            turn_id: self.env.turn_id.clone(),
            cwd_known: self.cwd_known,
            cwd: self.cwd,
            payload: Vec::new(),
            effect: Effect::None,
            trap: None,
        }
    }
}

/// Gaps between steps: mostly seconds, sometimes minutes, rarely hours (the user went away,
/// often overnight), so that sessions run over several days.
fn think_gap(rng: &mut Rng) -> i64 {
    match rng.below(100) {
        0..=54 => rng.range(5_000, 120_000) as i64,
        55..=86 => rng.range(120_000, 1_200_000) as i64,
        87..=96 => rng.range(1_200_000, 5_400_000) as i64,
        _ => rng.range(2 * 3_600_000, 14 * 3_600_000) as i64,
    }
}

fn ttft(rng: &mut Rng) -> i64 {
    rng.log_uniform(150, 12_000) as i64
}

fn step_ms(rng: &mut Rng) -> i64 {
    rng.range(5, 70) as i64
}

// ------------------------------------------------------------------------------------------
// Payload pieces
// ------------------------------------------------------------------------------------------

fn json_str(p: &mut Vec<u8>, raw: &[u8]) {
    p.push(b'"');
    escape_std(p, raw);
    p.push(b'"');
}

fn opt_num(p: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(n) if n < 0 => {
            p.push(b'-');
            num(p, n.unsigned_abs());
        }
        Some(n) => num(p, n as u64),
        None => lit(p, "null"),
    }
}

/// Prose of `lo..hi` bytes, already escaped as payload-level string content.
fn text(rng: &mut Rng, lo: usize, hi: usize) -> Vec<u8> {
    let budget = rng.range_usize(lo, hi);
    let mut v = Vec::with_capacity(budget + 16);
    prose(rng, &mut v, budget);
    v
}

/// Raw (unescaped) tool input as a model streams it: a JSON object with quotes, backslashes,
/// non-ASCII text and newlines in its strings.
fn tool_input(rng: &mut Rng, name: &str) -> Vec<u8> {
    let mut raw = Vec::new();
    match name {
        "Bash" | "shell" => {
            lit(&mut raw, r#"{"command":""#);
            let cmd = *rng.pick(&[
                r#"rg -n \"pid\" src | head -20"#,
                "cargo test --release -- --nocapture",
                r#"ls -la \"My Projects\"/café"#,
                r"grep -R 'C:\\Users' . | wc -l",
                "git diff --stat HEAD~1 && git log --oneline -5",
            ]);
            lit(&mut raw, cmd);
            lit(&mut raw, r#"","description":""#);
            let words = rng.range_usize(20, 160);
            let mut d = Vec::new();
            prose(rng, &mut d, words);
            // `prose` writes payload-level escapes; they are valid JSON string content here.
            raw.extend_from_slice(&d);
            lit(&mut raw, r#"","timeout":"#);
            num(&mut raw, rng.range(1000, 600_000));
            lit(&mut raw, "}");
        }
        "Edit" => {
            lit(
                &mut raw,
                r#"{"file_path":"/Users/zoë/src/日本語/main.rs","old_string":"fn main() {\n    println!(\"hi\");\n}","new_string":""#,
            );
            let mut d = Vec::new();
            let len = rng.range_usize(40, 600);
            prose(rng, &mut d, len);
            raw.extend_from_slice(&d);
            lit(&mut raw, r#""}"#);
        }
        _ => {
            lit(
                &mut raw,
                r#"{"pattern":"\\bpid\\b","path":"/tmp/space dir/ünïcödé","glob":"*.{rs,toml}","output_mode":"content","-n":true,"note":""#,
            );
            let mut d = Vec::new();
            let len = rng.range_usize(10, 200);
            prose(rng, &mut d, len);
            raw.extend_from_slice(&d);
            lit(&mut raw, r#""}"#);
        }
    }
    raw
}

/// A custom tool's raw input (apply_patch): free text with newlines and quotes.
fn patch_input(rng: &mut Rng) -> Vec<u8> {
    let mut raw = Vec::new();
    lit(
        &mut raw,
        "*** Begin Patch\n*** Update File: src/lib.rs\n@@ fn main() {\n-    println!(\"old\");\n+    println!(\"new — ünï \\\\ path\");\n",
    );
    for _ in 0..rng.range(1, 12) {
        lit(&mut raw, "+    let x = \"");
        num(&mut raw, rng.below(1_000_000));
        lit(&mut raw, "\"; // café\n");
    }
    lit(&mut raw, "*** End Patch");
    raw
}

/// Cuts `raw` into `n` pieces at character boundaries (pieces may be empty only when `raw` is).
fn pieces(rng: &mut Rng, raw: &[u8], n: usize) -> Vec<Vec<u8>> {
    if raw.is_empty() {
        return vec![Vec::new()];
    }
    let mut cuts: Vec<usize> = (1..n)
        .map(|_| rng.range_usize(1, raw.len().max(2)))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut from = 0;
    for mut c in cuts.into_iter().chain(std::iter::once(raw.len())) {
        while c < raw.len() && (raw[c] & 0xC0) == 0x80 {
            c += 1;
        }
        if c > from {
            out.push(raw[from..c].to_vec());
            from = c;
        }
    }
    out
}

fn claude_event(p: &mut Vec<u8>, kind: &str) {
    lit(p, r#"{"type":""#);
    lit(p, kind);
    lit(p, r#"","payload":"#);
}

fn usage_fields(p: &mut Vec<u8>, u: &Tokens) {
    let mut first = true;
    for (key, v) in [
        ("input_tokens", u.input),
        ("cache_creation_input_tokens", u.cache_write),
        ("cache_read_input_tokens", u.cache_read),
        ("output_tokens", u.output),
    ] {
        if let Some(v) = v {
            if !first {
                p.push(b',');
            }
            first = false;
            p.push(b'"');
            lit(p, key);
            lit(p, r#"":"#);
            opt_num(p, Some(v));
        }
    }
}

// ------------------------------------------------------------------------------------------
// Claude: one message per step
// ------------------------------------------------------------------------------------------

struct TrapWheel {
    claude: usize,
    codex: usize,
}

impl TrapWheel {
    fn claude(&mut self, rng: &mut Rng) -> Option<Trap> {
        if !rng.percent(30) {
            return None;
        }
        self.claude += 1;
        Some(CLAUDE_TRAPS[self.claude % CLAUDE_TRAPS.len()])
    }

    fn codex(&mut self, rng: &mut Rng) -> Option<Trap> {
        if !rng.percent(25) {
            return None;
        }
        self.codex += 1;
        Some(CODEX_TRAPS[self.codex % CODEX_TRAPS.len()])
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    Tool,
}

fn plan_claude(a: &mut Agent, rng: &mut Rng, wheel: &mut TrapWheel) {
    if a.in_round == 0 {
        a.round.clear();
        uuid_v7(&mut a.round, rng, a.clock);
        a.in_round = rng.range(1, 6) as u32;
    }
    a.in_round -= 1;
    // Now and then lines that belong to no message: an error or a retry logged under the
    // flow `unknown` (or an empty one).
    if rng.percent(8) {
        let flow: &[u8] = if rng.percent(50) { b"unknown" } else { b"" };
        let at = a.clock;
        let mut l = a.line(at, "claude.error", flow, a.side_flows);
        a.side_flows += 1;
        claude_event(&mut l.payload, "error");
        lit(
            &mut l.payload,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}}"#,
        );
        a.plan.push_back(l);
        a.clock += rng.range(200, 3000) as i64;
    }
    let trap = wheel.claude(rng);
    let mut flow = Vec::with_capacity(28);
    lit(&mut flow, "msg_01");
    alnum(&mut flow, rng, 22);
    let mut dc = 0;
    fn push(a: &mut Agent, dc: &mut u64, mut l: Planned) {
        l.data_count = *dc;
        *dc += 1;
        a.plan.push_back(l);
    }
    let mut at = a.clock;
    if trap == Some(Trap::RequestLineFirst) || rng.percent(10) {
        let mut l = a.line(at, "claude.request", &flow, 0);
        claude_event(&mut l.payload, "request");
        lit(
            &mut l.payload,
            r#"{"method":"POST","url":"https:\/\/api.anthropic.com\/v1\/messages?beta=true","body_bytes":"#,
        );
        num(&mut l.payload, rng.below(2_000_000));
        lit(&mut l.payload, "}}");
        if trap == Some(Trap::RequestLineFirst) {
            l.trap = Some("request_line_first");
        }
        push(a, &mut dc, l);
        at += rng.range(50, 900) as i64;
    }
    let model = rng.word(&CLAUDE_MODELS);
    let start_usage = Tokens {
        input: Some(if rng.percent(70) {
            rng.range(1, 40)
        } else {
            rng.range(100, 60_000)
        } as i64),
        cache_read: Some(rng.below(180_000) as i64),
        cache_write: Some(rng.below(25_000) as i64),
        output: Some(rng.range(1, 4) as i64),
        reasoning: None,
    };
    let mut start = a.line(at, "claude.message_start", &flow, 0);
    claude_event(&mut start.payload, "message_start");
    lit(
        &mut start.payload,
        r#"{"type":"message_start","message":{"model":""#,
    );
    lit(&mut start.payload, model);
    lit(&mut start.payload, r#"","id":""#);
    start.payload.extend_from_slice(&flow);
    lit(
        &mut start.payload,
        r#"","type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"#,
    );
    usage_fields(&mut start.payload, &start_usage);
    lit(
        &mut start.payload,
        r#","service_tier":"standard"}},"request_id":"req_011"#,
    );
    alnum(&mut start.payload, rng, 21);
    lit(&mut start.payload, r#""}}"#);
    start.effect = Effect::ClaudeStart {
        model,
        usage: start_usage,
    };
    let dup = (trap == Some(Trap::DuplicateStart)).then(|| Planned {
        at: at + rng.below(3) as i64,
        t: at,
        event: start.event,
        flow_id: start.flow_id.clone(),
        round: start.round.clone(),
        data_count: 0,
        turn_id: start.turn_id.clone(),
        cwd_known: start.cwd_known,
        cwd: start.cwd,
        payload: start.payload.clone(),
        effect: start.effect.clone(),
        trap: Some("duplicated_message_start"),
    });
    let started = at;
    push(a, &mut dc, start);
    if let Some(mut d) = dup {
        // A writer bug logs the very same line twice, data_count included.
        d.data_count = dc - 1;
        a.plan.push_back(d);
    }
    if rng.percent(30) {
        at += rng.range(1, 30) as i64;
        let mut l = a.line(at, "claude.ping", &flow, 0);
        claude_event(&mut l.payload, "ping");
        lit(&mut l.payload, r#"{"type": "ping"}}"#);
        push(a, &mut dc, l);
    }
    let mut blocks: Vec<Block> = Vec::new();
    if trap != Some(Trap::NoDelta) {
        if rng.percent(35) {
            blocks.push(Block::Thinking);
        }
        if rng.percent(80) {
            blocks.push(Block::Text);
        }
        match trap {
            Some(Trap::TwoTools) => blocks.extend([Block::Tool, Block::Tool]),
            Some(Trap::EmptyToolInput | Trap::NoPiece) => blocks.push(Block::Tool),
            _ if rng.percent(45) => blocks.push(Block::Tool),
            _ if blocks.is_empty() => blocks.push(Block::Text),
            _ => {}
        }
    }
    let mut first = true;
    let mut out_tokens = 0i64;
    for (index, &kind) in blocks.iter().enumerate() {
        let index = index as u32;
        at += if first { ttft(rng) } else { step_ms(rng) };
        first = false;
        let mut l = a.line(at, "claude.content_block_start", &flow, 0);
        claude_event(&mut l.payload, "content_block_start");
        lit(&mut l.payload, r#"{"type":"content_block_start","index":"#);
        num(&mut l.payload, u64::from(index));
        let mut tool = None;
        match kind {
            Block::Text => lit(
                &mut l.payload,
                r#","content_block":{"type":"text","text":""}}}"#,
            ),
            Block::Thinking => lit(
                &mut l.payload,
                r#","content_block":{"type":"thinking","thinking":"","signature":""}}}"#,
            ),
            Block::Tool => {
                let name = rng.word(&CLAUDE_TOOLS);
                let mut call_id = b"toolu_01".to_vec();
                alnum(&mut call_id, rng, 22);
                lit(
                    &mut l.payload,
                    r#","content_block":{"type":"tool_use","id":""#,
                );
                l.payload.extend_from_slice(&call_id);
                lit(&mut l.payload, r#"","name":""#);
                lit(&mut l.payload, name);
                lit(&mut l.payload, r#"","input":{}}}}"#);
                l.effect = Effect::ClaudeToolStart {
                    index,
                    call_id,
                    name,
                };
                if trap == Some(Trap::TwoTools) {
                    l.trap = Some("two_tool_blocks");
                }
                tool = Some(name);
            }
        }
        push(a, &mut dc, l);
        let deltas: Vec<(Vec<u8>, &'static str)> = match (kind, tool, trap) {
            (Block::Tool, _, Some(Trap::NoPiece)) => Vec::new(),
            (Block::Tool, _, Some(Trap::EmptyToolInput)) => vec![(Vec::new(), "empty_tool_input")],
            (Block::Tool, Some(name), _) => {
                let raw = tool_input(rng, name);
                let n = rng.range_usize(3, 60);
                pieces(rng, &raw, n).into_iter().map(|p| (p, "")).collect()
            }
            (Block::Thinking, ..) => {
                let n = rng.range_usize(2, 40);
                let mut v: Vec<(Vec<u8>, &str)> =
                    (0..n).map(|_| (text(rng, 8, 120), "thinking")).collect();
                v.push((Vec::new(), "signature"));
                v
            }
            _ => {
                let n = rng.range_usize(1, 80);
                (0..n).map(|_| (text(rng, 4, 90), "text")).collect()
            }
        };
        if let (Block::Tool, Some(Trap::NoPiece)) = (kind, trap)
            && let Some(l) = a.plan.back_mut()
        {
            l.trap = Some("tool_without_piece");
        }
        let mut first_delta = true;
        for (body, what) in deltas {
            at += if first_delta {
                rng.range(1, 40) as i64
            } else {
                step_ms(rng)
            };
            first_delta = false;
            let mut l = a.line(at, "claude.content_block_delta", &flow, 0);
            claude_event(&mut l.payload, "content_block_delta");
            lit(&mut l.payload, r#"{"type":"content_block_delta","index":"#);
            num(&mut l.payload, u64::from(index));
            match kind {
                Block::Tool => {
                    lit(
                        &mut l.payload,
                        r#","delta":{"type":"input_json_delta","partial_json":"#,
                    );
                    json_str(&mut l.payload, &body);
                    lit(&mut l.payload, "}}}");
                    l.effect = Effect::ClaudePiece { index, piece: body };
                    if what == "empty_tool_input" {
                        l.trap = Some("empty_tool_input");
                    }
                    // First token is any content_block_delta.
                }
                Block::Thinking if what == "signature" => {
                    lit(
                        &mut l.payload,
                        r#","delta":{"type":"signature_delta","signature":"EqQBCkgIAxABGAIiQ"#,
                    );
                    alnum(&mut l.payload, rng, 40);
                    lit(&mut l.payload, r#""}}}"#);
                    l.effect = Effect::ClaudeDelta;
                }
                Block::Thinking => {
                    lit(
                        &mut l.payload,
                        r#","delta":{"type":"thinking_delta","thinking":""#,
                    );
                    l.payload.extend_from_slice(&body);
                    lit(&mut l.payload, r#""}}}"#);
                    l.effect = Effect::ClaudeDelta;
                }
                Block::Text => {
                    lit(&mut l.payload, r#","delta":{"type":"text_delta","text":""#);
                    l.payload.extend_from_slice(&body);
                    lit(&mut l.payload, r#""}}}"#);
                    l.effect = Effect::ClaudeDelta;
                }
            }
            out_tokens += rng.range(1, 30) as i64;
            push(a, &mut dc, l);
        }
        at += step_ms(rng);
        let mut l = a.line(at, "claude.content_block_stop", &flow, 0);
        claude_event(&mut l.payload, "content_block_stop");
        lit(&mut l.payload, r#"{"type":"content_block_stop","index":"#);
        num(&mut l.payload, u64::from(index));
        lit(&mut l.payload, "}}");
        push(a, &mut dc, l);
    }
    if blocks.is_empty() {
        at += ttft(rng);
    }
    // message_delta: usually one; as a trap, several with cumulative output_tokens, the
    // first ones without stop_reason, some carrying input fields that replace message_start's.
    let stop_reason = if blocks.contains(&Block::Tool) {
        "tool_use"
    } else {
        *rng.pick(&[
            "end_turn",
            "end_turn",
            "end_turn",
            "max_tokens",
            "stop_sequence",
        ])
    };
    let n_md = if trap == Some(Trap::CumulativeDeltas) {
        rng.range(2, 5)
    } else {
        1
    };
    let final_out = out_tokens.max(1) + rng.below(400) as i64;
    for k in 0..n_md {
        at += step_ms(rng);
        let last = k + 1 == n_md;
        let cum = if last {
            final_out
        } else {
            final_out * (k as i64 + 1) / (n_md as i64 + 1)
        };
        let usage = Tokens {
            input: rng.percent(50).then(|| rng.range(1, 60_000) as i64),
            cache_read: rng.percent(40).then(|| rng.below(200_000) as i64),
            cache_write: rng.percent(40).then(|| rng.below(30_000) as i64),
            output: if last || rng.percent(70) {
                Some(cum)
            } else {
                None
            },
            reasoning: None,
        };
        let reason = (last || rng.percent(30)).then_some(stop_reason);
        let mut l = a.line(at, "claude.message_delta", &flow, 0);
        claude_event(&mut l.payload, "message_delta");
        lit(
            &mut l.payload,
            r#"{"type":"message_delta","delta":{"stop_reason":"#,
        );
        match reason {
            Some(r) => json_str(&mut l.payload, r.as_bytes()),
            None => lit(&mut l.payload, "null"),
        }
        lit(&mut l.payload, r#","stop_sequence":null},"usage":{"#);
        usage_fields(&mut l.payload, &usage);
        if usage == Tokens::default() {
            lit(&mut l.payload, r#""server_tool_use":null"#);
        }
        lit(&mut l.payload, "}}}");
        l.effect = Effect::ClaudeMessageDelta {
            stop_reason: reason,
            usage,
        };
        if n_md > 1 && k == 0 {
            l.trap = Some("cumulative_message_deltas");
        }
        push(a, &mut dc, l);
    }
    if trap == Some(Trap::NoDelta)
        && let Some(l) = a
            .plan
            .iter_mut()
            .rev()
            .find(|l| l.event == "claude.message_start")
    {
        l.trap = Some("message_without_delta");
    }
    if trap == Some(Trap::NoStop) {
        // The writer lost the message_stop: the flow ends at its last line.
        if let Some(l) = a.plan.back_mut() {
            l.trap = Some("message_without_stop");
        }
    } else {
        at += rng.range(1, 20) as i64;
        let mut l = a.line(at, "claude.message_stop", &flow, 0);
        claude_event(&mut l.payload, "message_stop");
        lit(&mut l.payload, r#"{"type":"message_stop"}}"#);
        l.effect = Effect::ClaudeStop;
        push(a, &mut dc, l);
        if rng.percent(25) {
            // A line of the same flow after message_stop: ended_at stays message_stop's.
            at += rng.range(1, 300) as i64;
            let mut l = a.line(at, "claude.stop", &flow, 0);
            claude_event(&mut l.payload, "stop");
            lit(&mut l.payload, r#"{"reason":"end_turn","duration_ms":"#);
            num(&mut l.payload, (at - started).max(0) as u64);
            lit(&mut l.payload, "}}");
            push(a, &mut dc, l);
        }
    }
    // A folder change is rare but happens (`cd` in the session): sessions.meta_cwd is the last.
    if rng.percent(3) {
        a.cwd = rng.word(&CWDS);
    }
    // Within a round the next message waits for a tool to run; between rounds, for the user.
    a.clock = at
        + if a.in_round > 0 {
            rng.range(500, 30_000) as i64
        } else {
            think_gap(rng)
        };
}

// ------------------------------------------------------------------------------------------
// Codex: one response per step, with the turn lines around it
// ------------------------------------------------------------------------------------------

fn turn_line(a: &mut Agent, at: i64, event: &'static str, body: &[u8]) -> Planned {
    let mut flow = a.env.sid.clone();
    lit(&mut flow, "__turn_");
    num(&mut flow, a.turn);
    let mut l = a.line(at, event, &flow, a.turn_count);
    a.turn_count += 1;
    lit(&mut l.payload, r#"{"type":""#);
    lit(&mut l.payload, event);
    lit(&mut l.payload, r#"","payload":"#);
    l.payload.extend_from_slice(body);
    l.payload.push(b'}');
    l
}

fn resp_line(a: &mut Agent, at: i64, event: &'static str) -> Planned {
    let flow = a.resp_flow.clone();
    let mut l = a.line(at, event, &flow, a.resp_count);
    a.resp_count += 1;
    a.seq += 1;
    lit(&mut l.payload, r#"{"type":""#);
    lit(&mut l.payload, event);
    lit(&mut l.payload, r#"","sequence_number":"#);
    num(&mut l.payload, a.seq);
    l
}

/// The full response object of created / in_progress / end events (several KB, as real ones).
fn response_object(
    p: &mut Vec<u8>,
    rng: &mut Rng,
    a: &Agent,
    id: &[u8],
    model: Option<&str>,
    status: &str,
    end: Option<(&Tokens, Option<&str>)>,
) {
    lit(p, r#","response":{"id":""#);
    p.extend_from_slice(id);
    lit(p, r#"","object":"response","created_at":"#);
    num(p, (a.clock / 1000) as u64);
    lit(p, r#","status":""#);
    lit(p, status);
    lit(p, r#"","error":"#);
    if status == "failed" {
        lit(
            p,
            r#"{"code":"server_error","message":"The server had an error while processing your request."}"#,
        );
    } else {
        lit(p, "null");
    }
    lit(p, r#","incomplete_details":"#);
    match end.and_then(|(_, r)| r) {
        Some(reason) => {
            lit(p, r#"{"reason":""#);
            lit(p, reason);
            lit(p, r#""}"#);
        }
        None => lit(p, "null"),
    }
    lit(p, r#","instructions":""#);
    let len = rng.range_usize(1500, 7000);
    prose(rng, p, len);
    lit(p, r#"","#);
    if let Some(m) = model {
        lit(p, r#""model":""#);
        lit(p, m);
        lit(p, r#"","#);
    }
    lit(
        p,
        r#""output":[],"parallel_tool_calls":false,"prompt_cache_key":""#,
    );
    p.extend_from_slice(&a.env.sid);
    lit(
        p,
        r#"","reasoning":{"effort":"medium","summary":"auto"},"store":false,"tools":"#,
    );
    lit(p, CODEX_TOOLS);
    lit(p, r#","usage":"#);
    match end {
        Some((u, _)) if u.input.is_some() => {
            lit(p, r#"{"input_tokens":"#);
            opt_num(p, u.input);
            lit(p, r#","input_tokens_details":{"cached_tokens":"#);
            opt_num(p, u.cache_read);
            lit(p, r#"},"output_tokens":"#);
            opt_num(p, u.output);
            lit(p, r#","output_tokens_details":{"reasoning_tokens":"#);
            opt_num(p, u.reasoning);
            lit(p, r#"},"total_tokens":"#);
            opt_num(p, Some(u.input.unwrap_or(0) + u.output.unwrap_or(0)));
            lit(p, "}");
        }
        _ => lit(p, "null"),
    }
    lit(p, "}}");
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Item {
    Reasoning,
    Message,
    Function,
    Custom,
    LocalShell,
}

fn plan_codex(a: &mut Agent, rng: &mut Rng, wheel: &mut TrapWheel) -> bool {
    let mut at = a.clock;
    let new_turn = a.responses_in_turn == 0;
    if new_turn {
        a.turn += 1;
        a.env.turn_id.clear();
        if rng.percent(2) {
            lit(&mut a.env.turn_id, "unknown");
        } else {
            num(&mut a.env.turn_id, a.turn);
        }
        a.responses_in_turn = rng.range(1, 5) as u32;
        a.turn_count = 0;
        if a.turn == 1 {
            let mut body = br#"{"session_id":""#.to_vec();
            body.extend_from_slice(&a.env.sid);
            lit(&mut body, r#"","model":""#);
            lit(&mut body, a.model);
            lit(&mut body, r#"","history_log_id":"#);
            num(&mut body, rng.below(1 << 40));
            lit(&mut body, "}");
            let l = turn_line(a, at, "turn.session_configured", &body);
            a.plan.push_back(l);
            at += rng.range(5, 200) as i64;
        } else if !a.cwd_known && rng.percent(60) {
            // The folder becomes known: metadata carries cwd from now on.
            a.cwd_known = true;
        }
        let l = turn_line(
            a,
            at,
            "turn.task_started",
            br#"{"model_context_window":272000}"#,
        );
        a.plan.push_back(l);
        at += rng.range(1, 50) as i64;
        let mut body = br#"{"message":""#.to_vec();
        body.extend_from_slice(&text(rng, 20, 800));
        lit(&mut body, r#"","images":null}"#);
        let l = turn_line(a, at, "turn.user_message", &body);
        a.plan.push_back(l);
        at += rng.range(1, 30) as i64;
        // The first token_count of a turn has no info yet.
        let mut l = turn_line(
            a,
            at,
            "turn.token_count",
            br#"{"info":null,"rate_limits":null}"#,
        );
        l.effect = Effect::TokenCount(None);
        a.plan.push_back(l);
        at += rng.range(20, 400) as i64;
    }
    a.responses_in_turn -= 1;
    let trap = wheel.codex(rng);
    a.round.clear();
    uuid_v7(&mut a.round, rng, at);
    let mut response_id = b"resp_".to_vec();
    hex(&mut response_id, rng, 48);
    let created_model = (trap != Some(Trap::NoModel)).then_some(a.model);
    let mut l = resp_line(a, at, "response.created");
    response_object(
        &mut l.payload,
        rng,
        a,
        &response_id,
        created_model,
        "in_progress",
        None,
    );
    l.effect = Effect::CodexCreated {
        response_id: response_id.clone(),
        model: created_model,
    };
    if trap == Some(Trap::NoModel) {
        l.trap = Some("created_without_model");
    }
    a.plan.push_back(l);
    at += rng.range(2, 60) as i64;
    let mut l = resp_line(a, at, "response.in_progress");
    response_object(
        &mut l.payload,
        rng,
        a,
        &response_id,
        created_model,
        "in_progress",
        None,
    );
    a.plan.push_back(l);

    let mut items = Vec::new();
    if trap == Some(Trap::LocalShell) {
        // Only a shell call: a response without any output delta.
        items.push(Item::LocalShell);
    } else {
        if rng.percent(60) {
            items.push(Item::Reasoning);
        }
        if rng.percent(55) {
            items.push(Item::Message);
        }
        match rng.below(100) {
            0..=39 => items.push(Item::Function),
            40..=49 => items.push(Item::Custom),
            50..=54 => items.extend([Item::Function, Item::Function]),
            55..=57 => items.push(Item::LocalShell),
            _ => {}
        }
        if items.is_empty() {
            items.push(Item::Message);
        }
    }
    // A killed response stops after some of its lines: count them from here.
    let killed_after = (trap == Some(Trap::Killed)).then(|| a.plan.len() + rng.range_usize(0, 30));
    let mut first = true;
    let mut out_tokens = 0i64;
    let mut had_tool = false;
    for (oi, item) in items.iter().enumerate() {
        at += if first { ttft(rng) } else { step_ms(rng) };
        first = false;
        let mut item_id = match item {
            Item::Reasoning => b"rs_".to_vec(),
            Item::Message => b"msg_".to_vec(),
            Item::Function => b"fc_".to_vec(),
            Item::Custom => b"ctc_".to_vec(),
            Item::LocalShell => b"lsh_".to_vec(),
        };
        hex(&mut item_id, rng, 32);
        let item_type = match item {
            Item::Reasoning => "reasoning",
            Item::Message => "message",
            Item::Function => "function_call",
            Item::Custom => "custom_tool_call",
            Item::LocalShell => "local_shell_call",
        };
        let mut l = resp_line(a, at, "response.output_item.added");
        lit(&mut l.payload, r#","output_index":"#);
        num(&mut l.payload, oi as u64);
        lit(&mut l.payload, r#","item":{"id":""#);
        l.payload.extend_from_slice(&item_id);
        lit(&mut l.payload, r#"","type":""#);
        lit(&mut l.payload, item_type);
        lit(&mut l.payload, r#"","status":"in_progress"}}"#);
        a.plan.push_back(l);
        let (delta_event, raw, name): (&'static str, Vec<u8>, Option<&'static str>) = match item {
            Item::Reasoning => ("response.reasoning_summary_text.delta", Vec::new(), None),
            Item::Message => ("response.output_text.delta", Vec::new(), None),
            Item::Function => {
                let name = *rng.pick(&["shell", "update_plan", "view_image"]);
                (
                    "response.function_call_arguments.delta",
                    tool_input(rng, "shell"),
                    Some(name),
                )
            }
            Item::Custom => (
                "response.custom_tool_call_input.delta",
                patch_input(rng),
                Some("apply_patch"),
            ),
            Item::LocalShell => ("", Vec::new(), None),
        };
        let bodies: Vec<Vec<u8>> = match item {
            Item::Reasoning | Item::Message => {
                let n = rng.range_usize(1, 70);
                (0..n).map(|_| text(rng, 4, 90)).collect()
            }
            Item::Function | Item::Custom => {
                let n = rng.range_usize(2, 40);
                pieces(rng, &raw, n)
                    .into_iter()
                    .map(|p| {
                        let mut e = Vec::new();
                        escape_std(&mut e, &p);
                        e
                    })
                    .collect()
            }
            Item::LocalShell => Vec::new(),
        };
        for body in bodies {
            at += step_ms(rng);
            let mut l = resp_line(a, at, delta_event);
            lit(&mut l.payload, r#","item_id":""#);
            l.payload.extend_from_slice(&item_id);
            lit(&mut l.payload, r#"","output_index":"#);
            num(&mut l.payload, oi as u64);
            lit(&mut l.payload, r#","content_index":0,"delta":""#);
            l.payload.extend_from_slice(&body);
            lit(&mut l.payload, r#""}"#);
            l.effect = Effect::CodexDelta;
            out_tokens += rng.range(1, 25) as i64;
            a.plan.push_back(l);
            // Codex mirrors some of its output as its own protocol events, in the same sid.
            if matches!(item, Item::Message | Item::Reasoning) && rng.percent(30) {
                let ev = if *item == Item::Message {
                    "turn.agent_message.delta"
                } else {
                    "turn.reasoning.delta"
                };
                let mut b = br#"{"delta":""#.to_vec();
                b.extend_from_slice(&body);
                lit(&mut b, r#""}"#);
                let l = turn_line(a, at, ev, &b);
                a.plan.push_back(l);
            }
        }
        at += step_ms(rng);
        let mut l = resp_line(a, at, "response.output_item.done");
        lit(&mut l.payload, r#","output_index":"#);
        num(&mut l.payload, oi as u64);
        lit(&mut l.payload, r#","item":{"id":""#);
        l.payload.extend_from_slice(&item_id);
        lit(&mut l.payload, r#"","type":""#);
        lit(&mut l.payload, item_type);
        lit(&mut l.payload, r#"","status":"completed""#);
        let mut call_id = b"call_".to_vec();
        alnum(&mut call_id, rng, 24);
        match item {
            Item::Reasoning => lit(
                &mut l.payload,
                r#","summary":[{"type":"summary_text","text":"Planning"}]"#,
            ),
            Item::Message => lit(
                &mut l.payload,
                r#","role":"assistant","content":[{"type":"output_text","text":"Done."}]"#,
            ),
            Item::Function | Item::Custom => {
                lit(&mut l.payload, r#","name":""#);
                lit(&mut l.payload, name.unwrap_or(""));
                lit(&mut l.payload, r#"","call_id":""#);
                l.payload.extend_from_slice(&call_id);
                lit(
                    &mut l.payload,
                    if *item == Item::Function {
                        r#"","arguments":"#
                    } else {
                        r#"","input":"#
                    },
                );
                json_str(&mut l.payload, &raw);
                l.effect = Effect::CodexTool {
                    call_id: call_id.clone(),
                    name,
                    arguments: Some(raw.clone()),
                };
                had_tool = true;
            }
            Item::LocalShell => {
                lit(&mut l.payload, r#","call_id":""#);
                l.payload.extend_from_slice(&call_id);
                lit(
                    &mut l.payload,
                    r#"","action":{"type":"exec","command":["ls","-la"],"working_directory":null}"#,
                );
                l.effect = Effect::CodexTool {
                    call_id: call_id.clone(),
                    name: None,
                    arguments: None,
                };
                if trap == Some(Trap::LocalShell) {
                    l.trap = Some("response_without_delta");
                }
                had_tool = true;
            }
        }
        lit(&mut l.payload, "}}");
        a.plan.push_back(l);
    }
    if let Some(keep) = killed_after {
        // Killed before its end: no end event, no token_count; the session goes on with a
        // new response after a while (or the agent is gone).
        let keep = keep.min(a.plan.len());
        a.plan.truncate(
            keep.max(
                a.plan
                    .iter()
                    .position(|l| l.event == "response.created")
                    .map_or(0, |i| i + 1),
            ),
        );
        if let Some(l) = a
            .plan
            .iter_mut()
            .rev()
            .find(|l| l.event == "response.created")
        {
            l.trap = Some("killed_response");
        }
        let last = a.plan.back().map_or(at, |l| l.at);
        let mut l = turn_line(
            a,
            last + rng.range(500, 5000) as i64,
            "turn.stream_error",
            br#"{"message":"stream disconnected before completion"}"#,
        );
        l.at = l.at.max(last);
        a.plan.push_back(l);
        a.clock = last + think_gap(rng);
        return rng.percent(60);
    }
    at += rng.range(5, 200) as i64;
    let (end_event, status, reason) = match trap {
        Some(Trap::Incomplete) => (
            "response.incomplete",
            "incomplete",
            Some("max_output_tokens"),
        ),
        Some(Trap::Failed) => ("response.failed", "failed", None),
        _ => ("response.completed", "completed", None),
    };
    let usage = if status == "failed" {
        Tokens::default()
    } else {
        let input = rng.range(2_000, 180_000) as i64;
        let output = out_tokens.max(1) + rng.below(2_000) as i64;
        Tokens {
            input: Some(input),
            cache_read: Some(rng.below(input as u64 + 1) as i64),
            cache_write: None,
            output: Some(output),
            reasoning: Some(rng.below(output as u64 + 1) as i64),
        }
    };
    let mut l = resp_line(a, at, end_event);
    response_object(
        &mut l.payload,
        rng,
        a,
        &response_id,
        Some(a.model),
        status,
        Some((&usage, reason)),
    );
    l.effect = Effect::CodexEnd {
        model: a.model,
        stop_reason: reason.unwrap_or(status),
        usage,
    };
    l.trap = match status {
        "incomplete" => Some("incomplete_response"),
        "failed" => Some("failed_response"),
        _ => None,
    };
    a.plan.push_back(l);
    if let Some(input) = usage.input {
        let u = [
            input,
            usage.cache_read.unwrap_or(0),
            usage.output.unwrap_or(0),
            usage.reasoning.unwrap_or(0),
            input + usage.output.unwrap_or(0),
        ];
        for (t, v) in a.totals.iter_mut().zip(u) {
            *t += v;
        }
        at += rng.range(1, 50) as i64;
        let mut b = Vec::new();
        lit(&mut b, r#"{"info":{"total_token_usage":{"#);
        for (k, (key, v)) in [
            "input_tokens",
            "cached_input_tokens",
            "output_tokens",
            "reasoning_output_tokens",
            "total_tokens",
        ]
        .iter()
        .zip(a.totals)
        .enumerate()
        {
            if k > 0 {
                b.push(b',');
            }
            b.push(b'"');
            lit(&mut b, key);
            lit(&mut b, r#"":"#);
            num(&mut b, v as u64);
        }
        lit(&mut b, r#"},"last_token_usage":{"input_tokens":"#);
        num(&mut b, u[0] as u64);
        lit(&mut b, r#","cached_input_tokens":"#);
        num(&mut b, u[1] as u64);
        lit(&mut b, r#","output_tokens":"#);
        num(&mut b, u[2] as u64);
        lit(&mut b, r#","reasoning_output_tokens":"#);
        num(&mut b, u[3] as u64);
        lit(&mut b, r#","total_tokens":"#);
        num(&mut b, u[4] as u64);
        lit(
            &mut b,
            r#"},"model_context_window":272000},"rate_limits":null}"#,
        );
        let mut l = turn_line(a, at, "turn.token_count", &b);
        l.effect = Effect::TokenCount(Some(a.totals[4]));
        if a.totals[4] != u[4] {
            l.trap = Some("cumulative_token_count");
        }
        a.plan.push_back(l);
    }
    if had_tool {
        at += rng.range(5, 100) as i64;
        let l = turn_line(
            a,
            at,
            "turn.exec.begin",
            br#"{"command":["bash","-lc","ls -la"],"cwd":"/Users/fake/cwd"}"#,
        );
        a.plan.push_back(l);
        at += rng.range(50, 20_000) as i64;
        let mut b = br#"{"stdout":""#.to_vec();
        b.extend_from_slice(&text(rng, 50, 3000));
        lit(&mut b, r#"","exit_code":0}"#);
        let l = turn_line(a, at, "turn.exec.end", &b);
        a.plan.push_back(l);
        a.responses_in_turn = a.responses_in_turn.max(1);
    }
    if rng.percent(3) {
        let mut l = a.line(at + 1, "codex.rate_limits", &a.resp_flow.clone(), 0);
        lit(
            &mut l.payload,
            r#"{"type":"codex.rate_limits","payload":{"primary":{"used_percent":12.5}}}"#,
        );
        a.plan.push_back(l);
    }
    if a.responses_in_turn == 0 {
        at += rng.range(1, 100) as i64;
        let l = turn_line(
            a,
            at,
            "turn.task_complete",
            br#"{"last_agent_message":null}"#,
        );
        a.plan.push_back(l);
        a.clock = at + think_gap(rng);
        if rng.percent(5) {
            a.model = rng.word(&CODEX_MODELS);
        }
    } else {
        a.clock = at + rng.range(100, 4000) as i64;
    }
    true
}

// ------------------------------------------------------------------------------------------
// The oracle: expected rows, kept up to date as each line is written
// ------------------------------------------------------------------------------------------

struct Request {
    product: &'static str,
    sid: Vec<u8>,
    meta_cwd: Option<&'static str>,
    meta_pid: i64,
    round: Option<Vec<u8>>,
    meta_turn_id: Option<Vec<u8>>,
    response_id: Vec<u8>,
    model: Option<&'static str>,
    started: Option<i64>,
    first_token: Option<i64>,
    stopped: Option<i64>,
    last: i64,
    stop_reason: Option<&'static str>,
    tokens: Tokens,
    tool_calls: i64,
    lines: i64,
    /// Claude: the message's tool calls, by block index (their rows are written only when the
    /// flow turned out to be a request).
    tools: Vec<(u32, usize)>,
}

struct ToolCall {
    product: &'static str,
    sid: Vec<u8>,
    response_id: Vec<u8>,
    t: i64,
    call_id: Vec<u8>,
    name: Option<&'static str>,
    arguments: Option<Vec<u8>>,
    meta_cwd: Option<&'static str>,
    request: usize,
}

#[derive(Default)]
struct SessionRow {
    product: &'static str,
    sid: Vec<u8>,
    first: i64,
    last: i64,
    meta_cwd: Option<&'static str>,
    lines: i64,
    reported_total: Option<i64>,
}

#[derive(Default)]
struct Oracle {
    requests: Vec<Request>,
    /// Claude flow id → request index.
    claude_flows: HashMap<Vec<u8>, usize>,
    /// Agent slot → its open Codex response.
    open: HashMap<usize, usize>,
    tools: Vec<ToolCall>,
    sessions: Vec<SessionRow>,
    session_index: HashMap<(&'static str, Vec<u8>), usize>,
    traps: Vec<(&'static str, u64)>,
}

impl Oracle {
    /// Records what line `l` of agent `slot` tells, as it is written.
    fn emit(&mut self, slot: usize, a: &Agent, l: &Planned) {
        let product = match a.env.product {
            Product::Claude => "claude",
            Product::Codex => "codex",
        };
        let env = &a.env;
        let meta_cwd = (product == "claude" || l.cwd_known).then_some(l.cwd);
        let key = (product, env.sid.clone());
        let si = *self.session_index.entry(key).or_insert_with(|| {
            self.sessions.push(SessionRow {
                product,
                sid: env.sid.clone(),
                first: l.t,
                ..SessionRow::default()
            });
            self.sessions.len() - 1
        });
        let s = &mut self.sessions[si];
        s.lines += 1;
        s.last = l.t;
        if meta_cwd.is_some() {
            s.meta_cwd = meta_cwd;
        }
        if let Effect::TokenCount(Some(total)) = l.effect {
            s.reported_total = Some(total);
        }
        if let Some(name) = l.trap {
            match self.traps.iter_mut().find(|(n, _)| *n == name) {
                Some((_, c)) => *c += 1,
                None => self.traps.push((name, 1)),
            }
        }
        let round = a.has_round().then(|| l.round.clone());
        let turn_id = (product == "codex").then(|| l.turn_id.clone());
        let new_request = |response_id: Vec<u8>| Request {
            product,
            sid: env.sid.clone(),
            meta_cwd,
            meta_pid: i64::from(env.pid),
            round: round.clone(),
            meta_turn_id: turn_id.clone(),
            response_id,
            model: None,
            started: None,
            first_token: None,
            stopped: None,
            last: l.t,
            stop_reason: None,
            tokens: Tokens::default(),
            tool_calls: 0,
            lines: 0,
            tools: Vec::new(),
        };
        if product == "claude" {
            if !l.flow_id.starts_with(b"msg_") {
                return;
            }
            let ri = match self.claude_flows.get(&l.flow_id) {
                Some(&ri) => ri,
                None => {
                    self.requests.push(new_request(l.flow_id.clone()));
                    let ri = self.requests.len() - 1;
                    self.claude_flows.insert(l.flow_id.clone(), ri);
                    ri
                }
            };
            let r = &mut self.requests[ri];
            r.lines += 1;
            r.last = l.t;
            match &l.effect {
                Effect::ClaudeStart { model, usage } if r.started.is_none() => {
                    r.started = Some(l.t);
                    r.model = Some(model);
                    r.tokens = *usage;
                }
                Effect::ClaudeDelta => {
                    r.first_token.get_or_insert(l.t);
                }
                Effect::ClaudePiece { index, piece } => {
                    r.first_token.get_or_insert(l.t);
                    if let Some(&(_, ti)) = r.tools.iter().find(|(i, _)| i == index) {
                        self.tools[ti]
                            .arguments
                            .get_or_insert_with(Vec::new)
                            .extend_from_slice(piece);
                    }
                }
                Effect::ClaudeToolStart {
                    index,
                    call_id,
                    name,
                } => {
                    r.tool_calls += 1;
                    r.tools.push((*index, self.tools.len()));
                    self.tools.push(ToolCall {
                        product,
                        sid: env.sid.clone(),
                        response_id: l.flow_id.clone(),
                        t: l.t,
                        call_id: call_id.clone(),
                        name: Some(name),
                        arguments: None,
                        meta_cwd,
                        request: ri,
                    });
                }
                Effect::ClaudeMessageDelta { stop_reason, usage } => {
                    if stop_reason.is_some() {
                        r.stop_reason = *stop_reason;
                    }
                    let t = &mut r.tokens;
                    for (to, from) in [
                        (&mut t.input, usage.input),
                        (&mut t.cache_read, usage.cache_read),
                        (&mut t.cache_write, usage.cache_write),
                        (&mut t.output, usage.output),
                    ] {
                        if from.is_some() {
                            *to = from;
                        }
                    }
                }
                Effect::ClaudeStop => {
                    r.stopped.get_or_insert(l.t);
                }
                _ => {}
            }
            return;
        }
        if !l.event.starts_with("response.") {
            return;
        }
        if let Effect::CodexCreated { response_id, model } = &l.effect {
            let mut r = new_request(response_id.clone());
            r.model = *model;
            r.started = Some(l.t);
            self.requests.push(r);
            self.open.insert(slot, self.requests.len() - 1);
        }
        let Some(&ri) = self.open.get(&slot) else {
            return;
        };
        let r = &mut self.requests[ri];
        r.lines += 1;
        match &l.effect {
            Effect::CodexDelta => {
                r.first_token.get_or_insert(l.t);
            }
            Effect::CodexTool {
                call_id,
                name,
                arguments,
            } => {
                r.tool_calls += 1;
                self.tools.push(ToolCall {
                    product,
                    sid: env.sid.clone(),
                    response_id: r.response_id.clone(),
                    t: l.t,
                    call_id: call_id.clone(),
                    name: *name,
                    arguments: arguments.clone(),
                    meta_cwd,
                    request: ri,
                });
            }
            Effect::CodexEnd {
                model,
                stop_reason,
                usage,
            } => {
                r.model = r.model.or(Some(model));
                r.stopped = Some(l.t);
                r.stop_reason = Some(stop_reason);
                r.tokens = *usage;
                self.open.remove(&slot);
            }
            _ => {}
        }
    }

    fn write(&self, w: &mut dyn Write) -> io::Result<()> {
        let is_request = |r: &Request| r.started.is_some();
        let mut o = Vec::with_capacity(1024);
        for r in self.requests.iter().filter(|r| is_request(r)) {
            let started = r.started.unwrap_or_default();
            let ended = if r.product == "claude" {
                Some(r.stopped.unwrap_or(r.last))
            } else {
                r.stopped
            };
            let mut j = Obj::new(&mut o, "requests");
            j.str("product", Some(r.product.as_bytes()));
            j.str("sid", Some(&r.sid));
            j.str("meta_cwd", r.meta_cwd.map(str::as_bytes));
            j.int("meta_pid", Some(r.meta_pid));
            j.str("round", r.round.as_deref());
            j.str("meta_turn_id", r.meta_turn_id.as_deref());
            j.str("response_id", Some(&r.response_id));
            j.str("model", r.model.map(str::as_bytes));
            j.time("started_at", Some(started));
            j.time("first_token_at", r.first_token);
            j.time("ended_at", ended);
            j.int("ttft_ms", r.first_token.map(|f| f - started));
            j.int("duration_ms", ended.map(|e| e - started));
            j.str("stop_reason", r.stop_reason.map(str::as_bytes));
            j.tokens(&r.tokens, r.product);
            j.int("tool_calls", Some(r.tool_calls));
            j.int("lines", Some(r.lines));
            j.end(w)?;
        }
        for c in self
            .tools
            .iter()
            .filter(|c| is_request(&self.requests[c.request]))
        {
            let mut j = Obj::new(&mut o, "tool_calls");
            j.str("product", Some(c.product.as_bytes()));
            j.str("sid", Some(&c.sid));
            j.str("response_id", Some(&c.response_id));
            j.time("t", Some(c.t));
            j.str("call_id", Some(&c.call_id));
            j.str("name", c.name.map(str::as_bytes));
            j.str("arguments", c.arguments.as_deref());
            j.str("meta_cwd", c.meta_cwd.map(str::as_bytes));
            j.end(w)?;
        }
        // Sessions and days: sums over the requests, NULL when nothing was summed.
        let mut per_session: HashMap<(&str, &[u8]), Sums> = HashMap::new();
        let mut per_day: Vec<(DayKey, Sums)> = Vec::new();
        let mut day_index: HashMap<DayKey, usize> = HashMap::new();
        for r in self.requests.iter().filter(|r| is_request(r)) {
            per_session.entry((r.product, &r.sid)).or_default().add(r);
            let started = r.started.unwrap_or_default();
            let day = format_t(started)[..10].to_vec();
            let key = (day, r.product, r.model);
            let i = *day_index.entry(key.clone()).or_insert_with(|| {
                per_day.push((key, Sums::default()));
                per_day.len() - 1
            });
            per_day[i].1.add(r);
        }
        for s in &self.sessions {
            let sums = per_session
                .remove(&(s.product, &s.sid[..]))
                .unwrap_or_default();
            let mut j = Obj::new(&mut o, "sessions");
            j.str("product", Some(s.product.as_bytes()));
            j.str("sid", Some(&s.sid));
            j.time("first_at", Some(s.first));
            j.time("last_at", Some(s.last));
            j.str("meta_cwd", s.meta_cwd.map(str::as_bytes));
            j.int("requests", Some(sums.requests));
            j.sums(&sums);
            j.int("tool_calls", Some(sums.tool_calls));
            j.int("lines", Some(s.lines));
            j.int("reported_total_tokens", s.reported_total);
            j.end(w)?;
        }
        for ((day, product, model), sums) in &per_day {
            let mut j = Obj::new(&mut o, "usage_daily");
            j.str("day", Some(day));
            j.str("product", Some(product.as_bytes()));
            j.str("model", model.map(str::as_bytes));
            j.int("requests", Some(sums.requests));
            j.sums(sums);
            j.int("tool_calls", Some(sums.tool_calls));
            j.real(
                "avg_ttft_ms",
                (sums.ttft_n > 0).then(|| sums.ttft_sum as f64 / sums.ttft_n as f64),
            );
            j.int("max_ttft_ms", sums.ttft_max);
            j.end(w)?;
        }
        let mut j = Obj::new(&mut o, "traps");
        for (name, count) in &self.traps {
            j.int(name, Some(*count as i64));
        }
        j.end(w)
    }
}

/// `(day, product, model)`: a row of usage_daily.
type DayKey<'a> = (Vec<u8>, &'a str, Option<&'a str>);

#[derive(Default)]
struct Sums {
    requests: i64,
    input: Option<i64>,
    cache_read: Option<i64>,
    cache_write: Option<i64>,
    output: Option<i64>,
    reasoning: Option<i64>,
    tool_calls: i64,
    ttft_sum: i64,
    ttft_n: i64,
    ttft_max: Option<i64>,
}

impl Sums {
    fn add(&mut self, r: &Request) {
        self.requests += 1;
        self.tool_calls += r.tool_calls;
        let t = &r.tokens;
        let reasoning = if r.product == "codex" {
            t.reasoning
        } else {
            None
        };
        let cache_write = if r.product == "claude" {
            t.cache_write
        } else {
            None
        };
        for (sum, v) in [
            (&mut self.input, t.input),
            (&mut self.cache_read, t.cache_read),
            (&mut self.cache_write, cache_write),
            (&mut self.output, t.output),
            (&mut self.reasoning, reasoning),
        ] {
            if let Some(v) = v {
                *sum = Some(sum.unwrap_or(0) + v);
            }
        }
        if let (Some(f), Some(s)) = (r.first_token, r.started) {
            self.ttft_sum += f - s;
            self.ttft_n += 1;
            self.ttft_max = Some(self.ttft_max.map_or(f - s, |m| m.max(f - s)));
        }
    }
}

/// One JSON object of the expectations file, written by hand (the generator has no JSON
/// library): `{"view":"…","column":value,…}`.
struct Obj<'a> {
    o: &'a mut Vec<u8>,
}

impl<'a> Obj<'a> {
    fn new(o: &'a mut Vec<u8>, view: &str) -> Obj<'a> {
        o.clear();
        lit(o, r#"{"view":""#);
        lit(o, view);
        o.push(b'"');
        Obj { o }
    }

    fn key(&mut self, k: &str) {
        lit(self.o, r#",""#);
        lit(self.o, k);
        lit(self.o, r#"":"#);
    }

    fn str(&mut self, k: &str, v: Option<&[u8]>) {
        self.key(k);
        match v {
            Some(v) => json_str(self.o, v),
            None => lit(self.o, "null"),
        }
    }

    fn int(&mut self, k: &str, v: Option<i64>) {
        self.key(k);
        opt_num(self.o, v);
    }

    fn real(&mut self, k: &str, v: Option<f64>) {
        self.key(k);
        match v {
            Some(v) => lit(self.o, &format!("{v:?}")),
            None => lit(self.o, "null"),
        }
    }

    fn time(&mut self, k: &str, v: Option<i64>) {
        self.key(k);
        match v {
            Some(ms) => {
                self.o.push(b'"');
                self.o.extend_from_slice(&format_t(ms));
                self.o.push(b'"');
            }
            None => lit(self.o, "null"),
        }
    }

    fn tokens(&mut self, t: &Tokens, product: &str) {
        self.int("input_tokens", t.input);
        self.int("cache_read_tokens", t.cache_read);
        self.int(
            "cache_write_tokens",
            if product == "claude" {
                t.cache_write
            } else {
                None
            },
        );
        self.int("output_tokens", t.output);
        self.int(
            "reasoning_tokens",
            if product == "codex" {
                t.reasoning
            } else {
                None
            },
        );
    }

    fn sums(&mut self, s: &Sums) {
        self.int("input_tokens", s.input);
        self.int("cache_read_tokens", s.cache_read);
        self.int("cache_write_tokens", s.cache_write);
        self.int("output_tokens", s.output);
        self.int("reasoning_tokens", s.reasoning);
    }

    fn end(self, w: &mut dyn Write) -> io::Result<()> {
        lit(self.o, "}\n");
        w.write_all(self.o)
    }
}

// ------------------------------------------------------------------------------------------
// Driver
// ------------------------------------------------------------------------------------------

/// Writes `--flows` output to `sink` and, when asked, the expected rows to `expect`; returns
/// the number of lines written.
pub(crate) fn run<W: Write>(
    o: &FlowOpts,
    sink: &mut Sink<W>,
    expect: Option<&mut dyn Write>,
) -> io::Result<u64> {
    let mut rng = Rng::new(o.seed);
    // A late evening in the second half of 2025 (local time, no zone): even a short run
    // crosses midnight, a long one spans days.
    let day = 20_270 + rng.below(170) as i64;
    let mut now = day * 86_400_000 + rng.range(23 * 3_600_000, 23 * 3_600_000 + 3_000_000) as i64;
    let mut agents: Vec<Option<Agent>> = Vec::new();
    let mut heap: BinaryHeap<Reverse<(i64, u64, usize)>> = BinaryHeap::new();
    let mut order = 0u64;
    let mut wheel = TrapWheel {
        claude: 0,
        codex: 0,
    };
    let mut oracle = Oracle::default();
    let mut out = Vec::with_capacity(1 << 16);
    let mut written = 0u64;
    if o.bom {
        sink.put(super::BOM)?;
    }
    let done = |written: u64, bytes: u64| match (o.lines, o.bytes) {
        (Some(n), _) => written >= n,
        (None, Some(b)) => bytes + 1 >= b,
        (None, None) => true,
    };
    let mut target = rng.range_usize(2, 7);
    while !done(written, sink.bytes) {
        let live = agents.iter().filter(|a| a.is_some()).count();
        if live < target || heap.is_empty() {
            let product = match o.product {
                ProductArg::Claude => Product::Claude,
                ProductArg::Codex => Product::Codex,
                ProductArg::Both if rng.percent(50) => Product::Claude,
                ProductArg::Both => Product::Codex,
            };
            // Claude runs subagents under the session of the agent that started them.
            let parent = agents
                .iter()
                .flatten()
                .find(|p| p.env.product == Product::Claude && product == Product::Claude)
                .filter(|_| rng.percent(20));
            let start = now
                + if heap.is_empty() {
                    0
                } else {
                    rng.below(1_800_000) as i64
                };
            let a = Agent::new(&mut rng, product, start, parent);
            let slot = agents
                .iter()
                .position(Option::is_none)
                .unwrap_or(agents.len());
            if slot == agents.len() {
                agents.push(None);
            }
            agents[slot] = Some(a);
            heap.push(Reverse((start, order, slot)));
            order += 1;
            continue;
        }
        let Some(Reverse((_, _, slot))) = heap.pop() else {
            unreachable!("the heap was refilled above")
        };
        let Some(a) = agents[slot].as_mut() else {
            continue;
        };
        if a.plan.is_empty() {
            let more = if a.steps_left == 0 {
                false
            } else {
                a.steps_left -= 1;
                match a.env.product {
                    Product::Claude => {
                        plan_claude(a, &mut rng, &mut wheel);
                        true
                    }
                    Product::Codex => plan_codex(a, &mut rng, &mut wheel),
                }
            };
            if !more {
                a.steps_left = 0;
            }
            if a.plan.is_empty() {
                agents[slot] = None;
                target = rng.range_usize(2, 7);
                continue;
            }
        }
        let mut l = a.plan.pop_front().expect("planned above");
        // Writers flush late now and then: `t` is not monotonic in file order.
        if rng.percent(2) {
            l.t = l.t.min(l.at) - rng.range(1, 1500) as i64;
        }
        now = now.max(l.at);
        write_line(a, &l, &mut rng, &mut out)?;
        oracle.emit(slot, a, &l);
        sink.put(&out)?;
        written += 1;
        let last = done(written, sink.bytes);
        if !(last && o.no_final_newline) {
            sink.put(b"\n")?;
        }
        match a.plan.front() {
            Some(next) => heap.push(Reverse((next.at, order, slot))),
            None => heap.push(Reverse((a.clock.max(l.at), order, slot))),
        }
        order += 1;
    }
    if let Some(w) = expect {
        oracle.write(w)?;
    }
    Ok(written)
}

fn write_line(a: &mut Agent, l: &Planned, rng: &mut Rng, out: &mut Vec<u8>) -> io::Result<()> {
    let env = &mut a.env;
    if a.meta_for.0 != l.turn_id || a.meta_for.1 != l.cwd_known || a.meta_for.2 != l.cwd {
        env.turn_id.clone_from(&l.turn_id);
        env.cwd_in_meta = env.product == Product::Claude || l.cwd_known;
        env.cwd = l.cwd;
        env.cwd_disk.clear();
        escape(&mut env.cwd_disk, l.cwd.as_bytes(), env.esc);
        env.build_metadata();
        a.meta_for = (l.turn_id.clone(), l.cwd_known, l.cwd);
    }
    env.flow_id.clone_from(&l.flow_id);
    env.round.clone_from(&l.round);
    env.data_count = l.data_count;
    let t = format_t(l.t);
    let layout = env.layout;
    let released = (layout == Layout::CodexNewest && rng.percent(50)).then(|| {
        let pos = rng.below_usize(layout.keys().len() + 1);
        (pos, l.at as u64 * 1_000_000 + rng.below(1_000_000))
    });
    let ctx = LineCtx {
        layout,
        event: l.event,
        t: &t,
        released,
    };
    let esc = env.esc;
    out.clear();
    write_envelope(out, env, &ctx, &mut |o| {
        escape(o, &l.payload, esc);
        Ok(())
    })
}
