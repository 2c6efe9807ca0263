//! Batches across threads and unaligned model bytes, as ratios in one run.
//!
//! - `threads/mlp_{256,1024}`: the 64→256→256→10 softmax MLP, one batch per
//!   iteration through `Model::predict_batch_with`, at exactly 1 and 2
//!   threads (`Parallelism::Exactly`): `2` on scoped threads spawned per
//!   batch, `2_pool` on the worker pool of a shared model
//!   (`Model::into_shared`, as the Lambda handler serves it);
//!   `Throughput::Elements(rows)`.
//! - `break_even/{family}/{rows}`: each family at 1 and 2 threads over
//!   growing batches, to find where a second thread starts to pay.
//! - `managed_instances`: two callers predicting 256-row batches at once (as
//!   two concurrent invocations do), each batch on 1 or on 2 threads (the
//!   pool of a shared model);
//!   `Throughput::Elements(rows of both callers)`.
//! - `alignment/{mlp_row,gemv_256}`: one row from the model loaded from
//!   64-byte aligned bytes and from the same bytes at 16 mod 64 (what
//!   `std::fs::read` returns), both with the default `Parallelism::Auto`.
//! - `iris/{row,batch_16}`: the embedded default model, one row and a
//!   16-row batch (the paths that must not change).
//!
//! Before criterion, it times the first split batch of the process (which
//! starts the worker pool) against the next ones.
//!
//! ```text
//! cargo bench -p apr-runtime --no-default-features --bench parallel -- --warm-up-time 1 --measurement-time 2
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use apr_runtime::format::AprWriter;
use apr_runtime::model::Model;
use apr_runtime::threads::Parallelism;
use criterion::{BenchmarkId, Criterion, Throughput};
use serde_json::json;
use std::sync::Arc;

mod support;
use support::values;

/// Linear layers `dims[0] -> dims[1] -> ...` with ReLU between, then
/// `last` (e.g. Softmax).
fn mlp(dims: &[usize], last: Option<&str>) -> Vec<u8> {
    let mut writer = AprWriter::new();
    writer.model_type("NeuralSequential");
    let mut layers = Vec::new();
    for (i, pair) in dims.windows(2).enumerate() {
        let (n_in, n_out) = (pair[0], pair[1]);
        layers.push(json!(format!("Linear({n_in}->{n_out})")));
        if i + 2 < dims.len() {
            layers.push(json!("ReLU"));
        }
        let scale = 1.0 / (n_in as f32).sqrt();
        let w: Vec<f32> = values(n_in * n_out, 10 + i as u32)
            .iter()
            .map(|v| v * scale)
            .collect();
        writer
            .add_f32(&(2 * i).to_string(), &[n_out, n_in], &w)
            .and_then(|w| w.add_f32(&(2 * i + 1).to_string(), &[n_out], &values(n_out, 20)))
            .unwrap_or_else(|e| panic!("building the benchmark model: {e}"));
    }
    if let Some(last) = last {
        layers.push(json!(last));
    }
    writer.metadata("layers", json!(layers));
    writer.to_bytes()
}

fn affine(family: &str, n_in: usize, n_out: usize) -> Vec<u8> {
    let mut writer = AprWriter::new();
    writer.model_type(family);
    writer
        .add_f32("weight", &[n_out, n_in], &values(n_in * n_out, 3))
        .and_then(|w| w.add_f32("bias", &[n_out], &values(n_out, 4)))
        .unwrap_or_else(|e| panic!("building the benchmark model: {e}"));
    writer.to_bytes()
}

fn kmeans(k: usize, d: usize) -> Vec<u8> {
    let mut writer = AprWriter::new();
    writer.model_type("KMeans");
    writer
        .add_f32("centroids", &[k, d], &values(k * d, 5))
        .unwrap_or_else(|e| panic!("building the benchmark model: {e}"));
    writer.to_bytes()
}

/// The five node arrays of a tree being written (features, thresholds,
/// classes, left children, right children).
type NodeArrays<'v> = (
    &'v mut Vec<f32>,
    &'v mut Vec<f32>,
    &'v mut Vec<f32>,
    &'v mut Vec<f32>,
    &'v mut Vec<f32>,
);

/// A forest of `n_trees` complete trees of depth `depth` over `n_features`.
fn forest(n_trees: usize, depth: u32, n_features: usize) -> Vec<u8> {
    let mut writer = AprWriter::new();
    writer.model_type("RandomForestClassifier");
    for t in 0..n_trees {
        let n = (1usize << (depth + 1)) - 1;
        let noise = values(n, 100 + t as u32);
        let (mut features, mut thresholds, mut classes, mut left, mut right) =
            (vec![], vec![], vec![], vec![], vec![]);
        // Pre-order of a complete tree: node i at depth d has its left child
        // at i + 1 and its right child after the left subtree.
        fn grow(
            d: u32,
            depth: u32,
            noise: &[f32],
            n_features: usize,
            out: &mut NodeArrays<'_>,
        ) -> usize {
            let me = out.0.len();
            let r = noise.get(me).copied().unwrap_or(0.0);
            let leaf = d == depth;
            out.0.push(if leaf {
                -1.0
            } else {
                ((r.abs() * 1000.0) as usize % n_features) as f32
            });
            out.1.push(if leaf { 0.0 } else { r * 0.5 });
            out.2.push(if leaf { (me % 3) as f32 } else { 0.0 });
            out.3.push(-1.0);
            out.4.push(-1.0);
            if !leaf {
                let l = grow(d + 1, depth, noise, n_features, out);
                let rr = grow(d + 1, depth, noise, n_features, out);
                out.3[me] = l as f32;
                out.4[me] = rr as f32;
            }
            me
        }
        grow(
            0,
            depth,
            &noise,
            n_features,
            &mut (
                &mut features,
                &mut thresholds,
                &mut classes,
                &mut left,
                &mut right,
            ),
        );
        let samples = vec![1.0; n];
        for (name, v) in [
            ("node_features", &features),
            ("node_thresholds", &thresholds),
            ("node_classes", &classes),
            ("node_samples", &samples),
            ("node_left_child", &left),
            ("node_right_child", &right),
        ] {
            writer
                .add_f32(&format!("tree_{t}_{name}"), &[n], v)
                .unwrap_or_else(|e| panic!("building the benchmark model: {e}"));
        }
    }
    writer.metadata("n_classes", json!(3));
    writer.metadata("n_features", json!(n_features));
    writer.to_bytes()
}

/// `bytes` copied to `offset` mod 64 inside `storage`.
fn placed(bytes: &[u8], offset: usize, storage: &mut Vec<u64>) -> std::ops::Range<usize> {
    *storage = vec![0u64; bytes.len().div_ceil(8) + 16];
    let base = bytemuck::cast_slice::<u64, u8>(storage)
        .as_ptr()
        .align_offset(64);
    let at = base + offset;
    bytemuck::cast_slice_mut::<u64, u8>(storage)[at..at + bytes.len()].copy_from_slice(bytes);
    at..at + bytes.len()
}

fn bytes_of(storage: &[u64], range: std::ops::Range<usize>) -> &[u8] {
    &bytemuck::cast_slice::<u64, u8>(storage)[range]
}

fn load(bytes: &[u8]) -> Model<'_> {
    Model::from_bytes(bytes).unwrap_or_else(|e| panic!("loading the benchmark model: {e}"))
}

/// The model of `bytes` shared ([`Model::into_shared`]): its split batches
/// run on the worker pool.
fn shared(bytes: &[u8], threads: usize) -> Arc<Model<'static>> {
    let bytes: &'static [u8] = Vec::leak(bytes.to_vec());
    load(bytes)
        .with_parallelism(Parallelism::Exactly(threads))
        .into_shared()
}

fn batch(
    model: &Model<'_>,
    rows: &[f32],
    n_rows: usize,
    scratch: &mut apr_runtime::model::Scratch,
) {
    let out = model
        .predict_batch_with(black_box(rows), n_rows, scratch)
        .unwrap_or_else(|e| panic!("predicting: {e}"));
    black_box(out);
}

/// The first split batch of the process starts the pool: time it against
/// the batches after it.
fn first_split_batch() {
    let bytes = mlp(&[64, 256, 256, 10], Some("Softmax"));
    let model = shared(&bytes, 2);
    let rows = values(256 * 64, 1);
    let mut scratch = model.scratch();
    let t = Instant::now();
    batch(&model, &rows, 256, &mut scratch);
    let first = t.elapsed();
    let mut next = Duration::MAX;
    for _ in 0..50 {
        let t = Instant::now();
        batch(&model, &rows, 256, &mut scratch);
        next = next.min(t.elapsed());
    }
    println!(
        "first split batch (starts the pool): {:.1} µs; best of the next 50: {:.1} µs",
        first.as_secs_f64() * 1e6,
        next.as_secs_f64() * 1e6
    );
}

fn threads(c: &mut Criterion) {
    let bytes = mlp(&[64, 256, 256, 10], Some("Softmax"));
    let mut group = c.benchmark_group("threads");
    for n_rows in [256, 1024] {
        let rows = values(n_rows * 64, 2);
        group.throughput(Throughput::Elements(n_rows as u64));
        for t in [1, 2] {
            let model = load(&bytes).with_parallelism(Parallelism::Exactly(t));
            let mut scratch = model.scratch();
            group.bench_function(BenchmarkId::new(format!("mlp_{n_rows}"), t), |b| {
                b.iter(|| batch(&model, &rows, n_rows, &mut scratch))
            });
        }
        let pooled = shared(&bytes, 2);
        let mut scratch = pooled.scratch();
        group.bench_function(BenchmarkId::new(format!("mlp_{n_rows}"), "2_pool"), |b| {
            b.iter(|| batch(&pooled, &rows, n_rows, &mut scratch))
        });
    }
    group.finish();
}

fn break_even(c: &mut Criterion) {
    let families: [(&str, Vec<u8>); 5] = [
        (
            "mlp_64_256_256_10",
            mlp(&[64, 256, 256, 10], Some("Softmax")),
        ),
        ("mlp_4_32_3", mlp(&[4, 32, 3], Some("Softmax"))),
        ("logistic_4_3", affine("LogisticRegression", 4, 3)),
        ("kmeans_8x16", kmeans(8, 16)),
        ("forest_50_depth_8", forest(50, 8, 16)),
    ];
    let mut group = c.benchmark_group("break_even");
    for (name, bytes) in &families {
        for n_rows in [32, 128, 512, 2048, 8192] {
            let probe = load(bytes);
            let rows = values(n_rows * probe.n_features(), 3);
            group.throughput(Throughput::Elements(n_rows as u64));
            for t in [1, 2] {
                let model = load(bytes).with_parallelism(Parallelism::Exactly(t));
                let mut scratch = model.scratch();
                group.bench_function(BenchmarkId::new(format!("{name}/{n_rows}"), t), |b| {
                    b.iter(|| batch(&model, &rows, n_rows, &mut scratch))
                });
            }
        }
    }
    group.finish();
}

fn managed_instances(c: &mut Criterion) {
    let bytes = mlp(&[64, 256, 256, 10], Some("Softmax"));
    let rows = values(256 * 64, 4);
    let mut group = c.benchmark_group("managed_instances");
    group.throughput(Throughput::Elements(2 * 256));
    for t in [1, 2] {
        let model = shared(&bytes, t);
        group.bench_function(BenchmarkId::new("two_callers_256_rows", t), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..2 {
                        s.spawn(|| {
                            let mut scratch = model.scratch();
                            for _ in 0..iters {
                                batch(&model, &rows, 256, &mut scratch);
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    group.finish();
}

fn alignment(c: &mut Criterion) {
    let mut group = c.benchmark_group("alignment");
    for (name, bytes, n_in) in [
        ("mlp_row", mlp(&[64, 256, 256, 10], Some("Softmax")), 64),
        ("gemv_256", affine("LinearRegression", 256, 256), 256),
    ] {
        let row = values(n_in, 6);
        for offset in [0, 16] {
            let mut storage = Vec::new();
            let range = placed(&bytes, offset, &mut storage);
            let model = load(bytes_of(&storage, range));
            let mut scratch = model.scratch();
            group.bench_function(BenchmarkId::new(name, format!("{offset}_mod_64")), |b| {
                b.iter(|| {
                    let out = model
                        .predict(black_box(&row), &mut scratch)
                        .unwrap_or_else(|e| panic!("predicting: {e}"));
                    black_box(out.outputs.len());
                })
            });
        }
    }
    group.finish();
}

fn iris(c: &mut Criterion) {
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/model.apr"))
        .unwrap_or_else(|e| panic!("reading models/model.apr: {e}"));
    let mut storage = Vec::new();
    let range = placed(&bytes, 0, &mut storage);
    let model = load(bytes_of(&storage, range));
    let mut scratch = model.scratch();
    let row = [5.1, 3.5, 1.4, 0.2];
    let rows: Vec<f32> = row.iter().copied().cycle().take(16 * 4).collect();
    let mut group = c.benchmark_group("iris");
    group.bench_function("row", |b| {
        b.iter(|| {
            let out = model
                .predict(black_box(&row), &mut scratch)
                .unwrap_or_else(|e| panic!("predicting: {e}"));
            black_box(out.class);
        })
    });
    group.bench_function("batch_16", |b| {
        b.iter(|| batch(&model, &rows, 16, &mut scratch))
    });
    group.finish();
}

/// Best of many interleaved rounds (1 thread, then 2, then 1, ...): the
/// undisturbed cost of each, which a loaded machine's criterion means hide.
fn best_rounds() {
    let bytes = mlp(&[64, 256, 256, 10], Some("Softmax"));
    for n_rows in [256, 1024] {
        let rows = values(n_rows * 64, 2);
        // 1 thread, 2 scoped threads, 2 threads on the pool (shared model).
        let models: Vec<Arc<Model<'static>>> = vec![
            Arc::new(load(Vec::leak(bytes.clone())).with_parallelism(Parallelism::Exactly(1))),
            Arc::new(load(Vec::leak(bytes.clone())).with_parallelism(Parallelism::Exactly(2))),
            shared(&bytes, 2),
        ];
        let mut scratches: Vec<_> = models.iter().map(|m| m.scratch()).collect();
        let mut best = [Duration::MAX; 3];
        for _ in 0..400 {
            for (i, model) in models.iter().enumerate() {
                let t = Instant::now();
                batch(model, &rows, n_rows, &mut scratches[i]);
                best[i] = best[i].min(t.elapsed());
            }
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "best round, MLP {n_rows} rows: 1 thread {:.1} µs; 2 scoped threads {:.1} µs ({:.2}x); \
             2 threads on the pool {:.1} µs ({:.2}x)",
            us(best[0]),
            us(best[1]),
            best[0].as_secs_f64() / best[1].as_secs_f64(),
            us(best[2]),
            best[0].as_secs_f64() / best[2].as_secs_f64()
        );
    }
    for (name, bytes, n_in) in [
        ("MLP row", mlp(&[64, 256, 256, 10], Some("Softmax")), 64),
        ("gemv 256x256", affine("LinearRegression", 256, 256), 256),
    ] {
        let row = values(n_in, 6);
        let mut storages = [Vec::new(), Vec::new()];
        let ranges = [
            placed(&bytes, 0, &mut storages[0]),
            placed(&bytes, 16, &mut storages[1]),
        ];
        let models: Vec<Model<'_>> = storages
            .iter()
            .zip(ranges)
            .map(|(s, r)| load(bytes_of(s, r)))
            .collect();
        let mut scratches: Vec<_> = models.iter().map(Model::scratch).collect();
        let mut best = [Duration::MAX; 2];
        for _ in 0..2000 {
            for (i, model) in models.iter().enumerate() {
                let t = Instant::now();
                for _ in 0..20 {
                    let out = model
                        .predict(black_box(&row), &mut scratches[i])
                        .unwrap_or_else(|e| panic!("predicting: {e}"));
                    black_box(out.outputs.len());
                }
                best[i] = best[i].min(t.elapsed() / 20);
            }
        }
        println!(
            "best round, {name}: 0 mod 64 {:.2} µs, 16 mod 64 {:.2} µs: {:.3}x",
            best[0].as_secs_f64() * 1e6,
            best[1].as_secs_f64() * 1e6,
            best[1].as_secs_f64() / best[0].as_secs_f64()
        );
    }
}

/// Batches back to back for two seconds each, timed one by one: the median
/// and the best, the statistics `scripts/ort-mlp-bench.py` reports for
/// onnxruntime (whose pool, like ours, finds its workers awake).
fn back_to_back() {
    let bytes = mlp(&[64, 256, 256, 10], Some("Softmax"));
    for n_rows in [256, 1024] {
        let rows = values(n_rows * 64, 2);
        let mut line = format!("back to back, MLP {n_rows} rows:");
        for (name, model) in [
            (
                "1 thread",
                Arc::new(load(Vec::leak(bytes.clone())).with_parallelism(Parallelism::Exactly(1))),
            ),
            ("2 threads on the pool", shared(&bytes, 2)),
        ] {
            let mut scratch = model.scratch();
            for _ in 0..20 {
                batch(&model, &rows, n_rows, &mut scratch);
            }
            let mut samples = Vec::new();
            let end = Instant::now() + Duration::from_secs(2);
            while Instant::now() < end {
                let t = Instant::now();
                batch(&model, &rows, n_rows, &mut scratch);
                samples.push(t.elapsed());
            }
            samples.sort_unstable();
            let us = |d: Duration| d.as_secs_f64() * 1e6;
            line += &format!(
                " {name} median {:.1} µs (best {:.1});",
                us(samples[samples.len() / 2]),
                us(samples[0])
            );
        }
        println!("{}", line.trim_end_matches(';'));
    }
}

fn main() {
    if std::env::args().any(|a| a == "--bench") {
        first_split_batch();
        best_rounds();
        back_to_back();
    }
    let mut c = Criterion::default().configure_from_args();
    threads(&mut c);
    alignment(&mut c);
    iris(&mut c);
    managed_instances(&mut c);
    break_even(&mut c);
    c.final_summary();
}
