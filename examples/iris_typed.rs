//! Your own handler: an Iris classifier behind an API of your own, with
//! named fields in and a species name out.
//!
//! ```sh
//! cargo run --example iris_typed -- \
//!   '{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}'
//! # {"species":"setosa","confidence":0.9999949,"rule":"model","request_id":"local-1"}
//! ```
//!
//! The attribute goes on the handler instead of `main`: the macro checks and
//! embeds the model exactly as it does for `main`, then generates a `main`
//! that serves this function, on Lambda (one invocation at a time or many,
//! under Managed Instances), through a Function URL (the HTTP body is the
//! request, the answer is the HTTP body) and in local mode as above.

use apr_lambda::{Context, Error, Model};
use serde::{Deserialize, Serialize};

/// The request, as the callers of the existing API send it.
#[derive(Deserialize)]
struct Flower {
    sepal_length: f32,
    sepal_width: f32,
    petal_length: f32,
    petal_width: f32,
}

/// The answer they expect.
#[derive(Serialize)]
struct Answer {
    species: String,
    confidence: f32,
    /// What decided: the model, or the business rule below.
    rule: &'static str,
    request_id: String,
}

// `labels` name the model's three classes: `Output::label` returns them,
// and the default protocol would answer `"label"` beside `"prediction"`.
// A count that does not match the model is a compile error.
#[apr_lambda::apr_lambda(
    model = "models/model.apr",
    features = 4,
    labels = ["setosa", "versicolor", "virginica"]
)]
async fn classify(flower: Flower, model: &Model, context: &Context) -> Result<Answer, Error> {
    // A business rule around the model: no iris has petals this long.
    if flower.petal_length > 30.0 {
        return Err(Error::new(
            "ImplausibleFlower",
            format!("a petal of {} cm is not an iris", flower.petal_length),
        )
        .with_status(422));
    }
    let out = model.predict_one(&[
        flower.sepal_length,
        flower.sepal_width,
        flower.petal_length,
        flower.petal_width,
    ])?;
    let class = out.class().unwrap_or(0);
    Ok(Answer {
        species: out.label().unwrap_or("unknown").to_owned(),
        confidence: out.probabilities().map_or(1.0, |p| p[class]),
        rule: "model",
        request_id: context.request_id.clone(),
    })
}
