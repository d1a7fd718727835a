//! Each function's IAM policy in `template.yaml` grants at least the table actions the function
//! declares in `shared::permissions` (which its binary enforces through `PolicyTable`), and every
//! function in the template has a declaration.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;
use shared::permissions::{FUNCTIONS, FunctionAccess, TableGrant};

fn template() -> Value {
    serde_yaml::from_str(include_str!("../../template.yaml")).expect("template.yaml parses")
}

/// A resource reference rendered as text: `!GetAtt MainTable.Arn` → `MainTable.Arn`,
/// `!Sub "${MainTable.Arn}/index/*"` → `MainTable.Arn/index/*`.
fn resource_text(v: &Value) -> String {
    match v {
        Value::Tagged(t) => match &t.value {
            Value::String(s) => s.replace("${", "").replace('}', ""),
            other => resource_text(other),
        },
        Value::String(s) => s.clone(),
        Value::Mapping(m) => m.values().map(resource_text).collect::<Vec<_>>().join(","),
        _ => String::new(),
    }
}

fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Sequence(s) => s.clone(),
        Value::Null => vec![],
        other => vec![other.clone()],
    }
}

/// One IAM statement of a function: its actions, resources and `dynamodb:LeadingKeys` patterns
/// (`None` when unconditioned).
#[derive(Debug, Clone)]
struct Stmt {
    actions: BTreeSet<String>,
    resources: BTreeSet<String>,
    leading_keys: Option<BTreeSet<String>>,
}

/// Every function's statements (SAM policy templates stand for theirs), keyed by binary name.
fn statements(t: &Value) -> BTreeMap<String, Vec<Stmt>> {
    let mut out = BTreeMap::new();
    let Some(resources) = t["Resources"].as_mapping() else {
        return out;
    };
    for (_, r) in resources {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = r["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("Binary")
            .to_owned();
        let mut stmts = Vec::new();
        for policy in list(&r["Properties"]["Policies"]) {
            if let Some(queue) = policy.get("SQSSendMessagePolicy") {
                stmts.push(Stmt {
                    actions: ["sqs:SendMessage".to_owned()].into(),
                    resources: [resource_text(&queue["QueueName"])].into(),
                    leading_keys: None,
                });
            }
            for stmt in list(&policy["Statement"]) {
                if stmt["Effect"].as_str() != Some("Allow") {
                    continue;
                }
                let leading_keys = stmt["Condition"]
                    .get("ForAllValues:StringLike")
                    .and_then(|c| c.get("dynamodb:LeadingKeys"))
                    .map(|v| {
                        list(v)
                            .iter()
                            .filter_map(|p| p.as_str().map(String::from))
                            .collect()
                    });
                stmts.push(Stmt {
                    actions: list(&stmt["Action"])
                        .iter()
                        .filter_map(|a| a.as_str().map(String::from))
                        .collect(),
                    resources: list(&stmt["Resource"]).iter().map(resource_text).collect(),
                    leading_keys,
                });
            }
        }
        out.insert(binary, stmts);
    }
    out
}

/// Actions granted per resource text (any condition), for every function.
fn granted(t: &Value) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    statements(t)
        .into_iter()
        .map(|(f, stmts)| {
            let mut by_resource: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for s in stmts {
                for r in &s.resources {
                    by_resource
                        .entry(r.clone())
                        .or_default()
                        .extend(s.actions.iter().cloned());
                }
            }
            (f, by_resource)
        })
        .collect()
}

fn patterns(prefixes: &[&str]) -> BTreeSet<String> {
    prefixes.iter().map(|p| format!("{p}*")).collect()
}

/// What the template grants on `table` differs from the declaration: missing (the code would
/// hit AccessDenied) and extra (wider than the code needs) grants, both ways.
fn check_grant(function: &str, table: &str, grant: &TableGrant, stmts: &[Stmt]) -> Vec<String> {
    let arn = format!("{table}.Arn");
    let index = format!("{table}.Arn/index/*");
    let mut problems = Vec::new();
    let dynamo = |a: &String| a.starts_with("dynamodb:");
    // Unconditioned statements on the table carry exactly the declared unscoped actions.
    let open: BTreeSet<String> = stmts
        .iter()
        .filter(|s| s.leading_keys.is_none() && s.resources.contains(&arn))
        .flat_map(|s| s.actions.iter().filter(|a| dynamo(a)).cloned())
        .collect();
    let declared: BTreeSet<String> = grant.actions.iter().map(|a| a.iam().to_owned()).collect();
    for a in declared.difference(&open) {
        problems.push(format!("{function}: {a} on {table}"));
    }
    for a in open.difference(&declared) {
        problems.push(format!(
            "{function}: {a} on {table} is granted but not declared"
        ));
    }
    // Each scope is one statement with exactly its LeadingKeys and actions.
    let scoped: Vec<&Stmt> = stmts
        .iter()
        .filter(|s| s.leading_keys.is_some() && s.resources.contains(&arn))
        .collect();
    for scope in grant.scoped {
        let want = patterns(scope.prefixes);
        let actions: BTreeSet<String> = scope.actions.iter().map(|a| a.iam().to_owned()).collect();
        let found = scoped
            .iter()
            .any(|s| s.leading_keys.as_ref() == Some(&want) && s.actions == actions);
        if !found {
            problems.push(format!(
                "{function}: {actions:?} on {table} scoped to LeadingKeys {want:?}"
            ));
        }
    }
    for s in &scoped {
        let declared = grant.scoped.iter().any(|scope| {
            s.leading_keys.as_ref() == Some(&patterns(scope.prefixes))
                && s.actions
                    == scope
                        .actions
                        .iter()
                        .map(|a| a.iam().to_owned())
                        .collect::<BTreeSet<_>>()
        });
        if !declared {
            problems.push(format!(
                "{function}: {:?} on {table} scoped to {:?} is granted but not declared",
                s.actions, s.leading_keys
            ));
        }
    }
    let on_index = stmts
        .iter()
        .any(|s| s.resources.contains(&index) && s.actions.contains("dynamodb:Query"));
    let wants_index = grant.indexes && grant.allows(shared::permissions::TableAction::Query);
    match (wants_index, on_index) {
        (true, false) => problems.push(format!("{function}: dynamodb:Query on {table}/index/*")),
        (false, true) => problems.push(format!(
            "{function}: dynamodb:Query on {table}/index/* is granted but not declared"
        )),
        _ => {}
    }
    problems
}

fn problems(t: &Value, functions: &[FunctionAccess]) -> Vec<String> {
    let all = statements(t);
    let mut out = Vec::new();
    for f in functions {
        match all.get(f.function) {
            None => out.push(format!(
                "{}: declared in permissions.rs but not in template.yaml",
                f.function
            )),
            Some(stmts) => {
                out.extend(check_grant(f.function, "MainTable", &f.main, stmts));
                out.extend(check_grant(f.function, "LogsTable", &f.logs, stmts));
            }
        }
    }
    for name in all.keys() {
        if !functions.iter().any(|f| f.function == name) {
            out.push(format!(
                "{name}: in template.yaml but without a declaration in permissions.rs"
            ));
        }
    }
    out
}

#[test]
fn every_function_policy_grants_the_declared_table_actions() {
    let p = problems(&template(), FUNCTIONS);
    assert!(
        p.is_empty(),
        "template.yaml vs shared/src/permissions.rs:\n{}",
        p.join("\n")
    );
}

#[test]
fn a_missing_grant_is_detected() {
    // The check must be able to fail: declare an action the template does not grant.
    let mut declared: Vec<FunctionAccess> = FUNCTIONS.to_vec();
    let ws = declared
        .iter_mut()
        .find(|f| f.function == "ws")
        .expect("ws declared");
    ws.main = TableGrant {
        actions: &[shared::permissions::TableAction::Query],
        indexes: true,
        scoped: ws.main.scoped,
    };
    let p = problems(&template(), &declared);
    assert!(
        p.iter()
            .any(|m| m.contains("ws: dynamodb:Query on MainTable")),
        "{p:?}"
    );
}

#[test]
fn a_grant_wider_than_declared_is_detected() {
    // The notifier must not be able to touch wallets: a template that let it write any item
    // (no LeadingKeys condition) fails the check.
    let widened = include_str!("../../template.yaml").replacen(
        "dynamodb:LeadingKeys: [\"TOKEN#*\"]",
        "dynamodb:LeadingKeys: [\"TOKEN#*\", \"USER#*\"]",
        1,
    );
    assert_ne!(
        widened,
        include_str!("../../template.yaml"),
        "the notifier's token grant"
    );
    let t: Value = serde_yaml::from_str(&widened).expect("parses");
    let p = problems(&t, FUNCTIONS);
    assert!(
        p.iter()
            .any(|m| m.starts_with("notifier:") && m.contains("granted but not declared")),
        "{p:?}"
    );
}

#[test]
fn the_notifier_cannot_write_or_delete_wallets_or_logins() {
    let notifier = FUNCTIONS
        .iter()
        .find(|f| f.function == "notifier")
        .expect("declared");
    use shared::permissions::TableAction::*;
    for action in [PutItem, UpdateItem, DeleteItem, ConditionCheckItem] {
        for pk in [
            "USER#alice",
            "IDEM#xendit#x",
            "INVOICE#inv-1",
            "PAYOUT#po-1",
        ] {
            assert!(
                !notifier.main.allows_on(action, pk),
                "notifier may {action:?} {pk}"
            );
        }
    }
    assert!(notifier.main.allows_on(DeleteItem, "DEVICES#alice"));
    assert!(notifier.main.allows_on(PutItem, "TOKEN#RESET_PWD#abc"));
}

/// The ports a function builds (`shared::lambda`) and the IAM actions they need: each function's
/// policy grants the action exactly when the function builds the adapter (no unused grants).
fn port_problems(t: &Value, functions: &[&shared::lambda::Function]) -> Vec<String> {
    let granted = granted(t);
    let mut out = Vec::new();
    for f in functions {
        let Some(by_resource) = granted.get(f.name) else {
            out.push(format!(
                "{}: in shared::lambda but not in template.yaml",
                f.name
            ));
            continue;
        };
        let has = |action: &str| by_resource.values().any(|a| a.contains(action));
        for (builds, action) in [
            (f.ports.queue.is_some(), "sqs:SendMessage"),
            (f.ports.blobs.is_some(), "s3:PutObject"),
            (f.ports.ws_push.is_some(), "execute-api:ManageConnections"),
        ] {
            match (builds, has(action)) {
                (true, false) => {
                    out.push(format!("{}: builds the adapter but lacks {action}", f.name))
                }
                (false, true) => out.push(format!(
                    "{}: granted {action} but builds no adapter for it",
                    f.name
                )),
                _ => {}
            }
        }
    }
    for name in granted.keys() {
        if name != "health" && !functions.iter().any(|f| f.name == name) {
            out.push(format!(
                "{name}: in template.yaml but not in shared::lambda::ALL"
            ));
        }
    }
    out
}

#[test]
fn each_function_is_granted_exactly_the_aws_services_its_adapters_use() {
    let p = port_problems(&template(), shared::lambda::ALL);
    assert!(
        p.is_empty(),
        "template.yaml vs shared/src/lambda.rs:\n{}",
        p.join("\n")
    );
    for f in shared::lambda::ALL {
        assert!(
            shared::permissions::of(f.name).is_some(),
            "{}: no table grants in permissions.rs",
            f.name
        );
    }
}

#[test]
fn a_port_without_its_grant_is_detected() {
    let address_with_queue = shared::lambda::Function {
        name: "address",
        ports: shared::lambda::AwsPorts {
            queue: Some(shared::lambda::sqs_queue),
            ..shared::lambda::ADDRESS.ports
        },
        settings: shared::lambda::ADDRESS.settings,
    };
    let p = port_problems(&template(), &[&address_with_queue]);
    assert!(
        p.iter()
            .any(|m| m == "address: builds the adapter but lacks sqs:SendMessage"),
        "{p:?}"
    );
}
