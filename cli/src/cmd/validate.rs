//! `barrage validate FILE...`: every problem of every file, each with its field path.

use std::path::Path;

use barrage_crds::loadtest::LoadTest;
use barrage_crds::validate::parse_and_validate;

use crate::Outcome;

/// Validates each file; prints `FILE: ok` or every problem. Exit 0 if all are valid, 2 if not.
pub fn validate_files(files: &[impl AsRef<Path>]) -> Outcome {
    let mut all_ok = true;
    for file in files {
        let file = file.as_ref();
        match std::fs::read_to_string(file) {
            Err(e) => {
                all_ok = false;
                println!("{}: cannot read: {e}", file.display());
            }
            Ok(text) => match parse_and_validate(&text) {
                Ok(lt) => println!("{}: ok (LoadTest {})", file.display(), lt.name()),
                Err(errors) => {
                    all_ok = false;
                    println!("{}: {} problem(s)", file.display(), errors.0.len());
                    for e in &errors.0 {
                        println!("  {e}");
                    }
                }
            },
        }
    }
    if all_ok {
        Outcome::Passed
    } else {
        Outcome::InvalidInput
    }
}

/// Reads and validates one LoadTest file for `run` and `apply`: on failure, prints the one-line
/// read error or every problem with its path, and returns the outcome to exit with (2).
pub fn read_load_test(file: &Path) -> Result<LoadTest, Outcome> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        eprintln!("error: cannot read {}: {e}", file.display());
        Outcome::InvalidInput
    })?;
    parse_and_validate(&text).map_err(|errors| {
        eprintln!(
            "error: {} is not a valid LoadTest ({} problem(s)):",
            file.display(),
            errors.0.len()
        );
        for e in &errors.0 {
            eprintln!("  {e}");
        }
        Outcome::InvalidInput
    })
}
