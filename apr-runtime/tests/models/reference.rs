//! Reference computations (in `f64`) and the writer of layer stacks they
//! are compared with.

use crate::support::*;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Act {
    Relu,
    Sigmoid,
    Tanh,
    Gelu,
    Leaky(f32),
    Softmax,
}

impl Act {
    pub(crate) fn name(self) -> String {
        match self {
            Act::Relu => "ReLU".into(),
            Act::Sigmoid => "Sigmoid".into(),
            Act::Tanh => "Tanh".into(),
            Act::Gelu => "GELU".into(),
            Act::Leaky(a) => format!("LeakyReLU({a})"),
            Act::Softmax => "Softmax".into(),
        }
    }

    pub(crate) fn apply(self, v: &mut [f64]) {
        match self {
            Act::Relu => v.iter_mut().for_each(|x| *x = x.max(0.0)),
            Act::Sigmoid => v.iter_mut().for_each(|x| *x = 1.0 / (1.0 + (-*x).exp())),
            Act::Tanh => v.iter_mut().for_each(|x| *x = x.tanh()),
            Act::Gelu => v.iter_mut().for_each(|x| {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                *x = 0.5 * *x * (1.0 + (c * (*x + 0.044715 * x.powi(3))).tanh());
            }),
            Act::Leaky(a) => v
                .iter_mut()
                .for_each(|x| *x = if *x >= 0.0 { *x } else { a as f64 * *x }),
            Act::Softmax => {
                let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                v.iter_mut().for_each(|x| *x = (*x - m).exp());
                let s: f64 = v.iter().sum();
                v.iter_mut().for_each(|x| *x /= s);
            }
        }
    }
}

pub(crate) fn affine(w: &[f32], b: Option<&[f32]>, x: &[f64], n_out: usize) -> Vec<f64> {
    let n_in = x.len();
    (0..n_out)
        .map(|o| {
            let dot: f64 = (0..n_in).map(|i| w[o * n_in + i] as f64 * x[i]).sum();
            dot + b.map_or(0.0, |b| b[o] as f64)
        })
        .collect()
}

pub(crate) enum RefLayer {
    Linear {
        w: Vec<f32>,
        b: Option<Vec<f32>>,
        n_in: usize,
        n_out: usize,
    },
    Act(Act),
}

pub(crate) fn reference_mlp(layers: &[RefLayer], x: &[f32]) -> Vec<f64> {
    let mut v = to_f64(x);
    for layer in layers {
        match layer {
            RefLayer::Linear { w, b, n_out, .. } => v = affine(w, b.as_deref(), &v, *n_out),
            RefLayer::Act(a) => a.apply(&mut v),
        }
    }
    v
}

/// Writes `layers` as a NeuralSequential file, weights in `dtype`.
pub(crate) fn write_mlp(
    layers: &[RefLayer],
    dtype: DType,
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut writer = AprWriter::new();
    writer.model_type("NeuralSequential");
    let mut names = Vec::new();
    let mut param = 0;
    for layer in layers {
        match layer {
            RefLayer::Linear { w, b, n_in, n_out } => {
                names.push(format!("Linear({n_in}->{n_out})"));
                add_weights(&mut writer, &param.to_string(), dtype, &[*n_out, *n_in], w)?;
                param += 1;
                if let Some(b) = b {
                    writer.add_f32(&param.to_string(), &[*n_out], b)?;
                    param += 1;
                }
            }
            RefLayer::Act(a) => names.push(a.name()),
        }
    }
    writer.metadata("layers", json!(names));
    Ok(build(&writer))
}

/// Adds `values` as `dtype`, encoded here (independently of the reader).
pub(crate) fn add_weights(
    writer: &mut AprWriter,
    name: &str,
    dtype: DType,
    shape: &[usize],
    values: &[f32],
) -> Result<(), Box<dyn std::error::Error>> {
    let bytes: Vec<u8> = match dtype {
        DType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::F16 => values
            .iter()
            .flat_map(|&v| f32_to_f16(v).to_le_bytes())
            .collect(),
        DType::BF16 => values
            .iter()
            .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
            .collect(),
        DType::F64 => values
            .iter()
            .flat_map(|&v| (v as f64).to_le_bytes())
            .collect(),
        DType::AprQ8 => {
            let scale = 1.0f32 / 64.0;
            let mut b = scale.to_le_bytes().to_vec();
            b.extend(values.iter().map(|&v| ((v / scale).round() as i8) as u8));
            b
        }
        DType::AprQ4 => {
            // One scale of 0.25 (exact in f16) per block; values must be
            // multiples of 0.25 in [-2, 1.75].
            let mut b = Vec::new();
            for block in values.chunks(32) {
                b.extend(f32_to_f16(0.25).to_le_bytes());
                let mut nibbles = [0u8; 16];
                for (k, &v) in block.iter().enumerate() {
                    let q = ((v / 0.25).round() as i32 + 8).clamp(0, 15) as u8;
                    nibbles[k / 2] |= if k & 1 == 0 { q } else { q << 4 };
                }
                b.extend(nibbles);
            }
            b
        }
        other => panic!("no test encoder for {other:?}"),
    };
    writer.add_tensor(name, dtype, shape, bytes)?;
    Ok(())
}
