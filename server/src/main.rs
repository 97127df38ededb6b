//! `streamboard`: parse the configuration, set up logging, run the chosen command.

use std::process::ExitCode;
use streamboard::config::{Command, Config};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(config) => config,
        Err(error) => {
            error.print();
            return ExitCode::from(error.exit_code());
        }
    };
    if let Err(error) = streamboard::telemetry::init_tracing(&config.log) {
        eprintln!("error: --log: {error}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        match config.command {
            Command::Serve(serve) => streamboard::run(serve, shutdown)
                .await
                .map_err(anyhow::Error::from),
            Command::Produce(produce) => streamboard::producer::cli::run(produce, shutdown)
                .await
                .map(drop)
                .map_err(anyhow::Error::from),
            Command::Endpoint(endpoint) => streamboard_endpoint::run(endpoint, shutdown)
                .await
                .map_err(anyhow::Error::from),
            Command::User(user) => streamboard::auth::cli::run(user)
                .await
                .map(|done| println!("{done}"))
                .map_err(anyhow::Error::from),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received, shutting down"),
        _ = terminate => tracing::info!("SIGTERM received, shutting down"),
        _ = shutdown.cancelled() => {}
    }
    shutdown.cancel();
}
