//! Local mode: when `AWS_LAMBDA_RUNTIME_API` is unset, answer events given
//! as arguments or as JSON lines on stdin, print the responses, and exit.

use std::io::{BufRead, IsTerminal, Write};

use super::events::error_json;
use super::handler::LambdaHandler;

/// How a local run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LocalSummary {
    /// Events answered.
    pub(crate) events: usize,
    /// Events answered with an error (a Lambda error or an HTTP status ≥ 400).
    pub(crate) failed: usize,
}

/// Answers the events in `args` (or, when there are none, one JSON event per
/// non-blank line of `input`), writing one JSON response per line to `out`.
/// `--help` / `-h` prints the usage instead.
pub(crate) fn run_local(
    handler: &LambdaHandler,
    program: &str,
    args: &[String],
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> std::io::Result<LocalSummary> {
    let mut summary = LocalSummary {
        events: 0,
        failed: 0,
    };
    if args.iter().any(|a| a == "--help" || a == "-h") {
        out.write_all(help_text(handler, program).as_bytes())?;
        return Ok(summary);
    }
    if args.is_empty() {
        let mut line = String::new();
        loop {
            line.clear();
            if input.read_line(&mut line)? == 0 {
                break;
            }
            if line.trim().is_empty() {
                continue;
            }
            answer(handler, line.trim().as_bytes(), out, &mut summary)?;
        }
    } else {
        for event in args {
            answer(handler, event.as_bytes(), out, &mut summary)?;
        }
    }
    Ok(summary)
}

fn answer(
    handler: &LambdaHandler,
    event: &[u8],
    out: &mut dyn Write,
    summary: &mut LocalSummary,
) -> std::io::Result<()> {
    let (result, outcome) = handler.respond(event);
    summary.events += 1;
    let line = match &result {
        Ok(response) => {
            if response.is_http_error() {
                summary.failed += 1;
            }
            serde_json::to_string(response).map_err(std::io::Error::other)?
        }
        Err(err) => {
            summary.failed += 1;
            error_json(err)
        }
    };
    tracing::debug!(
        event = outcome.kind,
        rows = outcome.rows,
        cold_start = outcome.cold_start,
        latency_ms = super::handler::millis(outcome.latency),
        "local invocation"
    );
    writeln!(out, "{line}")?;
    out.flush()
}

/// Whether stdin is a terminal (local mode then says it is waiting).
pub(crate) fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// The `--help` text: both modes, the event shapes, and an example event
/// sized for this model.
pub(crate) fn help_text(handler: &LambdaHandler, program: &str) -> String {
    let model = handler.model();
    let n = model.n_features();
    let zeros = vec!["0"; n].join(",");
    format!(
        "{program}: an AWS Lambda function serving an .apr {family} model \
         ({n} features -> {outputs} outputs), built with apr-lambda.

USAGE
  {program} [EVENT_JSON]...     answer each event given as an argument
  {program} < events.jsonl      answer one JSON event per line of stdin
  {program} --help              print this help

MODES
  Lambda mode: when AWS_LAMBDA_RUNTIME_API is set (as it is on AWS Lambda, or by
  `cargo lambda watch`), the binary serves invocations from the Lambda Runtime API.

  Local mode: when AWS_LAMBDA_RUNTIME_API is unset, it answers the events given as
  arguments (or, with no arguments, one JSON event per line on stdin), prints one
  JSON response per line on stdout, and exits: status 0 when every event was
  answered, 1 when any failed. Errors print as {{\"errorType\": ..., \"errorMessage\": ...}}.

EVENTS
  {{\"features\": [{zeros}]}}                 one row of {n} features
  {{\"instances\": [[{zeros}], [{zeros}]]}}   a batch (at most {max} rows)
  a Lambda Function URL / API Gateway HTTP API event whose `body` is one of
  those (possibly base64): answered with {{\"statusCode\", \"headers\", \"body\"}}

EXAMPLES
  {program} '{{\"features\":[{zeros}]}}'
  printf '%s\\n' '{{\"features\":[{zeros}]}}' '{{\"instances\":[[{zeros}]]}}' | {program}
",
        family = model.family(),
        outputs = model.n_outputs(),
        max = handler.max_batch(),
    )
}
