//! aprender's v1 fixtures, converted to v2, reproduce aprender's outputs.

use apr_runtime::format::v1::convert_to_v2;

use crate::support::*;

#[test]
fn linear_regression_v1_fixture_is_bit_exact() -> TestResult {
    let exp = expected("linear_regression.v1.expected.json");
    let bytes = convert_to_v2(&fixture("linear_regression.v1.apr"))?;
    let inputs = rows(&exp["inputs"]);
    let want = f32s(&exp["outputs"]);
    for table in kernels::available() {
        let model = Model::from_bytes(&bytes)?.with_kernels(table);
        assert_eq!(model.family(), ModelFamily::LinearRegression);
        let mut scratch = model.scratch();
        for (x, &y) in inputs.iter().zip(&want) {
            let out = model.predict(x, &mut scratch)?;
            assert_eq!(
                out.outputs[0].to_bits(),
                y.to_bits(),
                "{}: {x:?}",
                table.name
            );
        }
        let batch = model.predict_batch(&inputs.concat(), inputs.len())?;
        let got: Vec<u32> = batch.outputs().iter().map(|v| v.to_bits()).collect();
        let want_bits: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want_bits, "{} batch", table.name);
    }
    Ok(())
}

#[test]
fn logistic_regression_v1_fixture_matches_aprender() -> TestResult {
    let exp = expected("logistic_regression.v1.expected.json");
    let bytes = convert_to_v2(&fixture("logistic_regression.v1.apr"))?;
    let inputs = rows(&exp["inputs"]);
    let want_p = f32s(&exp["outputs_proba_class1"]);
    let want_class = usizes(&exp["outputs_class"]);
    for table in kernels::available() {
        let model = Model::from_bytes(&bytes)?.with_kernels(table);
        assert_eq!(model.family(), ModelFamily::LogisticRegression);
        assert_eq!(model.n_classes(), Some(2));
        let mut scratch = model.scratch();
        for ((x, &p), &c) in inputs.iter().zip(&want_p).zip(&want_class) {
            let out = model.predict(x, &mut scratch)?;
            assert_close(out.outputs, &[p as f64], 1e-5, table.name);
            let probs = out.probabilities.unwrap_or_default();
            assert_close(
                probs,
                &[1.0 - out.outputs[0] as f64, out.outputs[0] as f64],
                1e-7,
                "[1-p, p]",
            );
            assert_eq!(out.class, Some(c), "{}: {x:?}", table.name);
        }
        let batch = model.predict_batch(&inputs.concat(), inputs.len())?;
        assert_close(batch.outputs(), &to_f64(&want_p), 1e-5, table.name);
        assert_eq!(batch.classes(), Some(want_class.as_slice()));
    }
    Ok(())
}

#[test]
fn decision_tree_v1_fixture_matches_aprender() -> TestResult {
    let exp = expected("decision_tree.v1.expected.json");
    let bytes = convert_to_v2(&fixture("decision_tree.v1.apr"))?;
    let inputs = rows(&exp["inputs"]);
    let want = usizes(&exp["outputs_class"]);
    let model = Model::from_bytes(&bytes)?;
    assert_eq!(model.family(), ModelFamily::DecisionTree);
    assert_eq!(model.n_features(), 2);
    let mut scratch = model.scratch();
    for (x, &c) in inputs.iter().zip(&want) {
        let out = model.predict(x, &mut scratch)?;
        assert_eq!(out.class, Some(c), "{x:?}");
        let one_hot: Vec<f32> = (0..model.n_outputs())
            .map(|k| if k == c { 1.0 } else { 0.0 })
            .collect();
        assert_eq!(out.outputs, one_hot.as_slice());
        assert_eq!(out.probabilities, Some(one_hot.as_slice()));
    }
    let batch = model.predict_batch(&inputs.concat(), inputs.len())?;
    assert_eq!(batch.classes(), Some(want.as_slice()));
    Ok(())
}
