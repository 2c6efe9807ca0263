//! The cold-start benchmark behind `scripts/cold-start-bench.sh` (which
//! builds it, with the functions, in `target/cold-start-bench/`).
//!
//! ```text
//! cold-start-bench models DIR
//!     writes DIR/model-1mb.apr and DIR/model-50mb.apr (AprWriter): the same
//!     4 -> H -> 3 softmax network, H sized for 1 MiB and 50 MiB of weights
//! cold-start-bench run [--starts N] [--baseline NAME] NAME=BINARY [NAME=BINARY]...
//!     starts every binary N times (round robin) against a Lambda Runtime API
//!     on 127.0.0.1 with one event already queued, and prints, per binary,
//!     exec -> first /next poll (the init) and exec -> first response, as
//!     medians with p10/p90, the ratio to the baseline, the stripped binary
//!     size and the function's own EMF figures
//! ```

#[path = "../tests/support/runtime_api.rs"]
mod runtime_api;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use apr_runtime::format::AprWriter;
use runtime_api::RuntimeApi;

const EVENT: &[u8] = br#"{"features":[5.1,3.5,1.4,0.2]}"#;
const TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    // `cargo bench`-style runners may append `--bench`.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let result = match args.first().map(String::as_str) {
        Some("models") => write_models(args.get(1).map(PathBuf::from)),
        Some("run") => run(args.get(1..).unwrap_or_default()),
        _ => Err("usage: cold-start-bench models DIR | run [--starts N] [--baseline NAME] NAME=BINARY...".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cold-start-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// Models

fn write_models(dir: Option<PathBuf>) -> Result<(), String> {
    let dir = dir.ok_or("models: missing DIR")?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // 4 -> H -> 3: 8H + 3 parameters, 32H + 12 bytes.
    for (name, hidden) in [
        ("model-1mb.apr", 32_768usize),
        ("model-50mb.apr", 1_638_400),
    ] {
        let bytes = mlp(hidden)?;
        let path = dir.join(name);
        std::fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        println!(
            "{}: {} bytes (hidden width {hidden})",
            path.display(),
            bytes.len()
        );
    }
    Ok(())
}

fn mlp(hidden: usize) -> Result<Vec<u8>, String> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut values = |n: usize, scale: f32| -> Vec<f32> {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
            })
            .collect()
    };
    let mut writer = AprWriter::new();
    writer.model_type("NeuralSequential").metadata(
        "layers",
        serde_json::json!([
            format!("Linear(4->{hidden})"),
            "ReLU",
            format!("Linear({hidden}->3)"),
            "Softmax"
        ]),
    );
    let err = |e: apr_runtime::format::FormatError| e.to_string();
    writer
        .add_f32("0", &[hidden, 4], &values(hidden * 4, 1.0))
        .map_err(err)?;
    writer
        .add_f32("1", &[hidden], &values(hidden, 0.1))
        .map_err(err)?;
    writer
        .add_f32("2", &[3, hidden], &values(3 * hidden, 0.01))
        .map_err(err)?;
    writer.add_f32("3", &[3], &values(3, 0.1)).map_err(err)?;
    Ok(writer.to_bytes())
}

// ---------------------------------------------------------------------------
// Starts

struct Function {
    name: String,
    path: PathBuf,
    to_poll: Vec<Duration>,
    to_response: Vec<Duration>,
    /// The function's own `InitDuration` / `ModelParseDuration` (EMF), ms.
    emf_init: Vec<f64>,
    emf_parse: Vec<f64>,
}

fn run(args: &[String]) -> Result<(), String> {
    let mut starts = 25usize;
    let mut baseline: Option<String> = None;
    let mut functions = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--starts" => {
                starts = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--starts needs a number")?;
            }
            "--baseline" => baseline = it.next().cloned(),
            spec => {
                let (name, path) = spec
                    .split_once('=')
                    .ok_or_else(|| format!("expected NAME=BINARY, got {spec:?}"))?;
                let path = PathBuf::from(path);
                if !path.is_file() {
                    return Err(format!("{}: no such binary", path.display()));
                }
                functions.push(Function {
                    name: name.to_owned(),
                    path,
                    to_poll: Vec::new(),
                    to_response: Vec::new(),
                    emf_init: Vec::new(),
                    emf_parse: Vec::new(),
                });
            }
        }
    }
    if functions.is_empty() {
        return Err("run: no NAME=BINARY given".into());
    }
    // One untimed start each: page cache, dynamic loader caches.
    for f in &mut functions {
        start_once(f, false)?;
    }
    for _ in 0..starts {
        for f in &mut functions {
            start_once(f, true)?;
        }
    }
    report(&functions, baseline.as_deref(), starts);
    Ok(())
}

fn start_once(f: &mut Function, record: bool) -> Result<(), String> {
    let api = RuntimeApi::start();
    let id = api.enqueue(EVENT);
    let started = Instant::now();
    let mut child = Command::new(&f.path)
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", &f.name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", f.path.display()))?;
    let (emf_tx, emf_rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("\"_aws\"") {
                    let _ = emf_tx.send(line);
                }
            }
        });
    }
    let poll = api.wait_first_poll(TIMEOUT);
    let answer = api.wait_answer(&id, TIMEOUT);
    let responded = api.first_answer();
    let _ = child.kill();
    let _ = child.wait();
    let (Some(poll), Some(answer), Some(responded)) = (poll, answer, responded) else {
        return Err(format!(
            "{}: no /next poll or no answer within {TIMEOUT:?}",
            f.name
        ));
    };
    if answer.is_error() {
        return Err(format!(
            "{}: answered with an error: {}",
            f.name,
            answer.json()
        ));
    }
    if record {
        f.to_poll.push(poll.saturating_duration_since(started));
        f.to_response
            .push(responded.saturating_duration_since(started));
        if let Ok(line) = emf_rx.recv_timeout(Duration::from_millis(500)) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if let Some(x) = v["InitDuration"].as_f64() {
                    f.emf_init.push(x);
                }
                if let Some(x) = v["ModelParseDuration"].as_f64() {
                    f.emf_parse.push(x);
                }
            }
        }
    }
    Ok(())
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn stats_ms(samples: &[Duration]) -> (f64, f64, f64) {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    (quantile(&ms, 0.5), quantile(&ms, 0.1), quantile(&ms, 0.9))
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| quantile(&v, 0.5))
}

fn report(functions: &[Function], baseline: Option<&str>, starts: usize) {
    let base = baseline
        .and_then(|b| functions.iter().find(|f| f.name == b))
        .map(|f| (stats_ms(&f.to_poll).0, stats_ms(&f.to_response).0));
    println!(
        "{starts} starts per function, round robin; exec -> first /next poll and exec -> first response, ms: median (p10-p90)"
    );
    println!();
    println!("| function | stripped size | exec -> first /next | exec -> first response | ratio to {} (poll / response) | EMF InitDuration | EMF ModelParseDuration |", baseline.unwrap_or("-"));
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for f in functions {
        let size = std::fs::metadata(&f.path).map(|m| m.len()).unwrap_or(0);
        let (p50, p10, p90) = stats_ms(&f.to_poll);
        let (r50, r10, r90) = stats_ms(&f.to_response);
        let ratio = base.map_or("-".to_owned(), |(bp, br)| {
            format!("{:.2}x / {:.2}x", p50 / bp, r50 / br)
        });
        let emf = |v: &[f64]| median(v).map_or("-".to_owned(), |m| format!("{m:.3} ms"));
        println!(
            "| {} | {:.2} MB ({size} B) | {p50:.2} ({p10:.2}-{p90:.2}) | {r50:.2} ({r10:.2}-{r90:.2}) | {ratio} | {} | {} |",
            f.name,
            size as f64 / 1e6,
            emf(&f.emf_init),
            emf(&f.emf_parse),
        );
    }
}
