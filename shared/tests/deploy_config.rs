//! A first `sam deploy` has what it needs: every template parameter without a default gets a
//! value from `samconfig.toml` for dev and for prod, and every Secrets Manager secret and key the
//! template reads is one the README tells the operator to create.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

fn template() -> Value {
    serde_yaml::from_str(include_str!("../../template.yaml")).expect("template.yaml parses")
}

fn samconfig() -> toml::Table {
    include_str!("../../samconfig.toml")
        .parse()
        .expect("samconfig.toml parses")
}

const README: &str = include_str!("../../README.md");

/// The `Key=Value` pairs of an environment's `deploy.parameter_overrides`.
fn overrides(config: &toml::Table, env: &str) -> BTreeMap<String, String> {
    let line = config[env]["deploy"]["parameters"]["parameter_overrides"]
        .as_str()
        .unwrap_or_else(|| panic!("[{env}.deploy.parameters] parameter_overrides"));
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The template parameters CloudFormation cannot fill itself.
fn required_parameters(t: &Value) -> BTreeSet<String> {
    t["Parameters"]
        .as_mapping()
        .expect("Parameters")
        .iter()
        .filter(|(_, p)| p.get("Default").is_none())
        .filter_map(|(k, _)| k.as_str().map(str::to_owned))
        .collect()
}

/// The functions: logical id → resource.
fn functions(t: &Value) -> Vec<(String, Value)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(k, r)| (k.as_str().unwrap_or_default().to_owned(), r.clone()))
        .collect()
}

/// The text of a scalar or an intrinsic (`!Sub "…"`, `!Ref X`).
fn text(v: &Value) -> String {
    match v {
        Value::Tagged(t) => text(&t.value),
        Value::String(s) => s.clone(),
        Value::Sequence(s) => s.iter().map(text).collect::<Vec<_>>().join(","),
        other => serde_yaml::to_string(other).unwrap_or_default(),
    }
}

/// The template parameters a function's `USERSTATE_SECRETS` names.
fn secret_params(f: &Value) -> Vec<String> {
    let names = text(&f["Properties"]["Environment"]["Variables"]["USERSTATE_SECRETS"]);
    names
        .split(',')
        .filter_map(|n| n.trim().strip_prefix("${")?.strip_suffix('}'))
        .map(str::to_owned)
        .collect()
}

/// `(parameter, key)`: the keys each secret parameter's description lists in backticks.
fn secret_reads(t: &Value) -> BTreeSet<(String, String)> {
    let mut reads = BTreeSet::new();
    for (_, f) in functions(t) {
        for param in secret_params(&f) {
            let description = text(&t["Parameters"][param.as_str()]["Description"]);
            for key in description.split('`').skip(1).step_by(2) {
                reads.insert((param.clone(), key.to_owned()));
            }
        }
    }
    reads
}

#[test]
fn every_required_parameter_has_a_value_for_dev_and_prod() {
    let t = template();
    let config = samconfig();
    let required = required_parameters(&t);
    assert!(required.contains("XenditSecretParam"), "{required:?}");
    for env in ["default", "dev", "prod"] {
        let given = overrides(&config, env);
        let missing: Vec<_> = required
            .iter()
            .filter(|p| !given.contains_key(*p))
            .collect();
        assert!(missing.is_empty(), "[{env}] has no value for {missing:?}");
        let unknown: Vec<_> = given
            .keys()
            .filter(|k| t["Parameters"].get(k.as_str()).is_none())
            .collect();
        assert!(
            unknown.is_empty(),
            "[{env}] overrides unknown parameters {unknown:?}"
        );
    }
}

#[test]
fn the_readme_names_every_secret_and_key_the_template_reads() {
    let config = samconfig();
    let reads = secret_reads(&template());
    assert!(reads.len() >= 5, "{reads:?}");
    for env in ["dev", "prod"] {
        let given = overrides(&config, env);
        for (param, key) in &reads {
            let name = given
                .get(param)
                .unwrap_or_else(|| panic!("[{env}] names no secret for {param}"));
            let dev_name = name.replacen("/prod", "/dev", 1);
            assert!(
                README.contains(&format!("`{dev_name}`")),
                "README does not tell the operator to create {dev_name}"
            );
            assert!(
                README.contains(&format!("`{key}`")),
                "README does not name the key {key} of {name}"
            );
        }
    }
    assert!(
        README.contains("userstate/prod/xendit"),
        "the prod names are stated"
    );
}

/// Settings that are secrets: never in a function's configuration.
const SECRET_SETTINGS: [&str; 5] = [
    "SECRET_AUTH_CONFIG",
    "XENDIT_SECRET_KEY",
    "XENDIT_CALLBACK_TOKEN",
    "SMSVIROTOKEN",
    "FCM_SERVICE_ACCOUNT_JSON",
];

#[test]
fn no_function_configuration_holds_a_secret_and_each_reads_only_its_own() {
    let t = template();
    let globals = &t["Globals"]["Function"]["Environment"]["Variables"];
    for (name, f) in functions(&t) {
        let vars = &f["Properties"]["Environment"]["Variables"];
        for scope in [globals, vars] {
            for (k, v) in scope.as_mapping().into_iter().flatten() {
                let (k, v) = (k.as_str().unwrap_or_default(), text(v));
                assert!(
                    !SECRET_SETTINGS.contains(&k),
                    "{name} has {k} in its environment"
                );
                assert!(
                    !v.contains("resolve:secretsmanager"),
                    "{name}: {k} resolves a secret into its environment"
                );
            }
        }
        // It may read exactly the secrets it names, nothing else.
        let params = secret_params(&f);
        let allowed: BTreeSet<String> = f["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|p| p["Statement"].as_sequence().cloned().unwrap_or_default())
            .filter(|s| text(&s["Action"]).contains("secretsmanager:GetSecretValue"))
            .flat_map(|s| s["Resource"].as_sequence().cloned().unwrap_or_default())
            .map(|r| text(&r))
            .collect();
        let wanted: BTreeSet<String> = params
            .iter()
            .map(|p| {
                format!("arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:${{{p}}}-*")
            })
            .collect();
        assert_eq!(allowed, wanted, "{name}: secret grants");
    }
}

#[test]
fn the_notifier_environment_is_far_below_lambdas_4_kb() {
    let t = template();
    let (_, notifier) = functions(&t)
        .into_iter()
        .find(|(n, _)| n == "NotifierFunction")
        .expect("NotifierFunction");
    let mut size = 0;
    for scope in [
        &t["Globals"]["Function"]["Environment"]["Variables"],
        &notifier["Properties"]["Environment"]["Variables"],
    ] {
        for (k, v) in scope.as_mapping().into_iter().flatten() {
            // A reference resolves to an ARN, URL or name: counted at 256 bytes each.
            let v = text(v);
            let refs = v.matches("${").count() + usize::from(v.is_empty());
            size += k.as_str().unwrap_or_default().len() + v.len() + refs * 256;
        }
    }
    assert!(size < 2_048, "notifier environment about {size} bytes");
}

#[test]
fn the_http_apis_preflight_allows_every_header_browser_clients_send_and_read() {
    let t = template();
    let api = t["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .find(|r| r["Type"].as_str() == Some("AWS::Serverless::HttpApi"))
        .expect("an HttpApi")
        .clone();
    let cors = &api["Properties"]["CorsConfiguration"];
    let listed = |key: &str| -> BTreeSet<String> {
        cors[key]
            .as_sequence()
            .unwrap_or_else(|| panic!("CorsConfiguration.{key}"))
            .iter()
            .map(|h| text(h).to_lowercase())
            .collect()
    };
    let (allow, expose) = (listed("AllowHeaders"), listed("ExposeHeaders"));
    for h in shared::http::CORS_ALLOW_HEADERS {
        assert!(allow.contains(h), "AllowHeaders lacks {h}: {allow:?}");
    }
    for h in shared::http::CORS_EXPOSE_HEADERS {
        assert!(expose.contains(h), "ExposeHeaders lacks {h}: {expose:?}");
    }
    let methods = listed("AllowMethods");
    for m in ["get", "post", "put", "delete"] {
        assert!(methods.contains(m), "AllowMethods lacks {m}");
    }
}

/// Every function starts with the settings the template gives it: its literal values parse
/// (a reference resolves to a name, URL or ARN; a placeholder stands in for those).
#[test]
fn every_functions_template_environment_is_a_valid_configuration() {
    let t = template();
    for (name, f) in functions(&t) {
        let mut vars = BTreeMap::new();
        for scope in [
            &t["Globals"]["Function"]["Environment"]["Variables"],
            &f["Properties"]["Environment"]["Variables"],
        ] {
            for (k, v) in scope.as_mapping().into_iter().flatten() {
                let value = match v {
                    Value::Tagged(_) => "https://resolved.example/name".to_owned(),
                    other => text(other).trim_end().to_owned(),
                };
                vars.insert(k.as_str().unwrap_or_default().to_owned(), value);
            }
        }
        if let Err(e) = shared::config::Config::from_lookup(|k| vars.get(k).cloned()) {
            panic!("{name}: the template's environment does not parse: {e}");
        }
    }
}
