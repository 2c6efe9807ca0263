// An async handler with the invocation's context, labels and named features.
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Point {
    x: f32,
    y: f32,
}

#[derive(Serialize)]
struct Cluster {
    cluster: String,
    request_id: String,
}

#[apr_lambda::apr_lambda(
    model = "models/kmeans.v2.apr",
    features = 2,
    labels = ["west", "centre", "east"],
    feature_names = ["x", "y"]
)]
async fn locate(
    point: Point,
    model: &apr_lambda::Model,
    context: &apr_lambda::Context,
) -> Result<Cluster, apr_lambda::Error> {
    assert_eq!(model.feature_names().map(<[String]>::len), Some(2));
    let out = model.predict_one(&[point.x, point.y])?;
    Ok(Cluster {
        cluster: out.label().unwrap_or_default().to_owned(),
        request_id: context.request_id.clone(),
    })
}
