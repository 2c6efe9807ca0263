//! Local mode: when `AWS_LAMBDA_RUNTIME_API` is unset, answer events given
//! as arguments or as JSON lines on stdin, print the responses, and exit.

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};

use super::metrics::millis;
use super::response::error_json;
use super::service::Serve;

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
/// `--help` / `-h` prints the usage instead. Every event is answered, even
/// one that is not UTF-8 (a `MalformedEvent` error line).
pub(crate) fn run_local(
    handler: &dyn Serve,
    program: &str,
    args: &[OsString],
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
        let mut line = Vec::new();
        loop {
            line.clear();
            if input.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let event = line.trim_ascii();
            if event.is_empty() {
                continue;
            }
            answer(handler, event, out, &mut summary)?;
        }
    } else {
        for event in args {
            answer(handler, event.as_encoded_bytes(), out, &mut summary)?;
        }
    }
    Ok(summary)
}

fn answer(
    handler: &dyn Serve,
    event: &[u8],
    out: &mut dyn Write,
    summary: &mut LocalSummary,
) -> std::io::Result<()> {
    let event = std::str::from_utf8(event).map(str::as_bytes).map_err(|e| {
        format!(
            "the event is not valid UTF-8 ({e}; {} bytes); events are JSON",
            event.len()
        )
    });
    summary.events += 1;
    let context = local_context(summary.events);
    let (result, outcome) = super::runtime::block_on(handler.answer(event, context))?;
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
        latency_ms = millis(outcome.latency),
        "local invocation"
    );
    writeln!(out, "{line}")?;
    out.flush()
}

/// The context of local invocation `n`: request id `local-N`, a deadline
/// 15 minutes (Lambda's longest timeout) from now.
fn local_context(n: usize) -> lambda_runtime::Context {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut context = lambda_runtime::Context::default();
    context.request_id = format!("local-{n}");
    context.deadline = now_ms.saturating_add(15 * 60 * 1000);
    context
}

/// Whether stdin is a terminal (local mode then says it is waiting).
pub(crate) fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// The `--help` text: both modes, the event shapes, and an example event
/// sized for this model.
pub(crate) fn help_text(serve: &dyn Serve, program: &str) -> String {
    let handler = serve.handler();
    let model = handler.model();
    let n = model.n_features();
    let zeros = vec!["0"; n].join(",");
    let events = if serve.is_typed() {
        format!(
            "EVENTS
  each event is decoded as the request type of the function's handler, and
  answered with its result; a Lambda Function URL / API Gateway HTTP API event's
  `body` (possibly base64) likewise, answered with {{\"statusCode\", \"headers\", \"body\"}}

EXAMPLES
  {program} '<one request, as JSON>'
"
        )
    } else {
        let named = model.feature_names().map_or_else(String::new, |names| {
            let fields = names
                .iter()
                .map(|name| format!("{}: 0", serde_json::Value::from(name.as_str())))
                .collect::<Vec<_>>()
                .join(", ");
            format!("  {{\"features\": {{{fields}}}}}   the same row, by feature name\n")
        });
        format!(
            "EVENTS
  {{\"features\": [{zeros}]}}                 one row of {n} features
{named}  {{\"instances\": [[{zeros}], [{zeros}]]}}   a batch (at most {max} rows)
  a Lambda Function URL / API Gateway HTTP API event whose `body` is one of
  those (possibly base64): answered with {{\"statusCode\", \"headers\", \"body\"}}

EXAMPLES
  {program} '{{\"features\":[{zeros}]}}'
  printf '%s\\n' '{{\"features\":[{zeros}]}}' '{{\"instances\":[[{zeros}]]}}' | {program}
",
            max = handler.max_batch()
        )
    };
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

{events}",
        family = model.family(),
        outputs = model.n_outputs(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lambda::LambdaHandler;

    static LINEAR: &[u8] = include_bytes!("../../tests/fixtures/linear_regression.v2.apr");

    fn run(args: &[&str], stdin: &str) -> (LocalSummary, Vec<serde_json::Value>, String) {
        let handler = LambdaHandler::from_bytes(LINEAR).unwrap_or_else(|e| panic!("{e}"));
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let mut out = Vec::new();
        let summary = run_local(
            &handler,
            "bootstrap",
            &args,
            &mut std::io::Cursor::new(stdin.as_bytes()),
            &mut out,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&out).into_owned();
        let lines = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (summary, lines, text)
    }

    #[test]
    fn arguments_are_events() {
        let (summary, lines, _) = run(&[r#"{"features":[1,2,3]}"#, r#"{"features":[1]}"#], "");
        assert_eq!(
            summary,
            LocalSummary {
                events: 2,
                failed: 1
            }
        );
        assert_eq!(lines[0]["cold_start"], true);
        assert_eq!(lines[1]["errorType"], "FeatureCount");
    }

    #[test]
    fn stdin_lines_are_events_when_there_are_no_arguments() {
        let stdin = "{\"features\":[1,2,3]}\n\n  {\"instances\":[[1,2,3]]}\n";
        let (summary, lines, _) = run(&[], stdin);
        assert_eq!(
            summary,
            LocalSummary {
                events: 2,
                failed: 0
            }
        );
        assert_eq!(lines[1]["cold_start"], false);
        assert!(lines[1]["predictions"].is_array());
    }

    #[test]
    fn a_line_that_is_not_utf8_is_answered_and_the_run_goes_on() {
        let handler = LambdaHandler::from_bytes(LINEAR).unwrap_or_else(|e| panic!("{e}"));
        let mut stdin = b"{\"features\":[1,2,3]}\n\xff\xfe{\n{\"features\":[1,2,3]}\n".to_vec();
        stdin.extend_from_slice(b"{\"features\":[1,\"\xc3\"]}\n");
        let mut out = Vec::new();
        let summary = run_local(
            &handler,
            "bootstrap",
            &[],
            &mut std::io::Cursor::new(stdin),
            &mut out,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            summary,
            LocalSummary {
                events: 4,
                failed: 2
            }
        );
        let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[1]["errorType"], "MalformedEvent");
        assert!(lines[1]["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("UTF-8")));
        assert!(lines[2]["prediction"].is_number());
        assert_eq!(lines[3]["errorType"], "MalformedEvent");
    }

    #[cfg(unix)]
    #[test]
    fn arguments_that_are_not_utf8_are_answered() {
        use std::os::unix::ffi::OsStringExt as _;
        let handler = LambdaHandler::from_bytes(LINEAR).unwrap_or_else(|e| panic!("{e}"));
        let args = [
            OsString::from_vec(vec![0xff, b'{']),
            OsString::from("{\"features\":[1,2,3]}"),
        ];
        let mut out = Vec::new();
        let summary = run_local(
            &handler,
            "bootstrap",
            &args,
            &mut std::io::empty(),
            &mut out,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            summary,
            LocalSummary {
                events: 2,
                failed: 1
            }
        );
        assert!(String::from_utf8_lossy(&out).contains("not valid UTF-8"));
    }

    #[test]
    fn help_explains_both_modes() {
        let (summary, _, text) = run(&["--help"], "");
        assert_eq!(summary.events, 0);
        assert!(text.contains("AWS_LAMBDA_RUNTIME_API"));
        assert!(text.contains("Local mode"));
        assert!(text.contains("[0,0,0]"), "{text}");
    }
}
