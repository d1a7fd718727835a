//! What each Lambda function may do to each table — declared once, read by the code and by the
//! template check. Function binaries wrap their tables in [`crate::store::policy::PolicyTable`]
//! with these grants, so an operation a function did not declare fails loudly (in tests and
//! staging alike) instead of with an IAM AccessDenied in production; a test checks that each
//! function's IAM policy in `template.yaml` grants at least what is declared here.

pub use crate::store::policy::{Scoped, TableAction, TableGrant};

/// What one function may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionAccess {
    /// The function's binary name (`functions/<name>`, `BuildProperties.Binary` in the template).
    pub function: &'static str,
    pub main: TableGrant,
    pub logs: TableGrant,
}

use TableAction::*;

/// Item access plus the batch read of a session check (the session and `LOGIN` together).
/// Every item action, plus `extra`.
macro_rules! item_rw {
    ($($extra:ident),*) => {
        &[GetItem, BatchGetItem, PutItem, UpdateItem, DeleteItem, Query, ConditionCheckItem $(, $extra)*]
    };
}
const ITEM_RW: &[TableAction] = item_rw!();
const ITEM_RW_SCAN: &[TableAction] = item_rw!(Scan);
const LOG_WRITE: TableGrant = TableGrant {
    actions: &[PutItem],
    indexes: false,
    scoped: &[],
};
/// Reading a session: the `SESSION#` item and `LOGIN` (both under `USER#…`).
const SESSION_READ: Scoped = Scoped {
    actions: &[GetItem, BatchGetItem],
    prefixes: &["USER#"],
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
            indexes: false,
            scoped: &[],
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
            scoped: &[],
        },
        logs: LOG_WRITE,
    },
    // Addresses live under the user's own partition, next to the session.
    FunctionAccess {
        function: "address",
        main: TableGrant {
            actions: &[],
            indexes: false,
            scoped: &[Scoped {
                actions: ITEM_RW,
                prefixes: &["USER#"],
            }],
        },
        logs: TableGrant::NONE,
    },
    // Sessions and API keys are read; only device tokens are written.
    FunctionAccess {
        function: "fcm",
        main: TableGrant {
            actions: &[],
            indexes: false,
            scoped: &[
                Scoped {
                    actions: &[GetItem, BatchGetItem],
                    prefixes: &["USER#", "APIKEY#"],
                },
                Scoped {
                    actions: &[UpdateItem],
                    prefixes: &["APIKEY#"],
                },
                Scoped {
                    actions: ITEM_RW,
                    prefixes: &["DEVICES#", "FCMTOKEN#"],
                },
            ],
        },
        logs: TableGrant::NONE,
    },
    FunctionAccess {
        function: "marketing",
        main: TableGrant {
            actions: &[
                GetItem,
                BatchGetItem,
                PutItem,
                UpdateItem,
                DeleteItem,
                Query,
            ],
            indexes: true,
            scoped: &[],
        },
        logs: TableGrant::NONE,
    },
    // Reads what it delivers (held messages, devices, and for a reset request the account), writes
    // only reset tokens, held messages and device tokens: it cannot change a wallet or a login.
    FunctionAccess {
        function: "notifier",
        main: TableGrant {
            actions: &[],
            indexes: false,
            scoped: &[
                Scoped {
                    actions: &[GetItem, BatchGetItem],
                    prefixes: &["USER#", "EMAIL#", "OUTMSG#", "DEVICES#", "FCMTOKEN#"],
                },
                Scoped {
                    actions: &[Query, PutItem, DeleteItem, ConditionCheckItem],
                    prefixes: &["DEVICES#", "FCMTOKEN#", "OUTMSG#"],
                },
                Scoped {
                    actions: &[PutItem],
                    prefixes: &["TOKEN#"],
                },
            ],
        },
        logs: LOG_WRITE,
    },
    FunctionAccess {
        function: "payment",
        main: TableGrant {
            actions: ITEM_RW,
            indexes: true,
            scoped: &[],
        },
        logs: LOG_WRITE,
    },
    FunctionAccess {
        function: "xendit-callback",
        main: TableGrant {
            actions: ITEM_RW,
            indexes: true,
            scoped: &[],
        },
        logs: LOG_WRITE,
    },
    FunctionAccess {
        function: "xendit-sync",
        // ITEM_RW plus Scan: the scheduled reconciliation visits every wallet.
        main: TableGrant {
            actions: ITEM_RW_SCAN,
            indexes: true,
            scoped: &[],
        },
        logs: LOG_WRITE,
    },
    // The redemption writes the user's wallet and ledgers and an idempotency record; the
    // referral history is read from the user's partition.
    FunctionAccess {
        function: "points",
        main: TableGrant {
            actions: &[],
            indexes: false,
            scoped: &[Scoped {
                actions: &[
                    GetItem,
                    BatchGetItem,
                    PutItem,
                    UpdateItem,
                    Query,
                    ConditionCheckItem,
                ],
                prefixes: &["USER#", "IDEM#"],
            }],
        },
        logs: LOG_WRITE,
    },
    // Connections, and the session check of each.
    FunctionAccess {
        function: "ws",
        main: TableGrant {
            actions: &[],
            indexes: false,
            scoped: &[
                SESSION_READ,
                Scoped {
                    actions: &[GetItem, PutItem, UpdateItem, DeleteItem],
                    prefixes: &["WSCONN#"],
                },
            ],
        },
        logs: TableGrant::NONE,
    },
];

/// The declared access of a function.
pub fn of(function: &str) -> Option<&'static FunctionAccess> {
    FUNCTIONS.iter().find(|f| f.function == function)
}
