//! Sparky: an operations agent that answers operational events with playbooks.
//!
//! The pipeline (see `DESIGN.md` for the whole picture) and where each stage lives:
//!
//! | stage      | module            | what it does                                                      |
//! |------------|-------------------|-------------------------------------------------------------------|
//! | event      | [`event`]         | the normalized event every source is turned into                    |
//! | ingest     | [`ingest`]        | webhook payloads → events, one file per source; webhook authentication       |
//! | parse      | [`dsl`]           | `.sparky` text → AST, a span on every node                         |
//! | compile    | [`compile`]       | names, argument types, rhai conditions compiled once, lints        |
//! | script     | [`script`]        | the one sandboxed rhai engine; the `kg::` context functions        |
//! | knowledge  | [`knowledge`]     | the catalog (Backstage entities), deploys, past incidents; the snapshot `kg::` reads |
//! | graph      | [`graph`]         | the immutable rule graph: playbooks in triage order, trigger index   |
//! | triage     | [`triage`]        | `decide()`: pure, synchronous L1/L2/L3 decisions with guards and a trace; the incident lifecycle (re-fires, flapping, echoes), the one account of what a decision does |
//! | analysis   | [`analysis`]      | the analyzer (built-in rules, remote model) and the context package |
//! | stdlib     | [`compile::stdlib`] | the standard library (`stdlib/`), embedded in the binary         |
//! | actions    | [`actions`]       | one file per action: typed parameters, docs, examples, `plan()` pure, `apply()` idempotent; what an event's value may become in a parameter; the clients they act through |
//! | engine     | [`engine`]        | act, verify, learn: executions claimed under guards, applied (live or dry-run), verified, audited; the circuit breaker |
//! | escalate   | [`escalate`]      | L3: the escalation package rendered for Jira (ADF, wiki markup), PagerDuty, Slack; the delivery worker that sends the outbox exactly once per incident key |
//! | fix        | [`fix`]           | L2: fix generators, pinned tests, git work, GitHub pull requests   |
//! | diagnostics| [`diagnostics`]   | one `Diagnostic` type, stable codes, human and JSON rendering      |
//! | store      | [`store`]         | the durable inbox, decisions, incidents, deploys, runs, executions, pauses, the hash-chained audit log, the escalation outbox, what is remembered of each fingerprint; SQLite or PostgreSQL (versioned migrations), replicas' claims and heartbeats |
//! | daemon     | [`daemon`]        | `sparky serve`: webhooks, group commit, inbox worker, reload, metrics |
//! | cli        | [`cli`]           | one file per subcommand (`check`, `explain`, `replay`, `test`, `serve`, `approve`, `pause`, `audit`, `migrate`) |
//!
//! Dependencies point down the pipeline: `dsl` knows nothing of `compile`, `compile` nothing
//! of `cli`.

pub mod actions;
pub mod analysis;
pub mod cli;
pub mod compile;
pub mod daemon;
pub mod diagnostics;
pub mod dsl;
pub mod engine;
pub mod escalate;
pub mod event;
pub mod fix;
pub mod graph;
pub mod ingest;
pub mod knowledge;
pub mod script;
pub mod store;
pub mod triage;
