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
