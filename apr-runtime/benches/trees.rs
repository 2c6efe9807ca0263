//! Tree ensembles: the 100-tree, depth-6 scikit-learn GradientBoosting
//! classifier on 20 features (`tests/fixtures/onnx/bench`, converted from
//! ONNX here), one row and a 1000-row batch on one thread, over the same
//! rows `scripts/ort-trees-bench.py` gives onnxruntime. Compare the two in
//! one session: `BENCHMARKS.md` ("Tree ensembles") holds the ratios.
//!
//! ```text
//! cargo bench -p apr-runtime --features onnx --bench trees
//! python3 scripts/ort-trees-bench.py
//! ```

use std::hint::black_box;
use std::path::Path;

use apr_runtime::model::Model;
use apr_runtime::threads::Parallelism;
use criterion::{Criterion, Throughput};

const ROWS: usize = 1000;
const FEATURES: usize = 20;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/onnx/bench")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn main() {
    let onnx = fixture("gb_bench_100x6_20f.onnx");
    let apr: &'static [u8] = Box::leak(
        apr_runtime::onnx::convert(&onnx)
            .expect("the benchmark model converts")
            .bytes
            .into_boxed_slice(),
    );
    let model = Model::from_bytes(apr)
        .expect("the converted model loads")
        .with_parallelism(Parallelism::Exactly(1));
    let rows: Vec<f32> = fixture("gb_bench_batch_1000x20.f32")
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(rows.len(), ROWS * FEATURES);

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("trees/gb_100x6_20f");
    let mut scratch = model.scratch();
    let mut i = 0;
    group.bench_function("1_row", |b| {
        b.iter(|| {
            // A different row each call, as a service sees them.
            i = (i + 1) % ROWS;
            let row = &rows[i * FEATURES..(i + 1) * FEATURES];
            black_box(model.predict(black_box(row), &mut scratch).map(|o| o.class))
        })
    });
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("1000_rows", |b| {
        b.iter(|| black_box(model.predict_batch(black_box(&rows), ROWS)))
    });
    group.finish();
    c.final_summary();
}
