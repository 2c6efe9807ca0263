//! Batches split across threads give bit-identical answers at every thread
//! count, in every family, on every kernel table this CPU runs; small batches
//! and single rows never leave the calling thread.

use apr_runtime::format::AprWriter;
use apr_runtime::kernels;
use apr_runtime::model::{BatchOutput, Model, ModelFamily, PredictError};
use apr_runtime::threads::{Parallelism, MIN_ROWS_PER_THREAD};
use serde_json::json;

// The benchmarks' deterministic inputs.
#[path = "../benches/support/mod.rs"]
mod support;
use support::values;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn mlp(dims: &[usize], activations: &[&str], last: Option<&str>) -> TestResult<Vec<u8>> {
    let mut writer = AprWriter::new();
    writer.model_type("NeuralSequential");
    let mut layers = Vec::new();
    for (i, pair) in dims.windows(2).enumerate() {
        let (n_in, n_out) = (pair[0], pair[1]);
        layers.push(json!(format!("Linear({n_in}->{n_out})")));
        let scale = 1.0 / (n_in as f32).sqrt();
        let w: Vec<f32> = values(n_in * n_out, 10 + i as u32)
            .iter()
            .map(|v| v * scale)
            .collect();
        writer.add_f32(&(2 * i).to_string(), &[n_out, n_in], &w)?;
        writer.add_f32(
            &(2 * i + 1).to_string(),
            &[n_out],
            &values(n_out, 20 + i as u32),
        )?;
        if i + 2 < dims.len() {
            layers.push(json!(activations[i % activations.len()]));
        }
    }
    if let Some(last) = last {
        layers.push(json!(last));
    }
    writer.metadata("layers", json!(layers));
    Ok(writer.to_bytes())
}

fn affine(family: &str, n_in: usize, n_out: usize) -> TestResult<Vec<u8>> {
    let mut writer = AprWriter::new();
    writer.model_type(family);
    writer.add_f32("weight", &[n_out, n_in], &values(n_in * n_out, 3))?;
    writer.add_f32("bias", &[n_out], &values(n_out, 4))?;
    Ok(writer.to_bytes())
}

fn kmeans(k: usize, d: usize) -> TestResult<Vec<u8>> {
    let mut writer = AprWriter::new();
    writer.model_type("KMeans");
    writer.add_f32("centroids", &[k, d], &values(k * d, 5))?;
    Ok(writer.to_bytes())
}

/// A complete tree of `depth` splits over `n_features` features, written as
/// the six pre-order node arrays under `prefix`.
fn write_tree(
    writer: &mut AprWriter,
    prefix: &str,
    depth: u32,
    n_features: usize,
    seed: u32,
) -> TestResult {
    struct Arrays {
        features: Vec<f32>,
        thresholds: Vec<f32>,
        classes: Vec<f32>,
        left: Vec<f32>,
        right: Vec<f32>,
    }
    fn grow(
        a: &mut Arrays,
        depth: u32,
        n_features: usize,
        noise: &mut impl Iterator<Item = f32>,
    ) -> usize {
        let me = a.features.len();
        let r = noise.next().unwrap_or(0.0);
        let leaf = depth == 0;
        a.features.push(if leaf {
            -1.0
        } else {
            ((r.abs() * 1000.0) as usize % n_features) as f32
        });
        a.thresholds.push(if leaf { 0.0 } else { r * 0.5 });
        a.classes.push(if leaf {
            ((r.abs() * 7.0) as usize % 3) as f32
        } else {
            0.0
        });
        a.left.push(-1.0);
        a.right.push(-1.0);
        if !leaf {
            let l = grow(a, depth - 1, n_features, noise);
            let r = grow(a, depth - 1, n_features, noise);
            a.left[me] = l as f32;
            a.right[me] = r as f32;
        }
        me
    }
    let mut a = Arrays {
        features: vec![],
        thresholds: vec![],
        classes: vec![],
        left: vec![],
        right: vec![],
    };
    let mut noise = values(1 << (depth + 1), seed).into_iter();
    grow(&mut a, depth, n_features, &mut noise);
    let n = a.features.len();
    let samples = vec![1.0; n];
    for (name, v) in [
        ("node_features", &a.features),
        ("node_thresholds", &a.thresholds),
        ("node_classes", &a.classes),
        ("node_samples", &samples),
        ("node_left_child", &a.left),
        ("node_right_child", &a.right),
    ] {
        writer.add_f32(&format!("{prefix}{name}"), &[n], v)?;
    }
    Ok(())
}

fn tree(n_features: usize) -> TestResult<Vec<u8>> {
    let mut writer = AprWriter::new();
    writer.model_type("DecisionTreeClassifier");
    write_tree(&mut writer, "", 6, n_features, 7)?;
    writer.metadata("n_classes", json!(3));
    writer.metadata("n_features", json!(n_features));
    Ok(writer.to_bytes())
}

fn forest(n_trees: usize, n_features: usize) -> TestResult<Vec<u8>> {
    let mut writer = AprWriter::new();
    writer.model_type("RandomForestClassifier");
    for i in 0..n_trees {
        write_tree(
            &mut writer,
            &format!("tree_{i}_"),
            5,
            n_features,
            100 + i as u32,
        )?;
    }
    writer.add_f32("n_estimators", &[1], &[n_trees as f32])?;
    writer.metadata("n_classes", json!(3));
    writer.metadata("n_features", json!(n_features));
    Ok(writer.to_bytes())
}

/// Every family, in shapes that reach every kernel path: gemm tiles with
/// row and column remainders, element-wise activations, row softmax, binary
/// (also too narrow for the tile) and multinomial logistic, distances, tree
/// walks, and (with the `onnx` feature) the tree ensembles.
fn models() -> TestResult<Vec<(&'static str, Vec<u8>)>> {
    let mut models = vec![
        (
            "mlp 64->256->256->10 softmax",
            mlp(&[64, 256, 256, 10], &["ReLU"], Some("Softmax"))?,
        ),
        (
            "mlp 13->37->5 every activation",
            mlp(
                &[13, 37, 29, 21, 17, 5],
                &["Sigmoid", "Tanh", "GELU", "LeakyReLU(0.2)"],
                None,
            )?,
        ),
        (
            "linear regression 9 -> 3",
            affine("LinearRegression", 9, 3)?,
        ),
        ("binary logistic 7", affine("LogisticRegression", 7, 1)?),
        // Too narrow for the gemm's tile: gemv per row at any batch size.
        ("binary logistic 200", affine("LogisticRegression", 200, 1)?),
        (
            "multinomial logistic 11 -> 4",
            affine("LogisticRegression", 11, 4)?,
        ),
        ("k-means 5 x 6", kmeans(5, 6)?),
        ("decision tree", tree(6)?),
        ("random forest of 9", forest(9, 6)?),
    ];
    models.extend(tree_ensembles()?);
    Ok(models)
}

/// Tree ensembles converted from the exporters' ONNX fixtures.
#[cfg(feature = "onnx")]
fn tree_ensembles() -> TestResult<Vec<(&'static str, Vec<u8>)>> {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/onnx");
    [
        ("tree ensemble (XGBoost, 3 classes)", "xgb_multi.onnx"),
        ("tree ensemble (LightGBM regressor)", "lgbm_reg.onnx"),
    ]
    .into_iter()
    .map(|(name, file)| {
        let onnx = std::fs::read(fixtures.join(file))?;
        Ok((name, apr_runtime::onnx::convert(&onnx)?.bytes))
    })
    .collect()
}

/// Without the `onnx` feature there is no converter to make them.
#[cfg(not(feature = "onnx"))]
fn tree_ensembles() -> TestResult<Vec<(&'static str, Vec<u8>)>> {
    Ok(Vec::new())
}

/// One row's class, outputs and probabilities, as bits.
type RowBits = (Option<usize>, Vec<u32>, Option<Vec<u32>>);

/// Every value of a batch, as bits.
fn bits(batch: &BatchOutput) -> Vec<RowBits> {
    batch
        .rows()
        .map(|row| {
            (
                row.class,
                row.outputs.iter().map(|v| v.to_bits()).collect(),
                row.probabilities
                    .map(|p| p.iter().map(|v| v.to_bits()).collect()),
            )
        })
        .collect()
}

#[test]
fn every_family_gives_identical_bits_at_one_two_and_three_threads() -> TestResult {
    for (name, bytes) in models()? {
        // A shared model (its splits on the worker pool) needs 'static bytes.
        let bytes: &'static [u8] = Vec::leak(bytes);
        for table in kernels::available() {
            let base = Model::from_bytes(bytes)?
                .with_kernels(table)
                .with_parallelism(Parallelism::Exactly(1));
            // Row counts that split into runs of uneven lengths, none a
            // multiple of the 6-row gemm tile.
            for n_rows in [2 * MIN_ROWS_PER_THREAD + 1, 97, 301] {
                let rows = values(n_rows * base.n_features(), n_rows as u32);
                let one = base.predict_batch(&rows, n_rows)?;
                for threads in [2, 3] {
                    let model = Model::from_bytes(bytes)?
                        .with_kernels(table)
                        .with_parallelism(Parallelism::Exactly(threads));
                    let expected_threads = threads.min(n_rows / MIN_ROWS_PER_THREAD);
                    assert_eq!(model.batch_threads(n_rows), expected_threads);
                    let split = model.predict_batch(&rows, n_rows)?;
                    assert_eq!(
                        bits(&split),
                        bits(&one),
                        "{name}, {}, {n_rows} rows, {threads} threads",
                        table.name
                    );
                    let mut scratch = model.scratch();
                    let with = model.predict_batch_with(&rows, n_rows, &mut scratch)?;
                    assert_eq!(bits(&with), bits(&one), "{name}, predict_batch_with");
                    let shared = model.into_shared();
                    for _ in 0..2 {
                        let pooled = shared.predict_batch_with(&rows, n_rows, &mut scratch)?;
                        assert_eq!(
                            bits(&pooled),
                            bits(&one),
                            "{name}, {}, {n_rows} rows, {threads} threads on the pool",
                            table.name
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

#[test]
fn small_batches_and_single_rows_stay_on_the_calling_thread() -> TestResult {
    for (name, bytes) in models()? {
        let model = Model::from_bytes(&bytes)?;
        assert_eq!(model.parallelism(), Parallelism::Auto);
        for n_rows in [0, 1, 16, 2 * MIN_ROWS_PER_THREAD - 1] {
            assert_eq!(model.batch_threads(n_rows), 1, "{name}, {n_rows} rows");
        }
        let forced = model.with_parallelism(Parallelism::Exactly(8));
        assert_eq!(forced.batch_threads(2 * MIN_ROWS_PER_THREAD - 1), 1);
        assert_eq!(forced.batch_threads(2 * MIN_ROWS_PER_THREAD), 2);
        assert_eq!(forced.batch_threads(100 * MIN_ROWS_PER_THREAD), 8);
        let one = Model::from_bytes(&bytes)?.with_parallelism(Parallelism::Exactly(1));
        assert_eq!(one.batch_threads(100_000), 1);
    }
    Ok(())
}

#[test]
fn only_batches_with_enough_work_are_split() -> TestResult {
    let bytes = mlp(&[64, 256, 256, 10], &["ReLU"], Some("Softmax"))?;
    let big = Model::from_bytes(&bytes)?.with_parallelism(Parallelism::UpTo(2));
    assert_eq!(big.batch_threads(16), 1);
    assert_eq!(big.batch_threads(1024), 2);
    // The iris-sized logistic regression: thousands of rows before a
    // second thread pays.
    let bytes = affine("LogisticRegression", 4, 3)?;
    let tiny = Model::from_bytes(&bytes)?.with_parallelism(Parallelism::UpTo(2));
    assert_eq!(tiny.batch_threads(256), 1);
    assert_eq!(tiny.batch_threads(1 << 20), 2);
    Ok(())
}

#[test]
fn the_first_error_in_row_order_wins_at_any_thread_count() -> TestResult {
    let bytes = affine("LinearRegression", 3, 1)?;
    for threads in [1, 2, 3] {
        let model = Model::from_bytes(&bytes)?.with_parallelism(Parallelism::Exactly(threads));
        let mut rows = values(100 * 3, 9);
        rows[70 * 3 + 2] = f32::NAN;
        rows[90 * 3] = f32::INFINITY;
        assert!(matches!(
            model.predict_batch(&rows, 100),
            Err(PredictError::NonFiniteInBatch { row: 70, index: 2 })
        ));
    }
    Ok(())
}

#[test]
fn concurrent_callers_of_a_shared_model_get_their_own_answers() -> TestResult {
    let bytes: &'static [u8] = Vec::leak(mlp(&[16, 64, 8], &["ReLU"], Some("Softmax"))?);
    let shared = Model::from_bytes(bytes)?
        .with_parallelism(Parallelism::Exactly(2))
        .into_shared();
    let alone = Model::from_bytes(bytes)?.with_parallelism(Parallelism::Exactly(1));
    let batches: Vec<Vec<f32>> = (0..4).map(|i| values(200 * 16, 50 + i)).collect();
    let expected: Vec<Vec<RowBits>> = batches
        .iter()
        .map(|rows| alone.predict_batch(rows, 200).map(|b| bits(&b)))
        .collect::<Result<_, _>>()?;
    std::thread::scope(|s| {
        for (rows, expected) in batches.iter().zip(&expected) {
            let shared = &shared;
            s.spawn(move || {
                for _ in 0..25 {
                    let batch = shared.predict_batch(rows, 200).map(|b| bits(&b));
                    assert_eq!(batch.as_ref(), Ok(expected));
                }
            });
        }
    });
    Ok(())
}

#[test]
fn a_split_batch_is_the_model_family_it_says() -> TestResult {
    let bytes = forest(3, 4)?;
    let model = Model::from_bytes(&bytes)?.with_parallelism(Parallelism::Exactly(3));
    assert_eq!(model.family(), ModelFamily::RandomForest);
    let rows = values(64 * 4, 1);
    let batch = model.predict_batch(&rows, 64)?;
    assert_eq!(batch.len(), 64);
    assert_eq!(batch.classes().map(<[usize]>::len), Some(64));
    Ok(())
}
