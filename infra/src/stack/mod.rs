//! `userstate stack`: `template.yaml` deployed locally without Docker. Every function the
//! template names runs as its own process (its release or debug binary) behind its own Lambda
//! Runtime API, with the environment the template gives it; the template's tables, queues,
//! bucket and secrets are created in moto; API Gateway (HTTP API, function URLs, WebSocket API
//! with its Management API), the SQS event source and the schedule are served here; every AWS
//! call is checked against the calling function's template policy. Outbound providers go to
//! the Xendit simulator and an SMS capture on the control server. See docs/STACK.md.

mod aws;
mod fakes;
mod gateway;
mod iam;
mod runtime;
mod sources;
mod template;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use axum::Router;
use axum::extract::State;
use axum::routing::{any, get, post};
use clap::{Args, Subcommand};
use serde_json::{Value as Json, json};

use gateway::{Cors, Functions, HttpApi, Route, WsApi};
use iam::{KeyNames, Policy};
use runtime::{Directory, Function, Spec};
use sources::{Schedule, SqsSource};
use template::{Env, Template, strings, text};

/// Flags of `stack`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct StackArgs {
    #[command(subcommand)]
    command: Option<StackCommand>,
    /// Build (and run) the release binaries, as `sam build` deploys them.
    #[arg(long)]
    release: bool,
    /// Port of the HTTP API; the WebSocket API, the control server and function URLs take the
    /// next ones (0: free ports, printed at start).
    #[arg(long, default_value_t = 33020)]
    port: u16,
    /// Take the function binaries from this directory instead of building them.
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// The template to deploy.
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// Template parameter overrides, `Name=Value` (repeatable).
    #[arg(long = "parameter", value_name = "NAME=VALUE")]
    parameters: Vec<String>,
    /// Visibility timeout of the created queues instead of the template's (seconds; a short one
    /// makes redrive to the DLQ observable in a test).
    #[arg(long, value_name = "SECS")]
    queue_visibility: Option<u32>,
    /// Fire the schedules every SECS instead of at their rate.
    #[arg(long, value_name = "SECS")]
    tick: Option<u64>,
    /// Register an API key in the stack's table at start, `holder:key` (repeatable), for the
    /// Basic-auth routes (`/sys/*`, admin push).
    #[arg(long = "api-key", value_name = "HOLDER:KEY")]
    api_keys: Vec<String>,
    /// Instances per function at most (a function's reserved concurrency, when set, is its bound).
    #[arg(long, default_value_t = 4)]
    max_instances: usize,
}

#[derive(Subcommand, Debug)]
enum StackCommand {
    /// Fire the running stack's schedules now (`POST /_stack/tick` on its control server).
    Tick {
        /// The control server's port (printed at start; the HTTP API port + 2 by default).
        #[arg(long, default_value_t = 33022)]
        control_port: u16,
    },
}

pub async fn run(args: StackArgs) -> anyhow::Result<()> {
    if let Some(StackCommand::Tick { control_port }) = args.command {
        let res = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{control_port}/_stack/tick"))
            .send()
            .await
            .with_context(|| format!("no stack's control server on port {control_port}"))?;
        let ok = res.status().is_success();
        println!("{}", res.text().await.unwrap_or_default());
        return if ok {
            Ok(())
        } else {
            bail!("a scheduled run failed")
        };
    }
    let stack = Stack::start(args).await?;
    println!("{}", serde_json::to_string(&stack.info)?);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!(target: "stack", "stopping (the function processes end with the stack)");
    Ok(())
}

/// A running stack.
struct Stack {
    info: Json,
}

/// The SigV4 region, account and moto endpoint the stack uses.
struct Moto {
    endpoint: String,
    sdk: aws_config::SdkConfig,
}

async fn moto() -> anyhow::Result<Moto> {
    let endpoint = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(e) => e,
        Err(_) => start_emulator()?,
    };
    let host = reqwest::Url::parse(&endpoint)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    if !matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1" | "[::1]") {
        bail!(
            "AWS_ENDPOINT_URL={endpoint} is not a loopback address: `userstate stack` only runs \
             on a local emulator (unset it to start moto with scripts/emulator.sh)"
        );
    }
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new(region))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "stack",
        ))
        .load()
        .await;
    Ok(Moto { endpoint, sdk })
}

/// `scripts/emulator.sh start` (the pinned moto of the tests) and its endpoint.
fn start_emulator() -> anyhow::Result<String> {
    let script = Path::new("scripts/emulator.sh");
    if !script.is_file() {
        bail!(
            "AWS_ENDPOINT_URL is not set and scripts/emulator.sh is not here: run `userstate stack` \
             from the repository root (or point AWS_ENDPOINT_URL at a running moto)"
        );
    }
    let status = std::process::Command::new(script)
        .arg("start")
        .status()
        .context("scripts/emulator.sh start")?;
    if !status.success() {
        bail!("scripts/emulator.sh start failed (see its output above)");
    }
    let dir = std::env::var("USERSTATE_EMULATOR_DIR")
        .unwrap_or_else(|_| "/tmp/userstate-emulator".into());
    let port =
        std::fs::read_to_string(Path::new(&dir).join("port")).context("emulator port file")?;
    Ok(format!("http://127.0.0.1:{}", port.trim()))
}

async fn bind(port: u16) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| anyhow!("cannot listen on 127.0.0.1:{port}: {e}; pick other ports with --port <n> (0: free ports)"))
}

fn port_after(base: u16, n: u16) -> u16 {
    if base == 0 { 0 } else { base + n }
}

fn serve(listener: tokio::net::TcpListener, router: Router) {
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
}

/// A secret the template's parameters name, with generated local values.
fn secret_value(param: &str, fcm_account: &Json) -> Option<Json> {
    let token = || {
        format!(
            "stack-{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
    };
    Some(match param {
        "SecretAuthConfigParam" => json!({ "SECRET_AUTH_CONFIG": token() }),
        "NotifierSecretParam" => json!({
            "SMSVIROTOKEN": token(),
            "FCM_SERVICE_ACCOUNT_JSON": fcm_account.to_string(),
        }),
        "XenditSecretParam" => json!({
            "XENDIT_SECRET_KEY": format!("xnd_development_{}", uuid::Uuid::new_v4().simple()),
            "XENDIT_CALLBACK_TOKEN": token(),
        }),
        _ => return None,
    })
}

impl Stack {
    async fn start(args: StackArgs) -> anyhow::Result<Stack> {
        let source = std::fs::read_to_string(&args.template)
            .with_context(|| format!("cannot read {}", args.template.display()))?;
        let moto = moto().await?;
        let region = moto
            .sdk
            .region()
            .map_or("us-east-1".to_owned(), |r| r.to_string());
        let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let env = Env {
            account: "123456789012".into(),
            region: region.clone(),
            stack_name: format!("stack-{id}"),
        };
        let prefix = env.stack_name.clone();
        let mut t = Template::parse(&source, env.clone())?;

        // Listeners first: their ports are part of the parameters (PublicBaseUrl, SmsBaseUrl).
        let http_l = bind(args.port).await?;
        let ws_l = bind(port_after(args.port, 1)).await?;
        let control_l = bind(port_after(args.port, 2)).await?;
        let aws_l = bind(0).await?;
        let url = |l: &tokio::net::TcpListener| -> anyhow::Result<String> {
            Ok(format!("http://{}", l.local_addr()?))
        };
        let (http_url, ws_addr, control_url, aws_url) = (
            url(&http_l)?,
            ws_l.local_addr()?,
            url(&control_l)?,
            url(&aws_l)?,
        );

        let mut params: BTreeMap<String, String> = BTreeMap::from([
            ("PublicBaseUrl".into(), http_url.clone()),
            ("SmsBaseUrl".into(), control_url.clone()),
            ("MailFrom".into(), "no-reply@userstate.local".into()),
        ]);
        let resources = t.resources();
        for name in secret_params(&source) {
            params.insert(
                name.clone(),
                format!(
                    "{prefix}/{}",
                    name.trim_end_matches("Param").to_ascii_lowercase()
                ),
            );
        }
        for p in &args.parameters {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| anyhow!("--parameter takes NAME=VALUE"))?;
            params.insert(k.into(), v.into());
        }
        t.set_params(&params)?;
        let stage = t
            .params
            .get("Stage")
            .cloned()
            .unwrap_or_else(|| "dev".into());

        // Physical names and attributes of every resource.
        let ws_api_id = format!("ws{id}");
        let http_api_id = format!("http{id}");
        for (logical, ty) in &resources {
            let physical = format!("{prefix}-{logical}");
            let (r, arn) = match ty.as_str() {
                "AWS::DynamoDB::Table" => (
                    physical.clone(),
                    env.arn("dynamodb", &format!("table/{physical}")),
                ),
                "AWS::SQS::Queue" => {
                    t.attrs
                        .insert(format!("{logical}.QueueName"), physical.clone());
                    (
                        format!("{}/{}/{physical}", moto.endpoint, env.account),
                        env.arn("sqs", &physical),
                    )
                }
                "AWS::S3::Bucket" => {
                    let b = physical.to_ascii_lowercase();
                    (b.clone(), format!("arn:aws:s3:::{b}"))
                }
                "AWS::Serverless::Function" => (
                    physical.clone(),
                    env.arn("lambda", &format!("function:{physical}")),
                ),
                "AWS::ApiGatewayV2::Api" => (ws_api_id.clone(), String::new()),
                "AWS::Serverless::HttpApi" => (http_api_id.clone(), String::new()),
                "AWS::Logs::LogGroup" => (
                    physical.clone(),
                    env.arn("logs", &format!("log-group:{physical}:*")),
                ),
                "AWS::SNS::Topic" => (env.arn("sns", &physical), env.arn("sns", &physical)),
                _ => (logical.clone(), String::new()),
            };
            t.refs.insert(logical.clone(), r);
            t.attrs.insert(format!("{logical}.Arn"), arn);
        }

        // Resources in moto.
        let ddb = aws_sdk_dynamodb::Client::new(&moto.sdk);
        let sqs = aws_sdk_sqs::Client::new(&moto.sdk);
        let mut keys = KeyNames::default();
        for (logical, ty) in &resources {
            if ty != "AWS::DynamoDB::Table" && ty != "AWS::S3::Bucket" {
                continue;
            }
            let props = t.resolved(logical, "Properties")?;
            let physical = t.refs[logical].clone();
            match ty.as_str() {
                "AWS::DynamoDB::Table" => {
                    let def = match logical.as_str() {
                        "MainTable" => &shared::store::schema::MAIN,
                        "LogsTable" => &shared::store::schema::LOGS,
                        other => {
                            bail!("table {other}: `userstate stack` knows MainTable and LogsTable")
                        }
                    };
                    shared::store::dynamo::create_table(&ddb, def, &physical).await?;
                    if let Some(pk) = hash_key(&props["KeySchema"]) {
                        keys.tables.insert(physical.clone(), pk);
                    }
                    for idx in props["GlobalSecondaryIndexes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                    {
                        if let (Some(name), Some(pk)) =
                            (idx["IndexName"].as_str(), hash_key(&idx["KeySchema"]))
                        {
                            keys.indexes.insert((physical.clone(), name.to_owned()), pk);
                        }
                    }
                }
                "AWS::S3::Bucket" => {
                    let s3 = aws_sdk_s3::Client::new(&moto.sdk);
                    s3.create_bucket()
                        .bucket(&physical)
                        .send()
                        .await
                        .context("CreateBucket")?;
                }
                _ => {}
            }
        }
        if let Some(main) = t.refs.get("MainTable") {
            let table: shared::store::TableRef = Arc::new(shared::store::dynamo::DynamoTable::new(
                ddb.clone(),
                &shared::store::schema::MAIN,
                main,
            ));
            let keys = shared::auth::ApiKeys::new(table, Arc::new(shared::clock::SystemClock));
            for spec in &args.api_keys {
                let (holder, key) = spec
                    .split_once(':')
                    .ok_or_else(|| anyhow!("--api-key takes holder:key"))?;
                keys.register(holder, key, "registered by userstate stack --api-key", true)
                    .await?;
            }
        }
        // Queues: dead-letter queues first (the others' redrive policies name them).
        let mut queues: Vec<(String, Json)> = Vec::new();
        for (logical, ty) in &resources {
            if ty == "AWS::SQS::Queue" {
                queues.push((logical.clone(), t.resolved(logical, "Properties")?));
            }
        }
        queues.sort_by_key(|(_, p)| !p["RedrivePolicy"].is_null());
        for (logical, props) in &queues {
            let name = t.attrs[&format!("{logical}.QueueName")].clone();
            let mut req = sqs.create_queue().queue_name(&name);
            use aws_sdk_sqs::types::QueueAttributeName as A;
            let visibility = args
                .queue_visibility
                .map(|v| v.to_string())
                .or_else(|| text(&props["VisibilityTimeout"]).map(str::to_owned));
            if let Some(v) = visibility {
                req = req.attributes(A::VisibilityTimeout, v);
            }
            if let Some(v) = text(&props["MessageRetentionPeriod"]) {
                req = req.attributes(A::MessageRetentionPeriod, v);
            }
            if props["RedrivePolicy"].is_object() {
                let rp = &props["RedrivePolicy"];
                let policy = json!({
                    "deadLetterTargetArn": rp["deadLetterTargetArn"],
                    "maxReceiveCount": text(&rp["maxReceiveCount"]).and_then(|n| n.parse::<u32>().ok()).unwrap_or(5),
                });
                req = req.attributes(A::RedrivePolicy, policy.to_string());
            }
            let created = req
                .send()
                .await
                .with_context(|| format!("CreateQueue {name}"))?;
            if let Some(u) = created.queue_url {
                t.refs.insert(logical.clone(), u);
            }
        }
        // Secrets, with generated values; the simulator needs the Xendit ones.
        let fakes = fakes::Fakes::new(&control_url)?;
        let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk);
        let mut secret_values: BTreeMap<String, Json> = BTreeMap::new();
        for param in secret_params(&source) {
            let (Some(name), Some(value)) = (
                t.params.get(&param),
                secret_value(&param, &fakes.service_account),
            ) else {
                continue;
            };
            sm.create_secret()
                .name(name)
                .secret_string(value.to_string())
                .send()
                .await
                .with_context(|| format!("CreateSecret {name}"))?;
            secret_values.insert(param, value);
        }
        let mail_from = t.params.get("MailFrom").cloned().unwrap_or_default();
        aws_sdk_sesv2::Client::new(&moto.sdk)
            .create_email_identity()
            .email_identity(&mail_from)
            .send()
            .await
            .context("SES CreateEmailIdentity")?;

        // Functions.
        let globals = t.globals_function()?;
        let bin_dir = match &args.bin_dir {
            Some(d) => d.clone(),
            None => build(&t, &resources, args.release)?,
        };
        let directory = Arc::new(Directory::default());
        let xendit_url = format!("{control_url}{}", xendit_sim::PREFIX);
        let base_env: Vec<(String, String)> = vec![
            ("AWS_REGION".into(), region.clone()),
            ("AWS_DEFAULT_REGION".into(), region.clone()),
            ("AWS_ENDPOINT_URL".into(), aws_url.clone()),
            ("XENDIT_BASE_URL".into(), xendit_url.clone()),
            ("FCM_BASE_URL".into(), control_url.clone()),
            ("STACK_ACCOUNT".into(), env.account.clone()),
        ];
        let mut specs = Vec::new();
        let mut policies = HashMap::new();
        for (logical, ty) in &resources {
            if ty != "AWS::Serverless::Function" {
                continue;
            }
            let props = t.resolved(logical, "Properties")?;
            let meta = t.resolved(logical, "Metadata")?;
            let binary = text(&meta["BuildProperties"]["Binary"])
                .ok_or_else(|| anyhow!("{logical}: no Metadata.BuildProperties.Binary"))?
                .to_owned();
            let mut vars: BTreeMap<String, String> = BTreeMap::new();
            for source in [
                &globals["Environment"]["Variables"],
                &props["Environment"]["Variables"],
            ] {
                for (k, v) in source.as_object().into_iter().flatten() {
                    vars.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
                }
            }
            // The stack's own WebSocket API is reached here, not at execute-api.
            for v in vars.values_mut() {
                let aws_ws = format!("https://{ws_api_id}.execute-api.{region}.amazonaws.com/");
                if let Some(rest) = v.strip_prefix(&aws_ws) {
                    *v = format!("http://{ws_addr}/{rest}");
                }
            }
            let number = |key: &str, default: u64| {
                text(&props[key])
                    .or_else(|| text(&globals[key]))
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(default)
            };
            let reserved =
                text(&props["ReservedConcurrentExecutions"]).and_then(|s| s.parse::<usize>().ok());
            let policy = Policy::from_policies(&props["Policies"], &env)
                .with_context(|| format!("{logical}.Policies"))?;
            policies.insert(logical.clone(), policy);
            specs.push(Spec {
                logical: logical.clone(),
                name: t.refs[logical].clone(),
                path: bin_dir.join(&binary),
                binary,
                env: vars.into_iter().collect(),
                timeout: Duration::from_secs(number("Timeout", 3)),
                memory_mb: number("MemorySize", 128) as u32,
                max_instances: reserved.filter(|r| *r > 0).unwrap_or(args.max_instances),
            });
        }
        for s in &specs {
            if !s.path.is_file() {
                bail!(
                    "{}: binary {} not found (build it, or drop --bin-dir)",
                    s.logical,
                    s.path.display()
                );
            }
        }
        let proxy = Arc::new(aws::AwsProxy::new(
            env.clone(),
            keys,
            policies,
            directory.clone(),
            moto.endpoint.clone(),
        ));
        let functions: Functions = Arc::new(
            specs
                .into_iter()
                .map(|s| {
                    (
                        s.logical.clone(),
                        Arc::new(Function::new(s, base_env.clone(), directory.clone())),
                    )
                })
                .collect(),
        );

        // HTTP API, function URLs, WebSocket API.
        let queue_url = |arn: &str| {
            queues
                .iter()
                .find(|(q, _)| t.attrs.get(&format!("{q}.Arn")).map(String::as_str) == Some(arn))
                .map(|(q, _)| t.refs[q].clone())
        };
        let mut routes = Vec::new();
        let mut function_urls = Vec::new();
        let mut sqs_sources = Vec::new();
        let mut schedules = Vec::new();
        for (logical, ty) in &resources {
            if ty != "AWS::Serverless::Function" {
                continue;
            }
            let props = t.resolved(logical, "Properties")?;
            if props["FunctionUrlConfig"].is_object() {
                function_urls.push(logical.clone());
            }
            let invoke_config = &props["EventInvokeConfig"];
            for (event_name, ev) in props["Events"].as_object().into_iter().flatten() {
                let p = &ev["Properties"];
                match ev["Type"].as_str() {
                    Some("HttpApi") => routes.push(Route {
                        method: text(&p["Method"]).unwrap_or("ANY").to_ascii_uppercase(),
                        path: text(&p["Path"]).unwrap_or("$default").to_owned(),
                        function: logical.clone(),
                    }),
                    Some("SQS") => {
                        let arn = text(&p["Queue"]).unwrap_or_default().to_owned();
                        let queue = queue_url(&arn).ok_or_else(|| {
                            anyhow!("{logical}.{event_name}: queue {arn} is not in the template")
                        })?;
                        sqs_sources.push(SqsSource {
                            function: functions[logical].clone(),
                            queue_url: queue,
                            queue_arn: arn,
                            batch_size: text(&p["BatchSize"])
                                .and_then(|b| b.parse().ok())
                                .unwrap_or(10),
                            report_failures: strings(&p["FunctionResponseTypes"])
                                .iter()
                                .any(|r| r == "ReportBatchItemFailures"),
                            region: region.clone(),
                        });
                    }
                    Some("Schedule") => {
                        let expr = text(&p["Schedule"]).unwrap_or_default();
                        let every = match args.tick {
                            Some(s) => Some(Duration::from_secs(s.max(1))),
                            None => sources::rate(expr)?,
                        };
                        let destination =
                            text(&invoke_config["DestinationConfig"]["OnFailure"]["Destination"]);
                        let on_failure = destination.and_then(queue_url);
                        schedules.push(Arc::new(Schedule {
                            name: format!("{logical}.{event_name}"),
                            rule_arn: env
                                .arn("events", &format!("rule/{prefix}-{logical}{event_name}")),
                            function: functions[logical].clone(),
                            every,
                            retries: text(&invoke_config["MaximumRetryAttempts"])
                                .and_then(|n| n.parse().ok())
                                .unwrap_or(2),
                            on_failure,
                            account: env.account.clone(),
                            region: region.clone(),
                        }));
                    }
                    other => bail!(
                        "{logical}.{event_name}: event type {other:?} is not served by `userstate stack`"
                    ),
                }
            }
        }
        let cors = http_api_cors(&t, &resources)?;
        let seq = Arc::new(AtomicU64::new(0));
        let http_api = HttpApi {
            api_id: http_api_id.clone(),
            domain: format!("{http_api_id}.execute-api.{region}.amazonaws.com"),
            routes: Arc::new(routes),
            cors: cors.map(Arc::new),
            functions: functions.clone(),
            proxy: proxy.clone(),
            account: env.account.clone(),
            seq: seq.clone(),
        };
        serve(
            http_l,
            Router::new()
                .fallback(gateway::serve_http)
                .with_state(http_api),
        );
        let mut url_info = serde_json::Map::new();
        for (i, logical) in function_urls.iter().enumerate() {
            let l = bind(port_after(args.port, 3 + i as u16)).await?;
            url_info.insert(logical.clone(), json!(url(&l)?));
            let api = HttpApi {
                api_id: format!("url{i}{id}"),
                domain: format!("url{i}{id}.lambda-url.{region}.on.aws"),
                routes: Arc::new(vec![Route {
                    method: "$default".into(),
                    path: "$default".into(),
                    function: logical.clone(),
                }]),
                cors: None,
                functions: functions.clone(),
                proxy: proxy.clone(),
                account: env.account.clone(),
                seq: seq.clone(),
            };
            serve(
                l,
                Router::new().fallback(gateway::serve_http).with_state(api),
            );
        }
        let ws_api = ws_api(
            &t, &resources, &functions, &proxy, &ws_api_id, &stage, &region,
        )?;
        if let Some(api) = ws_api {
            let router = Router::new()
                .route("/{stage}/@connections/{id}", any(gateway::manage))
                .fallback(gateway::ws_connect)
                .with_state(api);
            serve(ws_l, router);
        }

        // The AWS endpoint, event sources and the control server.
        serve(
            aws_l,
            Router::new()
                .fallback(aws::handle)
                .with_state(proxy.clone()),
        );
        for s in sqs_sources {
            tokio::spawn(s.run(sqs.clone()));
        }
        for s in &schedules {
            tokio::spawn(s.clone().run(sqs.clone()));
        }
        let callback_base = function_urls
            .iter()
            .find(|f| f.contains("Callback"))
            .and_then(|f| url_info.get(f))
            .and_then(Json::as_str)
            .map_or_else(|| http_url.clone(), str::to_owned);
        let xendit = secret_values
            .get("XenditSecretParam")
            .cloned()
            .unwrap_or(Json::Null);
        let mut sim = xendit_sim::SimSettings::new(
            xendit["XENDIT_SECRET_KEY"].as_str().unwrap_or_default(),
            xendit["XENDIT_CALLBACK_TOKEN"].as_str().unwrap_or_default(),
            callback_base,
        );
        sim.public_base_url = control_url.clone();
        let info = json!({
            "stack": prefix,
            "http_api": http_url,
            "websocket": format!("ws://{ws_addr}/{stage}"),
            "function_urls": url_info,
            "control": control_url,
            "xendit": xendit_url,
            "aws_endpoint": aws_url,
            "moto": moto.endpoint,
            "resources": resources
                .iter()
                .filter(|(_, ty)| matches!(ty.as_str(), "AWS::DynamoDB::Table" | "AWS::SQS::Queue" | "AWS::S3::Bucket" | "AWS::Serverless::Function"))
                .map(|(l, _)| (l.clone(), json!(t.refs[l])))
                .collect::<serde_json::Map<_, _>>(),
        });
        let control = Control {
            proxy,
            functions,
            schedules: Arc::new(schedules),
            sqs,
            info: info.clone(),
        };
        let router = Router::new()
            .route(
                "/_stack",
                get(|State(c): State<Control>| async move { axum::Json(c.info.clone()) }),
            )
            .route("/_stack/calls", get(calls))
            .route("/_stack/functions", get(function_list))
            .route(
                "/_stack/mail",
                get(|State(c): State<Control>| async move { axum::Json(c.proxy.mail()) }),
            )
            .route("/_stack/tick", post(tick))
            .route("/2015-03-31/functions/{name}/invocations", post(invoke))
            .with_state(control)
            .merge(fakes.routes());
        let router = xendit_sim::mount(router, sim);
        serve(control_l, router);
        tracing::info!(target: "stack", http_api = %info["http_api"], "stack ready");
        Ok(Stack { info })
    }
}

fn hash_key(schema: &Json) -> Option<String> {
    schema.as_array()?.iter().find(|k| k["KeyType"] == "HASH")?["AttributeName"]
        .as_str()
        .map(str::to_owned)
}

/// Parameters naming a Secrets Manager secret (their descriptions say so).
fn secret_params(text: &str) -> Vec<String> {
    let Ok(raw) = serde_yaml::from_str::<serde_yaml::Value>(text) else {
        return Vec::new();
    };
    raw.get("Parameters")
        .and_then(serde_yaml::Value::as_mapping)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let name = k.as_str()?;
            let desc = v
                .get("Description")
                .and_then(serde_yaml::Value::as_str)
                .unwrap_or("");
            desc.contains("Secrets Manager").then(|| name.to_owned())
        })
        .collect()
}

fn http_api_cors(t: &Template, resources: &[(String, String)]) -> anyhow::Result<Option<Cors>> {
    let Some((logical, _)) = resources
        .iter()
        .find(|(_, ty)| ty == "AWS::Serverless::HttpApi")
    else {
        return Ok(None);
    };
    let props = t.resolved(logical, "Properties")?;
    let c = &props["CorsConfiguration"];
    if !c.is_object() {
        return Ok(None);
    }
    let lower = |v: &Json| strings(v).iter().map(|s| s.to_ascii_lowercase()).collect();
    Ok(Some(Cors {
        allow_origins: strings(&c["AllowOrigins"]),
        allow_methods: strings(&c["AllowMethods"]),
        allow_headers: lower(&c["AllowHeaders"]),
        expose_headers: lower(&c["ExposeHeaders"]),
        max_age: text(&c["MaxAge"]).map(str::to_owned),
        allow_credentials: text(&c["AllowCredentials"]) == Some("true")
            || c["AllowCredentials"] == true,
    }))
}

fn ws_api(
    t: &Template,
    resources: &[(String, String)],
    functions: &Functions,
    proxy: &Arc<aws::AwsProxy>,
    api_id: &str,
    stage: &str,
    region: &str,
) -> anyhow::Result<Option<WsApi>> {
    let Some((api_logical, _)) = resources
        .iter()
        .find(|(_, ty)| ty == "AWS::ApiGatewayV2::Api")
    else {
        return Ok(None);
    };
    let api = t.resolved(api_logical, "Properties")?;
    let selection_field = text(&api["RouteSelectionExpression"])
        .and_then(|e| e.strip_prefix("$request.body."))
        .map(str::to_owned);
    let mut integrations = HashMap::new();
    for (logical, ty) in resources {
        if ty == "AWS::ApiGatewayV2::Integration" {
            let uri = t.resolved(logical, "Properties")?["IntegrationUri"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let function = functions
                .values()
                .find(|f| uri.contains(&format!("function:{}/", f.spec.name)))
                .map(|f| f.spec.logical.clone())
                .ok_or_else(|| {
                    anyhow!("{logical}: integration {uri} is not one of the template's functions")
                })?;
            integrations.insert(logical.clone(), function);
        }
    }
    let mut routes = HashMap::new();
    for (logical, ty) in resources {
        if ty == "AWS::ApiGatewayV2::Route" {
            let p = t.resolved(logical, "Properties")?;
            let key = text(&p["RouteKey"]).unwrap_or_default().to_owned();
            let target = text(&p["Target"]).unwrap_or_default();
            let integration = target.strip_prefix("integrations/").unwrap_or(target);
            let function = integrations.get(integration).cloned().ok_or_else(|| {
                anyhow!("{logical}: target {target} is not an integration of the template")
            })?;
            let route_response = !p["RouteResponseSelectionExpression"].is_null();
            routes.insert(key, (function, route_response));
        }
    }
    Ok(Some(WsApi::new(
        api_id.to_owned(),
        stage.to_owned(),
        format!("{api_id}.execute-api.{region}.amazonaws.com"),
        selection_field,
        routes,
        functions.clone(),
        proxy.clone(),
        proxy.env.account.clone(),
    )))
}

/// `cargo build` of every binary the template names; returns where they are.
fn build(t: &Template, resources: &[(String, String)], release: bool) -> anyhow::Result<PathBuf> {
    let mut cmd =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.arg("build").arg("--locked");
    if release {
        cmd.arg("--release");
    }
    for (logical, ty) in resources {
        if ty == "AWS::Serverless::Function" {
            let meta = t.resolved(logical, "Metadata")?;
            if let Some(b) = text(&meta["BuildProperties"]["Binary"]) {
                cmd.args(["--bin", b]);
            }
        }
    }
    eprintln!(
        "userstate stack: building the functions ({})",
        if release { "release" } else { "debug" }
    );
    let status = cmd.status().context("cargo build")?;
    if !status.success() {
        bail!("cargo build of the functions failed");
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    Ok(PathBuf::from(target).join(if release { "release" } else { "debug" }))
}

// ------------------------------------------------------------------------------ control server

#[derive(Clone)]
struct Control {
    proxy: Arc<aws::AwsProxy>,
    functions: Functions,
    schedules: Arc<Vec<Arc<Schedule>>>,
    sqs: aws_sdk_sqs::Client,
    info: Json,
}

async fn calls(State(c): State<Control>) -> axum::Json<Json> {
    let mut summary = c.proxy.summary();
    summary["instances"] = c
        .functions
        .iter()
        .map(|(k, f)| (k.clone(), json!(f.instances_started())))
        .collect::<serde_json::Map<_, _>>()
        .into();
    axum::Json(summary)
}

/// Each function as deployed: its resolved environment (the template's, without Lambda's own
/// variables and the stack's endpoints), timeout, memory and instance bound.
async fn function_list(State(c): State<Control>) -> axum::Json<Json> {
    let list = c
        .functions
        .iter()
        .map(|(k, f)| {
            let s = &f.spec;
            let env: serde_json::Map<String, Json> =
                s.env.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            let info = json!({
                "name": s.name, "binary": s.binary, "environment": env,
                "timeout_secs": s.timeout.as_secs(), "memory_mb": s.memory_mb,
                "max_instances": s.max_instances,
            });
            (k.clone(), info)
        })
        .collect::<serde_json::Map<_, _>>();
    axum::Json(Json::Object(list))
}

/// Lambda's Invoke API (what `cargo lambda invoke --invoke-port <control port>` calls): the
/// function by binary name (`auth`), logical id or physical name, synchronously, on the same
/// moto store as every other function. A failed invocation answers Lambda's error payload with
/// `X-Amz-Function-Error`, never hangs (an instance that dies at init fails the call).
async fn invoke(
    State(c): State<Control>,
    axum::extract::Path(name): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let found = c
        .functions
        .values()
        .find(|f| f.spec.binary == name || f.spec.logical == name || f.spec.name == name);
    let Some(function) = found else {
        let body = json!({"Type": "User", "Message": format!("Function not found: {name}")});
        return (
            axum::http::StatusCode::NOT_FOUND,
            [("x-amzn-errortype", "ResourceNotFoundException")],
            axum::Json(body),
        )
            .into_response();
    };
    let event: Json = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let body = json!({"Type": "User", "message": format!("Could not parse request body into json: {e}")});
            return (
                axum::http::StatusCode::BAD_REQUEST,
                [("x-amzn-errortype", "InvalidRequestContentException")],
                axum::Json(body),
            )
                .into_response();
        }
    };
    match function.invoke(event).await {
        Ok(payload) => axum::Json(payload).into_response(),
        Err(e) => {
            let kind = match &e {
                runtime::InvokeError::Function { kind, .. } => kind.clone(),
                runtime::InvokeError::Timeout(_) => "Sandbox.Timedout".into(),
                runtime::InvokeError::Crashed(_) => "Runtime.ExitError".into(),
            };
            let body = json!({"errorType": kind, "errorMessage": e.to_string()});
            ([("x-amz-function-error", "Unhandled")], axum::Json(body)).into_response()
        }
    }
}

async fn tick(State(c): State<Control>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut out = Vec::new();
    let mut ok = true;
    for s in c.schedules.iter() {
        match s.fire(&c.sqs).await {
            Ok(r) => out.push(json!({"schedule": s.name, "result": r})),
            Err(e) => {
                ok = false;
                out.push(json!({"schedule": s.name, "error": e.to_string()}));
            }
        }
    }
    let status = if ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::BAD_GATEWAY
    };
    (status, axum::Json(Json::Array(out))).into_response()
}
