//! `llm-chat`: read the configuration, start logging, serve until a signal.

use std::io::Write as _;
use std::process::ExitCode;

use llm_chat::config::Command;
use llm_chat::{Application, Config, openapi, shutdown, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::load();
    if let Some(Command::Openapi) = config.command {
        let mut stdout = std::io::stdout();
        return match writeln!(stdout, "{}", openapi::document()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    telemetry::init(config.log_format, &config.log_level);

    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("llm-chat listening on http://{}", app.addr());
    app.log_backends();

    let stop = app.state().shutdown.clone();
    tokio::spawn(async move {
        shutdown::signal().await;
        tracing::info!("shutting down");
        stop.trigger();
    });
    match app.run_until_stopped().await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}
