//! `apr-lambda new DIR --model FILE [--path APR_LAMBDA_DIR]`: scaffold a
//! function crate serving FILE, ready for `cargo run`, `cargo test` and
//! `cargo lambda build --release --arm64`.
//!
//! The model is validated first, as the `#[apr_lambda]` attribute does while
//! the crate compiles (the same runtime code and the same error text), so a
//! model that would not compile is refused before anything is written.

use std::fmt::Write as _;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use apr_runtime::format::{self, AprFile};
use apr_runtime::model::Model;

use crate::Failure;

/// Where the model goes in the new crate, as the attribute names it.
const MODEL_IN_CRATE: &str = "models/model.apr";

/// The largest converted v1 model the attribute converts while compiling
/// (`MAX_CONVERTED_V1_LEN` in apr-macros/src/model_file.rs, which is private
/// to the proc-macro crate): a larger v1 file would not compile.
const MAX_CONVERTED_V1_LEN: usize = 16 * 1024 * 1024;

/// What the new crate needs to know about its model.
struct ModelInfo {
    family: String,
    n_features: usize,
    n_outputs: usize,
    labels: Option<Vec<String>>,
    feature_names: Option<Vec<String>>,
    v1: bool,
}

/// How the new crate depends on apr-lambda.
enum Dependency {
    /// `apr-lambda = "<version>"`.
    Version(&'static str),
    /// `apr-lambda = { path = "<absolute directory>" }`.
    Path(String),
}

pub(crate) fn run(dir: &Path, model_path: &Path, facade: Option<&Path>) -> Result<(), Failure> {
    // Everything is checked before anything is written.
    let bytes = read_model_file(model_path)?;
    // An ONNX model is converted here, once: the crate embeds the .apr.
    let from_onnx = crate::is_onnx(model_path);
    let bytes = if from_onnx {
        crate::convert_onnx(model_path, &bytes)?
    } else {
        bytes
    };
    let info = validate(&bytes).map_err(|rule| Failure::input(model_error(model_path, &rule)))?;
    let dependency = match facade {
        Some(path) => Dependency::Path(facade_dir(path)?),
        None => Dependency::Version(env!("CARGO_PKG_VERSION")),
    };
    let name = package_name(dir)?;
    check_target(dir)?;

    let files: [(&str, Vec<u8>); 6] = [
        ("Cargo.toml", cargo_toml(&name, &dependency).into_bytes()),
        ("src/main.rs", main_rs(&name, &info).into_bytes()),
        (MODEL_IN_CRATE, bytes),
        ("tests/local.rs", local_test(&name, &info).into_bytes()),
        (".gitignore", "/target\n".as_bytes().to_vec()),
        ("README.md", readme(&name, &info).into_bytes()),
    ];
    let existed = dir.exists();
    if let Err(failure) = write_all(dir, &files) {
        // Leave nothing half-written: DIR was empty or absent.
        if existed {
            for (file, _) in &files {
                let _ = std::fs::remove_file(dir.join(file));
            }
            for sub in ["src", "models", "tests"] {
                let _ = std::fs::remove_dir(dir.join(sub));
            }
        } else {
            let _ = std::fs::remove_dir_all(dir);
        }
        return Err(failure);
    }

    let shown = dir.display();
    println!(
        "created {shown}: the package `{name}` serving {} ({}, {} feature{} -> {} output{}{})",
        model_path.display(),
        info.family,
        info.n_features,
        plural(info.n_features),
        info.n_outputs,
        plural(info.n_outputs),
        if info.v1 {
            "; a v1 file, converted while the crate compiles"
        } else if from_onnx {
            "; converted from ONNX to models/model.apr"
        } else {
            ""
        }
    );
    for (file, _) in &files {
        println!("  {shown}/{file}");
    }
    println!("next:");
    println!("  cd {shown}");
    println!("  cargo run -- '{}'", example_event(info.n_features));
    println!("  cargo test");
    Ok(())
}

/// `"<file>: <rule>"`, as the attribute's compile errors read.
fn model_error(path: &Path, rule: &str) -> String {
    format!("{}: {rule}", path.display())
}

/// The model's bytes, or why not: the attribute's rules for the file (it
/// must exist, be a file and be readable).
fn read_model_file(path: &Path) -> Result<Vec<u8>, Failure> {
    let rule = match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            "is a directory; `--model` must name an .apr file".to_owned()
        }
        Ok(_) => match std::fs::read(path) {
            Ok(bytes) => return Ok(bytes),
            Err(error) => format!("the model file cannot be read: {error}"),
        },
        Err(error) if error.kind() == ErrorKind::NotFound => {
            "the model file does not exist".to_owned()
        }
        Err(error) => format!("the model file cannot be read: {error}"),
    };
    Err(Failure::input(model_error(path, &rule)))
}

/// The checks of the attribute (apr-macros/src/model_file.rs) with the same
/// runtime code: a v1 file is converted (and must convert within the size
/// the attribute converts while compiling), then the v2 container is parsed
/// and its model built. The error is the rule broken, worded as the
/// attribute words it.
fn validate(bytes: &[u8]) -> Result<ModelInfo, String> {
    if format::is_v1(bytes) {
        let converted = format::v1::convert_to_v2(bytes)
            .map_err(|error| format!("cannot convert this v1 (APRN) file to v2: {error}"))?;
        if converted.len() > MAX_CONVERTED_V1_LEN {
            return Err(format!(
                "this v1 (APRN) file converts to {} bytes, more than the \
                 {MAX_CONVERTED_V1_LEN} bytes the macro converts while compiling; convert it \
                 once with `apr-lambda convert IN OUT` and point `model` at the v2 file",
                converted.len()
            ));
        }
        let mut info = validate_v2(&converted).map_err(|rule| {
            format!("the v1 file converted, but the converted container is invalid: {rule}")
        })?;
        info.v1 = true;
        Ok(info)
    } else {
        validate_v2(bytes)
    }
}

fn validate_v2(bytes: &[u8]) -> Result<ModelInfo, String> {
    let file = AprFile::parse(bytes).map_err(|error| error.to_string())?;
    let model = Model::from_file(&file).map_err(|error| error.to_string())?;
    Ok(ModelInfo {
        family: model.family().name().to_owned(),
        n_features: model.n_features(),
        n_outputs: model.n_outputs(),
        labels: model.labels().map(<[String]>::to_vec),
        feature_names: model.feature_names().map(<[String]>::to_vec),
        v1: false,
    })
}

/// The absolute, canonical directory of the apr-lambda crate given with `--path`.
fn facade_dir(path: &Path) -> Result<String, Failure> {
    let absolute = std::fs::canonicalize(path)
        .map_err(|e| Failure::input(format!("--path {}: {e}", path.display())))?;
    if !absolute.join("Cargo.toml").is_file() {
        return Err(Failure::input(format!(
            "--path {}: no Cargo.toml there; give the directory of the apr-lambda crate",
            path.display()
        )));
    }
    absolute.to_str().map(str::to_owned).ok_or_else(|| {
        Failure::input(format!(
            "--path {}: the path is not valid UTF-8, which Cargo.toml cannot hold",
            path.display()
        ))
    })
}

/// Names cargo refuses for a package with a binary: Rust keywords, the
/// standard crates, cargo's own directory names and Windows device names.
const RESERVED: &[&str] = &[
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
    "alloc",
    "core",
    "std",
    "test",
    "proc_macro",
    "build",
    "deps",
    "examples",
    "incremental",
    "con",
    "prn",
    "aux",
    "nul",
    "com1",
    "com2",
    "com3",
    "com4",
    "com5",
    "com6",
    "com7",
    "com8",
    "com9",
    "lpt1",
    "lpt2",
    "lpt3",
    "lpt4",
    "lpt5",
    "lpt6",
    "lpt7",
    "lpt8",
    "lpt9",
];

/// The package name made from DIR's last component: lowercase ASCII letters,
/// digits, `-` and `_`, starting with a letter; any other run of characters
/// becomes one `-`.
fn package_name(dir: &Path) -> Result<String, Failure> {
    let base = match dir.file_name() {
        Some(base) => base.to_owned(),
        // `.`, `..`, `/`: the name of the directory they stand for.
        None => std::fs::canonicalize(dir)
            .ok()
            .and_then(|path| path.file_name().map(ToOwned::to_owned))
            .ok_or_else(|| {
                Failure::input(format!(
                    "{}: cannot make a package name from this directory; give a directory \
                     with a name, e.g. my-fn",
                    dir.display()
                ))
            })?,
    };
    let base = base.to_string_lossy();
    let mut name = String::new();
    for c in base.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name
        .trim_start_matches(|c: char| !c.is_ascii_alphabetic())
        .trim_end_matches(['-', '_']);
    if name.is_empty() {
        return Err(Failure::input(format!(
            "{}: cannot make a package name from the directory name '{base}': a package name \
             needs an ASCII letter followed by letters, digits, '-' or '_'; choose a directory \
             name like my-fn",
            dir.display()
        )));
    }
    if RESERVED.contains(&name.replace('-', "_").as_str()) {
        return Err(Failure::input(format!(
            "{}: the directory name gives the package name '{name}', which cargo refuses \
             (a Rust keyword or a reserved name); choose another directory name",
            dir.display()
        )));
    }
    Ok(name.to_owned())
}

/// DIR must be absent or an empty directory.
fn check_target(dir: &Path) -> Result<(), Failure> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Failure::input(format!("{}: {e}", dir.display()))),
        Ok(metadata) if !metadata.is_dir() => Err(Failure::input(format!(
            "{} exists and is not a directory; give a new or empty directory",
            dir.display()
        ))),
        Ok(_) => {
            let mut entries = std::fs::read_dir(dir)
                .map_err(|e| Failure::input(format!("cannot read {}: {e}", dir.display())))?;
            if entries.next().is_some() {
                Err(Failure::input(format!(
                    "{} exists and is not empty; give a new or empty directory",
                    dir.display()
                )))
            } else {
                Ok(())
            }
        }
    }
}

fn write_all(dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<(), Failure> {
    for (file, contents) in files {
        let path: PathBuf = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::input(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, contents)
            .map_err(|e| Failure::input(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

/// `"s"` unless `n` is 1.
fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `{"features":[0,0,...]}` with one zero per feature.
fn example_event(n_features: usize) -> String {
    format!(r#"{{"features":[{}]}}"#, vec!["0"; n_features].join(","))
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn cargo_toml(name: &str, dependency: &Dependency) -> String {
    let dependency = match dependency {
        Dependency::Version(version) => toml_string(version),
        Dependency::Path(path) => format!("{{ path = {} }}", toml_string(path)),
    };
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
apr-lambda = {dependency}

[dev-dependencies]
serde_json = "1"

# The release profile apr-lambda chooses for Lambda: fast, small binaries for a
# quick cold start; `unwind` so a bug fails one invocation, not the environment.
[profile.release]
opt-level = 3
lto = "fat"
codegen-units = 1
strip = "symbols"
panic = "unwind"
"#
    )
}

/// `name = ["a", "b"]` as an attribute argument, one string per line when
/// the list does not fit on one (as rustfmt lays out arrays).
fn names_argument(name: &str, names: &[String]) -> String {
    let literals: Vec<String> = names.iter().map(|s| format!("{s:?}")).collect();
    let one_line = format!("    {name} = [{}],", literals.join(", "));
    if one_line.len() <= 100 {
        return one_line;
    }
    let mut out = format!("    {name} = [\n");
    for literal in &literals {
        let _ = writeln!(out, "        {literal},");
    }
    out.push_str("    ],");
    out
}

fn main_rs(name: &str, info: &ModelInfo) -> String {
    let event = example_event(info.n_features);
    let n = info.n_features;
    let mut notes = String::new();
    if info.v1 {
        notes.push_str(
            "// - The model is an aprender v1 (APRN) file: the attribute converts it to v2\n\
             //   while compiling (`apr-lambda convert IN OUT` does it once, ahead of time).\n",
        );
    }
    let mut arguments = vec![
        format!("    model = {MODEL_IN_CRATE:?},"),
        format!("    features = {n},"),
    ];
    if let Some(labels) = &info.labels {
        notes.push_str(
            "// - `labels` (from the model's metadata) name the classes: each answer\n\
             //   carries the predicted class's label. Edit them to rename the classes.\n",
        );
        arguments.push(names_argument("labels", labels));
    }
    if let Some(names) = &info.feature_names {
        notes.push_str(
            "// - `feature_names` (from the model's metadata), in input order: events may\n\
             //   also send a row as an object keyed by these names.\n",
        );
        arguments.push(names_argument("feature_names", names));
    }
    let attribute = if arguments.len() == 2 {
        format!(
            "#[apr_lambda::apr_lambda(model = {MODEL_IN_CRATE:?}, features = {})]",
            info.n_features
        )
    } else {
        format!("#[apr_lambda::apr_lambda(\n{}\n)]", arguments.join("\n"))
    };
    format!(
        r#"//! {name}: an AWS Lambda function serving `{MODEL_IN_CRATE}`, a {family} model
//! ({n} feature{s} -> {outputs} output{outputs_s}), built with apr-lambda.
//!
//! Run it locally (no AWS needed: without `AWS_LAMBDA_RUNTIME_API` the binary
//! answers the events given as arguments, or JSON lines on stdin, prints one
//! JSON response per line and exits):
//!
//! ```sh
//! cargo run -- '{event}'
//! cargo run -- --help
//! cargo test
//! ```
//!
//! Deploy it: `cargo lambda build --release --arm64`, then `cargo lambda deploy`
//! (see README.md). The same binary serves on Lambda: nothing else to write.

// - `model` is relative to this crate's Cargo.toml. The file is read and fully
//   validated while the crate compiles: a bad model is a compile error here,
//   never a failed cold start.
// - `features = {n}` makes the compiler check that the model takes {n} input{s}.
{notes}{attribute}
fn main() {{
    // Runs once per process, before the first event: the place for one-time
    // setup such as logging (to stderr: stdout carries the local responses).
}}
"#,
        family = info.family,
        s = plural(n),
        outputs = info.n_outputs,
        outputs_s = plural(info.n_outputs),
    )
}

fn local_test(name: &str, info: &ModelInfo) -> String {
    format!(
        r##"//! The built function answers an event in local mode, as `cargo run` does.

use std::process::Command;

/// The number of inputs the model takes.
const FEATURES: usize = {n};

#[test]
fn answers_an_event_locally() {{
    let event = format!(r#"{{{{"features":[{{}}]}}}}"#, ["0"; FEATURES].join(","));
    let output = Command::new(env!("CARGO_BIN_EXE_{name}"))
        .arg(&event)
        // Local mode: the binary serves the Lambda Runtime API when this is set.
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .expect("the function runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{{}}\nstdout: {{stdout}}\nstderr: {{}}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let first = stdout.lines().next().unwrap_or_default();
    let answer: serde_json::Value = serde_json::from_str(first)
        .unwrap_or_else(|e| panic!("the answer is not JSON ({{e}}): {{first}}"));
    assert!(answer.get("prediction").is_some(), "no prediction: {{first}}");
}}
"##,
        n = info.n_features,
    )
}

fn readme(name: &str, info: &ModelInfo) -> String {
    let event = example_event(info.n_features);
    format!(
        r#"# {name}

An AWS Lambda function built with apr-lambda. It serves `{MODEL_IN_CRATE}`,
a {family} model ({n} feature{s} -> {outputs} output{outputs_s}): the
`#[apr_lambda]` attribute on `fn main` in `src/main.rs` validates the model
while the crate compiles, embeds it, and serves it.

## The two commands

Run it locally (without `AWS_LAMBDA_RUNTIME_API` the binary answers the events
given as arguments, prints one JSON response per line, and exits):

```bash
cargo run -- '{event}'
```

Run the tests (the built function answers that event in local mode):

```bash
cargo test
```

## Deploy to AWS Lambda (arm64)

Build the function for Graviton with [cargo-lambda](https://www.cargo-lambda.info/)
(the release profile in `Cargo.toml` is chosen for cold start and size):

```bash
cargo lambda build --release --arm64      # target/lambda/{name}/bootstrap
```

Deploy with cargo-lambda (needs AWS credentials in the environment):

```bash
cargo lambda deploy --memory 128 {name}      # add --dry to see the plan first
```

or package `target/lambda/{name}/bootstrap` as a zip
(`cargo lambda build --release --arm64 --output-format zip` writes
`target/lambda/{name}/bootstrap.zip`) and upload it as a function with the
`provided.al2023` runtime, the `arm64` architecture and the handler `bootstrap`.

Invoke it with a plain event:

```bash
aws lambda invoke --function-name {name} \
  --cli-binary-format raw-in-base64-out \
  --payload '{event}' out.json && cat out.json
```
"#,
        family = info.family,
        n = info.n_features,
        s = plural(info.n_features),
        outputs = info.n_outputs,
        outputs_s = plural(info.n_outputs),
    )
}
