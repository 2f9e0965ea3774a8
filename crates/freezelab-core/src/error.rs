//! One error type for the core, with messages meant for people (CLI and page show them as-is).

use thiserror::Error;

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum CoreError {
    #[error("config.json: {0}")]
    Config(String),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("tokenizer.json: {0}")]
    Tokenizer(String),
    #[error("{file}: {message}")]
    Data { file: String, message: String },
    #[error("{file}, line {line}: {message}")]
    DataLine { file: String, line: usize, message: String },
    #[error("device: {0}")]
    Device(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Plan(#[from] freezelab_protocol::freeze::PlanError),
}

impl CoreError {
    pub(crate) fn data(file: &str, message: impl Into<String>) -> Self {
        CoreError::Data { file: file.to_string(), message: message.into() }
    }

    pub(crate) fn line(file: &str, line: usize, message: impl Into<String>) -> Self {
        CoreError::DataLine { file: file.to_string(), line, message: message.into() }
    }
}
