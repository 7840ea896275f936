//! The `barrage` command line: `run`, `validate`, `schema` and the operator commands.
//!
//! Exit codes are the same for every command:
//! - 0: passed (or the command did what was asked),
//! - 1: the run finished and thresholds failed,
//! - 2: invalid input (a spec, a flag, a file),
//! - 3: the run could not be carried out (unreachable broker or AWS, timeout, internal error).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod output;
pub mod run;
pub mod validate;

/// Distributed load testing for Apache Kafka.
#[derive(Debug, Parser)]
#[command(name = "barrage", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a LoadTest on this machine, in-process, with no AWS: produce, measure, report.
    Run(run::RunArgs),
    /// Validate LoadTest files: every problem is printed with its field path.
    Validate {
        /// LoadTest files (YAML or JSON).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the JSON Schema of LoadTest.
    Schema,
}

/// How a command ended, mapped onto the documented exit codes.
#[derive(Debug)]
pub enum Outcome {
    Passed,
    ThresholdsFailed,
    InvalidInput,
    RunError,
}

impl Outcome {
    pub fn code(&self) -> u8 {
        match self {
            Outcome::Passed => 0,
            Outcome::ThresholdsFailed => 1,
            Outcome::InvalidInput => 2,
            Outcome::RunError => 3,
        }
    }
}

/// Parses arguments, runs the command, returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => Outcome::InvalidInput.code(),
            });
        }
    };
    output::init_tracing();
    let outcome = match cli.command {
        Command::Validate { files } => validate::validate_files(&files),
        Command::Schema => {
            use std::io::Write;
            // A closed pipe (`barrage schema | head`) is not an error worth a panic.
            let _ = std::io::stdout()
                .write_all(barrage_crds::schema::loadtest_schema_json().as_bytes());
            Outcome::Passed
        }
        Command::Run(args) => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(run::run(args)),
            Err(e) => {
                eprintln!("error: could not start the async runtime: {e}");
                Outcome::RunError
            }
        },
    };
    ExitCode::from(outcome.code())
}
