//! Attribute values and items, in DynamoDB's shape, plus serde conversion of domain records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::StoreError;

/// One attribute value. Numbers are integers only: money is integer rupiah, times are epoch seconds.
/// The serde form is DynamoDB's JSON (`{"S":"x"}`, `{"N":5}`), which is also how the local store persists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttrValue {
    S(String),
    N(i64),
    #[serde(rename = "BOOL")]
    Bool(bool),
    #[serde(rename = "NULL")]
    Null,
    L(Vec<AttrValue>),
    M(BTreeMap<String, AttrValue>),
}

/// An item: attribute name to value. Always holds the table's key attributes.
pub type Item = BTreeMap<String, AttrValue>;

impl AttrValue {
    /// The string inside an `S`, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::S(s) => Some(s),
            _ => None,
        }
    }

    /// The integer inside an `N`, if it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            AttrValue::N(n) => Some(*n),
            _ => None,
        }
    }

    /// Compares two values of the same scalar type; `None` for mismatched or non-scalar types
    /// (a comparison in a condition is then false, as in DynamoDB).
    pub fn partial_cmp_same_type(&self, other: &AttrValue) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (AttrValue::S(a), AttrValue::S(b)) => Some(a.cmp(b)),
            (AttrValue::N(a), AttrValue::N(b)) => Some(a.cmp(b)),
            (AttrValue::Bool(a), AttrValue::Bool(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::S(s.to_owned())
    }
}
impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::S(s)
    }
}
impl From<&String> for AttrValue {
    fn from(s: &String) -> Self {
        AttrValue::S(s.clone())
    }
}
impl From<i64> for AttrValue {
    fn from(n: i64) -> Self {
        AttrValue::N(n)
    }
}
impl From<bool> for AttrValue {
    fn from(b: bool) -> Self {
        AttrValue::Bool(b)
    }
}

/// Converts a JSON value to an attribute value. Fractional or out-of-range numbers are refused.
pub fn from_json(v: serde_json::Value) -> Result<AttrValue, StoreError> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => AttrValue::Null,
        J::Bool(b) => AttrValue::Bool(b),
        J::Number(n) => {
            AttrValue::N(n.as_i64().ok_or_else(|| {
                StoreError::Invalid(format!("number {n} is not a 64-bit integer"))
            })?)
        }
        J::String(s) => AttrValue::S(s),
        J::Array(a) => AttrValue::L(a.into_iter().map(from_json).collect::<Result<_, _>>()?),
        J::Object(o) => AttrValue::M(
            o.into_iter()
                .map(|(k, v)| Ok((k, from_json(v)?)))
                .collect::<Result<_, StoreError>>()?,
        ),
    })
}

/// Converts an attribute value to plain JSON.
pub fn to_json(v: &AttrValue) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        AttrValue::S(s) => J::String(s.clone()),
        AttrValue::N(n) => J::from(*n),
        AttrValue::Bool(b) => J::Bool(*b),
        AttrValue::Null => J::Null,
        AttrValue::L(l) => J::Array(l.iter().map(to_json).collect()),
        AttrValue::M(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

/// Serialises a record into item attributes (a struct becomes its fields). `None` fields become `NULL`;
/// use `#[serde(skip_serializing_if = "Option::is_none")]` to leave an attribute out (sparse indexes).
pub fn to_item<T: Serialize>(record: &T) -> Result<Item, StoreError> {
    match serde_json::to_value(record).map_err(|e| StoreError::Invalid(e.to_string()))? {
        serde_json::Value::Object(o) => {
            o.into_iter().map(|(k, v)| Ok((k, from_json(v)?))).collect()
        }
        other => Err(StoreError::Invalid(format!(
            "record must be an object, got {other}"
        ))),
    }
}

/// Deserialises a record from item attributes; key attributes and unknown attributes are ignored
/// unless the record declares them.
pub fn from_item<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let obj: serde_json::Map<String, serde_json::Value> =
        item.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
    serde_json::from_value(serde_json::Value::Object(obj))
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Reads a string attribute.
pub fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(AttrValue::as_str)
}

/// Reads a number attribute.
pub fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(AttrValue::as_i64)
}
