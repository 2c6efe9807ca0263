//! The `#[apr_lambda]` ui suite: compile-fail cases with checked-in `.stderr`
//! files (what a user sees), and compile-pass cases that build and run.
//!
//! Model paths in `model = "..."` are relative to `CARGO_MANIFEST_DIR`. Under
//! trybuild that is the project trybuild generates
//! (`<target>/tests/trybuild/apr-lambda/`), not this repository, so before
//! the cases are built the fixtures of `tests/ui/models/` are copied to
//! `<that project>/models/`: the cases then name them `models/...`, as a
//! user's crate would, and the `.stderr` files hold no machine paths.
//!
//! Four fixtures are generated, not copied from `apr-runtime/tests/fixtures`:
//! `unsupported_flags.apr`, `unsupported_family.apr`, `nan_weight.apr` (a
//! linear model with a NaN weight) and `many_outputs.apr` (a linear model of
//! 2000 outputs, whose worst-case response to 10 000 rows exceeds Lambda's
//! response limit). They are committed;
//! `generated_fixtures_break_exactly_their_rule` checks that each breaks its
//! one rule, and `APR_UPDATE_FIXTURES=1 cargo test --test trybuild generated`
//! regenerates them.

use std::path::{Path, PathBuf};
use std::process::Command;

use apr_lambda::runtime::format::{crc32, AprWriter, Flags};
use apr_lambda::runtime::limits;
use apr_lambda::runtime::model::Model;
use apr_lambda::{AprFile, FormatError, ModelError};

/// Where the ui fixtures are kept in the repository.
fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/models")
}

/// The cargo target directory, as trybuild finds it (`cargo metadata`).
fn target_dir() -> PathBuf {
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["metadata", "--no-deps", "--format-version=1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata failed");
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let dir = metadata["target_directory"]
        .as_str()
        .expect("cargo metadata names the target directory");
    PathBuf::from(dir)
}

/// Copies `tests/ui/models/*` to `<trybuild project>/models/`, plus an empty
/// directory `models/a_directory` (git keeps no empty directories).
fn install_fixtures() {
    let project = target_dir()
        .join("tests/trybuild")
        .join(env!("CARGO_PKG_NAME"));
    let models = project.join("models");
    if models.exists() {
        std::fs::remove_dir_all(&models).expect("remove the old fixture copy");
    }
    std::fs::create_dir_all(models.join("a_directory")).expect("create the fixture directory");
    for entry in std::fs::read_dir(fixtures_dir()).expect("tests/ui/models is readable") {
        let entry = entry.expect("a directory entry");
        if entry.file_type().expect("a file type").is_file() {
            std::fs::copy(entry.path(), models.join(entry.file_name())).expect("copy a fixture");
        }
    }
}

#[test]
fn ui() {
    install_fixtures();
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}

/// A valid linear model whose header claims encryption, with the header CRC
/// (and the footer CRC) recomputed so that the flag is the only rule broken.
fn unsupported_flags_fixture() -> Vec<u8> {
    let mut bytes = std::fs::read(fixtures_dir().join("linear_regression.v2.apr"))
        .expect("the linear regression fixture is readable");
    let flags = u16::from_le_bytes([bytes[6], bytes[7]]) | Flags::ENCRYPTED;
    bytes[6..8].copy_from_slice(&flags.to_le_bytes());
    let mut covered = bytes[0..40].to_vec();
    covered.extend_from_slice(&bytes[44..64]);
    bytes[40..44].copy_from_slice(&crc32(&covered).to_le_bytes());
    let body = bytes.len() - 4;
    let footer = crc32(&bytes[..body]);
    bytes[body..].copy_from_slice(&footer.to_le_bytes());
    bytes
}

/// A valid container of a family the runtime does not serve (a PCA).
fn unsupported_family_fixture() -> Vec<u8> {
    let mut writer = AprWriter::new();
    writer.model_type("Pca");
    writer
        .add_f32("components", &[2, 3], &[0.6, 0.8, 0.0, -0.8, 0.6, 0.0])
        .expect("a valid tensor");
    writer
        .add_f32("mean", &[3], &[1.0, 2.0, 3.0])
        .expect("a valid tensor");
    writer.to_bytes()
}

/// The weights of `nan_weight.apr`, with `bad` at index 1.
fn nan_weight_values(bad: f32) -> [f32; 3] {
    [0.5, bad, 1.5]
}

/// A linear model of 3 features whose weight holds a NaN at index 1.
fn nan_weight_fixture(bad: f32) -> Vec<u8> {
    let mut writer = AprWriter::new();
    writer.model_type("LinearRegression");
    writer
        .add_f32("weight", &[1, 3], &nan_weight_values(bad))
        .expect("a valid tensor");
    writer
        .add_f32("bias", &[1], &[0.25])
        .expect("a valid tensor");
    writer.to_bytes()
}

/// The number of outputs of `many_outputs.apr`.
const MANY_OUTPUTS: usize = 2000;

/// A valid linear model of 2 features and [`MANY_OUTPUTS`] outputs.
fn many_outputs_fixture() -> Vec<u8> {
    let weights: Vec<f32> = (0..2 * MANY_OUTPUTS)
        .map(|i| (i % 7) as f32 * 0.125)
        .collect();
    let mut writer = AprWriter::new();
    writer.model_type("LinearRegression");
    writer
        .add_f32("weight", &[MANY_OUTPUTS, 2], &weights)
        .expect("a valid tensor");
    writer.to_bytes()
}

#[test]
fn generated_fixtures_break_exactly_their_rule() {
    if std::env::var_os("APR_UPDATE_FIXTURES").is_some() {
        for (name, bytes) in [
            ("unsupported_flags.apr", unsupported_flags_fixture()),
            ("unsupported_family.apr", unsupported_family_fixture()),
            ("nan_weight.apr", nan_weight_fixture(f32::NAN)),
            ("many_outputs.apr", many_outputs_fixture()),
        ] {
            std::fs::write(fixtures_dir().join(name), bytes).expect("write the fixture");
        }
    }
    let read = |name: &str| std::fs::read(fixtures_dir().join(name)).expect("a committed fixture");

    let flags = read("unsupported_flags.apr");
    assert!(
        matches!(AprFile::parse(&flags), Err(FormatError::Encrypted { .. })),
        "unsupported_flags.apr must fail on the encrypted flag alone"
    );
    let mut cleared = flags.clone();
    cleared[6..8].copy_from_slice(
        &(u16::from_le_bytes([flags[6], flags[7]]) & !Flags::ENCRYPTED).to_le_bytes(),
    );
    let mut covered = cleared[0..40].to_vec();
    covered.extend_from_slice(&cleared[44..64]);
    cleared[40..44].copy_from_slice(&crc32(&covered).to_le_bytes());
    let body = cleared.len() - 4;
    let footer = crc32(&cleared[..body]);
    cleared[body..].copy_from_slice(&footer.to_le_bytes());
    let file = AprFile::parse(&cleared).expect("valid once the flag is cleared");
    Model::from_file(&file).expect("a servable model once the flag is cleared");

    let family = read("unsupported_family.apr");
    let file = AprFile::parse(&family).expect("unsupported_family.apr is a valid container");
    assert!(
        matches!(Model::from_file(&file), Err(ModelError::Unsupported { .. })),
        "unsupported_family.apr must fail on its model family alone"
    );

    let nan = read("nan_weight.apr");
    assert_eq!(
        nan,
        nan_weight_fixture(f32::NAN),
        "nan_weight.apr is what the generator writes"
    );
    let file = AprFile::parse(&nan).expect("nan_weight.apr is a valid container");
    assert!(
        matches!(
            Model::from_file(&file),
            Err(ModelError::NonFiniteWeight { ref tensor, index: 1 }) if tensor == "weight"
        ),
        "nan_weight.apr must fail on its NaN weight alone"
    );
    Model::from_bytes(&nan_weight_fixture(1.0)).expect("a servable model without the NaN");

    let many = read("many_outputs.apr");
    assert_eq!(
        many,
        many_outputs_fixture(),
        "many_outputs.apr is what the generator writes"
    );
    let model = Model::from_bytes(&many).expect("many_outputs.apr is a servable model");
    assert_eq!(model.n_outputs(), MANY_OUTPUTS);
    let fits = limits::max_batch_that_fits(&model);
    assert!(
        fits < 10_000,
        "many_outputs.apr must not fit max_batch = 10000 (its limit is {fits})"
    );
}

/// Peak RSS (kB) and wall time of one `cargo build` of `project`, through
/// `/usr/bin/time -v` (its peak is that of the largest process: rustc or
/// the linker). Incremental compilation is off: its cache of the previous
/// build (which holds the model too) makes the figures depend on history.
fn measured_build(project: &Path, target: &Path, profile: &str) -> (u64, String) {
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--offline", "--quiet", "--profile", profile])
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_INCREMENTAL", "0")
        .current_dir(project)
        .output()
        .expect("/usr/bin/time runs cargo");
    let report = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "the build failed:\n{report}");
    let field = |name: &str| {
        report
            .lines()
            .find_map(|line| line.trim().strip_prefix(name))
            .map(|value| value.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name:?} in:\n{report}"))
    };
    let peak_kb = field("Maximum resident set size (kbytes):")
        .parse()
        .expect("a number of kB");
    (
        peak_kb,
        field("Elapsed (wall clock) time (h:mm:ss or m:ss):"),
    )
}

/// A linear model of `n_inputs` weights, written to `path`; its length.
fn write_linear_model(path: &Path, n_inputs: usize) -> usize {
    let weights: Vec<f32> = (0..n_inputs).map(|i| (i % 1000) as f32 * 1e-3).collect();
    let mut writer = AprWriter::new();
    writer.model_type("LinearRegression");
    writer
        .add_f32("weight", &[1, n_inputs], &weights)
        .expect("a valid weight");
    writer.add_f32("bias", &[1], &[0.5]).expect("a valid bias");
    let bytes = writer.to_bytes();
    std::fs::write(path, &bytes).expect("write the model");
    bytes.len()
}

/// A 50 MB model compiles with the memory a plain `include_bytes!` of it
/// costs, not the blow-up of bytes pasted as a literal. Run it with
/// `cargo test --test trybuild -- --ignored --nocapture large_model`; for the
/// dev and release profiles it prints the peak RSS and time of a build with
/// a 1 KB model, with the 50 MB model, and of the same `main` written by hand
/// with a plain `include_bytes!` of the 50 MB model.
#[test]
#[ignore = "builds a crate in two profiles with a 50 MB model (minutes)"]
fn large_model_compiles_without_memory_blow_up() {
    assert!(
        Path::new("/usr/bin/time").exists(),
        "this test measures with /usr/bin/time -v: install GNU time (apt-get install time)"
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let project = Path::new(env!("CARGO_TARGET_TMPDIR")).join("apr-large-model");
    std::fs::create_dir_all(project.join("src")).expect("create the project");
    std::fs::create_dir_all(project.join("models")).expect("create the models directory");
    std::fs::write(
        project.join("Cargo.toml"),
        format!(
            "[package]\nname = \"apr-large-model\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\napr-lambda = {{ path = {:?} }}\n\n[workspace]\n",
            repo.display().to_string()
        ),
    )
    .expect("write Cargo.toml");
    // The repository's lock file, so the build uses the same dependencies.
    std::fs::copy(repo.join("Cargo.lock"), project.join("Cargo.lock")).expect("copy Cargo.lock");
    let model = project.join("models/model.apr");
    let with_macro = "#[apr_lambda::apr_lambda(model = \"models/model.apr\")]\nfn main() {}\n";
    let by_hand = format!(
        "fn main() -> std::process::ExitCode {{\n    \
         static MODEL: &[u8] = include_bytes!({:?});\n    \
         apr_lambda::__private::run(MODEL, apr_lambda::__private::Config::new())\n}}\n",
        model.display().to_string()
    );
    let target = repo.join("target/apr-large-model");
    let large_inputs = 50 * 1024 * 1024 / 4;

    for profile in ["dev", "release"] {
        let build = |main: &str, n_inputs: usize| {
            std::fs::write(project.join("src/main.rs"), main).expect("write main.rs");
            let len = write_linear_model(&model, n_inputs);
            let (peak_kb, time) = measured_build(&project, &target, profile);
            println!(
                "{profile}: {len:>8} byte model, {main_kind}: peak RSS {peak_kb:>7} kB, {time}",
                main_kind = if main == with_macro {
                    "#[apr_lambda]"
                } else {
                    "include_bytes! by hand"
                }
            );
            peak_kb
        };
        // The first build compiles the dependencies; the ones after it only the crate.
        build(with_macro, 256);
        build(with_macro, 257);
        let with_macro_kb = build(with_macro, large_inputs);
        let by_hand_kb = build(&by_hand, large_inputs);
        // The macro's own work (reading and validating the file) happens
        // before codegen and is freed by then: its peak is the include's.
        assert!(
            with_macro_kb < by_hand_kb + 64 * 1024,
            "{profile}: #[apr_lambda] peaked at {with_macro_kb} kB, a plain include_bytes! at {by_hand_kb} kB"
        );
    }
}
