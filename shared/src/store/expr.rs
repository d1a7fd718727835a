//! Typed conditions and update actions: the only expressions the port accepts, so both adapters
//! can evaluate or render them identically.

use super::value::{AttrValue, Item};

/// Comparison operators for [`Cond::Cmp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A condition on the current item (top-level attributes only). A missing item has no attributes.
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    /// `attribute_exists(name)`
    Exists(String),
    /// `attribute_not_exists(name)`
    NotExists(String),
    /// `name <op> value`; false when the attribute is missing or of another type.
    Cmp(String, CmpOp, AttrValue),
    /// `begins_with(name, prefix)`
    BeginsWith(String, String),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

impl Cond {
    /// The item exists (checked on the partition key attribute).
    pub fn item_exists() -> Cond {
        Cond::Exists("pk".into())
    }
    /// The item does not exist yet.
    pub fn item_absent() -> Cond {
        Cond::NotExists("pk".into())
    }
    pub fn eq(name: &str, v: impl Into<AttrValue>) -> Cond {
        Cond::Cmp(name.into(), CmpOp::Eq, v.into())
    }
    pub fn ne(name: &str, v: impl Into<AttrValue>) -> Cond {
        Cond::Cmp(name.into(), CmpOp::Ne, v.into())
    }
    pub fn lt(name: &str, v: impl Into<AttrValue>) -> Cond {
        Cond::Cmp(name.into(), CmpOp::Lt, v.into())
    }
    pub fn le(name: &str, v: impl Into<AttrValue>) -> Cond {
        Cond::Cmp(name.into(), CmpOp::Le, v.into())
    }
    pub fn gt(name: &str, v: impl Into<AttrValue>) -> Cond {
        Cond::Cmp(name.into(), CmpOp::Gt, v.into())
    }
    pub fn ge(name: &str, v: impl Into<AttrValue>) -> Cond {
        Cond::Cmp(name.into(), CmpOp::Ge, v.into())
    }
    pub fn and(self, other: Cond) -> Cond {
        match self {
            Cond::And(mut v) => {
                v.push(other);
                Cond::And(v)
            }
            c => Cond::And(vec![c, other]),
        }
    }
    pub fn or(self, other: Cond) -> Cond {
        Cond::Or(vec![self, other])
    }
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Cond {
        Cond::Not(Box::new(self))
    }

    /// Evaluates the condition against the current item (`None` when absent).
    pub fn eval(&self, item: Option<&Item>) -> bool {
        let attr = |n: &str| item.and_then(|i| i.get(n));
        match self {
            Cond::Exists(n) => attr(n).is_some(),
            Cond::NotExists(n) => attr(n).is_none(),
            Cond::Cmp(n, op, v) => match attr(n) {
                None => false,
                Some(cur) => match (op, cur.partial_cmp_same_type(v)) {
                    (CmpOp::Eq, _) => cur == v,
                    (CmpOp::Ne, _) => cur != v,
                    (_, None) => false,
                    (CmpOp::Lt, Some(o)) => o.is_lt(),
                    (CmpOp::Le, Some(o)) => o.is_le(),
                    (CmpOp::Gt, Some(o)) => o.is_gt(),
                    (CmpOp::Ge, Some(o)) => o.is_ge(),
                },
            },
            Cond::BeginsWith(n, p) => {
                matches!(attr(n), Some(AttrValue::S(s)) if s.starts_with(p.as_str()))
            }
            Cond::And(cs) => cs.iter().all(|c| c.eval(item)),
            Cond::Or(cs) => cs.iter().any(|c| c.eval(item)),
            Cond::Not(c) => !c.eval(item),
        }
    }
}

/// Update actions, applied in order: `SET`, numeric `ADD` (missing counts as 0), `REMOVE`.
/// Like DynamoDB's UpdateItem, an update of a missing item creates it (guard with a condition if not wanted).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    pub set: Vec<(String, AttrValue)>,
    pub add: Vec<(String, i64)>,
    pub remove: Vec<String>,
}

impl Update {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn set(mut self, name: &str, v: impl Into<AttrValue>) -> Self {
        self.set.push((name.into(), v.into()));
        self
    }
    pub fn add(mut self, name: &str, delta: i64) -> Self {
        self.add.push((name.into(), delta));
        self
    }
    pub fn remove(mut self, name: &str) -> Self {
        self.remove.push(name.into());
        self
    }
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// Applies the actions to an item in place (numeric overflow is refused).
    pub fn apply(&self, item: &mut Item) -> Result<(), super::StoreError> {
        for (n, v) in &self.set {
            item.insert(n.clone(), v.clone());
        }
        for (n, d) in &self.add {
            let cur = match item.get(n) {
                None => 0,
                Some(AttrValue::N(x)) => *x,
                Some(_) => {
                    return Err(super::StoreError::Invalid(format!(
                        "ADD on non-number attribute {n}"
                    )));
                }
            };
            let next = cur
                .checked_add(*d)
                .ok_or_else(|| super::StoreError::Invalid(format!("numeric overflow on {n}")))?;
            item.insert(n.clone(), AttrValue::N(next));
        }
        for n in &self.remove {
            item.remove(n);
        }
        Ok(())
    }
}
