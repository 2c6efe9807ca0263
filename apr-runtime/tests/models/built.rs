//! Models built with `AprWriter` match a reference computation on every
//! kernel table this CPU runs.

use crate::reference::*;
use crate::support::*;

#[test]
fn multi_output_linear_regression_matches_reference() -> TestResult {
    let mut rng = Lcg(7);
    let (n_in, n_out) = (37, 5);
    let w = rng.vec(n_in * n_out);
    let b = rng.vec(n_out);
    let mut writer = AprWriter::new();
    writer.model_type("LinearRegression");
    writer.add_f32("weight", &[n_out, n_in], &w)?;
    writer.add_f32("bias", &[n_out], &b)?;
    let bytes = build(&writer);
    let x: Vec<Vec<f32>> = (0..9).map(|_| rng.vec(n_in)).collect();
    for table in kernels::available() {
        let model = Model::from_bytes(&bytes)?.with_kernels(table);
        assert_eq!((model.n_features(), model.n_outputs()), (n_in, n_out));
        let mut scratch = model.scratch();
        for row in &x {
            let out = model.predict(row, &mut scratch)?;
            assert_close(
                out.outputs,
                &affine(&w, Some(&b), &to_f64(row), n_out),
                1e-5,
                table.name,
            );
            assert!(matches!(out.prediction(), Prediction::Values(v) if v.len() == n_out));
        }
        let batch = model.predict_batch(&x.concat(), x.len())?;
        assert_eq!(batch.len(), x.len());
        for (i, row) in x.iter().enumerate() {
            let out = batch.row(i).ok_or("missing row")?;
            assert_close(
                out.outputs,
                &affine(&w, Some(&b), &to_f64(row), n_out),
                1e-5,
                "batch",
            );
        }
    }
    Ok(())
}

#[test]
fn linear_model_without_model_type_is_recognised() -> TestResult {
    let mut writer = AprWriter::new();
    writer.add_f32("weight", &[2, 2], &[1.0, 2.0, 3.0, 4.0])?;
    let bytes = build(&writer);
    let model = Model::from_bytes(&bytes)?;
    assert_eq!(model.family(), ModelFamily::LinearRegression);
    let mut scratch = model.scratch();
    let out = model.predict(&[1.0, -1.0], &mut scratch)?;
    assert_eq!(out.outputs, &[-1.0, -1.0]);
    assert_eq!(out.prediction(), Prediction::Values(vec![-1.0, -1.0]));

    let mut writer = AprWriter::new();
    writer.add_f32("weight", &[1, 2], &[1.0, 2.0])?;
    writer.add_f32("bias", &[1], &[0.5])?;
    writer.add_f32("extra", &[1], &[0.5])?;
    let err = load_err(&build(&writer));
    assert!(matches!(err, ModelError::Unsupported { ref model_type, .. } if model_type.is_empty()));
    assert!(err.to_string().contains("bias, extra, weight"), "{err}");
    Ok(())
}

#[test]
fn coefficients_naming_works_for_linear_and_logistic() -> TestResult {
    for family in ["LinearRegression", "LogisticRegression"] {
        let mut writer = AprWriter::new();
        writer.model_type(family);
        writer.add_f32("coefficients", &[3], &[0.5, -1.0, 2.0])?;
        writer.add_f32("intercept", &[1], &[0.25])?;
        let bytes = build(&writer);
        let model = Model::from_bytes(&bytes)?;
        let mut scratch = model.scratch();
        let out = model.predict(&[1.0, 1.0, 1.0], &mut scratch)?;
        let z = 0.5f32 - 1.0 + 2.0 + 0.25;
        if family == "LinearRegression" {
            assert_eq!(out.outputs, &[z]);
        } else {
            let p = 1.0 / (1.0 + (-(z as f64)).exp());
            assert_close(out.outputs, &[p], 1e-6, family);
            assert_eq!(out.class, Some(1));
            assert_eq!(out.prediction(), Prediction::Class(1));
        }
    }
    Ok(())
}

#[test]
fn multinomial_logistic_regression_matches_reference() -> TestResult {
    let mut rng = Lcg(11);
    let (n_in, k) = (6, 4);
    let w: Vec<f32> = rng.vec(n_in * k).iter().map(|v| v * 3.0).collect();
    let b = rng.vec(k);
    let mut writer = AprWriter::new();
    writer.model_type("LogisticRegression");
    writer.add_f32("weight", &[k, n_in], &w)?;
    writer.add_f32("bias", &[k], &b)?;
    let bytes = build(&writer);
    let xs: Vec<Vec<f32>> = (0..20).map(|_| rng.vec(n_in)).collect();
    for table in kernels::available() {
        let model = Model::from_bytes(&bytes)?.with_kernels(table);
        assert_eq!(model.n_classes(), Some(k));
        let mut scratch = model.scratch();
        let mut classes = Vec::new();
        for x in &xs {
            let mut want = affine(&w, Some(&b), &to_f64(x), k);
            Act::Softmax.apply(&mut want);
            let out = model.predict(x, &mut scratch)?;
            assert_close(out.outputs, &want, 1e-5, table.name);
            assert_eq!(out.probabilities, Some(out.outputs));
            let best = (0..k).fold(0, |best, i| if want[i] > want[best] { i } else { best });
            assert_eq!(out.class, Some(best));
            classes.push(best);
        }
        let batch = model.predict_batch(&xs.concat(), xs.len())?;
        assert_eq!(batch.classes(), Some(classes.as_slice()));
        let row = batch.row(3).ok_or("row 3")?;
        assert_eq!(row.probabilities, Some(row.outputs));
    }
    Ok(())
}

#[test]
fn binary_logistic_batch_has_two_probabilities_per_row() -> TestResult {
    let mut writer = AprWriter::new();
    writer.model_type("LogisticRegression");
    writer.add_f32("coefficients", &[2], &[1.0, -1.0])?;
    writer.add_f32("intercept", &[1], &[0.0])?;
    let bytes = build(&writer);
    let model = Model::from_bytes(&bytes)?;
    let batch = model.predict_batch(&[0.0, 0.0, 3.0, 0.0, 0.0, 3.0], 3)?;
    let row0 = batch.row(0).ok_or("row 0")?;
    assert_eq!(row0.outputs, &[0.5]);
    assert_eq!(row0.probabilities, Some(&[0.5, 0.5][..]));
    assert_eq!(row0.class, Some(1), "p = 0.5 goes to class 1 (p >= 0.5)");
    assert_eq!(batch.row(1).and_then(|r| r.class), Some(1));
    assert_eq!(batch.row(2).and_then(|r| r.class), Some(0));
    let p = batch
        .row(1)
        .and_then(|r| r.probabilities)
        .unwrap_or_default();
    assert_close(
        p,
        &[
            1.0 - 1.0 / (1.0 + (-3.0f64).exp()),
            1.0 / (1.0 + (-3.0f64).exp()),
        ],
        1e-6,
        "p",
    );
    Ok(())
}

/// A random pre-order tree over `n_features` features with leaves in
/// `0..n_classes`, as the six node arrays.
struct TreeArrays {
    features: Vec<f32>,
    thresholds: Vec<f32>,
    classes: Vec<f32>,
    left: Vec<f32>,
    right: Vec<f32>,
}

impl TreeArrays {
    fn random(rng: &mut Lcg, depth: u32, n_features: u32, n_classes: u32) -> Self {
        let mut t = TreeArrays {
            features: vec![],
            thresholds: vec![],
            classes: vec![],
            left: vec![],
            right: vec![],
        };
        t.grow(rng, depth, n_features, n_classes);
        t
    }

    fn grow(&mut self, rng: &mut Lcg, depth: u32, n_features: u32, n_classes: u32) -> usize {
        let me = self.features.len();
        let leaf = depth == 0 || (me > 0 && rng.below(4) == 0);
        self.features.push(if leaf {
            -1.0
        } else {
            rng.below(n_features) as f32
        });
        self.thresholds.push(if leaf { 0.0 } else { rng.uniform() });
        self.classes.push(if leaf {
            rng.below(n_classes) as f32
        } else {
            0.0
        });
        self.left.push(-1.0);
        self.right.push(-1.0);
        if !leaf {
            let l = self.grow(rng, depth - 1, n_features, n_classes);
            let r = self.grow(rng, depth - 1, n_features, n_classes);
            self.left[me] = l as f32;
            self.right[me] = r as f32;
        }
        me
    }

    fn classify(&self, x: &[f32]) -> usize {
        let mut i = 0;
        while self.features[i] >= 0.0 {
            let f = self.features[i] as usize;
            i = if x[f] <= self.thresholds[i] {
                self.left[i]
            } else {
                self.right[i]
            } as usize;
        }
        self.classes[i] as usize
    }

    fn write(&self, writer: &mut AprWriter, prefix: &str) -> TestResult {
        let n = self.features.len();
        let samples = vec![1.0; n];
        for (name, values) in [
            ("node_features", &self.features),
            ("node_thresholds", &self.thresholds),
            ("node_classes", &self.classes),
            ("node_samples", &samples),
            ("node_left_child", &self.left),
            ("node_right_child", &self.right),
        ] {
            writer.add_f32(&format!("{prefix}{name}"), &[n], values)?;
        }
        Ok(())
    }
}

#[test]
fn decision_tree_matches_reference_walk() -> TestResult {
    let mut rng = Lcg(3);
    let tree = TreeArrays::random(&mut rng, 6, 5, 4);
    let mut writer = AprWriter::new();
    writer.model_type("DecisionTreeClassifier");
    writer.metadata("n_features", json!(5));
    tree.write(&mut writer, "")?;
    writer.add_f32("max_depth", &[1], &[6.0])?;
    let bytes = build(&writer);
    let model = Model::from_bytes(&bytes)?;
    assert_eq!(model.family(), ModelFamily::DecisionTree);
    assert_eq!(model.n_features(), 5);
    let n_classes = tree
        .classes
        .iter()
        .zip(&tree.features)
        .filter(|(_, &f)| f < 0.0)
        .map(|(&c, _)| c as usize)
        .max()
        .unwrap_or(0)
        + 1;
    assert_eq!(model.n_outputs(), n_classes);
    let mut scratch = model.scratch();
    let xs: Vec<Vec<f32>> = (0..200).map(|_| rng.vec(5)).collect();
    for x in &xs {
        let c = tree.classify(x);
        let out = model.predict(x, &mut scratch)?;
        assert_eq!(out.class, Some(c));
        assert_eq!(out.outputs.iter().sum::<f32>(), 1.0);
        assert_eq!(out.outputs[c], 1.0);
    }
    // A row exactly on a threshold goes left.
    let mut x = vec![0.0; 5];
    let root_feature = tree.features[0] as usize;
    x[root_feature] = tree.thresholds[0];
    assert_eq!(
        model.predict(&x, &mut scratch)?.class,
        Some(tree.classify(&x))
    );
    let batch = model.predict_batch(&xs.concat(), xs.len())?;
    let want: Vec<usize> = xs.iter().map(|x| tree.classify(x)).collect();
    assert_eq!(batch.classes(), Some(want.as_slice()));
    Ok(())
}

#[test]
fn random_forest_matches_reference_vote() -> TestResult {
    let mut rng = Lcg(5);
    let n_trees = 7;
    let trees: Vec<TreeArrays> = (0..n_trees)
        .map(|_| TreeArrays::random(&mut rng, 5, 4, 3))
        .collect();
    let mut writer = AprWriter::new();
    writer.model_type("RandomForestClassifier");
    for (i, t) in trees.iter().enumerate() {
        t.write(&mut writer, &format!("tree_{i}_"))?;
        writer.add_f32(&format!("tree_{i}_max_depth"), &[1], &[5.0])?;
    }
    writer.add_f32("n_estimators", &[1], &[n_trees as f32])?;
    writer.metadata("n_classes", json!(3));
    let bytes = build(&writer);
    let model = Model::from_bytes(&bytes)?;
    assert_eq!(model.family(), ModelFamily::RandomForest);
    assert_eq!(model.n_outputs(), 3);
    let mut scratch = model.scratch();
    let xs: Vec<Vec<f32>> = (0..300).map(|_| rng.vec(4)).collect();
    let mut want_classes = Vec::new();
    let mut want_probs = Vec::new();
    for x in &xs {
        let mut votes = [0usize; 3];
        for t in &trees {
            votes[t.classify(x)] += 1;
        }
        let best = (0..3).fold(0, |b, c| if votes[c] > votes[b] { c } else { b });
        let probs: Vec<f32> = votes.iter().map(|&v| v as f32 / n_trees as f32).collect();
        let out = model.predict(x, &mut scratch)?;
        assert_eq!(out.class, Some(best), "{x:?} votes {votes:?}");
        assert_eq!(out.outputs, probs.as_slice());
        assert_eq!(out.probabilities, Some(probs.as_slice()));
        want_classes.push(best);
        want_probs.extend(probs);
    }
    let batch = model.predict_batch(&xs.concat(), xs.len())?;
    assert_eq!(batch.classes(), Some(want_classes.as_slice()));
    assert_eq!(batch.outputs(), want_probs.as_slice());
    Ok(())
}

#[test]
fn forest_ties_go_to_the_lowest_class() -> TestResult {
    // Two single-leaf trees voting 2 and 1: a tie, class 1 wins.
    let mut writer = AprWriter::new();
    writer.model_type("RandomForestClassifier");
    writer.metadata("n_features", json!(2));
    for (i, class) in [2.0f32, 1.0].iter().enumerate() {
        let p = format!("tree_{i}_");
        for (name, v) in [
            ("node_features", -1.0),
            ("node_thresholds", 0.0),
            ("node_classes", *class),
            ("node_samples", 1.0),
            ("node_left_child", -1.0),
            ("node_right_child", -1.0),
        ] {
            writer.add_f32(&format!("{p}{name}"), &[1], &[v])?;
        }
    }
    let bytes = build(&writer);
    let model = Model::from_bytes(&bytes)?;
    assert_eq!((model.n_features(), model.n_outputs()), (2, 3));
    let mut scratch = model.scratch();
    let out = model.predict(&[0.0, 0.0], &mut scratch)?;
    assert_eq!(out.class, Some(1));
    assert_eq!(out.outputs, &[0.0, 0.5, 0.5]);
    Ok(())
}

#[test]
fn kmeans_ties_go_to_the_lowest_index() -> TestResult {
    let mut writer = AprWriter::new();
    writer.model_type("KMeans");
    writer.add_f32("centroids", &[3, 2], &[1.0, 0.0, -1.0, 0.0, 0.0, 5.0])?;
    writer.add_f32("n_clusters", &[1], &[3.0])?;
    let bytes = build(&writer);
    let model = Model::from_bytes(&bytes)?;
    let mut scratch = model.scratch();
    let out = model.predict(&[0.0, 0.0], &mut scratch)?;
    assert_eq!(out.class, Some(0));
    assert_eq!(out.outputs, &[1.0, 1.0, 25.0]);
    assert_eq!(out.probabilities, None);
    Ok(())
}

fn random_layers(rng: &mut Lcg, dims: &[usize], acts: &[Act], dyadic: bool) -> Vec<RefLayer> {
    let mut layers = Vec::new();
    for (i, pair) in dims.windows(2).enumerate() {
        let (n_in, n_out) = (pair[0], pair[1]);
        let scale = 1.0 / (n_in as f32).sqrt();
        let w: Vec<f32> = (0..n_in * n_out)
            .map(|_| {
                if dyadic {
                    rng.dyadic() / 4.0
                } else {
                    rng.uniform() * scale * 2.0
                }
            })
            .collect();
        let b = (i % 3 != 1).then(|| rng.vec(n_out)); // every third layer has no bias
        layers.push(RefLayer::Linear { w, b, n_in, n_out });
        if let Some(&a) = acts.get(i) {
            layers.push(RefLayer::Act(a));
        }
    }
    layers
}

#[test]
fn deep_mlp_with_every_activation_matches_reference() -> TestResult {
    let mut rng = Lcg(17);
    let dims = [13, 24, 19, 33, 8, 16, 20, 5];
    let acts = [
        Act::Relu,
        Act::Sigmoid,
        Act::Tanh,
        Act::Gelu,
        Act::Leaky(0.1),
        Act::Softmax, // in the middle: row-wise, then on
        Act::Softmax,
    ];
    let layers = random_layers(&mut rng, &dims, &acts, false);
    let bytes = write_mlp(&layers, DType::F32)?;
    // 7 Linear layers, 5 with a bias: 12 parameters, so "10" and "11" sort
    // before "2" in the index.
    let file = AprFile::parse(&bytes)?;
    assert_eq!(file.tensors()[2].name, "10");
    let xs: Vec<Vec<f32>> = (0..17)
        .map(|_| rng.vec(13).iter().map(|v| v * 3.0).collect())
        .collect();
    for table in kernels::available() {
        let model = Model::from_bytes(&bytes)?.with_kernels(table);
        assert_eq!((model.n_features(), model.n_outputs()), (13, 5));
        let mut scratch = model.scratch();
        for x in &xs {
            let out = model.predict(x, &mut scratch)?;
            let want = reference_mlp(&layers, x);
            assert_close(out.outputs, &want, 1e-5, table.name);
            assert!(out.class.is_some());
        }
        let batch = model.predict_batch(&xs.concat(), xs.len())?;
        for (i, x) in xs.iter().enumerate() {
            let row = batch.row(i).ok_or("row")?;
            assert_close(row.outputs, &reference_mlp(&layers, x), 1e-5, "batch");
        }
        let reused = model.predict_batch_with(&xs.concat(), xs.len(), &mut scratch)?;
        assert_eq!(reused, batch);
        let small = model.predict_batch_with(&xs[..2].concat(), 2, &mut scratch)?;
        // Two rows take the kernels' unpacked path: equal up to rounding.
        assert_close(
            small.outputs(),
            &to_f64(&batch.outputs()[..2 * 5]),
            1e-5,
            "2 rows",
        );
    }
    Ok(())
}

#[test]
fn mlp_starting_with_an_activation_and_bare_leaky_relu() -> TestResult {
    let mut writer = AprWriter::new();
    writer.model_type("NeuralSequential");
    writer.metadata("layers", json!(["LeakyReLU", "Linear(2->1)"]));
    writer.add_f32("0", &[1, 2], &[1.0, 1.0])?;
    writer.add_f32("1", &[1], &[0.0])?;
    let bytes = build(&writer);
    let model = Model::from_bytes(&bytes)?;
    let mut scratch = model.scratch();
    let out = model.predict(&[-1.0, 2.0], &mut scratch)?;
    assert_close(out.outputs, &[2.0 - 0.01], 1e-6, "leaky default slope 0.01");
    let batch = model.predict_batch(&[-1.0, 2.0, 3.0, -4.0], 2)?;
    assert_close(batch.outputs(), &[1.99, 2.96], 1e-6, "batch");
    Ok(())
}

#[test]
fn quantized_and_half_precision_weights_match_reference() -> TestResult {
    for dtype in [
        DType::F16,
        DType::BF16,
        DType::F64,
        DType::AprQ8,
        DType::AprQ4,
    ] {
        let mut rng = Lcg(23);
        // Dyadic weights / 4: multiples of 1/256 in [-0.5, 0.5), exact in
        // F16, BF16 and F64; rounded to the Q8 / Q4 grid below.
        let mut layers = random_layers(
            &mut rng,
            &[10, 40, 7, 3],
            &[Act::Tanh, Act::Relu, Act::Softmax],
            true,
        );
        for layer in &mut layers {
            if let RefLayer::Linear { w, .. } = layer {
                for v in w.iter_mut() {
                    *v = match dtype {
                        DType::AprQ8 => (*v * 64.0).round() / 64.0,
                        DType::AprQ4 => ((*v / 0.25).round() * 0.25).clamp(-2.0, 1.75),
                        _ => *v,
                    };
                }
            }
        }
        let bytes = write_mlp(&layers, dtype)?;
        let model = Model::from_bytes(&bytes)?;
        let storage = model.weight_storage();
        assert_eq!(
            storage.converted, 3,
            "{dtype:?}: three weight matrices dequantized"
        );
        let mut scratch = model.scratch();
        for _ in 0..10 {
            let x = rng.vec(10);
            let out = model.predict(&x, &mut scratch)?;
            assert_close(
                out.outputs,
                &reference_mlp(&layers, &x),
                1e-5,
                &format!("{dtype:?}"),
            );
        }
    }
    // Linear regression with F16 coefficients.
    let mut writer = AprWriter::new();
    writer.model_type("LinearRegression");
    add_weights(
        &mut writer,
        "coefficients",
        DType::F16,
        &[3],
        &[0.5, -1.25, 2.0],
    )?;
    writer.add_f32("intercept", &[1], &[1.0])?;
    let bytes = build(&writer);
    let model = Model::from_bytes(&bytes)?;
    let mut scratch = model.scratch();
    assert_eq!(
        model.predict(&[2.0, 2.0, 1.0], &mut scratch)?.outputs,
        &[1.0 - 2.5 + 2.0 + 1.0]
    );
    Ok(())
}

#[test]
fn simd_and_scalar_agree_for_every_family() -> TestResult {
    let files = [
        "linear_regression.v2.apr",
        "kmeans.v2.apr",
        "mlp_xor.v2.apr",
        "mlp_multiclass.v2.apr",
    ];
    let mut rng = Lcg(29);
    for name in files {
        let bytes = fixture(name);
        let scalar = Model::from_bytes(&bytes)?.with_kernels(kernels::scalar());
        let simd = Model::from_bytes(&bytes)?;
        assert_eq!(simd.kernels().name, kernels::kernel_name());
        // Scalar against scalar would compare nothing.
        assert!(
            simd.kernels().isa != kernels::Isa::Scalar
                || std::env::var_os("APR_ALLOW_NO_SIMD").is_some(),
            "no SIMD table on this CPU (APR_ALLOW_NO_SIMD=1 runs the test anyway)"
        );
        let (mut s1, mut s2) = (scalar.scratch(), simd.scratch());
        for _ in 0..50 {
            let x: Vec<f32> = rng
                .vec(scalar.n_features())
                .iter()
                .map(|v| v * 4.0)
                .collect();
            let a = scalar.predict(&x, &mut s1)?;
            let b = simd.predict(&x, &mut s2)?;
            assert_eq!(a.class, b.class, "{name}: {x:?}");
            assert_close(b.outputs, &to_f64(a.outputs), 1e-5, name);
        }
    }
    Ok(())
}
