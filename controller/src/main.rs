//! `barrage`: a few lines; everything lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    barrage_controller::cli::main()
}
