//! The `apr-lambda` command-line tool: inspect, convert and run `.apr`
//! models the way the Lambda does, and start a function crate serving one.
//!
//! ```text
//! apr-lambda inspect MODEL [--json]
//! apr-lambda convert IN OUT
//! apr-lambda predict MODEL [--input FILE]
//! apr-lambda new DIR --model FILE [--path APR_LAMBDA_DIR]
//! ```
//!
//! Exit codes: 0 success, 1 the model, event or a file is at fault (one line
//! on stderr names the rule broken), 2 the command line is wrong.

mod inspect;
mod new;
mod predict;

use std::path::Path;
use std::process::ExitCode;

use apr_runtime::format::v1;

const USAGE: &str = "\
apr-lambda: inspect, convert and run .apr models (APR v2, aprender's APRN v1, and
ONNX models from scikit-learn, XGBoost, LightGBM: files named *.onnx)

Usage:
  apr-lambda inspect MODEL [--json]      validate MODEL and describe it: version, flags,
                                         model_type, metadata, tensors, checksum status
                                         (v1 files: header, metadata and the v2 tensors
                                         they convert to)
  apr-lambda convert IN OUT              write IN as a v2 container to OUT (v1 -> v2,
                                         ONNX -> v2; a v2 file is re-written normalised)
  apr-lambda predict MODEL [--input FILE]
                                         read an event ({\"features\": [...]} or
                                         {\"instances\": [[...], ...]}) from FILE, or
                                         stdin without --input, and print the JSON the
                                         Lambda returns (without its timing fields);
                                         v1 and ONNX models are converted in memory
  apr-lambda new DIR --model FILE [--path APR_LAMBDA_DIR]
                                         create a function crate in DIR (new or empty)
                                         serving FILE, validated as the #[apr_lambda]
                                         attribute does: Cargo.toml, src/main.rs,
                                         models/model.apr (FILE's bytes), tests/local.rs,
                                         README.md, .gitignore; the package is named after
                                         DIR; --path makes apr-lambda a path dependency
                                         on that directory instead of this version
  apr-lambda --help                      this text
  apr-lambda --version                   the version

Exit status: 0 success; 1 an invalid model, event or unreadable file (a one-line
error on stderr names the rule broken); 2 a wrong command line.
";

/// Why the command failed; decides the exit code.
enum Failure {
    /// The command line is wrong (exit 2).
    Usage(String),
    /// A model, event or file is at fault (exit 1).
    Input(String),
}

impl Failure {
    fn input(message: impl std::fmt::Display) -> Self {
        Failure::Input(message.to_string())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("apr-lambda: {}", one_line(&message));
            eprintln!("Try 'apr-lambda --help'.");
            ExitCode::from(2)
        }
        Err(Failure::Input(message)) => {
            eprintln!("apr-lambda: error: {}", one_line(&message));
            ExitCode::FAILURE
        }
    }
}

/// Errors are printed on one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn run(args: &[String]) -> Result<(), Failure> {
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return Err(Failure::Usage("no command given".to_string()));
    };
    match command.as_str() {
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        "-V" | "--version" => {
            println!("apr-lambda {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        "inspect" => {
            let parsed = ParsedArgs::parse(rest, &["--json"], &[])?;
            if parsed.help {
                print!("{USAGE}");
                return Ok(());
            }
            let [model] = parsed.positional_exact::<1>("inspect", "MODEL")?;
            inspect::run(Path::new(&model), parsed.has("--json"))
        }
        "convert" => {
            let parsed = ParsedArgs::parse(rest, &[], &[])?;
            if parsed.help {
                print!("{USAGE}");
                return Ok(());
            }
            let [input, output] = parsed.positional_exact::<2>("convert", "IN OUT")?;
            convert(Path::new(&input), Path::new(&output))
        }
        "predict" => {
            let parsed = ParsedArgs::parse(rest, &[], &["--input"])?;
            if parsed.help {
                print!("{USAGE}");
                return Ok(());
            }
            let [model] = parsed.positional_exact::<1>("predict", "MODEL")?;
            predict::run(Path::new(&model), parsed.value("--input").map(Path::new))
        }
        "new" => {
            let parsed = ParsedArgs::parse(rest, &[], &["--model", "--path"])?;
            if parsed.help {
                print!("{USAGE}");
                return Ok(());
            }
            let [dir] = parsed.positional_exact::<1>("new", "DIR")?;
            let model = parsed
                .value("--model")
                .filter(|model| !model.is_empty())
                .ok_or_else(|| Failure::Usage("'new' needs --model FILE".to_string()))?;
            let facade = match parsed.value("--path") {
                Some("") => return Err(Failure::Usage("--path needs a directory".to_string())),
                other => other.map(Path::new),
            };
            new::run(Path::new(&dir), Path::new(model), facade)
        }
        other => Err(Failure::Usage(format!(
            "unknown command '{other}' (expected inspect, convert, predict or new)"
        ))),
    }
}

/// A command's arguments: positionals, boolean flags, flags with a value.
struct ParsedArgs {
    positional: Vec<String>,
    flags: Vec<String>,
    values: Vec<(String, String)>,
    help: bool,
}

impl ParsedArgs {
    fn parse(args: &[String], flags: &[&str], valued: &[&str]) -> Result<Self, Failure> {
        let mut parsed = ParsedArgs {
            positional: Vec::new(),
            flags: Vec::new(),
            values: Vec::new(),
            help: false,
        };
        let mut iter = args.iter();
        let mut only_positional = false;
        while let Some(arg) = iter.next() {
            if only_positional || arg == "-" || !arg.starts_with('-') {
                parsed.positional.push(arg.clone());
            } else if arg == "--" {
                only_positional = true;
            } else if arg == "-h" || arg == "--help" {
                parsed.help = true;
            } else if flags.contains(&arg.as_str()) {
                parsed.flags.push(arg.clone());
            } else if let Some((name, value)) = arg.split_once('=') {
                if !valued.contains(&name) {
                    return Err(Failure::Usage(format!("unknown option '{name}'")));
                }
                parsed.values.push((name.to_string(), value.to_string()));
            } else if valued.contains(&arg.as_str()) {
                let value = iter
                    .next()
                    .ok_or_else(|| Failure::Usage(format!("option '{arg}' needs a value")))?;
                parsed.values.push((arg.clone(), value.clone()));
            } else {
                return Err(Failure::Usage(format!("unknown option '{arg}'")));
            }
        }
        Ok(parsed)
    }

    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn positional_exact<const N: usize>(
        &self,
        command: &str,
        names: &str,
    ) -> Result<[String; N], Failure> {
        <[String; N]>::try_from(self.positional.clone()).map_err(|found| {
            Failure::Usage(format!(
                "'{command}' takes {names} ({N} argument{}), found {} argument{}",
                if N == 1 { "" } else { "s" },
                found.len(),
                if found.len() == 1 { "" } else { "s" }
            ))
        })
    }
}

/// Whether `path` names an ONNX model (`.onnx`, any case; ONNX has no
/// magic number).
pub(crate) fn is_onnx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// An ONNX model's bytes converted to a v2 container, naming the file in
/// the error.
pub(crate) fn convert_onnx(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, Failure> {
    apr_runtime::onnx::convert(bytes)
        .map(|converted| converted.bytes)
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::input(format!("cannot read {}: {e}", path.display())))
}

fn convert(input: &Path, output: &Path) -> Result<(), Failure> {
    let bytes = read_file(input)?;
    let from = if is_onnx(input) {
        "onnx"
    } else if bytes.starts_with(&v1::MAGIC) {
        "v1"
    } else {
        "v2"
    };
    let converted = if from == "onnx" {
        convert_onnx(input, &bytes)?
    } else {
        v1::convert_to_v2(&bytes)
            .map_err(|e| Failure::input(format!("{}: {e}", input.display())))?
    };
    std::fs::write(output, &converted)
        .map_err(|e| Failure::input(format!("cannot write {}: {e}", output.display())))?;
    let action = match from {
        "onnx" => "converted ONNX",
        "v1" => "converted v1 (APRN)",
        _ => "normalised v2",
    };
    eprintln!(
        "{action} {} -> {} ({} bytes, APR v2)",
        input.display(),
        output.display(),
        converted.len()
    );
    Ok(())
}
