//! Each function's IAM statements from the template, and the check of every AWS call against
//! them: the stack's AWS endpoint is a proxy in front of moto that reads who is calling (the
//! access key id, one per function instance), what (the action and resources in the request)
//! and lets it through only if that function's policy allows it. A denied call answers
//! `AccessDeniedException` as AWS does, and is logged and recorded with the function named.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};
use serde_json::Value as Json;

use super::template::{Env, strings};

/// One `Allow` statement (function policies have no `Deny`s).
#[derive(Clone, Debug)]
struct Statement {
    actions: Vec<String>,
    resources: Vec<String>,
    /// `ForAllValues:StringLike: dynamodb:LeadingKeys`.
    leading_keys: Option<Vec<String>>,
}

/// A function's policy: its statements, and SAM's policy templates expanded.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// One authorisation request: an action on a resource (with the partition keys it touches).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub action: String,
    pub resource: String,
    pub leading_keys: Vec<String>,
}

impl Policy {
    /// The function's `Policies` (resolved): inline `Statement`s and the SAM templates it uses.
    pub fn from_policies(policies: &Json, env: &Env) -> anyhow::Result<Policy> {
        let mut statements = Vec::new();
        let list = match policies {
            Json::Array(a) => a.clone(),
            Json::Null => Vec::new(),
            other => vec![other.clone()],
        };
        for p in list {
            let Some(obj) = p.as_object() else {
                bail!("policy {p} is a managed policy name: `userstate stack` cannot check it");
            };
            for (kind, body) in obj {
                match kind.as_str() {
                    "Statement" => {
                        for s in body
                            .as_array()
                            .cloned()
                            .unwrap_or_else(|| vec![body.clone()])
                        {
                            statements.push(statement(&s)?);
                        }
                    }
                    "SQSSendMessagePolicy" => {
                        let queue = body["QueueName"]
                            .as_str()
                            .ok_or_else(|| anyhow!("SQSSendMessagePolicy without QueueName"))?;
                        statements.push(Statement {
                            actions: vec!["sqs:SendMessage*".into()],
                            resources: vec![env.arn("sqs", queue)],
                            leading_keys: None,
                        });
                    }
                    other => bail!("SAM policy template {other} is not known to `userstate stack`"),
                }
            }
        }
        Ok(Policy { statements })
    }

    /// Whether every one of `calls` is allowed.
    pub fn allows(&self, call: &Call) -> bool {
        self.statements.iter().any(|s| {
            s.actions
                .iter()
                .any(|a| glob(&a.to_ascii_lowercase(), &call.action.to_ascii_lowercase()))
                && s.resources.iter().any(|r| glob(r, &call.resource))
                && s.leading_keys.as_ref().is_none_or(|patterns| {
                    // ForAllValues: every key matches one pattern (vacuously true for none).
                    call.leading_keys
                        .iter()
                        .all(|k| patterns.iter().any(|p| glob(p, k)))
                })
        })
    }
}

fn statement(s: &Json) -> anyhow::Result<Statement> {
    if s["Effect"] != "Allow" {
        bail!("only Allow statements are supported in function policies: {s}");
    }
    let mut leading_keys = None;
    if let Some(cond) = s.get("Condition").and_then(Json::as_object) {
        for (op, body) in cond {
            let keys = body
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>());
            if op == "ForAllValues:StringLike"
                && keys.as_deref() == Some(&["dynamodb:LeadingKeys".to_owned()])
            {
                leading_keys = Some(strings(&body["dynamodb:LeadingKeys"]));
            } else {
                bail!("condition {op} {body} is not supported by `userstate stack`");
            }
        }
    }
    Ok(Statement {
        actions: strings(&s["Action"]),
        resources: strings(&s["Resource"]),
        leading_keys,
    })
}

/// IAM's wildcard match: `*` any run, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// What the proxy knows to name DynamoDB resources and keys: each table's partition key, and
/// each index's.
#[derive(Clone, Debug, Default)]
pub struct KeyNames {
    /// table name → partition key attribute.
    pub tables: BTreeMap<String, String>,
    /// (table, index) → the index's partition key attribute.
    pub indexes: BTreeMap<(String, String), String>,
}

/// The calls one AWS request makes, from its signing service, method, path and body.
pub fn calls(
    env: &Env,
    keys: &KeyNames,
    service: &str,
    method: &str,
    path: &str,
    target: Option<&str>,
    body: &[u8],
) -> anyhow::Result<Vec<Call>> {
    let json = || serde_json::from_slice::<Json>(body).unwrap_or(Json::Null);
    let op = target
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or_default();
    Ok(match service {
        "dynamodb" => dynamodb_calls(env, keys, op, &json()),
        "sqs" => {
            let b = json();
            let queue = b["QueueUrl"].as_str().unwrap_or_default();
            let name = queue.rsplit('/').next().unwrap_or_default();
            vec![call(format!("sqs:{op}"), env.arn("sqs", name))]
        }
        "secretsmanager" => {
            let b = json();
            let id = b["SecretId"].as_str().unwrap_or_default();
            let arn = if id.starts_with("arn:") {
                id.to_owned()
            } else {
                // Secrets' ARNs end in `-` and six random characters.
                env.arn("secretsmanager", &format!("secret:{id}-AbCdEf"))
            };
            vec![call(format!("secretsmanager:{op}"), arn)]
        }
        "s3" => {
            let trimmed = path.trim_start_matches('/');
            let (bucket, key) = trimmed.split_once('/').unwrap_or((trimmed, ""));
            let action = match (method, key.is_empty()) {
                ("PUT", false) => "s3:PutObject",
                ("GET" | "HEAD", false) => "s3:GetObject",
                ("DELETE", false) => "s3:DeleteObject",
                ("GET" | "HEAD", true) => "s3:ListBucket",
                _ => bail!("S3 {method} {path} is not a call `userstate stack` knows"),
            };
            let resource = if key.is_empty() {
                format!("arn:aws:s3:::{bucket}")
            } else {
                format!("arn:aws:s3:::{bucket}/{key}")
            };
            vec![call(action.into(), resource)]
        }
        "ses" if method == "POST" && path.ends_with("/outbound-emails") => {
            let from = json()["FromEmailAddress"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let address = from
                .rsplit_once('<')
                .map_or(from.as_str(), |(_, a)| a.trim_end_matches('>'))
                .to_owned();
            vec![call(
                "ses:SendEmail".into(),
                env.arn("ses", &format!("identity/{address}")),
            )]
        }
        other => bail!("{other} {method} {path}: a service `userstate stack` does not check"),
    })
}

fn call(action: String, resource: String) -> Call {
    Call {
        action,
        resource,
        leading_keys: Vec::new(),
    }
}

fn dynamodb_calls(env: &Env, keys: &KeyNames, op: &str, b: &Json) -> Vec<Call> {
    let table_arn = |t: &str| env.arn("dynamodb", &format!("table/{t}"));
    let pk = |table: &str, item: &Json| -> Vec<String> {
        keys.tables
            .get(table)
            .and_then(|k| item[k]["S"].as_str())
            .map(|s| vec![s.to_owned()])
            .unwrap_or_default()
    };
    let item_call = |action: &str, spec: &Json, key_field: &str| {
        let table = spec["TableName"].as_str().unwrap_or_default();
        Call {
            action: format!("dynamodb:{action}"),
            resource: table_arn(table),
            leading_keys: pk(table, &spec[key_field]),
        }
    };
    match op {
        "GetItem" | "DeleteItem" | "UpdateItem" => vec![item_call(op, b, "Key")],
        "PutItem" => vec![item_call(op, b, "Item")],
        "Query" => {
            let table = b["TableName"].as_str().unwrap_or_default();
            let index = b["IndexName"].as_str();
            let resource = match index {
                Some(i) => format!("{}/index/{i}", table_arn(table)),
                None => table_arn(table),
            };
            let key_attr = match index {
                Some(i) => keys.indexes.get(&(table.to_owned(), i.to_owned())),
                None => keys.tables.get(table),
            };
            let leading = key_attr
                .and_then(|k| query_partition_value(b, k))
                .map(|v| vec![v])
                .unwrap_or_default();
            vec![Call {
                action: "dynamodb:Query".into(),
                resource,
                leading_keys: leading,
            }]
        }
        "TransactWriteItems" | "TransactGetItems" => b["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                let (kind, spec) = t.as_object()?.iter().next()?;
                Some(match kind.as_str() {
                    "Put" => item_call("PutItem", spec, "Item"),
                    "Update" => item_call("UpdateItem", spec, "Key"),
                    "Delete" => item_call("DeleteItem", spec, "Key"),
                    "ConditionCheck" => item_call("ConditionCheckItem", spec, "Key"),
                    _ => item_call("GetItem", spec, "Key"),
                })
            })
            .collect(),
        "BatchGetItem" | "BatchWriteItem" => b["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(table, spec)| {
                let items: Vec<&Json> = match op {
                    "BatchGetItem" => spec["Keys"].as_array().into_iter().flatten().collect(),
                    _ => spec
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|w| {
                            let put = &w["PutRequest"]["Item"];
                            if put.is_null() {
                                &w["DeleteRequest"]["Key"]
                            } else {
                                put
                            }
                        })
                        .collect(),
                };
                Call {
                    action: format!("dynamodb:{op}"),
                    resource: table_arn(table),
                    leading_keys: items.iter().flat_map(|i| pk(table, i)).collect(),
                }
            })
            .collect(),
        other => vec![call(
            format!("dynamodb:{other}"),
            table_arn(b["TableName"].as_str().unwrap_or("*")),
        )],
    }
}

/// The partition key value a Query's `KeyConditionExpression` fixes (`pk = :v`, `#n = :v`).
fn query_partition_value(b: &Json, key_attr: &str) -> Option<String> {
    let expr = b["KeyConditionExpression"].as_str()?;
    let names = &b["ExpressionAttributeNames"];
    for clause in expr.split(" AND ").chain(expr.split(" and ")) {
        let Some((lhs, rhs)) = clause.split_once('=') else {
            continue;
        };
        let lhs = lhs.trim().trim_start_matches('(');
        let name = if lhs.starts_with('#') {
            names[lhs].as_str().unwrap_or_default()
        } else {
            lhs
        };
        if name == key_attr {
            let placeholder = rhs.trim().trim_end_matches(')');
            return b["ExpressionAttributeValues"][placeholder]["S"]
                .as_str()
                .map(str::to_owned);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> Env {
        Env {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            stack_name: "s".into(),
        }
    }

    #[test]
    fn glob_matches_like_iam() {
        assert!(glob("USER#*", "USER#alice"));
        assert!(glob(
            "arn:aws:s3:::b/user_profile_img/*",
            "arn:aws:s3:::b/user_profile_img/a.png"
        ));
        assert!(!glob(
            "arn:aws:s3:::b/user_profile_img/*",
            "arn:aws:s3:::b/other/a.png"
        ));
        assert!(glob("a?c", "abc"));
        assert!(!glob("USER#*", "WALLET#x"));
    }

    #[test]
    fn leading_keys_and_resources_are_checked_per_item_of_a_transaction() {
        let env = env();
        let table = env.arn("dynamodb", "table/main");
        let policy = Policy::from_policies(
            &json!([{"Statement": [
                {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
                 "Resource": table,
                 "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["WSCONN#*"]}}}
            ]}]),
            &env,
        )
        .unwrap();
        let mut keys = KeyNames::default();
        keys.tables.insert("main".into(), "pk".into());
        let put = |pk: &str| {
            json!({"TransactItems": [{"Put": {"TableName": "main", "Item": {"pk": {"S": pk}}}}]})
                .to_string()
        };
        let ok = calls(
            &env,
            &keys,
            "dynamodb",
            "POST",
            "/",
            Some("DynamoDB_20120810.TransactWriteItems"),
            put("WSCONN#1").as_bytes(),
        )
        .unwrap();
        assert!(ok.iter().all(|c| policy.allows(c)), "{ok:?}");
        let bad = calls(
            &env,
            &keys,
            "dynamodb",
            "POST",
            "/",
            Some("DynamoDB_20120810.TransactWriteItems"),
            put("WALLET#1").as_bytes(),
        )
        .unwrap();
        assert!(!bad.iter().all(|c| policy.allows(c)), "{bad:?}");
        let update = calls(
            &env,
            &keys,
            "dynamodb",
            "POST",
            "/",
            Some("DynamoDB_20120810.UpdateItem"),
            br#"{"TableName":"main","Key":{"pk":{"S":"WSCONN#1"}}}"#,
        )
        .unwrap();
        assert!(!policy.allows(&update[0]), "UpdateItem is not granted");
    }

    #[test]
    fn query_leading_key_comes_from_the_key_condition() {
        let b = json!({"KeyConditionExpression": "#p = :p AND begins_with(sk, :s)",
            "ExpressionAttributeNames": {"#p": "pk"},
            "ExpressionAttributeValues": {":p": {"S": "USER#a"}, ":s": {"S": "X"}}});
        assert_eq!(query_partition_value(&b, "pk").as_deref(), Some("USER#a"));
    }

    #[test]
    fn sam_sqs_template_and_unknown_templates() {
        let env = env();
        let p = Policy::from_policies(&json!([{"SQSSendMessagePolicy": {"QueueName": "q"}}]), &env)
            .unwrap();
        assert!(p.allows(&call("sqs:SendMessage".into(), env.arn("sqs", "q"))));
        assert!(!p.allows(&call("sqs:ReceiveMessage".into(), env.arn("sqs", "q"))));
        assert!(
            Policy::from_policies(&json!([{"DynamoDBCrudPolicy": {"TableName": "t"}}]), &env)
                .is_err()
        );
    }
}
