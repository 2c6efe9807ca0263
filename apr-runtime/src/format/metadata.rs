//! [`Metadata`]: the JSON object after the header.

use serde_json::{Map, Value};

/// The container's JSON metadata: one object, every key kept (known or not).
///
/// Duplicate keys in the file resolve to the last one.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct Metadata(Map<String, Value>);

impl Metadata {
    /// Wraps a JSON object.
    pub fn new(map: Map<String, Value>) -> Self {
        Metadata(map)
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// The whole object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The `model_type` string; `None` when absent, not a string, or empty.
    pub fn model_type(&self) -> Option<&str> {
        self.0
            .get(super::schema::MODEL_TYPE)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the object has no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Map<String, Value>> for Metadata {
    fn from(map: Map<String, Value>) -> Self {
        Metadata(map)
    }
}

/// The JSON type name of `value`, for error messages.
pub(crate) fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_type_is_none_when_empty_or_absent() {
        let mut map = Map::new();
        assert_eq!(Metadata::new(map.clone()).model_type(), None);
        map.insert("model_type".into(), Value::from(""));
        assert_eq!(Metadata::new(map.clone()).model_type(), None);
        map.insert("model_type".into(), Value::from("KMeans"));
        assert_eq!(Metadata::new(map).model_type(), Some("KMeans"));
    }

    #[test]
    fn duplicate_keys_keep_the_last() {
        let map: Map<String, Value> =
            serde_json::from_str(r#"{"a":1,"b":2,"a":3}"#).unwrap_or_default();
        assert_eq!(Metadata::new(map).get("a"), Some(&Value::from(3)));
    }
}
