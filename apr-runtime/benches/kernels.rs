//! Kernel throughput, every table this CPU runs side by side in one process.
//!
//! Throughput is `Throughput::Elements(flops)`, one element per floating-point
//! operation (a multiply-add counts as 2, bias adds are not counted), so
//! criterion's `Gelem/s` reads as GFLOP/s.
//!
//! ```text
//! cargo bench -p apr-runtime --no-default-features --bench kernels -- --warm-up-time 1 --measurement-time 2
//! ```

use apr_runtime::kernels::{self, Kernels};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

mod support;
use support::values;

fn tables() -> Vec<&'static Kernels> {
    kernels::available()
}

/// gemv `y = W x + b` for `n_in → n_out` (W is `n_out × n_in`).
fn gemv(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemv");
    for (n_in, n_out) in [(64usize, 256usize), (256, 256), (1024, 1024)] {
        let w = values(n_in * n_out, 1);
        let x = values(n_in, 2);
        let b = values(n_out, 3);
        let mut y = vec![0.0; n_out];
        group.throughput(Throughput::Elements((2 * n_in * n_out) as u64));
        for t in tables() {
            let id = BenchmarkId::new(t.name, format!("{n_in}x{n_out}"));
            group.bench_function(id, |bench| {
                bench.iter(|| (t.gemv)(black_box(&w), black_box(&x), Some(&b), &mut y))
            });
        }
    }
    group.finish();
}

/// gemm `Y = X Wᵀ + b` for 256 rows: two layers of the MLP, and two too
/// narrow for the 16-wide tile, which the SIMD gemms run row by row.
fn gemm(c: &mut Criterion) {
    let rows = 256;
    let mut group = c.benchmark_group("gemm_256_rows");
    for (n_in, n_out) in [(64usize, 256usize), (256, 256), (1000, 1), (200, 3)] {
        let w = values(n_in * n_out, 4);
        let x = values(rows * n_in, 5);
        let b = values(n_out, 6);
        let mut y = vec![0.0; rows * n_out];
        group.throughput(Throughput::Elements((2 * rows * n_in * n_out) as u64));
        for t in tables() {
            let id = BenchmarkId::new(t.name, format!("{n_in}x{n_out}"));
            group.bench_function(id, |bench| {
                bench.iter(|| (t.gemm)(black_box(&w), black_box(&x), Some(&b), &mut y, n_in, n_out))
            });
        }
    }
    group.finish();
}

/// The three layers of a 64→256→256→10 MLP (ReLU, ReLU, softmax) on 256
/// rows, kernels only: what a batch prediction costs in arithmetic.
fn mlp_batch(c: &mut Criterion) {
    let rows = 256;
    let dims = [64usize, 256, 256, 10];
    let layers: Vec<(Vec<f32>, Vec<f32>)> = dims
        .windows(2)
        .enumerate()
        .map(|(i, d)| {
            (
                values(d[0] * d[1], 10 + i as u32),
                values(d[1], 20 + i as u32),
            )
        })
        .collect();
    let x = values(rows * dims[0], 7);
    let flops: usize = dims.windows(2).map(|d| 2 * rows * d[0] * d[1]).sum();
    let mut group = c.benchmark_group("mlp_64_256_256_10_batch_256");
    group.throughput(Throughput::Elements(flops as u64));
    for t in tables() {
        let mut h1 = vec![0.0; rows * 256];
        let mut h2 = vec![0.0; rows * 256];
        let mut out = vec![0.0; rows * 10];
        group.bench_function(t.name, |bench| {
            bench.iter(|| {
                let (w, b) = &layers[0];
                (t.gemm)(w, black_box(&x), Some(b), &mut h1, 64, 256);
                (t.relu)(&mut h1);
                let (w, b) = &layers[1];
                (t.gemm)(w, &h1, Some(b), &mut h2, 256, 256);
                (t.relu)(&mut h2);
                let (w, b) = &layers[2];
                (t.gemm)(w, &h2, Some(b), &mut out, 256, 10);
                for row in out.chunks_exact_mut(10) {
                    (t.softmax)(row);
                }
                black_box(&out);
            })
        });
    }
    group.finish();
}

/// Activations over 256 values (one hidden layer), elements per second.
fn activations(c: &mut Criterion) {
    let v = values(256, 8).iter().map(|x| x * 6.0).collect::<Vec<f32>>();
    let mut group = c.benchmark_group("activations_256");
    group.throughput(Throughput::Elements(v.len() as u64));
    type Apply = fn(&Kernels, &mut [f32]);
    let cases: [(&str, Apply); 5] = [
        ("relu", |t, v| (t.relu)(v)),
        ("sigmoid", |t, v| (t.sigmoid)(v)),
        ("tanh", |t, v| (t.tanh)(v)),
        ("gelu", |t, v| (t.gelu)(v)),
        ("softmax", |t, v| (t.softmax)(v)),
    ];
    for (what, apply) in cases {
        for t in tables() {
            let mut buf = v.clone();
            group.bench_function(BenchmarkId::new(what, t.name), |bench| {
                bench.iter(|| {
                    buf.copy_from_slice(&v);
                    apply(t, black_box(&mut buf));
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, gemv, gemm, mlp_batch, activations);
criterion_main!(benches);
