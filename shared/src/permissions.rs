//! What each Lambda function may do to each table — declared once, read by the code and by the
//! template check. Function binaries wrap their tables in [`crate::store::policy::PolicyTable`]
//! with these grants, so an operation a function did not declare fails loudly (in tests and
//! staging alike) instead of with an IAM AccessDenied in production; a test checks that each
//! function's IAM policy in `template.yaml` grants at least what is declared here.

/// DynamoDB item actions the port's operations need (transactions need the per-item actions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableAction {
    GetItem,
    /// [`crate::store::Table::get_many`].
    BatchGetItem,
    PutItem,
    UpdateItem,
    DeleteItem,
    Query,
    ConditionCheckItem,
}

impl TableAction {
    /// The IAM action name.
    pub fn iam(self) -> &'static str {
        match self {
            TableAction::GetItem => "dynamodb:GetItem",
            TableAction::BatchGetItem => "dynamodb:BatchGetItem",
            TableAction::PutItem => "dynamodb:PutItem",
            TableAction::UpdateItem => "dynamodb:UpdateItem",
            TableAction::DeleteItem => "dynamodb:DeleteItem",
            TableAction::Query => "dynamodb:Query",
            TableAction::ConditionCheckItem => "dynamodb:ConditionCheckItem",
        }
    }
}

/// Grants on one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableGrant {
    pub actions: &'static [TableAction],
    /// Whether queries on the table's GSIs are allowed (`{table}/index/*`).
    pub indexes: bool,
}

impl TableGrant {
    /// No access at all.
    pub const NONE: TableGrant = TableGrant {
        actions: &[],
        indexes: false,
    };

    pub fn allows(&self, action: TableAction) -> bool {
        self.actions.contains(&action)
    }
}

/// What one function may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionAccess {
    /// The function's binary name (`functions/<name>`, `BuildProperties.Binary` in the template).
    pub function: &'static str,
    pub main: TableGrant,
    pub logs: TableGrant,
}

use TableAction::*;

const ITEM_RW: &[TableAction] = &[
    GetItem,
    PutItem,
    UpdateItem,
    DeleteItem,
    Query,
    ConditionCheckItem,
];
/// Item access plus the batch read a wallet change with an idempotency key makes.
const MONEY_RW: &[TableAction] = &[
    GetItem,
    BatchGetItem,
    PutItem,
    UpdateItem,
    DeleteItem,
    Query,
    ConditionCheckItem,
];
const LOG_WRITE: TableGrant = TableGrant {
    actions: &[PutItem],
    indexes: false,
};

/// Every function's table access.
pub const FUNCTIONS: &[FunctionAccess] = &[
    FunctionAccess {
        function: "health",
        main: TableGrant::NONE,
        logs: TableGrant::NONE,
    },
    FunctionAccess {
        function: "auth",
        main: TableGrant {
            actions: ITEM_RW,
            indexes: true,
        },
        logs: LOG_WRITE,
    },
    FunctionAccess {
        function: "user",
        main: TableGrant {
            actions: &[
                GetItem,
                BatchGetItem,
                PutItem,
                UpdateItem,
                DeleteItem,
                ConditionCheckItem,
            ],
            indexes: false,
        },
        logs: LOG_WRITE,
    },
    FunctionAccess {
        function: "address",
        main: TableGrant {
            actions: ITEM_RW,
            indexes: false,
        },
        logs: TableGrant::NONE,
    },
    FunctionAccess {
        function: "fcm",
        main: TableGrant {
            actions: ITEM_RW,
            indexes: false,
        },
        logs: TableGrant::NONE,
    },
    FunctionAccess {
        function: "marketing",
        main: TableGrant {
            actions: &[GetItem, PutItem, UpdateItem, DeleteItem, Query],
            indexes: true,
        },
        logs: TableGrant::NONE,
    },
    FunctionAccess {
        function: "notifier",
        main: TableGrant {
            actions: &[Query, DeleteItem],
            indexes: false,
        },
        logs: LOG_WRITE,
    },
    FunctionAccess {
        function: "payment",
        main: TableGrant {
            actions: MONEY_RW,
            indexes: true,
        },
        logs: LOG_WRITE,
    },
    FunctionAccess {
        function: "xendit-callback",
        main: TableGrant {
            actions: MONEY_RW,
            indexes: true,
        },
        logs: LOG_WRITE,
    },
    FunctionAccess {
        function: "xendit-sync",
        main: TableGrant {
            actions: MONEY_RW,
            indexes: true,
        },
        logs: LOG_WRITE,
    },
    FunctionAccess {
        function: "points",
        main: TableGrant {
            actions: &[
                GetItem,
                BatchGetItem,
                PutItem,
                UpdateItem,
                Query,
                ConditionCheckItem,
            ],
            indexes: false,
        },
        logs: LOG_WRITE,
    },
    FunctionAccess {
        function: "ws",
        main: TableGrant {
            actions: &[GetItem, PutItem, UpdateItem, DeleteItem],
            indexes: false,
        },
        logs: TableGrant::NONE,
    },
];

/// The declared access of a function.
pub fn of(function: &str) -> Option<&'static FunctionAccess> {
    FUNCTIONS.iter().find(|f| f.function == function)
}
