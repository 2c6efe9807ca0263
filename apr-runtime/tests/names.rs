//! Class labels and feature names: from metadata or given, validated once,
//! carried by every answer, and kept by `convert`.

use apr_runtime::format::AprWriter;
use apr_runtime::model::{Model, ModelError, NamesOrigin, Prediction};
use serde_json::json;

/// A 2-feature, 3-class multinomial logistic regression.
fn classifier() -> AprWriter {
    let mut writer = AprWriter::new();
    writer.model_type("LogisticRegression");
    writer
        .add_f32("weight", &[3, 2], &[2.0, 0.0, 0.0, 2.0, -2.0, -2.0])
        .expect("a valid weight");
    writer
}

fn load(writer: &AprWriter) -> Result<Model<'static>, ModelError> {
    let bytes: &'static [u8] = Vec::leak(writer.to_bytes());
    Model::from_bytes(bytes)
}

#[test]
fn metadata_labels_name_every_answer() {
    let mut writer = classifier();
    writer.labels(&["east", "north", "south-west"]);
    writer.feature_names(&["x", "y"]);
    let model = load(&writer).expect("a labelled model");
    assert_eq!(model.labels().map(<[String]>::len), Some(3));
    assert_eq!(model.feature_index("y"), Some(1));
    assert_eq!(model.feature_index("z"), None);

    let out = model.predict_one(&[0.1, 3.0]).expect("a row");
    assert_eq!((out.class(), out.label()), (Some(1), Some("north")));
    assert_eq!(out.prediction(), Prediction::Class(1));
    let mut scratch = model.scratch();
    assert_eq!(
        model.predict(&[-5.0, -5.0], &mut scratch).map(|o| o.label),
        Ok(Some("south-west"))
    );

    let batch = model
        .predict_batch(&[3.0, 0.0, 0.0, 3.0, -4.0, -4.0], 3)
        .expect("a batch");
    let labels: Vec<Option<&str>> = batch.rows().map(|r| r.label()).collect();
    assert_eq!(labels, [Some("east"), Some("north"), Some("south-west")]);
}

#[test]
fn given_names_replace_the_metadata() {
    let mut writer = classifier();
    writer.labels(&["a", "b", "c"]);
    let model = load(&writer)
        .and_then(|m| m.with_labels(["one", "two", "three"]))
        .expect("relabelled");
    assert_eq!(model.label(2), Some("three"));
    assert_eq!(model.label(3), None);
}

#[test]
fn integer_labels_are_kept_as_text() {
    let mut writer = classifier();
    writer.metadata("labels", json!([10, 20, 30]));
    let model = load(&writer).expect("integer labels");
    assert_eq!(
        model.labels(),
        Some(&["10".to_owned(), "20".to_owned(), "30".to_owned()][..])
    );
}

#[test]
fn names_that_do_not_fit_the_model_are_refused_at_load() {
    let mut writer = classifier();
    writer.labels(&["a", "b"]);
    match load(&writer) {
        Err(
            e @ ModelError::LabelCount {
                origin: NamesOrigin::Metadata,
                found: 2,
                classes: Some(3),
                ..
            },
        ) => assert_eq!(
            e.to_string(),
            "the model's metadata has 2 labels, but this LogisticRegression model has 3 classes"
        ),
        other => panic!("{other:?}"),
    }
    let mut writer = classifier();
    writer.feature_names(&["x", "x"]);
    assert!(
        matches!(load(&writer), Err(ModelError::DuplicateFeatureName { name, .. }) if name == "x")
    );
    let mut writer = classifier();
    writer.feature_names(&["x"]);
    assert!(matches!(
        load(&writer),
        Err(ModelError::FeatureNameCount {
            found: 1,
            expected: 2,
            ..
        })
    ));
    let mut writer = classifier();
    writer.metadata("labels", json!("abc"));
    assert!(
        matches!(load(&writer), Err(ModelError::InvalidMetadata { key, .. }) if key == "labels")
    );
    writer.metadata("labels", json!(["a", null, "c"]));
    let err = load(&writer)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("item 1 is null"), "{err}");

    // Labels on a model that predicts no class.
    let mut regression = AprWriter::new();
    regression.model_type("LinearRegression");
    regression
        .add_f32("weight", &[1, 2], &[1.0, 1.0])
        .expect("a weight");
    let model = load(&regression).expect("a regression");
    match model.with_labels(["a"]) {
        Err(e @ ModelError::LabelCount { classes: None, .. }) => assert!(
            e.to_string()
                .contains("predicts no class (1 output per row)"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
}

#[cfg(feature = "v1")]
#[test]
fn convert_keeps_labels_and_feature_names() {
    let mut writer = classifier();
    writer.labels(&["a", "b", "c"]).feature_names(&["x", "y"]);
    let converted = apr_runtime::format::v1::convert_to_v2(&writer.to_bytes()).expect("converts");
    let converted: &'static [u8] = Vec::leak(converted);
    let model = Model::from_bytes(converted).expect("loads");
    assert_eq!(model.label(0), Some("a"));
    assert_eq!(model.feature_names().map(<[String]>::len), Some(2));
}

#[test]
fn class_names_are_read_as_labels_when_there_are_no_labels() {
    let mut writer = classifier();
    writer.metadata("class_names", json!(["a", "b", "c"]));
    assert_eq!(load(&writer).expect("labelled").label(1), Some("b"));
    writer.labels(&["x", "y", "z"]);
    assert_eq!(load(&writer).expect("labelled").label(1), Some("y"));
}

#[test]
fn class_names_that_do_not_fit_are_ignored_and_metadata_can_be_skipped() {
    use apr_runtime::format::AprFile;
    use apr_runtime::model::LoadOptions;
    // `class_names` is not this format's key: a list that does not fit
    // (here 2 names for 3 classes) is ignored rather than refused.
    let mut writer = classifier();
    writer.metadata("class_names", json!(["a", "b"]));
    assert_eq!(load(&writer).expect("loads").labels(), None);
    // A caller giving its own names skips the metadata's, even broken ones.
    let mut writer = classifier();
    writer.labels(&["a"]).feature_names(&["x", "x"]);
    assert!(load(&writer).is_err());
    let bytes: &'static [u8] = Vec::leak(writer.to_bytes());
    let skip = LoadOptions {
        labels_from_metadata: false,
        feature_names_from_metadata: false,
        ..LoadOptions::default()
    };
    let model = Model::from_file_with(&AprFile::parse(bytes).expect("parses"), skip)
        .and_then(|m| m.with_labels(["p", "q", "r"]))
        .expect("the given names win");
    assert_eq!(model.label(2), Some("r"));
    assert_eq!(model.feature_names(), None);
}
