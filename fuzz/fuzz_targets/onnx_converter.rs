//! Fuzzes the ONNX converter: `onnx::convert` on any bytes must return an
//! error or a model that loads; a model it returns must then answer a row
//! of zeros and a row of NaN (an error or an answer, never a panic).
#![no_main]

use apr_runtime::model::Model;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(converted) = apr_runtime::onnx::convert(data) {
        let model = Model::from_bytes(&converted.bytes).expect("a converted model loads");
        let n = model.n_features();
        if n <= 4096 {
            let _ = model.predict_one(&vec![0.0; n]);
            let _ = model.predict_one(&vec![f32::NAN; n]);
            let _ = model.predict_batch(&vec![1.0; 3 * n], 3);
        }
    }
});
