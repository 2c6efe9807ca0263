//! `apr-lambda predict MODEL [--input FILE]`: answer one event exactly as the
//! Lambda handler does, so the JSON is produced in one place
//! (`apr_runtime::lambda`).

use std::io::Read as _;
use std::path::Path;

use apr_runtime::format::v1;
use apr_runtime::lambda::{InvocationResponse, LambdaHandler};

use crate::{read_file, Failure};

pub(crate) fn run(model_path: &Path, input: Option<&Path>) -> Result<(), Failure> {
    let model_bytes = read_file(model_path)?;
    let model_bytes = if crate::is_onnx(model_path) {
        crate::convert_onnx(model_path, &model_bytes)?
    } else if apr_runtime::format::is_v1(&model_bytes) {
        v1::convert_to_v2(&model_bytes)
            .map_err(|e| Failure::input(format!("{}: {e}", model_path.display())))?
    } else {
        model_bytes
    };
    // The handler serves a model for the life of the process, as in a Lambda.
    let model_bytes: &'static [u8] = Box::leak(model_bytes.into_boxed_slice());
    let handler = LambdaHandler::from_bytes(model_bytes)
        .map_err(|e| Failure::input(format!("{}: {e}", model_path.display())))?;

    let event = match input {
        Some(path) => read_file(path)?,
        None => {
            let mut buffer = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buffer)
                .map_err(|e| Failure::input(format!("cannot read the event from stdin: {e}")))?;
            buffer
        }
    };
    let source = input.map_or_else(|| "stdin".to_string(), |p| p.display().to_string());
    // The one request path of the Lambda handler: the same decoding, checks
    // and numbers as a deployed function.
    let printed = match handler.respond(&event) {
        // The Lambda's response without its timing fields (`cold_start`,
        // `latency_ms`), so the output is the same on every run.
        Ok(InvocationResponse::Direct(response)) => serde_json::to_string(&response.predictions),
        Ok(InvocationResponse::Http(http)) if http.status_code >= 400 => {
            return Err(Failure::input(format!(
                "the event in {source}: HTTP {}: {}",
                http.status_code, http.body
            )))
        }
        Ok(InvocationResponse::Http(http)) => Ok(http.body),
        // Only typed handlers answer raw JSON; kept for completeness.
        Ok(InvocationResponse::Json(json)) => Ok(json.get().to_owned()),
        Err(e) => {
            return Err(Failure::input(format!(
                "the event in {source}: {} ({})",
                e,
                e.error_type()
            )))
        }
    }
    .map_err(|e| Failure::input(format!("cannot print the response: {e}")))?;
    println!("{printed}");
    Ok(())
}
