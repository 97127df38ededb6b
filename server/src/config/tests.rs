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
    let cli = Cli::try_parse_from(["streamboard", "endpoint", "--iterator-ttl", "3s"]).unwrap();
    let config = endpoint(Config::resolve(cli, file));
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
    assert_eq!(config.listen, "127.0.0.1:3000".parse().unwrap());
    assert_eq!(config.data_dir, PathBuf::from("./data"));
    assert_eq!(config.heartbeat_interval, Duration::from_secs(5));
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
        ])
        .unwrap(),
    );
    assert_eq!(config.listen.port(), 4000);
    assert_eq!(config.data_dir, PathBuf::from("/tmp/sb"));
    assert_eq!(config.heartbeat_interval, Duration::from_millis(250));
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
    let cli = Cli::try_parse_from(["streamboard", "serve", "--listen", "127.0.0.1:6000"]).unwrap();
    let config = Config::resolve(cli, file);
    assert_eq!(config.log.format, LogFormat::Json);
    let serve = serve(config);
    assert_eq!(serve.listen.port(), 6000, "the flag wins over the file");
    assert_eq!(serve.data_dir, PathBuf::from("/srv/streamboard"));
    assert_eq!(serve.heartbeat_interval, Duration::from_secs(2));
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
    assert_eq!(config.data_dir, dir.path().join("state"));
}
