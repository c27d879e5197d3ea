//! `clusterd serve`: the operator console, `/health` and `/api/*` over HTTP
//! (SPEC §13), read-only against the repository, until SIGTERM or SIGINT.

use super::config::settings;
use super::error::CliError;
use super::run::{init_logging, shutdown_signal};
use anyhow::Context;
use std::path::Path;

/// `clusterd serve`.
pub fn serve(listen: Option<String>, config: Option<&Path>) -> Result<i32, CliError> {
    let mut s = settings(config)?;
    if let Some(l) = listen {
        s.http.listen = l;
    }
    let addr = s
        .http
        .address()
        .map_err(|e| CliError::Usage(format!("configuration: {e}")))?;
    init_logging(&s)?;
    tracing::info!(prefix = %s.redis.key_prefix, %addr, "starting the console");
    let system = actix_rt::System::new();
    system
        .block_on(crate::http::serve(s, addr, shutdown_signal()))
        .context("the HTTP server failed")?;
    Ok(0)
}
