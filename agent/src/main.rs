//! `barrage-agent`: one agent of a LoadTest's fleet, told who it is by the environment
//! contract (see `barrage_crds::env`). A few lines; everything lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    barrage_agent::cli::main()
}
