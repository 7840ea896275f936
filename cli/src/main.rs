//! The `barrage` command line: `run`, `validate`, `schema` and the operator commands.
//!
//! Exit codes are the same for every command:
//! - 0: passed (or the command did what was asked),
//! - 1: the run finished and thresholds failed,
//! - 2: invalid input (a spec, a flag, a file),
//! - 3: the run could not be carried out (unreachable broker or AWS, timeout, internal error).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use barrage_crds::env::LogFormat;
use clap::{Parser, Subcommand};

mod cmd;
mod format;
mod logging;

use cmd::{admin, apply, controller, delete, describe, get, report, rerun, run, validate, watch};

/// Distributed load testing for Apache Kafka.
#[derive(Debug, Parser)]
#[command(name = "barrage", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr: json or text [default: json for `barrage controller` when stderr
    /// is not a terminal, text otherwise].
    #[arg(long, global = true, env = logging::BARRAGE_LOG_FORMAT, value_name = "json|text",
          value_parser = logging::parse_log_format)]
    pub log_format: Option<LogFormat>,
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
    /// Run the operator: watch LoadTests in the store and reconcile them (ECS tasks or local processes).
    Controller(Box<controller::ControllerArgs>),
    /// Create or update a LoadTest from a file; with --wait, follow it and exit by its verdict.
    Apply(apply::ApplyArgs),
    /// List LoadTests, or show one.
    Get(get::GetArgs),
    /// Show one LoadTest in detail: spec summary, status, conditions, agents, transitions.
    Describe {
        /// The LoadTest.
        name: String,
    },
    /// Follow a LoadTest's progress until it ends; exit by its verdict.
    Watch(watch::WatchArgs),
    /// Delete a LoadTest: the controller stops its agents, writes a partial report, removes it.
    Delete(delete::DeleteArgs),
    /// Run a LoadTest's spec again (writes the next spec.rerun); a live run is superseded.
    Rerun(rerun::RerunArgs),
    /// Download the report set (report.json, report.html, merged.hlog, junit.xml) of a LoadTest's run.
    Report(report::ReportArgs),
    /// Administration for scripts: `admin init` creates the table and the bucket.
    #[command(hide = true)]
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

/// Hidden administration commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create the DynamoDB table (with its stream) and the S3 bucket of BARRAGE_STORE / BARRAGE_BLOBS.
    Init,
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

/// clap names the flag of a value it refused; when the value came from the flag's environment
/// variable instead (as in an ECS task definition), the variable is the name to give.
fn variable_of_bad_value(e: &clap::Error) -> Option<String> {
    use clap::CommandFactory as _;
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let flag = arg.split_whitespace().next()?;
    let long = flag.strip_prefix("--")?;
    let on_command_line = std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    if on_command_line {
        return None;
    }
    let cli = Cli::command();
    let var = cli
        .get_subcommands()
        .flat_map(|c| c.get_arguments())
        .chain(cli.get_arguments())
        .find(|a| a.get_long() == Some(long))?
        .get_env()?
        .to_string_lossy()
        .into_owned();
    std::env::var_os(&var).is_some().then_some(var)
}

/// Parses arguments, runs the command, returns the exit code.
fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            if let Some(var) = variable_of_bad_value(&e) {
                eprintln!("(the value was read from {var})");
            }
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => Outcome::InvalidInput.code(),
            });
        }
    };
    let service = matches!(cli.command, Command::Controller(_));
    logging::init_tracing(logging::log_format(
        cli.log_format,
        service,
        std::io::stderr().is_terminal(),
    ));
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
        Command::Controller(args) => block_on(controller::controller(*args)),
        Command::Apply(args) => block_on(apply::apply(args)),
        Command::Get(args) => block_on(get::get(args)),
        Command::Describe { name } => block_on(describe::describe(&name)),
        Command::Watch(args) => block_on(watch::watch(args)),
        Command::Delete(args) => block_on(delete::delete(args)),
        Command::Rerun(args) => block_on(rerun::rerun(args)),
        Command::Report(args) => block_on(report::report(args)),
        Command::Admin {
            command: AdminCommand::Init,
        } => block_on(admin::admin_init()),
    };
    ExitCode::from(outcome.code())
}

/// Runs an operator command on a fresh runtime.
fn block_on(f: impl std::future::Future<Output = Outcome>) -> Outcome {
    match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            Outcome::RunError
        }
    }
}
