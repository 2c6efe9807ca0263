//! Shared by the end-to-end tests: a function binary run as a child
//! process against the Runtime API emulator, and checks of its answers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::runtime_api::{Answer, Delivery, RuntimeApi};

/// Generous: the external bootstrap may run under qemu, and the tests run
/// on two loaded cores.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// The binary under test and how to start it.
#[derive(Debug, Clone)]
pub struct FunctionBinary {
    pub path: PathBuf,
    pub runner: Option<String>,
}

impl FunctionBinary {
    pub fn command(&self) -> Command {
        match &self.runner {
            Some(runner) => {
                let mut c = Command::new(runner);
                c.arg(&self.path);
                c
            }
            None => Command::new(&self.path),
        }
    }

    /// The model's number of features, read from the function itself (local
    /// mode answers an empty row with a `FeatureCount` error naming it).
    pub fn n_features(&self) -> usize {
        let out = self
            .command()
            .arg(r#"{"features":[]}"#)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .output()
            .expect("run the function in local mode");
        assert!(!out.status.success(), "an empty row must fail");
        let line = String::from_utf8_lossy(&out.stdout);
        let error: Value = serde_json::from_str(line.trim()).expect("local mode prints JSON");
        assert_eq!(error["errorType"], "FeatureCount", "{error}");
        let message = error["errorMessage"].as_str().unwrap_or_default();
        message
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no feature count in {message:?}"))
    }

    /// The batch limit, read from `--help` ("at most N rows").
    pub fn max_batch(&self) -> usize {
        let out = self
            .command()
            .arg("--help")
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .output()
            .expect("run --help");
        let help = String::from_utf8_lossy(&out.stdout);
        help.split("at most ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no batch limit in the help:\n{help}"))
    }
}

pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo build --example NAME` (once per test process); the binary's path.
pub fn example(name: &str) -> FunctionBinary {
    static BUILT: OnceLock<Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = built.iter().find(|(n, _)| n == name) {
        return FunctionBinary {
            path: path.clone(),
            runner: None,
        };
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name])
        .current_dir(workspace())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build --example {name} failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let path = target.join("debug").join("examples").join(name);
    assert!(path.exists(), "{} was not built", path.display());
    built.push((name.to_owned(), path.clone()));
    FunctionBinary { path, runner: None }
}

/// The default example: the macro-built `iris`.
pub fn default_example() -> FunctionBinary {
    example("iris")
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A running function: the child process, its Runtime API and its output.
pub struct Function {
    pub api: RuntimeApi,
    pub child: Child,
    /// Every line of stdout and stderr, in the order read (per stream).
    output: Arc<Mutex<Vec<(Stream, String)>>>,
}

/// Reads `pipe` line by line (lossily: the function may print anything)
/// into `output`; stderr lines are echoed to the test's output too.
fn collect<R: Read + Send + 'static>(
    pipe: R,
    stream: Stream,
    output: &Arc<Mutex<Vec<(Stream, String)>>>,
) {
    let output = Arc::clone(output);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches(['\n', '\r'])
                .to_owned();
            if stream == Stream::Stderr {
                eprintln!("{}", &text[..text.len().min(1000)]);
            }
            output
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((stream, text));
        }
    });
}

impl Function {
    /// Starts `binary` in Lambda mode against a fresh emulator, with JSON
    /// logs and `envs` on top.
    pub fn start(binary: &FunctionBinary, envs: &[(&str, &str)]) -> Function {
        let api = RuntimeApi::start();
        let mut command = binary.command();
        command
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "apr-e2e")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env_remove("RUST_LOG")
            .env_remove("AWS_LAMBDA_LOG_LEVEL")
            .env_remove("AWS_LAMBDA_MAX_CONCURRENCY")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start the function");
        let output = Arc::new(Mutex::new(Vec::new()));
        if let Some(pipe) = child.stdout.take() {
            collect(pipe, Stream::Stdout, &output);
        }
        if let Some(pipe) = child.stderr.take() {
            collect(pipe, Stream::Stderr, &output);
        }
        Function { api, child, output }
    }

    pub fn invoke(&self, event: &Value) -> Answer {
        self.invoke_raw(event.to_string().as_bytes())
    }

    pub fn invoke_raw(&self, event: &[u8]) -> Answer {
        self.invoke_with(event, Delivery::default()).1
    }

    /// Invokes with `delivery`; the request id and the answer. Fails at
    /// once if the process exits.
    pub fn invoke_with(&self, event: &[u8], delivery: Delivery) -> (String, Answer) {
        let id = self.api.enqueue_with(event, delivery);
        let deadline = Instant::now() + TIMEOUT;
        loop {
            // In slices, to notice a dead function.
            let slice = Duration::from_millis(500).min(deadline - Instant::now());
            if let Some(answer) = self.api.wait_answer_kept(&id, slice) {
                return (id, answer);
            }
            let what = String::from_utf8_lossy(&event[..event.len().min(200)]);
            assert!(
                self.has_exited().is_none_or(|exited| !exited),
                "the function exited before answering {id}: {what}"
            );
            assert!(
                Instant::now() < deadline,
                "no answer within {TIMEOUT:?} to {id}: {what}"
            );
        }
    }

    /// Whether the process has exited (is a zombie or gone), without
    /// reaping it; `None` when /proc cannot tell.
    pub fn has_exited(&self) -> Option<bool> {
        match std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())) {
            // The state follows the parenthesized command name.
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                .map(|state| state == "Z" || state == "X"),
            Err(_) => Some(true),
        }
    }

    /// The stdout lines so far (responses in local mode; logs and the EMF
    /// line in Lambda mode).
    pub fn stdout_lines(&self) -> Vec<String> {
        self.output_lines()
            .into_iter()
            .filter(|(s, _)| *s == Stream::Stdout)
            .map(|(_, l)| l)
            .collect()
    }

    /// Every output line so far, stdout and stderr.
    pub fn output_lines(&self) -> Vec<(Stream, String)> {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many output lines were read so far.
    pub fn output_len(&self) -> usize {
        self.output.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Waits up to `TIMEOUT` for an output line containing `needle`, then
    /// returns every line read from index `from` on.
    pub fn output_until(&self, from: usize, needle: &str) -> Vec<(Stream, String)> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let lines = self.output_lines();
            let tail = lines.get(from..).unwrap_or_default();
            if tail.iter().any(|(_, l)| l.contains(needle)) {
                return tail.to_vec();
            }
            assert!(
                Instant::now() < deadline,
                "no output line mentions {needle:?} within {TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// VmRSS of the child, in kB (Linux). Under a runner (qemu) this is the
    /// emulator's RSS.
    pub fn rss_kb(&self) -> Option<u64> {
        self.proc_status_kb("VmRSS:")
    }

    /// VmHWM of the child (its peak RSS), in kB (Linux).
    pub fn peak_rss_kb(&self) -> Option<u64> {
        self.proc_status_kb("VmHWM:")
    }

    fn proc_status_kb(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Sends SIGTERM (with `kill -TERM`, as Lambda would).
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Whether the process still runs.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the process to exit; its status, or `None`
    /// if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn ok_body(answer: &Answer) -> Value {
    match answer {
        Answer::Response(_) => answer.json(),
        Answer::Error { .. } => panic!("expected a response, got the error {}", answer.json()),
    }
}

/// Asserts an error answer with `error_type` whose message contains `needle`.
pub fn assert_error(answer: &Answer, error_type: &str, needle: &str) {
    let Answer::Error { .. } = answer else {
        panic!(
            "expected a {error_type} error, got the response {}",
            answer.json()
        );
    };
    let body = answer.json();
    assert_eq!(body["errorType"], error_type, "{body}");
    let message = body["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "the {error_type} message should mention {needle:?}: {message}"
    );
}

pub fn row(n: usize, seed: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((i * 7 + seed * 13) % 10) as f64 * 0.5 + 0.1)
        .collect()
}

/// A prediction entry (single response or batch element) is well formed.
pub fn assert_prediction(entry: &Value) {
    assert!(
        entry["prediction"].is_number() || entry["prediction"].is_array(),
        "{entry}"
    );
    let outputs = entry["outputs"].as_array().expect("outputs");
    assert!(!outputs.is_empty());
    if let Some(p) = entry.get("probabilities") {
        let sum: f64 = p
            .as_array()
            .expect("array")
            .iter()
            .filter_map(Value::as_f64)
            .sum();
        assert!(
            (sum - 1.0).abs() < 1e-3,
            "probabilities sum to {sum}: {entry}"
        );
    }
}

/// Class indices are equal; values agree to 1e-5 relative (a batch goes
/// through matrix-matrix kernels, a single row through matrix-vector ones).
pub fn assert_same_prediction(a: &Value, b: &Value) {
    match (a, b) {
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len());
            a.iter()
                .zip(b)
                .for_each(|(a, b)| assert_same_prediction(a, b));
        }
        _ if a.is_u64() || b.is_u64() => assert_eq!(a, b),
        _ => {
            let (x, y) = (a.as_f64().expect("number"), b.as_f64().expect("number"));
            assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{x} vs {y}");
        }
    }
}

/// A Function URL / API Gateway HTTP API (payload 2.0) event around `body`.
pub fn url_event(body: &str, base64: bool) -> Value {
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": { "content-type": "application/json" },
        "requestContext": {
            "http": { "method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1" },
            "requestId": "e2e", "stage": "$default"
        },
        "body": body,
        "isBase64Encoded": base64
    })
}

/// An HTTP answer: its status code and its body, parsed.
pub fn http_answer(answer: &Answer) -> (u64, Value) {
    let v = ok_body(answer);
    assert_eq!(v["headers"]["content-type"], "application/json", "{v}");
    let body: Value =
        serde_json::from_str(v["body"].as_str().expect("body string")).expect("JSON body");
    (v["statusCode"].as_u64().expect("statusCode"), body)
}

pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
