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

/// Actions granted per resource text, for every function, keyed by binary name.
fn granted(t: &Value) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
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
        let mut by_resource: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for policy in list(&r["Properties"]["Policies"]) {
            // SAM policy templates stand for their statements (only the one the template uses).
            if let Some(queue) = policy.get("SQSSendMessagePolicy") {
                by_resource
                    .entry(resource_text(&queue["QueueName"]))
                    .or_default()
                    .insert("sqs:SendMessage".into());
            }
            for stmt in list(&policy["Statement"]) {
                if stmt["Effect"].as_str() != Some("Allow") {
                    continue;
                }
                let actions: Vec<String> = list(&stmt["Action"])
                    .iter()
                    .filter_map(|a| a.as_str().map(String::from))
                    .collect();
                for res in list(&stmt["Resource"]) {
                    by_resource
                        .entry(resource_text(&res))
                        .or_default()
                        .extend(actions.iter().cloned());
                }
            }
        }
        out.insert(binary, by_resource);
    }
    out
}

fn check_grant(
    function: &str,
    table: &str,
    grant: &TableGrant,
    by_resource: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut missing = Vec::new();
    let on_table = by_resource
        .get(&format!("{table}.Arn"))
        .cloned()
        .unwrap_or_default();
    for a in grant.actions {
        if !on_table.contains(a.iam()) {
            missing.push(format!("{function}: {} on {table}", a.iam()));
        }
    }
    if grant.indexes
        && grant
            .actions
            .contains(&shared::permissions::TableAction::Query)
    {
        let on_index = by_resource
            .get(&format!("{table}.Arn/index/*"))
            .cloned()
            .unwrap_or_default();
        if !on_index.contains("dynamodb:Query") {
            missing.push(format!("{function}: dynamodb:Query on {table}/index/*"));
        }
    }
    missing
}

fn problems(t: &Value, functions: &[FunctionAccess]) -> Vec<String> {
    let granted = granted(t);
    let mut out = Vec::new();
    for f in functions {
        match granted.get(f.function) {
            None => out.push(format!(
                "{}: declared in permissions.rs but not in template.yaml",
                f.function
            )),
            Some(by_resource) => {
                out.extend(check_grant(f.function, "MainTable", &f.main, by_resource));
                out.extend(check_grant(f.function, "LogsTable", &f.logs, by_resource));
            }
        }
    }
    for name in granted.keys() {
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
    };
    let p = problems(&template(), &declared);
    assert!(
        p.iter()
            .any(|m| m.contains("ws: dynamodb:Query on MainTable")),
        "{p:?}"
    );
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
    let user_with_queue = shared::lambda::Function {
        name: "user",
        ports: shared::lambda::AwsPorts {
            queue: Some(shared::lambda::sqs_queue),
            ..shared::lambda::USER.ports
        },
    };
    let p = port_problems(&template(), &[&user_with_queue]);
    assert!(
        p.iter()
            .any(|m| m == "user: builds the adapter but lacks sqs:SendMessage"),
        "{p:?}"
    );
}
