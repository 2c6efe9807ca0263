//! Trains the embedded default model, `models/model.apr`: a small MLP
//! classifier (4 → 16 ReLU → 3 Softmax) on Fisher's Iris measurements,
//! written with the runtime's own [`AprWriter`] as a `NeuralSequential`
//! model.
//!
//! ```text
//! cargo run --example train_default_model            # writes models/model.apr
//! cargo run --example train_default_model -- OUT.apr # writes OUT.apr
//! ```
//!
//! Deterministic: a fixed seed (SplitMix64) for the initial weights and the
//! mini-batch order, full f64 arithmetic, Adam. Inputs are standardised while
//! training and the standardisation is folded into the first layer before
//! saving, so the model takes raw centimetres. After writing, the file is
//! read back with `Model::from_bytes` and every training row is checked to
//! predict as the trainer's own forward pass does.

use std::path::PathBuf;

use apr_runtime::format::AprWriter;
use apr_runtime::model::Model;
use serde_json::json;

const SEED: u64 = 0x1A15_2026;
const HIDDEN: usize = 16;
const N_FEATURES: usize = 4;
const N_CLASSES: usize = 3;
const EPOCHS: usize = 200;
const BATCH: usize = 16;
const LEARNING_RATE: f64 = 0.01;
const CLASS_NAMES: [&str; N_CLASSES] = ["setosa", "versicolor", "virginica"];
const FEATURE_NAMES: [&str; N_FEATURES] = [
    "sepal_length_cm",
    "sepal_width_cm",
    "petal_length_cm",
    "petal_width_cm",
];

/// The 150 rows of Fisher's Iris data (UCI `iris.data`): sepal length, sepal
/// width, petal length, petal width (cm), and the class index
/// (0 setosa, 1 versicolor, 2 virginica).
#[rustfmt::skip]
const IRIS: [([f32; 4], usize); 150] = [
    ([5.1, 3.5, 1.4, 0.2], 0),
    ([4.9, 3.0, 1.4, 0.2], 0),
    ([4.7, 3.2, 1.3, 0.2], 0),
    ([4.6, 3.1, 1.5, 0.2], 0),
    ([5.0, 3.6, 1.4, 0.2], 0),
    ([5.4, 3.9, 1.7, 0.4], 0),
    ([4.6, 3.4, 1.4, 0.3], 0),
    ([5.0, 3.4, 1.5, 0.2], 0),
    ([4.4, 2.9, 1.4, 0.2], 0),
    ([4.9, 3.1, 1.5, 0.1], 0),
    ([5.4, 3.7, 1.5, 0.2], 0),
    ([4.8, 3.4, 1.6, 0.2], 0),
    ([4.8, 3.0, 1.4, 0.1], 0),
    ([4.3, 3.0, 1.1, 0.1], 0),
    ([5.8, 4.0, 1.2, 0.2], 0),
    ([5.7, 4.4, 1.5, 0.4], 0),
    ([5.4, 3.9, 1.3, 0.4], 0),
    ([5.1, 3.5, 1.4, 0.3], 0),
    ([5.7, 3.8, 1.7, 0.3], 0),
    ([5.1, 3.8, 1.5, 0.3], 0),
    ([5.4, 3.4, 1.7, 0.2], 0),
    ([5.1, 3.7, 1.5, 0.4], 0),
    ([4.6, 3.6, 1.0, 0.2], 0),
    ([5.1, 3.3, 1.7, 0.5], 0),
    ([4.8, 3.4, 1.9, 0.2], 0),
    ([5.0, 3.0, 1.6, 0.2], 0),
    ([5.0, 3.4, 1.6, 0.4], 0),
    ([5.2, 3.5, 1.5, 0.2], 0),
    ([5.2, 3.4, 1.4, 0.2], 0),
    ([4.7, 3.2, 1.6, 0.2], 0),
    ([4.8, 3.1, 1.6, 0.2], 0),
    ([5.4, 3.4, 1.5, 0.4], 0),
    ([5.2, 4.1, 1.5, 0.1], 0),
    ([5.5, 4.2, 1.4, 0.2], 0),
    ([4.9, 3.1, 1.5, 0.1], 0),
    ([5.0, 3.2, 1.2, 0.2], 0),
    ([5.5, 3.5, 1.3, 0.2], 0),
    ([4.9, 3.1, 1.5, 0.1], 0),
    ([4.4, 3.0, 1.3, 0.2], 0),
    ([5.1, 3.4, 1.5, 0.2], 0),
    ([5.0, 3.5, 1.3, 0.3], 0),
    ([4.5, 2.3, 1.3, 0.3], 0),
    ([4.4, 3.2, 1.3, 0.2], 0),
    ([5.0, 3.5, 1.6, 0.6], 0),
    ([5.1, 3.8, 1.9, 0.4], 0),
    ([4.8, 3.0, 1.4, 0.3], 0),
    ([5.1, 3.8, 1.6, 0.2], 0),
    ([4.6, 3.2, 1.4, 0.2], 0),
    ([5.3, 3.7, 1.5, 0.2], 0),
    ([5.0, 3.3, 1.4, 0.2], 0),
    ([7.0, 3.2, 4.7, 1.4], 1),
    ([6.4, 3.2, 4.5, 1.5], 1),
    ([6.9, 3.1, 4.9, 1.5], 1),
    ([5.5, 2.3, 4.0, 1.3], 1),
    ([6.5, 2.8, 4.6, 1.5], 1),
    ([5.7, 2.8, 4.5, 1.3], 1),
    ([6.3, 3.3, 4.7, 1.6], 1),
    ([4.9, 2.4, 3.3, 1.0], 1),
    ([6.6, 2.9, 4.6, 1.3], 1),
    ([5.2, 2.7, 3.9, 1.4], 1),
    ([5.0, 2.0, 3.5, 1.0], 1),
    ([5.9, 3.0, 4.2, 1.5], 1),
    ([6.0, 2.2, 4.0, 1.0], 1),
    ([6.1, 2.9, 4.7, 1.4], 1),
    ([5.6, 2.9, 3.6, 1.3], 1),
    ([6.7, 3.1, 4.4, 1.4], 1),
    ([5.6, 3.0, 4.5, 1.5], 1),
    ([5.8, 2.7, 4.1, 1.0], 1),
    ([6.2, 2.2, 4.5, 1.5], 1),
    ([5.6, 2.5, 3.9, 1.1], 1),
    ([5.9, 3.2, 4.8, 1.8], 1),
    ([6.1, 2.8, 4.0, 1.3], 1),
    ([6.3, 2.5, 4.9, 1.5], 1),
    ([6.1, 2.8, 4.7, 1.2], 1),
    ([6.4, 2.9, 4.3, 1.3], 1),
    ([6.6, 3.0, 4.4, 1.4], 1),
    ([6.8, 2.8, 4.8, 1.4], 1),
    ([6.7, 3.0, 5.0, 1.7], 1),
    ([6.0, 2.9, 4.5, 1.5], 1),
    ([5.7, 2.6, 3.5, 1.0], 1),
    ([5.5, 2.4, 3.8, 1.1], 1),
    ([5.5, 2.4, 3.7, 1.0], 1),
    ([5.8, 2.7, 3.9, 1.2], 1),
    ([6.0, 2.7, 5.1, 1.6], 1),
    ([5.4, 3.0, 4.5, 1.5], 1),
    ([6.0, 3.4, 4.5, 1.6], 1),
    ([6.7, 3.1, 4.7, 1.5], 1),
    ([6.3, 2.3, 4.4, 1.3], 1),
    ([5.6, 3.0, 4.1, 1.3], 1),
    ([5.5, 2.5, 4.0, 1.3], 1),
    ([5.5, 2.6, 4.4, 1.2], 1),
    ([6.1, 3.0, 4.6, 1.4], 1),
    ([5.8, 2.6, 4.0, 1.2], 1),
    ([5.0, 2.3, 3.3, 1.0], 1),
    ([5.6, 2.7, 4.2, 1.3], 1),
    ([5.7, 3.0, 4.2, 1.2], 1),
    ([5.7, 2.9, 4.2, 1.3], 1),
    ([6.2, 2.9, 4.3, 1.3], 1),
    ([5.1, 2.5, 3.0, 1.1], 1),
    ([5.7, 2.8, 4.1, 1.3], 1),
    ([6.3, 3.3, 6.0, 2.5], 2),
    ([5.8, 2.7, 5.1, 1.9], 2),
    ([7.1, 3.0, 5.9, 2.1], 2),
    ([6.3, 2.9, 5.6, 1.8], 2),
    ([6.5, 3.0, 5.8, 2.2], 2),
    ([7.6, 3.0, 6.6, 2.1], 2),
    ([4.9, 2.5, 4.5, 1.7], 2),
    ([7.3, 2.9, 6.3, 1.8], 2),
    ([6.7, 2.5, 5.8, 1.8], 2),
    ([7.2, 3.6, 6.1, 2.5], 2),
    ([6.5, 3.2, 5.1, 2.0], 2),
    ([6.4, 2.7, 5.3, 1.9], 2),
    ([6.8, 3.0, 5.5, 2.1], 2),
    ([5.7, 2.5, 5.0, 2.0], 2),
    ([5.8, 2.8, 5.1, 2.4], 2),
    ([6.4, 3.2, 5.3, 2.3], 2),
    ([6.5, 3.0, 5.5, 1.8], 2),
    ([7.7, 3.8, 6.7, 2.2], 2),
    ([7.7, 2.6, 6.9, 2.3], 2),
    ([6.0, 2.2, 5.0, 1.5], 2),
    ([6.9, 3.2, 5.7, 2.3], 2),
    ([5.6, 2.8, 4.9, 2.0], 2),
    ([7.7, 2.8, 6.7, 2.0], 2),
    ([6.3, 2.7, 4.9, 1.8], 2),
    ([6.7, 3.3, 5.7, 2.1], 2),
    ([7.2, 3.2, 6.0, 1.8], 2),
    ([6.2, 2.8, 4.8, 1.8], 2),
    ([6.1, 3.0, 4.9, 1.8], 2),
    ([6.4, 2.8, 5.6, 2.1], 2),
    ([7.2, 3.0, 5.8, 1.6], 2),
    ([7.4, 2.8, 6.1, 1.9], 2),
    ([7.9, 3.8, 6.4, 2.0], 2),
    ([6.4, 2.8, 5.6, 2.2], 2),
    ([6.3, 2.8, 5.1, 1.5], 2),
    ([6.1, 2.6, 5.6, 1.4], 2),
    ([7.7, 3.0, 6.1, 2.3], 2),
    ([6.3, 3.4, 5.6, 2.4], 2),
    ([6.4, 3.1, 5.5, 1.8], 2),
    ([6.0, 3.0, 4.8, 1.8], 2),
    ([6.9, 3.1, 5.4, 2.1], 2),
    ([6.7, 3.1, 5.6, 2.4], 2),
    ([6.9, 3.1, 5.1, 2.3], 2),
    ([5.8, 2.7, 5.1, 1.9], 2),
    ([6.8, 3.2, 5.9, 2.3], 2),
    ([6.7, 3.3, 5.7, 2.5], 2),
    ([6.7, 3.0, 5.2, 2.3], 2),
    ([6.3, 2.5, 5.0, 1.9], 2),
    ([6.5, 3.0, 5.2, 2.0], 2),
    ([6.2, 3.4, 5.4, 2.3], 2),
    ([5.9, 3.0, 5.1, 1.8], 2),
];

/// SplitMix64: a small, fixed, dependency-free generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Fisher–Yates shuffle.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// The network's parameters: `w1` is `HIDDEN × N_FEATURES` and `w2` is
/// `N_CLASSES × HIDDEN`, row-major (`[out, in]`, as the file stores them).
#[derive(Clone)]
struct Mlp {
    w1: Vec<f64>,
    b1: Vec<f64>,
    w2: Vec<f64>,
    b2: Vec<f64>,
}

impl Mlp {
    fn new(rng: &mut SplitMix64) -> Self {
        // He initialisation for the ReLU layer, Glorot-like for the output.
        let he = (2.0 / N_FEATURES as f64).sqrt();
        let glorot = (2.0 / (HIDDEN + N_CLASSES) as f64).sqrt();
        Mlp {
            w1: (0..HIDDEN * N_FEATURES)
                .map(|_| rng.normal() * he)
                .collect(),
            b1: vec![0.0; HIDDEN],
            w2: (0..N_CLASSES * HIDDEN)
                .map(|_| rng.normal() * glorot)
                .collect(),
            b2: vec![0.0; N_CLASSES],
        }
    }

    fn zeros() -> Self {
        Mlp {
            w1: vec![0.0; HIDDEN * N_FEATURES],
            b1: vec![0.0; HIDDEN],
            w2: vec![0.0; N_CLASSES * HIDDEN],
            b2: vec![0.0; N_CLASSES],
        }
    }

    fn params_mut(&mut self) -> [&mut Vec<f64>; 4] {
        [&mut self.w1, &mut self.b1, &mut self.w2, &mut self.b2]
    }

    /// Hidden activations (after ReLU) and class probabilities.
    fn forward(&self, x: &[f64; N_FEATURES]) -> ([f64; HIDDEN], [f64; N_CLASSES]) {
        let mut hidden = [0.0; HIDDEN];
        for (j, h) in hidden.iter_mut().enumerate() {
            let row = &self.w1[j * N_FEATURES..(j + 1) * N_FEATURES];
            let z: f64 = row.iter().zip(x).map(|(w, x)| w * x).sum::<f64>() + self.b1[j];
            *h = z.max(0.0);
        }
        let mut logits = [0.0; N_CLASSES];
        for (k, logit) in logits.iter_mut().enumerate() {
            let row = &self.w2[k * HIDDEN..(k + 1) * HIDDEN];
            *logit = row.iter().zip(&hidden).map(|(w, h)| w * h).sum::<f64>() + self.b2[k];
        }
        (hidden, softmax(logits))
    }

    /// Adds the cross-entropy gradient of one row to `grad`; returns the loss.
    fn backward(&self, x: &[f64; N_FEATURES], class: usize, grad: &mut Mlp) -> f64 {
        let (hidden, probs) = self.forward(x);
        let mut d_logits = probs;
        d_logits[class] -= 1.0;
        let mut d_hidden = [0.0; HIDDEN];
        for (k, d) in d_logits.iter().enumerate() {
            grad.b2[k] += d;
            for j in 0..HIDDEN {
                grad.w2[k * HIDDEN + j] += d * hidden[j];
                d_hidden[j] += d * self.w2[k * HIDDEN + j];
            }
        }
        for j in 0..HIDDEN {
            if hidden[j] <= 0.0 {
                continue;
            }
            grad.b1[j] += d_hidden[j];
            let row = &mut grad.w1[j * N_FEATURES..(j + 1) * N_FEATURES];
            for (g, xi) in row.iter_mut().zip(x) {
                *g += d_hidden[j] * xi;
            }
        }
        -probs[class].max(1e-12).ln()
    }

    fn predict(&self, x: &[f64; N_FEATURES]) -> usize {
        argmax(&self.forward(x).1)
    }
}

fn softmax<const N: usize>(logits: [f64; N]) -> [f64; N] {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut out = logits.map(|z| (z - max).exp());
    let sum: f64 = out.iter().sum();
    for p in &mut out {
        *p /= sum;
    }
    out
}

fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// Adam (Kingma & Ba), one moment pair per parameter.
struct Adam {
    m: Mlp,
    v: Mlp,
    t: i32,
}

impl Adam {
    const BETA1: f64 = 0.9;
    const BETA2: f64 = 0.999;
    const EPSILON: f64 = 1e-8;

    fn step(&mut self, model: &mut Mlp, grad: &mut Mlp, scale: f64) {
        self.t += 1;
        let c1 = 1.0 - Self::BETA1.powi(self.t);
        let c2 = 1.0 - Self::BETA2.powi(self.t);
        let params = model.params_mut();
        let grads = grad.params_mut();
        let ms = self.m.params_mut();
        let vs = self.v.params_mut();
        for (((p, g), m), v) in params.into_iter().zip(grads).zip(ms).zip(vs) {
            for i in 0..p.len() {
                let g = g[i] * scale;
                m[i] = Self::BETA1 * m[i] + (1.0 - Self::BETA1) * g;
                v[i] = Self::BETA2 * v[i] + (1.0 - Self::BETA2) * g * g;
                p[i] -= LEARNING_RATE * (m[i] / c1) / ((v[i] / c2).sqrt() + Self::EPSILON);
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/model.apr"),
        PathBuf::from,
    );

    // Standardise each feature (mean 0, standard deviation 1) for training.
    let n = IRIS.len() as f64;
    let mut mean = [0.0f64; N_FEATURES];
    let mut std = [0.0f64; N_FEATURES];
    for (x, _) in &IRIS {
        for i in 0..N_FEATURES {
            mean[i] += f64::from(x[i]) / n;
        }
    }
    for (x, _) in &IRIS {
        for i in 0..N_FEATURES {
            std[i] += (f64::from(x[i]) - mean[i]).powi(2) / n;
        }
    }
    let std = std.map(f64::sqrt);
    let rows: Vec<([f64; N_FEATURES], usize)> = IRIS
        .iter()
        .map(|(x, c)| {
            let mut z = [0.0; N_FEATURES];
            for i in 0..N_FEATURES {
                z[i] = (f64::from(x[i]) - mean[i]) / std[i];
            }
            (z, *c)
        })
        .collect();

    let mut rng = SplitMix64(SEED);
    let mut model = Mlp::new(&mut rng);
    let mut adam = Adam {
        m: Mlp::zeros(),
        v: Mlp::zeros(),
        t: 0,
    };
    // Every fifth row (10 per class) is held out to measure accuracy on rows
    // the network never saw; the other 120 train it.
    let is_held_out = |i: usize| i % 5 == 4;
    let mut order: Vec<usize> = (0..rows.len()).filter(|i| !is_held_out(*i)).collect();
    let n_train = order.len() as f64;
    let mut loss = 0.0;
    for _ in 0..EPOCHS {
        rng.shuffle(&mut order);
        loss = 0.0;
        for batch in order.chunks(BATCH) {
            let mut grad = Mlp::zeros();
            for &i in batch {
                let (x, class) = &rows[i];
                loss += model.backward(x, *class, &mut grad);
            }
            adam.step(&mut model, &mut grad, 1.0 / batch.len() as f64);
        }
        loss /= n_train;
    }
    let (mut train_correct, mut test_correct, mut n_test) = (0usize, 0usize, 0usize);
    for (i, (x, c)) in rows.iter().enumerate() {
        let right = usize::from(model.predict(x) == *c);
        if is_held_out(i) {
            n_test += 1;
            test_correct += right;
        } else {
            train_correct += right;
        }
    }
    let n_train_rows = rows.len() - n_test;
    let accuracy = train_correct as f64 / n_train_rows as f64;
    let held_out_accuracy = test_correct as f64 / n_test as f64;
    println!(
        "trained {EPOCHS} epochs: mean cross-entropy {loss:.4}, training accuracy {train_correct}/{n_train_rows} = {accuracy:.4}, held-out accuracy {test_correct}/{n_test} = {held_out_accuracy:.4}"
    );

    // Fold the standardisation into layer 1: w·((x − μ)/σ) + b
    // = (w/σ)·x + (b − Σ w μ/σ).
    let mut w1 = vec![0f32; HIDDEN * N_FEATURES];
    let mut b1 = vec![0f32; HIDDEN];
    for j in 0..HIDDEN {
        let mut bias = model.b1[j];
        for i in 0..N_FEATURES {
            let w = model.w1[j * N_FEATURES + i] / std[i];
            w1[j * N_FEATURES + i] = w as f32;
            bias -= w * mean[i];
        }
        b1[j] = bias as f32;
    }
    let w2: Vec<f32> = model.w2.iter().map(|w| *w as f32).collect();
    let b2: Vec<f32> = model.b2.iter().map(|b| *b as f32).collect();

    let mut writer = AprWriter::new();
    writer
        .model_type("NeuralSequential")
        .metadata("name", json!("iris-mlp"))
        .metadata(
            "description",
            json!("MLP classifier (4 -> 16 ReLU -> 3 Softmax) trained on Fisher's Iris data; input: sepal length, sepal width, petal length, petal width in cm; output: probabilities of setosa, versicolor, virginica"),
        )
        .metadata(
            "layers",
            json!([
                format!("Linear({N_FEATURES}->{HIDDEN})"),
                "ReLU",
                format!("Linear({HIDDEN}->{N_CLASSES})"),
                "Softmax"
            ]),
        )
        .metadata("architecture", json!("mlp"))
        .metadata("n_features", json!(N_FEATURES))
        .metadata("n_outputs", json!(N_CLASSES))
        .metadata("feature_names", json!(FEATURE_NAMES))
        .metadata("class_names", json!(CLASS_NAMES))
        .metadata("training_accuracy", json!(accuracy))
        .metadata("held_out_accuracy", json!(held_out_accuracy))
        .metadata("training_loss", json!(loss))
        .metadata(
            "training",
            json!({
                "program": "models/train_default_model.rs",
                "data": "Fisher's Iris data (UCI iris.data): 120 rows train, every fifth row (30) held out",
                "optimizer": "Adam",
                "learning_rate": LEARNING_RATE,
                "epochs": EPOCHS,
                "batch_size": BATCH,
                "seed": SEED,
                "input_standardisation": "folded into layer 0",
            }),
        )
        .metadata("data_source", json!("Fisher (1936), Iris data set, UCI Machine Learning Repository"))
        .metadata("data_license", json!("CC BY 4.0"))
        .metadata("license", json!("MIT OR Apache-2.0"));
    writer.add_f32("0", &[HIDDEN, N_FEATURES], &w1)?;
    writer.add_f32("1", &[HIDDEN], &b1)?;
    writer.add_f32("2", &[N_CLASSES, HIDDEN], &w2)?;
    writer.add_f32("3", &[N_CLASSES], &b2)?;
    let bytes = writer.to_bytes();

    // Read it back with the runtime and check every row against the trainer.
    let served = Model::from_bytes(&bytes)?;
    let mut scratch = served.scratch();
    for ((row, _), (x, _)) in IRIS.iter().zip(&rows) {
        let output = served.predict(row, &mut scratch)?;
        let want = model.predict(x);
        if output.class != Some(want) {
            return Err(format!(
                "the saved model predicts {:?} for {row:?}, the trainer {want}",
                output.class
            )
            .into());
        }
    }
    std::fs::write(&out, &bytes)?;
    println!("wrote {} ({} bytes)", out.display(), bytes.len());
    Ok(())
}
