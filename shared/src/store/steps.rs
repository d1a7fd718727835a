//! Transactions built from named steps, so that a cancellation is read by name ("the e-mail guard
//! was taken") instead of by position.

use super::{StoreError, TxOp};

/// Operations of one transaction, each under the name of the step it belongs to (a step may hold
/// several operations, or none).
#[derive(Clone, Debug)]
pub struct Steps<N> {
    ops: Vec<TxOp>,
    names: Vec<N>,
}

impl<N> Default for Steps<N> {
    fn default() -> Self {
        Steps {
            ops: Vec::new(),
            names: Vec::new(),
        }
    }
}

impl<N: Copy + PartialEq> Steps<N> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one operation of step `name`.
    pub fn push(&mut self, name: N, op: TxOp) -> &mut Self {
        self.ops.push(op);
        self.names.push(name);
        self
    }

    /// Adds operations of step `name`.
    pub fn extend(&mut self, name: N, ops: impl IntoIterator<Item = TxOp>) -> &mut Self {
        for op in ops {
            self.push(name, op);
        }
        self
    }

    /// The operations, in order, and the names to decode a failure with.
    pub fn split(self) -> (Vec<TxOp>, Names<N>) {
        (self.ops, Names(self.names))
    }

    /// The operations without the ones of step `name`.
    pub fn without(&self, name: N) -> Steps<N>
    where
        N: Clone,
    {
        let mut out = Steps::new();
        for (op, n) in self.ops.iter().zip(&self.names) {
            if *n != name {
                out.push(*n, op.clone());
            }
        }
        out
    }

    /// Whether any operation belongs to step `name`.
    pub fn has(&self, name: N) -> bool {
        self.names.contains(&name)
    }
}

/// The step names of a transaction's operations, by position.
#[derive(Clone, Debug)]
pub struct Names<N>(Vec<N>);

impl<N: Copy + PartialEq> Names<N> {
    /// True when `e` is a cancellation in which an operation of step `name` failed its condition.
    pub fn failed(&self, e: &StoreError, name: N) -> bool {
        match e {
            StoreError::TransactionCanceled { failed } => failed
                .iter()
                .any(|i| self.0.get(*i).is_some_and(|n| *n == name)),
            _ => false,
        }
    }

    /// The step of the operation at `index`.
    pub fn at(&self, index: usize) -> Option<N> {
        self.0.get(index).copied()
    }

    /// The steps whose conditions failed in `e` (empty unless it is a cancellation).
    pub fn failures(&self, e: &StoreError) -> Vec<N> {
        let mut out = Vec::new();
        if let StoreError::TransactionCanceled { failed } = e {
            for i in failed {
                if let Some(n) = self.0.get(*i)
                    && !out.contains(n)
                {
                    out.push(*n);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Cond, Key};

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Step {
        Account,
        Guard,
    }

    fn check(pk: &str) -> TxOp {
        TxOp::Check {
            key: Key::new(pk, "x"),
            cond: Cond::item_exists(),
        }
    }

    #[test]
    fn failures_are_read_by_step_name() {
        let mut s = Steps::new();
        s.push(Step::Account, check("a"))
            .extend(Step::Guard, [check("b"), check("c")]);
        assert!(s.has(Step::Guard));
        assert_eq!(s.without(Step::Guard).split().0.len(), 1);
        let (ops, names) = s.split();
        assert_eq!(ops.len(), 3);
        let e = StoreError::TransactionCanceled { failed: vec![2] };
        assert!(names.failed(&e, Step::Guard));
        assert!(!names.failed(&e, Step::Account));
        assert_eq!(names.failures(&e), vec![Step::Guard]);
        assert!(names.failures(&StoreError::Conflict).is_empty());
    }
}
