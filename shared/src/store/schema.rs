//! Table definitions — the one place that names key attributes, indexes and the TTL attribute.
//! Used by the local store, the DynamoDB adapter (table creation in tests and tooling) and the
//! check that `template.yaml` declares the same tables.

/// A global secondary index (projection ALL).
#[derive(Debug, PartialEq, Eq)]
pub struct IndexDef {
    pub name: &'static str,
    pub pk: &'static str,
    pub sk: &'static str,
}

/// A table's shape. Every key attribute is a string.
#[derive(Debug, PartialEq, Eq)]
pub struct TableDef {
    /// Logical id of the table resource in `template.yaml`.
    pub resource: &'static str,
    /// Default physical name (overridden by config).
    pub default_name: &'static str,
    pub pk: &'static str,
    pub sk: &'static str,
    pub indexes: &'static [IndexDef],
    /// Epoch-seconds TTL attribute; expired items are never returned by the port.
    pub ttl: &'static str,
}

impl TableDef {
    /// Looks up an index by name.
    pub fn index(&self, name: &str) -> Option<&'static IndexDef> {
        self.indexes.iter().find(|i| i.name == name)
    }
}

/// The general-purpose index (`gsi1pk`/`gsi1sk`): lookups by e-mail, external id, user, code.
pub const GSI1: &str = "gsi1";
/// The sparse index of invoices still PENDING (`gsi2pk`/`gsi2sk`), read by the Xendit sync.
pub const GSI2: &str = "gsi2";

/// The main single-table design table.
pub const MAIN: TableDef = TableDef {
    resource: "MainTable",
    default_name: "userstate-main",
    pk: "pk",
    sk: "sk",
    indexes: &[
        IndexDef {
            name: GSI1,
            pk: "gsi1pk",
            sk: "gsi1sk",
        },
        IndexDef {
            name: GSI2,
            pk: "gsi2pk",
            sk: "gsi2sk",
        },
    ],
    ttl: "ttl",
};

/// The logs table (checkout/payout logs, callback receipts, audit events).
pub const LOGS: TableDef = TableDef {
    resource: "LogsTable",
    default_name: "userstate-logs",
    pk: "pk",
    sk: "sk",
    indexes: &[IndexDef {
        name: GSI1,
        pk: "gsi1pk",
        sk: "gsi1sk",
    }],
    ttl: "ttl",
};

/// Every table the application uses.
pub const ALL: [&TableDef; 2] = [&MAIN, &LOGS];
