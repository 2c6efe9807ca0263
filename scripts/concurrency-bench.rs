//! The concurrency benchmark behind `scripts/concurrency-bench.sh` (which
//! builds it, with the functions, in `target/concurrency-bench/`).
//!
//! ```text
//! concurrency-bench model FILE
//!     writes FILE: a 64 -> 256 -> 256 -> 10 softmax network (AprWriter),
//!     the network of benches/mlp.rs
//! concurrency-bench run [--rounds N] [--seconds S] [--warmup S] [--levels 1,2,4,8]
//!                       --mlp BINARY MODEL --iris BINARY
//!     for each round, each workload (MLP: 64-row batch events served by
//!     BINARY with APR_MODEL_PATH=MODEL; iris: single-row events) and each
//!     concurrency C: starts the function with AWS_LAMBDA_MAX_CONCURRENCY=C
//!     (unset for C = 1) against a fresh Lambda Runtime API on 127.0.0.1,
//!     keeps max(2, 2 C) invocations queued or in flight (one driver thread
//!     that refills the queue as answers come), warms up, then counts the
//!     invocations answered in S seconds; every answer must be a success
//!     of the expected shape. Prints the
//!     median over the rounds of invocations/s and its ratio to C = 1, and
//!     where the CPU went (the function's and this process's, in cores).
//! ```

#[path = "../tests/support/runtime_api.rs"]
mod runtime_api;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apr_runtime::format::AprWriter;
use runtime_api::{Answer, RuntimeApi};

const DIMS: [usize; 4] = [64, 256, 256, 10];
const MLP_ROWS: usize = 64;
const IRIS_EVENT: &[u8] = br#"{"features":[5.1,3.5,1.4,0.2]}"#;
/// How long one invocation may take before the run counts as failed.
const TIMEOUT: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    // `cargo bench`-style runners may append `--bench`.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let result = match args.first().map(String::as_str) {
        Some("model") => write_model(args.get(1).map(PathBuf::from)),
        Some("run") => run(args.get(1..).unwrap_or_default()),
        _ => Err(
            "usage: concurrency-bench model FILE | run [--rounds N] [--seconds S] \
                  [--warmup S] [--levels 1,2,4,8] --mlp BINARY MODEL --iris BINARY"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("concurrency-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// The model and the events

/// Deterministic values in [-scale/2, scale/2) (xorshift64).
fn values(state: &mut u64, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            ((*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
        })
        .collect()
}

fn write_model(path: Option<PathBuf>) -> Result<(), String> {
    let path = path.ok_or("model: missing FILE")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut writer = AprWriter::new();
    writer.model_type("NeuralSequential").metadata(
        "layers",
        serde_json::json!([
            "Linear(64->256)",
            "ReLU",
            "Linear(256->256)",
            "ReLU",
            "Linear(256->10)",
            "Softmax"
        ]),
    );
    let err = |e: apr_runtime::format::FormatError| e.to_string();
    for (i, pair) in DIMS.windows(2).enumerate() {
        let (n_in, n_out) = (pair[0], pair[1]);
        // Weights scaled by 1/sqrt(fan-in): activations stay O(1).
        let scale = 2.0 / (n_in as f32).sqrt();
        writer
            .add_f32(
                &(2 * i).to_string(),
                &[n_out, n_in],
                &values(&mut state, n_in * n_out, scale),
            )
            .map_err(err)?;
        writer
            .add_f32(
                &(2 * i + 1).to_string(),
                &[n_out],
                &values(&mut state, n_out, 0.2),
            )
            .map_err(err)?;
    }
    let bytes = writer.to_bytes();
    std::fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("{}: {} bytes ({DIMS:?})", path.display(), bytes.len());
    Ok(())
}

/// `{"instances": [[64 values] x 64]}`.
fn mlp_event() -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let rows: Vec<String> = (0..MLP_ROWS)
        .map(|_| {
            let row: Vec<String> = values(&mut state, DIMS[0], 2.0)
                .iter()
                .map(|v| format!("{v:.4}"))
                .collect();
            format!("[{}]", row.join(","))
        })
        .collect();
    format!("{{\"instances\":[{}]}}", rows.join(",")).into_bytes()
}

/// What a successful answer looks like.
#[derive(Clone, Copy)]
enum Expect {
    /// `{"predictions": [n rows, each with 10 probabilities], ...}`.
    Batch { rows: usize, classes: usize },
    /// `{"prediction", "probabilities": [3], ...}`.
    Single { classes: usize },
}

/// Checks that `answer` is a success (a `/response`, not an `/error`) that
/// starts and ends as the expected answer does; with `full`, parses it and
/// checks every row. Returns the handler's own `latency_ms`.
fn check(answer: &Answer, expect: Expect, full: bool) -> Result<f64, String> {
    let body = match answer {
        Answer::Response(body) => body,
        Answer::Error { .. } => return Err(format!("an error answer: {}", answer.json())),
    };
    let wrong = || {
        let text = String::from_utf8_lossy(body);
        let cut = text.char_indices().nth(300).map_or(text.len(), |(i, _)| i);
        format!(
            "an answer of the wrong shape ({} bytes): {}…",
            body.len(),
            &text[..cut]
        )
    };
    let prefix: &[u8] = match expect {
        Expect::Batch { .. } => b"{\"predictions\":[{\"prediction\":",
        Expect::Single { .. } => b"{\"prediction\":",
    };
    // The response ends `..., "cold_start": false, "latency_ms": 0.123}`.
    const LATENCY: &[u8] = b"\"latency_ms\":";
    let tail = &body[body.len().saturating_sub(64)..];
    let latency = tail
        .windows(LATENCY.len())
        .position(|w| w == LATENCY)
        .and_then(|i| std::str::from_utf8(&tail[i + LATENCY.len()..]).ok())
        .and_then(|t| t.trim_end_matches('}').parse::<f64>().ok());
    let Some(ms) = latency.filter(|_| body.starts_with(prefix)) else {
        return Err(wrong());
    };
    if !full {
        return Ok(ms);
    }
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| wrong())?;
    let row_ok = |row: &serde_json::Value, classes: usize| {
        row["probabilities"].as_array().is_some_and(|p| {
            p.len() == classes
                && p.iter()
                    .all(|x| x.as_f64().is_some_and(|x| (0.0..=1.0).contains(&x)))
        }) && row["prediction"].is_u64()
    };
    let ok = match expect {
        Expect::Batch { rows, classes } => v["predictions"]
            .as_array()
            .is_some_and(|p| p.len() == rows && p.iter().all(|r| row_ok(r, classes))),
        Expect::Single { classes } => row_ok(&v, classes),
    };
    // (serde_json's float parsing may differ from `str::parse` in the last bit.)
    if ok
        && v["latency_ms"]
            .as_f64()
            .is_some_and(|x| (x - ms).abs() <= 1e-9)
    {
        Ok(ms)
    } else {
        Err(wrong())
    }
}

// ---------------------------------------------------------------------------
// Measuring

struct Workload {
    name: &'static str,
    binary: PathBuf,
    env: Vec<(&'static str, String)>,
    event: Vec<u8>,
    expect: Expect,
}

/// One measured point.
#[derive(Clone, Copy)]
struct Point {
    per_second: f64,
    /// The function's CPU time over the window / the window: cores busy.
    function_cores: f64,
    /// This process's (Runtime API emulator and clients) likewise.
    driver_cores: f64,
    /// Median of the handler's own `latency_ms` in the window.
    handler_ms: f64,
}

/// utime + stime of a process (or `self`), in seconds.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name, which is in parentheses.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ')'.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        // USER_HZ is 100 on Linux.
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn measure(
    w: &Workload,
    concurrency: usize,
    warmup: Duration,
    window: Duration,
) -> Result<Point, String> {
    let api = Arc::new(RuntimeApi::start());
    let mut command = Command::new(&w.binary);
    command
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", w.name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env_remove("AWS_LAMBDA_MAX_CONCURRENCY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if concurrency > 1 {
        command.env("AWS_LAMBDA_MAX_CONCURRENCY", concurrency.to_string());
    }
    for (k, v) in &w.env {
        command.env(k, v);
    }
    let running = Running {
        child: command
            .spawn()
            .map_err(|e| format!("{}: {e}", w.binary.display()))?,
    };
    let pid = running.child.id().to_string();
    if api.wait_first_poll(TIMEOUT).is_none() {
        return Err(format!("{}: no /next poll within {TIMEOUT:?}", w.name));
    }

    // One driver thread keeps `outstanding` invocations queued or in
    // flight: it waits for the oldest answer, checks it and queues another.
    // (One waiting thread rather than one per invocation: every change of
    // the emulator's state wakes every thread waiting on it, and on 2 cores
    // a herd of client threads would take CPU from the function.) At least
    // C + 1 invocations are always with the function or queued for it.
    let outstanding = (2 * concurrency).max(2);
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let driver = {
        let (api, stop, measuring, answered) = (
            Arc::clone(&api),
            Arc::clone(&stop),
            Arc::clone(&measuring),
            Arc::clone(&answered),
        );
        let (event, expect, name) = (w.event.clone(), w.expect, w.name);
        std::thread::spawn(move || -> Result<Vec<f64>, String> {
            let mut latencies = Vec::new();
            let mut pending: VecDeque<String> =
                (0..outstanding).map(|_| api.enqueue(&event)).collect();
            let mut n = 0u64;
            while let Some(id) = pending.pop_front() {
                let answer = api.wait_answer(&id, TIMEOUT).ok_or_else(|| {
                    format!("{name}, concurrency {concurrency}: no answer within {TIMEOUT:?}")
                })?;
                // Every answer is checked to be a success; every 8th (and
                // every one of the warm-up) is parsed in full.
                let measured = measuring.load(Ordering::Relaxed);
                let ms = check(&answer, expect, !measured || n.is_multiple_of(8))
                    .map_err(|e| format!("{name}, concurrency {concurrency}: {e}"))?;
                n += 1;
                answered.fetch_add(1, Ordering::SeqCst);
                if measured {
                    latencies.push(ms);
                }
                if !stop.load(Ordering::Relaxed) {
                    pending.push_back(api.enqueue(&event));
                }
            }
            Ok(latencies)
        })
    };

    std::thread::sleep(warmup);
    measuring.store(true, Ordering::SeqCst);
    let (n0, t0) = (answered.load(Ordering::SeqCst), Instant::now());
    let (f0, d0) = (cpu_seconds(&pid), cpu_seconds("self"));
    std::thread::sleep(window);
    let (n1, t1) = (answered.load(Ordering::SeqCst), Instant::now());
    let (f1, d1) = (cpu_seconds(&pid), cpu_seconds("self"));
    measuring.store(false, Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let latencies = driver.join().map_err(|_| "the driver thread panicked")??;
    drop(running);
    let secs = (t1 - t0).as_secs_f64();
    if n1 == n0 {
        return Err(format!(
            "{}, concurrency {concurrency}: nothing answered",
            w.name
        ));
    }
    Ok(Point {
        per_second: (n1 - n0) as f64 / secs,
        function_cores: (f1 - f0) / secs,
        driver_cores: (d1 - d0) / secs,
        handler_ms: median(&latencies),
    })
}

/// The 1-, 5- and 15-minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

fn run(args: &[String]) -> Result<(), String> {
    let mut rounds = 5usize;
    let mut seconds = 2.5f64;
    let mut warmup = 0.5f64;
    let mut levels = vec![1usize, 2, 4, 8];
    let mut mlp: Option<(PathBuf, PathBuf)> = None;
    let mut iris: Option<PathBuf> = None;
    let mut it = args.iter();
    let number = |v: Option<&String>, flag: &str| {
        v.and_then(|n| n.parse::<f64>().ok())
            .filter(|n| *n > 0.0)
            .ok_or_else(|| format!("{flag} needs a positive number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--rounds" => rounds = number(it.next(), "--rounds")? as usize,
            "--seconds" => seconds = number(it.next(), "--seconds")?,
            "--warmup" => warmup = number(it.next(), "--warmup")?,
            "--levels" => {
                levels = it
                    .next()
                    .map(|l| l.split(',').map(|c| c.trim().parse::<usize>()).collect())
                    .and_then(Result::ok)
                    .filter(|l: &Vec<usize>| !l.is_empty() && l.iter().all(|c| *c > 0))
                    .ok_or("--levels needs a list such as 1,2,4,8")?;
            }
            "--mlp" => {
                let (Some(binary), Some(model)) = (it.next(), it.next()) else {
                    return Err("--mlp needs BINARY MODEL".into());
                };
                mlp = Some((binary.into(), model.into()));
            }
            "--iris" => iris = it.next().map(PathBuf::from),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let (Some((mlp_binary, model)), Some(iris_binary)) = (mlp, iris) else {
        return Err("run needs --mlp BINARY MODEL and --iris BINARY".into());
    };
    for path in [&mlp_binary, &model, &iris_binary] {
        if !path.is_file() {
            return Err(format!("{}: no such file", path.display()));
        }
    }
    if !levels.contains(&1) {
        levels.insert(0, 1);
    }
    let workloads = [
        Workload {
            name: "mlp-64x64",
            binary: mlp_binary,
            env: vec![("APR_MODEL_PATH", model.display().to_string())],
            event: mlp_event(),
            expect: Expect::Batch {
                rows: MLP_ROWS,
                classes: DIMS[3],
            },
        },
        Workload {
            name: "iris",
            binary: iris_binary,
            env: Vec::new(),
            event: IRIS_EVENT.to_vec(),
            expect: Expect::Single { classes: 3 },
        },
    ];
    let (warmup, window) = (
        Duration::from_secs_f64(warmup),
        Duration::from_secs_f64(seconds),
    );
    let load_before = loadavg();
    // points[workload][level][round]
    let mut points = vec![vec![Vec::<Point>::new(); levels.len()]; workloads.len()];
    for round in 1..=rounds {
        for (wi, w) in workloads.iter().enumerate() {
            for (li, &c) in levels.iter().enumerate() {
                let p = measure(w, c, warmup, window)?;
                eprintln!(
                    "round {round}/{rounds}  {:<10} C={c:<2} {:>9.1} inv/s  function {:.2} cores  driver {:.2} cores  handler {:.3} ms  load {}",
                    w.name, p.per_second, p.function_cores, p.driver_cores, p.handler_ms, loadavg()
                );
                points[wi][li].push(p);
            }
        }
    }
    println!();
    println!("load average: {load_before} before, {} after", loadavg());
    report(&workloads, &levels, &points, rounds, seconds);
    Ok(())
}

fn report(
    workloads: &[Workload],
    levels: &[usize],
    points: &[Vec<Vec<Point>>],
    rounds: usize,
    seconds: f64,
) {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let med = |ps: &[Point], f: fn(&Point) -> f64| median(&ps.iter().map(f).collect::<Vec<_>>());
    let base: Vec<f64> = points
        .iter()
        .map(|per_level| med(&per_level[0], |p| p.per_second))
        .collect();
    println!();
    println!(
        "{rounds} rounds of {seconds} s per point, interleaved; {cpus} CPUs; medians over the rounds \
         (min-max in parentheses)"
    );
    println!();
    let mut header = String::from("| C |");
    let mut rule = String::from("|---:|");
    for w in workloads {
        header.push_str(&format!(" {} inv/s | ratio to C=1 |", w.name));
        rule.push_str("---:|---:|");
    }
    println!("{header}");
    println!("{rule}");
    for (li, c) in levels.iter().enumerate() {
        let mut line = format!("| {c} |");
        for (wi, per_level) in points.iter().enumerate() {
            let ps = &per_level[li];
            let rates: Vec<f64> = ps.iter().map(|p| p.per_second).collect();
            let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = rates.iter().copied().fold(0.0, f64::max);
            let m = median(&rates);
            line.push_str(&format!(
                " {m:.0} ({lo:.0}-{hi:.0}) | **{:.2}×** |",
                m / base[wi]
            ));
        }
        println!("{line}");
    }
    println!();
    println!("Where the CPU went (medians): function = the Lambda process, driver = this process (Runtime API emulator + clients), in cores busy; handler = the function's own latency_ms per invocation.");
    println!();
    let mut header = String::from("| C |");
    let mut rule = String::from("|---:|");
    for w in workloads {
        header.push_str(&format!(
            " {0} function | {0} driver | {0} handler ms |",
            w.name
        ));
        rule.push_str("---:|---:|---:|");
    }
    println!("{header}");
    println!("{rule}");
    for (li, c) in levels.iter().enumerate() {
        let mut line = format!("| {c} |");
        for per_level in points {
            let ps = &per_level[li];
            line.push_str(&format!(
                " {:.2} | {:.2} | {:.3} |",
                med(ps, |p| p.function_cores),
                med(ps, |p| p.driver_cores),
                med(ps, |p| p.handler_ms)
            ));
        }
        println!("{line}");
    }
}
