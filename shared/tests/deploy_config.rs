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

/// `(parameter, key)` of every `{{resolve:secretsmanager:${Parameter}:SecretString:KEY}}`.
fn secret_reads() -> BTreeSet<(String, String)> {
    let text = include_str!("../../template.yaml");
    text.split("{{resolve:secretsmanager:${")
        .skip(1)
        .filter_map(|rest| {
            let (param, rest) = rest.split_once("}:SecretString:")?;
            let key = rest.split("}}").next()?;
            Some((param.to_owned(), key.to_owned()))
        })
        .collect()
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
    let reads = secret_reads();
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
