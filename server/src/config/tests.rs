use super::*;

fn load(args: &[&str]) -> Result<Config, ConfigError> {
    Config::load_from(std::iter::once("streamboard").chain(args.iter().copied()))
}

fn serve(config: Config) -> ServeConfig {
    match config.command {
        Command::Serve(serve) => serve,
        other => panic!("expected serve, got {other:?}"),
    }
}

fn endpoint(config: Config) -> EndpointConfig {
    match config.command {
        Command::Endpoint(endpoint) => endpoint,
        other => panic!("expected endpoint, got {other:?}"),
    }
}

#[test]
fn endpoint_defaults_are_loopback_4567_and_realism_off() {
    let config = endpoint(load(&["endpoint"]).unwrap());
    assert_eq!(config.listen, "127.0.0.1:4567".parse().unwrap());
    assert_eq!(config.data_dir, PathBuf::from("./data"));
    assert_eq!(config.kinesis_dir(), PathBuf::from("./data/kinesis"));
    assert_eq!(config.iterator_ttl, Duration::from_secs(300));
    assert!(!config.throughput_limits);
    assert!(!config.faults.is_active());
}

#[test]
fn endpoint_flags_parse_into_types() {
    let config = endpoint(
        load(&[
            "endpoint",
            "--listen",
            "127.0.0.1:4999",
            "--data-dir",
            "/tmp/k",
            "--iterator-ttl",
            "2s",
            "--throughput-limits",
            "--fault-rate",
            "0.25",
            "--fault-operations",
            "PutRecords,GetRecords",
            "--fault-kind",
            "throttle",
            "--added-latency",
            "50ms",
            "--latency-rate",
            "0.1",
        ])
        .unwrap(),
    );
    assert_eq!(config.listen.port(), 4999);
    assert_eq!(config.data_dir, PathBuf::from("/tmp/k"));
    assert_eq!(config.iterator_ttl, Duration::from_secs(2));
    assert!(config.throughput_limits);
    assert_eq!(config.faults.error_rate, 0.25);
    assert_eq!(
        config.faults.operations,
        vec![Operation::PutRecords, Operation::GetRecords]
    );
    assert_eq!(config.faults.kind, FaultKind::Throttle);
    assert_eq!(config.faults.added_latency, Duration::from_millis(50));
    assert_eq!(config.faults.latency_rate, 0.1);
}

#[test]
fn endpoint_bad_values_name_the_option_and_exit_2() {
    for (args, option) in [
        (&["endpoint", "--fault-rate", "1.5"][..], "--fault-rate"),
        (
            &["endpoint", "--fault-operations", "PutRecords,Nope"][..],
            "--fault-operations",
        ),
        (&["endpoint", "--iterator-ttl", "0s"][..], "--iterator-ttl"),
        (&["endpoint", "--listen", "here"][..], "--listen"),
        (&["endpoint", "--shard-limit", "0"][..], "--shard-limit"),
    ] {
        let error = load(args).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{args:?}");
        assert!(error.to_string().contains(option), "{args:?}: {error}");
    }
    let help = load(&["endpoint", "--help"]).unwrap_err();
    assert_eq!(help.exit_code(), 0);
    for option in [
        "--iterator-ttl",
        "--fault-rate",
        "STREAMBOARD_ENDPOINT_LISTEN",
        "4567",
    ] {
        assert!(help.to_string().contains(option), "help lacks {option}");
    }
}

#[test]
fn endpoint_file_table_applies_under_flags() {
    let file = FileConfig::parse(
        r#"
        data_dir = "/srv/sb"
        [endpoint]
        listen = "127.0.0.1:5567"
        iterator_ttl = "10s"
        fault_rate = 0.1
        fault_operations = ["GetRecords"]
        "#,
    )
    .unwrap();
    let config = endpoint(
        Config::resolve(["streamboard", "endpoint", "--iterator-ttl", "3s"], file).unwrap(),
    );
    assert_eq!(config.listen.port(), 5567);
    assert_eq!(config.data_dir, PathBuf::from("/srv/sb"));
    assert_eq!(config.iterator_ttl, Duration::from_secs(3), "the flag wins");
    assert_eq!(config.faults.operations, vec![Operation::GetRecords]);

    let error = FileConfig::parse(
        "[endpoint]
lisen = \"x\"\n",
    )
    .unwrap_err();
    assert!(error.contains("unknown field `lisen`"), "{error}");
    let error = FileConfig::parse(
        "[endpoint]
fault_rate = 2.0\n",
    )
    .unwrap_err();
    assert!(error.contains("fault_rate"), "{error}");
    let error = FileConfig::parse(
        "[endpoint]
fault_operations = [\"Nope\"]\n",
    )
    .unwrap_err();
    assert!(error.contains("Nope"), "{error}");
}

#[test]
fn defaults_work_offline_and_bind_loopback() {
    let config = serve(load(&[]).unwrap());
    assert_eq!(config.server.listen, "127.0.0.1:3000".parse().unwrap());
    assert_eq!(config.server.data_dir, PathBuf::from("./data"));
    assert_eq!(config.server.heartbeat_interval, Duration::from_secs(5));
    assert_eq!(
        config.database_path(),
        PathBuf::from("./data/streamboard.db")
    );
}

#[test]
fn flags_are_parsed_into_types() {
    let config = serve(
        load(&[
            "serve",
            "--listen",
            "127.0.0.1:4000",
            "--data-dir",
            "/tmp/sb",
            "--heartbeat-interval",
            "250ms",
            "--live-tick",
            "100ms",
        ])
        .unwrap(),
    );
    assert_eq!(config.live.live_tick, Duration::from_millis(100));
    // The default shortest push interval (100 ms) never exceeds a shorter tick.
    assert_eq!(config.live.live_min_interval, Duration::from_millis(100));
    assert_eq!(config.server.listen.port(), 4000);
    assert_eq!(config.server.data_dir, PathBuf::from("/tmp/sb"));
    assert_eq!(config.server.heartbeat_interval, Duration::from_millis(250));
}

#[test]
fn live_min_interval_defaults_under_the_tick_and_may_not_exceed_it() {
    let config = serve(load(&["serve"]).unwrap());
    assert_eq!(config.live.live_tick, Duration::from_millis(250));
    assert_eq!(config.live.live_min_interval, Duration::from_millis(100));
    let config = serve(load(&["serve", "--live-tick", "40ms"]).unwrap());
    assert_eq!(config.live.live_min_interval, Duration::from_millis(40));
    let config = serve(load(&["serve", "--live-min-interval", "250ms"]).unwrap());
    assert_eq!(config.live.live_min_interval, Duration::from_millis(250));
    let error = load(&["serve", "--live-min-interval", "300ms"]).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("--live-min-interval") && message.contains("300ms"),
        "{message}"
    );
    assert_eq!(error.exit_code(), 2);
}

#[test]
fn engine_settings_come_from_flags_or_defaults() {
    let config = serve(load(&["serve"]).unwrap());
    assert_eq!(config.engine, EngineSettings::default());
    assert_eq!(config.engine.max_series_per_metric, 1000);
    let config = serve(
        load(&[
            "serve",
            "--allowed-lateness",
            "5m",
            "--max-series-per-metric",
            "50",
            "--flush-interval",
            "500ms",
            "--retention-1s",
            "2h",
        ])
        .unwrap(),
    );
    assert_eq!(config.engine.allowed_lateness, Duration::from_secs(300));
    assert_eq!(config.engine.max_series_per_metric, 50);
    assert_eq!(config.engine.flush_interval, Duration::from_millis(500));
    assert_eq!(config.engine.retention_1s, Duration::from_secs(7200));
    assert_eq!(
        config.engine.retention_1m,
        EngineSettings::default().retention_1m
    );
    let error = load(&["serve", "--max-series-per-metric", "0"]).unwrap_err();
    assert!(
        error.to_string().contains("--max-series-per-metric"),
        "{error}"
    );
    // Partitions: one per core unless set, 1 to 256.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    assert_eq!(EngineSettings::default().shell_config().partitions, cores);
    let config = serve(load(&["serve", "--engine-partitions", "3"]).unwrap());
    assert_eq!(config.engine.engine_partitions, Some(3));
    assert_eq!(config.engine.shell_config().partitions, 3);
    for bad in ["0", "257"] {
        let error = load(&["serve", "--engine-partitions", bad]).unwrap_err();
        assert!(error.to_string().contains("engine-partitions"), "{error}");
    }
}

#[test]
fn bad_flag_value_names_the_option_and_exits_2() {
    let error = load(&["serve", "--listen", "nowhere"]).unwrap_err();
    assert_eq!(error.exit_code(), 2);
    let text = error.to_string();
    assert!(text.contains("--listen"), "{text}");
    assert!(text.contains("nowhere"), "{text}");

    let error = load(&["serve", "--heartbeat-interval", "0s"]).unwrap_err();
    assert!(error.to_string().contains("greater than zero"), "{error}");
    let error = load(&["serve", "--shutdown-timeout", "10"]).unwrap_err();
    assert!(error.to_string().contains("--shutdown-timeout"), "{error}");
    assert!(error.to_string().contains("no unit"), "{error}");
}

#[test]
fn help_is_not_an_error_and_documents_every_option() {
    let error = load(&["serve", "--help"]).unwrap_err();
    assert_eq!(error.exit_code(), 0);
    let help = error.to_string();
    for option in [
        "--listen",
        "--data-dir",
        "--site-root",
        "--heartbeat-interval",
        "--live-tick",
        "--shutdown-timeout",
        "--config",
        "--log-format",
        "STREAMBOARD_LISTEN",
        "STREAMBOARD_DATA_DIR",
    ] {
        assert!(help.contains(option), "help lacks {option}:\n{help}");
    }
}

#[test]
fn file_values_apply_under_flags() {
    let file = FileConfig::parse(
        r#"
        listen = "127.0.0.1:5000"
        data_dir = "/srv/streamboard"
        heartbeat_interval = "2s"
        log_format = "json"
        "#,
    )
    .unwrap();
    let config =
        Config::resolve(["streamboard", "serve", "--listen", "127.0.0.1:6000"], file).unwrap();
    assert_eq!(config.log.log_format, LogFormat::Json);
    let serve = serve(config);
    assert_eq!(
        serve.server.listen.port(),
        6000,
        "the flag wins over the file"
    );
    assert_eq!(serve.server.data_dir, PathBuf::from("/srv/streamboard"));
    assert_eq!(serve.server.heartbeat_interval, Duration::from_secs(2));
}

#[test]
fn bad_file_values_name_the_key_and_line() {
    let error = FileConfig::parse("listen = \"127.0.0.1\"\n").unwrap_err();
    assert!(error.contains("listen"), "{error}");
    assert!(error.contains("line 1"), "{error}");

    let error = FileConfig::parse("\n\nheartbeat_interval = \"soon\"\n").unwrap_err();
    assert!(error.contains("heartbeat_interval"), "{error}");
    assert!(error.contains("line 3"), "{error}");

    let error = FileConfig::parse("lisen = \"127.0.0.1:1\"\n").unwrap_err();
    assert!(error.contains("unknown field `lisen`"), "{error}");
}

#[test]
fn file_errors_carry_the_path_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("streamboard.toml");
    std::fs::write(&path, "data_dir = 5\n").unwrap();
    let error = load(&["--config", path.to_str().unwrap()]).unwrap_err();
    assert_eq!(error.exit_code(), 2);
    assert!(error.to_string().contains("streamboard.toml"), "{error}");
    assert!(error.to_string().contains("data_dir"), "{error}");

    let missing = dir.path().join("missing.toml");
    let error = load(&["--config", missing.to_str().unwrap()]).unwrap_err();
    assert!(
        error.to_string().contains("cannot read config file"),
        "{error}"
    );
}

#[test]
fn relative_paths_in_a_file_are_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("streamboard.toml");
    std::fs::write(&path, "data_dir = \"state\"\n").unwrap();
    let config = serve(load(&["--config", path.to_str().unwrap()]).unwrap());
    assert_eq!(config.server.data_dir, dir.path().join("state"));
}

#[test]
fn consumer_options_from_flags() {
    let config = serve(
        load(&[
            "serve",
            "--stream",
            "a",
            "--stream",
            "arn:aws:kinesis:us-east-1:123456789012:stream/b",
            "--start",
            "trim_horizon",
            "--application",
            "billing",
            "--discovery-interval",
            "2s",
            "--idle-poll-interval",
            "50ms",
        ])
        .unwrap(),
    );
    assert_eq!(config.consumer.streams.len(), 2);
    assert_eq!(config.consumer.streams[0].name_or_arn.name().as_str(), "a");
    assert_eq!(config.consumer.streams[1].name_or_arn.name().as_str(), "b");
    assert!(
        config
            .consumer
            .streams
            .iter()
            .all(|s| s.start == StartPosition::TrimHorizon)
    );
    assert_eq!(config.consumer.application, "billing");
    assert_eq!(config.consumer.discovery_interval, Duration::from_secs(2));
    assert_eq!(
        config.consumer.idle_poll_interval,
        Duration::from_millis(50)
    );

    let defaults = serve(load(&[]).unwrap());
    assert!(defaults.consumer.streams.is_empty());
    assert_eq!(defaults.consumer.application, "streamboard");
    assert_eq!(
        defaults.consumer.discovery_interval,
        Duration::from_secs(10)
    );
    assert_eq!(
        defaults.consumer.idle_poll_interval,
        Duration::from_millis(200)
    );

    let error = load(&["serve", "--stream", "a b"]).unwrap_err();
    assert!(error.to_string().contains("--stream"), "{error}");
    let error = load(&["serve", "--stream", "a", "--start", "soon"]).unwrap_err();
    assert!(error.to_string().contains("--start"), "{error}");
}

#[test]
fn streams_tables_in_the_file() {
    let file = FileConfig::parse(
        r#"
        application = "ops"
        idle_poll_interval = "1s"
        [[streams]]
        name = "clicks"
        start = "trim_horizon"
        [[streams]]
        arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/logs"
        start = "2026-01-31T12:00:00Z"
        [[streams]]
        name = "orders"
        "#,
    )
    .unwrap();
    let config = serve(Config::resolve(["streamboard"], file).unwrap());
    assert_eq!(config.consumer.application, "ops");
    assert_eq!(config.consumer.idle_poll_interval, Duration::from_secs(1));
    let starts: Vec<_> = config.consumer.streams.iter().map(|s| s.start).collect();
    assert_eq!(starts[0], StartPosition::TrimHorizon);
    assert!(matches!(starts[1], StartPosition::AtTimestamp { .. }));
    assert_eq!(starts[2], StartPosition::Latest);
    assert_eq!(
        config.consumer.streams[1].name_or_arn.arn(),
        Some("arn:aws:kinesis:eu-west-1:123456789012:stream/logs")
    );

    let error = FileConfig::parse("[[streams]]\nname = \"x\"\nstart = \"later\"\n").unwrap_err();
    assert!(error.contains("start"), "{error}");
    assert!(error.contains("latest"), "{error}");
    let error = FileConfig::parse("[[streams]]\nnmae = \"x\"\n").unwrap_err();
    assert!(error.contains("nmae"), "{error}");

    let both =
        FileConfig::parse("[[streams]]\nname = \"x\"\narn = \"arn:aws:kinesis:a:1:stream/x\"\n")
            .unwrap();
    let error = Config::resolve(["streamboard"], both).unwrap_err();
    assert!(error.contains("streams[0]"), "{error}");
    let bad = FileConfig::parse("[[streams]]\nname = \"no spaces\"\n").unwrap();
    let error = Config::resolve(["streamboard"], bad).unwrap_err();
    assert!(error.contains("streams[0].name"), "{error}");
}

#[test]
fn produce_options() {
    let config = match load(&[
        "produce",
        "--stream",
        "clicks",
        "--endpoint-url",
        "http://127.0.0.1:4567",
        "--demo",
        "clickstream",
        "--rate",
        "50",
        "--count",
        "10",
        "--create-stream",
        "--shards",
        "2",
        "--partition-key-field",
        "/user",
        "--aggregate",
    ])
    .unwrap()
    .command
    {
        Command::Produce(produce) => produce,
        other => panic!("expected produce, got {other:?}"),
    };
    assert_eq!(config.stream.as_str(), "clicks");
    assert!(matches!(
        config.target,
        crate::kinesis::client::KinesisTarget::Local { .. }
    ));
    assert_eq!(
        config.source,
        ProduceSource::Demo {
            kind: DemoKind::Clickstream,
            rate_per_sec: 50,
            seed: None
        }
    );
    assert_eq!(config.count, Some(10));
    assert_eq!(config.create_stream_shards, Some(2));
    assert_eq!(
        config.partition_key,
        PartitionKeySource::JsonPointer("/user".into())
    );
    assert!(config.aggregate);

    let error = load(&["produce", "--stream", "s", "--partition-key-field", "user"]).unwrap_err();
    assert!(
        error.to_string().contains("--partition-key-field"),
        "{error}"
    );
    let error = load(&["produce", "--stream", "s", "--follow"]).unwrap_err();
    assert!(error.to_string().contains("--file"), "{error}");
    let error = load(&["produce", "--stream", "s", "--demo", "logs", "--rate", "0"]).unwrap_err();
    assert!(error.to_string().contains("--rate"), "{error}");
}

#[test]
fn kinesis_source_follows_what_is_configured() {
    let config = serve(
        load(&[
            "serve",
            "--kinesis-endpoint",
            "http://127.0.0.1:4568/",
            "--stream",
            "orders",
        ])
        .unwrap(),
    );
    assert_eq!(
        config.source,
        KinesisSource::External(KinesisTarget::Local {
            endpoint_url: "http://127.0.0.1:4568".into()
        })
    );
    let config = serve(load(&["serve", "--stream", "orders"]).unwrap());
    assert_eq!(config.source, KinesisSource::External(KinesisTarget::Aws));

    let error = load(&["serve", "--kinesis-endpoint", "localhost:4567"]).unwrap_err();
    assert_eq!(error.exit_code(), 2);
    assert!(error.to_string().contains("--kinesis-endpoint"), "{error}");
    assert!(error.to_string().contains("http://"), "{error}");
    let error = load(&["serve", "--demo-rate", "1000000"]).unwrap_err();
    assert!(error.to_string().contains("--demo-rate"), "{error}");
}

#[test]
fn no_aws_settings_means_the_embedded_default() {
    assert!(!aws_configured(|_| None));
    assert!(aws_configured(
        |name| (name == "AWS_PROFILE").then(|| "dev".to_string())
    ));
    assert!(!aws_configured(
        |name| (name == "AWS_REGION").then(String::new)
    ));
    let file = FileConfig::parse("demo_rate = 5\nembedded_listen = \"127.0.0.1:0\"\n").unwrap();
    let config = serve(Config::resolve(["streamboard"], file).unwrap());
    if !aws_configured(|name| std::env::var(name).ok()) {
        assert_eq!(
            config.source,
            KinesisSource::Embedded {
                listen: "127.0.0.1:0".parse().unwrap(),
                demo_rate: 5
            }
        );
    }
}

/// Set in the child process that [`flag_beats_env_beats_file_beats_default`] starts.
const PRECEDENCE_CHILD: &str = "STREAMBOARD_TEST_PRECEDENCE_CHILD";

/// One option of each component: its flag, environment variable, file key, and the value each
/// of them gives (flag, environment, file), as resolved.
struct Probe {
    flag: &'static str,
    env: &'static str,
    key: &'static str,
    values: [&'static str; 3],
    file_value: &'static str,
}

const PROBES: [Probe; 7] = [
    Probe {
        flag: "--log",
        env: "STREAMBOARD_LOG",
        key: "log",
        values: ["debug", "warn", "error"],
        file_value: "\"error\"",
    },
    Probe {
        flag: "--heartbeat-interval",
        env: "STREAMBOARD_HEARTBEAT_INTERVAL",
        key: "heartbeat_interval",
        values: ["1s", "2s", "3s"],
        file_value: "\"3s\"",
    },
    Probe {
        flag: "--live-tick",
        env: "STREAMBOARD_LIVE_TICK",
        key: "live_tick",
        values: ["300ms", "400ms", "500ms"],
        file_value: "\"500ms\"",
    },
    Probe {
        flag: "--application",
        env: "STREAMBOARD_APPLICATION",
        key: "application",
        values: ["from-flag", "from-env", "from-file"],
        file_value: "\"from-file\"",
    },
    Probe {
        flag: "--demo-rate",
        env: "STREAMBOARD_DEMO_RATE",
        key: "demo_rate",
        values: ["1", "2", "3"],
        file_value: "3",
    },
    Probe {
        flag: "--flush-interval",
        env: "STREAMBOARD_FLUSH_INTERVAL",
        key: "flush_interval",
        values: ["2s", "3s", "4s"],
        file_value: "\"4s\"",
    },
    Probe {
        flag: "--alerts-max-attempts",
        env: "STREAMBOARD_ALERTS_MAX_ATTEMPTS",
        key: "alerts_max_attempts",
        values: ["3", "4", "5"],
        file_value: "5",
    },
];

/// What the probes resolved to, as text in the probes' order.
fn probed(config: Config) -> Vec<String> {
    let log = config.log.log.clone();
    let serve = serve(config);
    let demo_rate = match serve.source {
        KinesisSource::Embedded { demo_rate, .. } => demo_rate.to_string(),
        other => panic!("expected the embedded source, got {other:?}"),
    };
    vec![
        log,
        contract::units::format_duration(serve.server.heartbeat_interval),
        contract::units::format_duration(serve.live.live_tick),
        serve.consumer.application,
        demo_rate,
        contract::units::format_duration(serve.engine.flush_interval),
        serve.alerts.alerts_max_attempts.to_string(),
    ]
}

/// Runs [`precedence_in_a_clean_environment`] in a child process of this test binary: the
/// environment is the process's, so changing it is safe only where no other test runs.
#[test]
fn flag_beats_env_beats_file_beats_default() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "config::tests::precedence_in_a_clean_environment",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(PRECEDENCE_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test: {stdout}"
    );
}

#[test]
fn precedence_in_a_clean_environment() {
    if std::env::var_os(PRECEDENCE_CHILD).is_none() {
        return;
    }
    // SAFETY: this process runs this one test on one thread (see the parent test), so nothing
    // reads the environment while it changes.
    let set = |name: &str, value: Option<&str>| unsafe {
        match value {
            Some(value) => std::env::set_var(name, value),
            None => std::env::remove_var(name),
        }
    };
    for (name, _) in std::env::vars() {
        if name.starts_with("STREAMBOARD_") && name != PRECEDENCE_CHILD || name.starts_with("AWS_")
        {
            set(&name, None);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("streamboard.toml");
    let text: String = PROBES
        .iter()
        .map(|p| format!("{} = {}\n", p.key, p.file_value))
        .collect();
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap();
    let mut flags = vec!["serve", "--config", path];
    for probe in &PROBES {
        flags.extend([probe.flag, probe.values[0]]);
        set(probe.env, Some(probe.values[1]));
    }
    let level =
        |i: usize| -> Vec<String> { PROBES.iter().map(|p| p.values[i].to_string()).collect() };
    assert_eq!(probed(load(&flags).unwrap()), level(0), "flags win");
    assert_eq!(
        probed(load(&["serve", "--config", path]).unwrap()),
        level(1),
        "the environment wins over the file"
    );
    for probe in &PROBES {
        set(probe.env, None);
    }
    assert_eq!(
        probed(load(&["serve", "--config", path]).unwrap()),
        level(2),
        "the file wins over the defaults"
    );
    assert_eq!(
        probed(load(&["serve"]).unwrap()),
        ["info", "5s", "250ms", "streamboard", "50", "1s", "20"],
        "the declared defaults"
    );
    // `streamboard` alone is `serve`: the environment applies to it too.
    set("STREAMBOARD_LIVE_TICK", Some("400ms"));
    assert_eq!(
        serve(load(&[]).unwrap()).live.live_tick,
        Duration::from_millis(400)
    );
}

#[test]
fn wrong_file_keys_and_types_name_the_file_the_key_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.toml");
    let refused = |text: &str| {
        std::fs::write(&path, text).unwrap();
        let error = load(&["serve", "--config", path.to_str().unwrap()]).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{error}");
        let message = error.to_string();
        assert!(message.contains("alerts.toml"), "{message}");
        message
    };
    let message = refused("listen = \"127.0.0.1:0\"\nalerts_eval_intervall = \"2s\"\n");
    assert!(
        message.contains("unknown field `alerts_eval_intervall`, expected one of"),
        "{message}"
    );
    assert!(message.contains("`alerts_eval_interval`"), "{message}");
    assert!(message.contains("line 2"), "{message}");

    let message = refused("\nalerts_max_attempts = \"many\"\n");
    assert!(message.contains("alerts_max_attempts"), "{message}");
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("expected u32"), "{message}");

    let message = refused("alerts_delivery_timeout = \"0s\"\n");
    assert!(message.contains("alerts_delivery_timeout"), "{message}");
    assert!(message.contains("greater than zero"), "{message}");

    let message = refused("alerts_max_attempts = 0\n");
    assert!(
        message.contains("alerts_max_attempts (--alerts-max-attempts)"),
        "{message}"
    );
    assert!(message.contains("between 1 and 1000"), "{message}");

    let message = refused("live_tick = \"50ms\"\nlive_min_interval = \"80ms\"\n");
    assert!(
        message.contains("--live-min-interval") && message.contains("--live-tick"),
        "{message}"
    );

    let message = refused("kinesis_endpoint = \"localhost:4567\"\n");
    assert!(message.contains("kinesis_endpoint"), "{message}");
    assert!(message.contains("http://"), "{message}");

    // A wrong value in the file is refused even when a flag overrides it.
    std::fs::write(&path, "heartbeat_interval = 5\n").unwrap();
    let error = load(&[
        "serve",
        "--config",
        path.to_str().unwrap(),
        "--heartbeat-interval",
        "1s",
    ])
    .unwrap_err();
    assert!(error.to_string().contains("heartbeat_interval"), "{error}");
}

#[test]
fn every_component_option_is_in_the_file_and_in_help_with_doc_env_and_default() {
    let mut cli = Cli::command();
    cli.build();
    let serve = cli
        .find_subcommand("serve")
        .expect("serve is a subcommand")
        .clone();
    let help = load(&["serve", "--help"]).unwrap_err().to_string();
    // The file takes exactly the options of serve (and the global log options), except the
    // streams, which are `[[streams]]` tables, and the config file itself.
    let keys = file::option_keys();
    assert_eq!(keys.len(), 45, "{keys:?}");
    let mut options: Vec<&str> = serve
        .get_arguments()
        .map(|arg| arg.get_id().as_str())
        .filter(|id| !["streams", "start", "config", "help"].contains(id))
        .collect();
    options.sort_unstable();
    let mut sorted: Vec<&str> = keys.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    assert_eq!(options, sorted);
    for key in &keys {
        let arg = serve
            .get_arguments()
            .find(|arg| arg.get_id() == key.as_str())
            .unwrap_or_else(|| panic!("`{key}` is not an option of serve"));
        let flag = format!("--{}", key.replace('_', "-"));
        assert_eq!(arg.get_long(), Some(&flag[2..]), "{key}");
        let env = format!("STREAMBOARD_{}", key.to_uppercase());
        assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(&*env), "{key}");
        assert!(arg.get_help().is_some(), "{key} has no doc");
        assert!(
            help.contains(&flag) && help.contains(&env),
            "help lacks {key}"
        );
        let optional = [
            "site_root",
            "kinesis_endpoint",
            "auth",
            "allowed_hosts",
            "alerts_webhook_allow",
            "tls_cert",
            "tls_key",
            "engine_partitions",
            "database",
        ]
        .contains(&key.as_str());
        assert_eq!(arg.get_default_values().is_empty(), optional, "{key}");
    }
    // Every serialised key is an option and every option with a value is serialised: the
    // merge relies on the two names being the same.
    fn same_names<S: settings::Settings + Default>() {
        let table = toml::Table::try_from(S::default()).unwrap();
        let mut serialised: Vec<&str> = table.keys().map(String::as_str).collect();
        serialised.sort_unstable();
        let ids = settings::ids::<S>();
        let mut ids: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| {
                ![
                    "site_root",
                    "kinesis_endpoint",
                    "auth",
                    "tls_cert",
                    "tls_key",
                    "engine_partitions",
                    "database",
                ]
                .contains(id)
            })
            .collect();
        ids.sort_unstable();
        assert_eq!(serialised, ids);
        // The declared defaults survive the merge unchanged, and a file that writes them all
        // out is accepted and changes nothing.
        let merged: S = settings::from_file(&toml::Table::new()).unwrap();
        assert_eq!(toml::Table::try_from(merged).unwrap(), table);
        let file = FileConfig::parse(&table.to_string()).unwrap();
        assert_eq!(file.settings, table);
        let merged: S = settings::from_file(&file.settings).unwrap();
        assert_eq!(toml::Table::try_from(merged).unwrap(), table);
    }
    same_names::<ServerSettings>();
    same_names::<Pacing>();
    same_names::<ConsumerConfig>();
    same_names::<SourceSettings>();
    same_names::<EngineSettings>();
    same_names::<AlertsSettings>();
    same_names::<LogSettings>();
}

#[test]
fn site_root_in_a_file_is_relative_to_the_file_and_alerts_settings_apply() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("streamboard.toml");
    std::fs::write(
        &path,
        "site_root = \"site\"\nalerts_eval_interval = \"2s\"\nalerts_outbox_batch = 10\n",
    )
    .unwrap();
    let config = serve(load(&["--config", path.to_str().unwrap()]).unwrap());
    assert_eq!(config.server.site_root, Some(dir.path().join("site")));
    assert_eq!(config.alerts.alerts_eval_interval, Duration::from_secs(2));
    assert_eq!(config.alerts.alerts_outbox_batch, 10);
    assert_eq!(
        config.alerts,
        AlertsSettings {
            alerts_eval_interval: Duration::from_secs(2),
            alerts_outbox_batch: 10,
            ..AlertsSettings::default()
        }
    );
    let defaults = AlertsSettings::default();
    assert_eq!(defaults.alerts_eval_interval, Duration::from_secs(1));
    assert_eq!(defaults.alerts_metrics_refresh, Duration::from_secs(5));
    assert_eq!(defaults.alerts_delivery_timeout, Duration::from_secs(10));
    assert_eq!(defaults.alerts_max_attempts, 20);
    assert_eq!(defaults.alerts_max_retry_delay, Duration::from_secs(300));
    assert_eq!(
        defaults.alerts_outbox_poll_interval,
        Duration::from_secs(30)
    );
    assert_eq!(defaults.alerts_outbox_batch, 50);
}

#[test]
fn alert_rules_are_file_tables_read_at_their_line() {
    let file = FileConfig::parse(
        "[[alerts]]\nname = \"slow\"\nmetric = \"latency\"\nstatistic = \"p99\"\n\
         window = \"5m\"\ncomparison = \">\"\nthreshold = 250.0\n\
         targets = [{ type = \"in_app\" }]\n",
    )
    .unwrap();
    assert_eq!(file.alerts.len(), 1);
    assert_eq!(file.alerts[0].name, "slow");
    let error = FileConfig::parse(
        "[[alerts]]\nname = \"slow\"\nmetric = \"latency\"\nstatistic = \"p42\"\n\
         window = \"5m\"\ncomparison = \">\"\nthreshold = 250.0\n",
    )
    .unwrap_err();
    assert!(error.contains("line 4") && error.contains("p42"), "{error}");
}

#[test]
fn https_needs_both_the_certificate_and_the_key() {
    let error = load(&["serve", "--tls-cert", "cert.pem"])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("tls_cert (--tls-cert) is given without tls_key (--tls-key)"),
        "{error}"
    );
    let error = load(&["serve", "--tls-key", "key.pem"])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("tls_key (--tls-key) is given without"),
        "{error}"
    );
    let config = serve(load(&["serve", "--tls-cert", "c.pem", "--tls-key", "k.pem"]).unwrap());
    assert!(config.server.tls_enabled());
    assert_eq!(
        config.server.header_read_timeout,
        std::time::Duration::from_secs(10)
    );
}

#[test]
fn enhanced_fan_out_for_one_stream_or_all() {
    let file = FileConfig::parse(
        r#"
        [[streams]]
        name = "clicks"
        efo = true
        [[streams]]
        name = "orders"
        "#,
    )
    .unwrap();
    let config = serve(Config::resolve(["streamboard"], file).unwrap());
    let efo: Vec<bool> = config.consumer.streams.iter().map(|s| s.efo).collect();
    assert_eq!(efo, [true, false]);
    let config = serve(load(&["serve", "--stream", "a,b", "--efo"]).unwrap());
    let efo: Vec<bool> = config.consumer.streams.iter().map(|s| s.efo).collect();
    assert_eq!(efo, [true, true]);
    let config = serve(load(&["serve", "--stream", "a"]).unwrap());
    assert!(!config.consumer.streams[0].efo);
    let error = FileConfig::parse("[[streams]]\nname = \"x\"\nefo = \"yes\"\n").unwrap_err();
    assert!(error.to_string().contains("efo"), "{error}");
}

#[test]
fn a_bad_database_url_is_refused_without_showing_its_password() {
    let error = load(&["serve", "--database", "mysql://root:hunter2@db/metrics"])
        .unwrap_err()
        .to_string();
    assert!(error.contains("--database"), "{error}");
    assert!(error.contains("postgres://"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
    let Command::Serve(config) = load(&[
        "serve",
        "--database",
        "postgres://sb:hunter2@db:5432/metrics",
    ])
    .unwrap()
    .command
    else {
        panic!("serve")
    };
    assert!(!format!("{:?}", config.server).contains("hunter2"));
    let url = config.server.database.expect("a database");
    assert!(!format!("{url:?} {url}").contains("hunter2"));
}
