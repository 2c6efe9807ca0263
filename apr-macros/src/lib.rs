//! The `#[apr_lambda]` attribute: validates an `.apr` model while the crate
//! compiles, embeds it 64-byte aligned, and turns `main` (or a handler
//! function of your own) into an AWS Lambda function that serves it.
//!
//! Use it through the facade crate, `apr_lambda::apr_lambda`; see the
//! attribute's documentation for its arguments, checks and expansion.
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod args;
mod expand;
mod model_file;
mod signature;

use proc_macro::TokenStream;

/// Turns `fn main`, or a handler function, into an AWS Lambda function
/// serving an embedded `.apr` model.
///
/// ```no_run
/// // models/linear_regression.apr is relative to this crate's Cargo.toml.
/// #[apr_lambda::apr_lambda(model = "../models/linear_regression.apr", features = 3)]
/// fn main() {
///     // One-time init (logging, ...): runs once, before the first event.
/// }
/// ```
///
/// # Arguments
///
/// | argument | | meaning |
/// |---|---|---|
/// | `model = "path"` | required | the `.apr` file, relative to the directory of the crate's `Cargo.toml` (`CARGO_MANIFEST_DIR`); an absolute path also works |
/// | `crate = "path"` | optional | the path of the `apr-lambda` crate when it is renamed (`crate = "my_apr"`); default `::apr_lambda` |
/// | `features = N` | optional | asserts at compile time that the model takes `N` inputs |
/// | `max_batch = N` | optional | the most rows one batch event (`{"instances": [...]}`) may carry; at most what always fits in a Lambda response (below); when absent, computed from the model at start-up |
/// | `labels = ["a", ...]` | optional | one label per class (or k-means cluster), in class order: answers carry `"label"` and `Output::label()` returns it; replaces a `labels` array in the model's metadata |
/// | `feature_names = ["x", ...]` | optional | one distinct name per feature, in input order: rows may be sent as objects keyed by name; replaces a `feature_names` array in the metadata |
///
/// An unknown or repeated argument, a missing `model`, or a value of the
/// wrong kind (`model = models/x`, `features = "4"`) is a compile error at
/// that token.
///
/// ## `max_batch` and Lambda's response limit
///
/// Lambda refuses a response larger than 6 291 556 bytes. The answers to a
/// batch must therefore fit whatever the values in them: `max_batch = N` is
/// a compile error, at `N`, when the worst-case JSON response to `N` rows
/// (every output and probability a longest `f32`, escaped as the body of an
/// HTTP response, `apr_runtime::limits::worst_case_response_bytes`) exceeds
/// that limit. The message gives the worst-case size and the largest
/// `max_batch` that always fits (`apr_runtime::limits::max_batch_that_fits`):
///
/// ```text
/// error: `max_batch = 10000` is too large for models/many_outputs.apr: the response to 10000 rows of this LinearRegression model (2000 outputs per row) can take up to 680540209 bytes, more than Lambda's 6291556-byte response limit; the largest `max_batch` that always fits is 92
///  --> src/main.rs:1:73
///   |
/// 1 | #[apr_lambda::apr_lambda(model = "models/many_outputs.apr", max_batch = 10000)]
///   |                                                                         ^^^^^
/// ```
///
/// Without `max_batch`, the handler computes the limit from the model when
/// it starts: 10 000 rows, or fewer when fewer always fit
/// (`apr_runtime::limits::default_max_batch`).
///
/// # Where it goes
///
/// On a handler function (below), or on `fn main()`: sync or `async`, with no arguments and no generics,
/// returning `()` or `Result<(), E>` (any `E: Debug`, any `...::Result<()>`
/// alias). The body runs exactly once, before serving: put one-time setup
/// there (tracing, reading configuration). An `async` body runs on the
/// tokio runtime that then serves (current-thread, or multi-thread under
/// Lambda Managed Instances). When the body returns `Err(e)`, the process
/// prints `Error: {e:?}` to stderr and exits with a failure code without
/// serving, as `std` does for a failing `main`. Anywhere else the attribute
/// is a compile error that says what is supported.
///
/// ## On a handler
///
/// ```no_run
/// # use serde::{Deserialize, Serialize};
/// #[derive(Deserialize)]
/// struct Point { x: f32, y: f32, z: f32 }
///
/// #[derive(Serialize)]
/// struct Value { value: f32, request_id: String }
///
/// #[apr_lambda::apr_lambda(model = "../models/linear_regression.apr", features = 3)]
/// async fn value(
///     point: Point,
///     model: &apr_lambda::Model,
///     context: &apr_lambda::Context,
/// ) -> Result<Value, apr_lambda::Error> {
///     let out = model.predict_one(&[point.x, point.y, point.z])?;
///     Ok(Value { value: out.outputs()[0], request_id: context.request_id.clone() })
/// }
/// ```
///
/// `[async] fn NAME(request: T, model: &apr_lambda::Model) -> Result<R, E>`,
/// optionally with a third parameter `context: &apr_lambda::Context`, with
/// `T: serde::Deserialize`, `R: serde::Serialize` and `E: Display` (most
/// simply `apr_lambda::Error`, which any error converts into with `?`). The
/// macro keeps the function as written and generates `main`, which serves
/// it: each event (or HTTP body, or local-mode argument) is decoded as `T`,
/// the function is called, and `Ok(r)` is the answer, `Err(e)` an error
/// response whose `errorType` is the error's name. A wrong number or kind
/// of parameters, a model or context not taken by shared reference, a
/// return type that is not a `Result`, generics, `const`/`unsafe`/`extern`,
/// or a `main` of your own beside the handler is a compile error.
///
/// # What it checks while compiling
///
/// It reads the file and validates it with `apr-runtime`'s own code (there is
/// no second parser):
///
/// - the file exists, is not a directory, is readable;
/// - the container is valid: every rule of the v2 format (magic, version,
///   header CRC, flags, metadata, tensor index, dtypes, sizes, bounds, footer
///   CRC when present), through `AprFile::parse`;
/// - the runtime supports the model family and every tensor shape, through
///   `Model::from_file`, and every weight, bias, threshold and centroid is
///   finite (no NaN, no infinity);
/// - the model takes `features` inputs, when `features = N` is given;
/// - `labels` has one name per class (an error at the array naming both
///   numbers, also for labels on a model that predicts no class), and
///   `feature_names` one distinct name per feature, when given;
/// - the answers to `max_batch` rows always fit in a Lambda response, when
///   `max_batch = N` is given (an error at `N`, above).
///
/// Each other failure is a compile error at the `model = "..."` literal, naming the
/// file as written and the rule broken, for example
///
/// ```text
/// error: models/model.apr: header checksum mismatch at byte 40: stored 0x1234abcd, computed 0x9e3779b9 over bytes 0..40 and 44..64
///  --> src/main.rs:1:35
///   |
/// 1 | #[apr_lambda::apr_lambda(model = "models/model.apr")]
///   |                                  ^^^^^^^^^^^^^^^^^^
/// ```
///
/// # v1 (APRN) files
///
/// A v1 file, as `aprender::format::save` writes it, is accepted: the macro
/// converts it to v2 at compile time and embeds the converted bytes. The
/// converter keeps what inference needs and drops the training data that v1
/// random-forest payloads (the training matrix, labels and out-of-bag
/// indices) and k-means payloads (the training labels) carry. The original
/// file is still `include_bytes!`-ed, so editing it rebuilds the crate.
/// The converted bytes are embedded as a literal, so a v1 model that converts
/// to more than 16 MiB is refused: convert it once with
/// `apr-lambda convert IN OUT` and embed the v2 file.
///
/// # What it expands to
///
/// ```text
/// fn main() -> ::std::process::ExitCode {
///     #[repr(C, align(64))]
///     struct __AprAligned<T: ?Sized>(T);
///     static __APR_MODEL: &__AprAligned<[u8]> =
///         &__AprAligned(*include_bytes!("/absolute/path/to/models/model.apr"));
///
///     fn __apr_lambda_main() -> RET { BODY }            // `async fn` when main is async
///     ::apr_lambda::__private::process_start();       // the cold-start clock starts here
///     if let Err(code) = ::apr_lambda::__private::init_outcome(
///         __apr_lambda_main(),                          // `__private::block_on(...)` when async
///     ) {
///         return code;                                  // the body returned Err: do not serve
///     }
///     ::apr_lambda::__private::run(
///         &__APR_MODEL.0,
///         ::apr_lambda::__private::Config::new().max_batch(N), // `.max_batch` only when given
///     )
/// }
/// ```
///
/// For a v1 input the static holds the converted bytes as a byte-string
/// literal instead, next to `const _: &[u8] = include_bytes!("/absolute/original.apr");`.
///
/// `include_bytes!` of the absolute path makes cargo rebuild when the model
/// changes, and costs the compiler what `include_bytes!` always costs (for a
/// 50 MB model, peak RSS within 2% of a hand-written `include_bytes!`: about
/// 360 MB in a dev build, 790 MB in a release build), not the far larger
/// cost of bytes pasted as a literal. The bytes sit in a 64-byte aligned
/// static, so at start-up `f32` tensors are viewed in place, not copied.
/// `run` builds the `LambdaHandler` from the bytes and serves it: on AWS
/// Lambda when `AWS_LAMBDA_RUNTIME_API` is set, in local mode otherwise
/// (events from the command line or JSON lines on stdin).
///
/// On a handler the function is kept as written, and the generated `main`
/// ends in `::apr_lambda::__private::run_handler::<_, R, E, _, _>(&__APR_MODEL.0,
/// CONFIG, |model, request, context| async move { NAME(request, model, &context).await })`
/// instead (no `.await` for a sync handler; `.labels(&[...])` and
/// `.feature_names(&[...])` are added to the config when given). `R` and `E`
/// are written as in the handler's return type, so that an answer type that
/// is not `Serialize`, or an error type that is not `Display`, is reported
/// there.
///
/// Everything the expansion uses is reached through
/// `::apr_lambda::__private` (or `<crate>::__private` with `crate = "..."`),
/// so the user needs no imports; that hidden module describes each entry
/// point.
#[proc_macro_attribute]
pub fn apr_lambda(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(args.into(), item.into()).into()
}

/// The attribute, on `proc_macro2` tokens.
fn entry(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let item: syn::Item = match syn::parse2(item.clone()) {
        Ok(item) => item,
        Err(error) => {
            let mut tokens = error.into_compile_error();
            tokens.extend(item);
            return tokens;
        }
    };
    let args = args::parse(args);
    let entry = match signature::check(item) {
        Ok(entry) => entry,
        Err((mut error, item)) => {
            if let Err(args_error) = args {
                error.combine(args_error.error);
            }
            let mut tokens = error.into_compile_error();
            tokens.extend(kept(*item));
            return tokens;
        }
    };
    let krate = expand::crate_path(match &args {
        Ok(args) => args.crate_path.as_ref(),
        Err(args_error) => args_error.crate_path.as_ref(),
    });
    let is_handler = matches!(entry, signature::Entry::Handler { .. });
    let expand =
        |model: Option<&model_file::EmbeddedModel>, settings: &expand::Settings<'_>| match entry {
            signature::Entry::Main(function) => expand::main(function, &krate, model, settings),
            signature::Entry::Handler {
                function,
                takes_context,
            } => expand::handler(function, takes_context, &krate, model, settings),
        };
    match args {
        Ok(args) => {
            // A handler decodes its own request type: there are no batch
            // events for `max_batch` to limit.
            let misplaced = args.max_batch.filter(|_| is_handler).map(|max_batch| {
                syn::Error::new(
                    max_batch.span,
                    "`max_batch` limits the rows of the default protocol's batch events \
                     (`{\"instances\": [...]}`); a handler decodes its own request type, \
                     so there is nothing for it to limit: remove it",
                )
            });
            let settings = expand::Settings {
                max_batch: args.max_batch.map(|m| m.value),
                labels: args.labels.as_ref(),
                feature_names: args.feature_names.as_ref(),
            };
            let checks = model_file::Checks {
                features: args.features,
                max_batch: args.max_batch,
                labels: args.labels.as_ref(),
                feature_names: args.feature_names.as_ref(),
            };
            match (model_file::load(&args.model, checks), misplaced) {
                (Ok(model), None) => expand(Some(&model), &settings),
                (Ok(_), Some(error)) => {
                    let mut tokens = error.into_compile_error();
                    tokens.extend(expand(None, &settings));
                    tokens
                }
                (Err(mut error), misplaced) => {
                    if let Some(misplaced) = misplaced {
                        error.combine(misplaced);
                    }
                    let mut tokens = error.into_compile_error();
                    tokens.extend(expand(None, &settings));
                    tokens
                }
            }
        }
        Err(args_error) => {
            let mut tokens = args_error.error.into_compile_error();
            tokens.extend(expand(None, &expand::Settings::default()));
            tokens
        }
    }
}

/// What the expansion keeps of an item the attribute cannot serve, next to
/// the error: the item as written, so the rest of the crate still resolves
/// and IDEs (rust-analyzer) keep working on its body, as tokio's macros do.
/// No error is added to the macro's own:
///
/// - a `main` is nested, unchanged, in a plain `fn main() {}`: there it is an
///   ordinary function, type-checked as written, and not the entry point, so
///   rustc does not also reject it for what the macro already reported
///   (`async`, generics, arguments, another return type);
/// - another function (a handler with the wrong signature) is kept beside a
///   plain `fn main() {}`, standing in for the `main` the macro generates;
/// - any other item is kept as it is.
fn kept(item: syn::Item) -> proc_macro2::TokenStream {
    match item {
        syn::Item::Fn(function) if function.sig.ident == "main" => quote::quote! {
            #[allow(dead_code)]
            fn main() {
                #function
            }
        },
        syn::Item::Fn(function) => quote::quote! {
            #function
            fn main() {}
        },
        other => quote::ToTokens::into_token_stream(other),
    }
}

#[cfg(test)]
mod tests {
    use super::entry;
    use proc_macro2::TokenStream;
    use quote::{quote, ToTokens};
    use syn::{Item, Stmt};

    /// The expansion of `#[apr_lambda(model = "m.apr")]` on `item`, parsed
    /// as a file: the compile errors first, then the items.
    fn expand(item: TokenStream) -> Vec<Item> {
        let tokens = entry(quote!(model = "m.apr"), item);
        syn::parse2::<syn::File>(tokens)
            .expect("the expansion parses")
            .items
    }

    fn is_compile_error(item: &Item) -> bool {
        matches!(item, Item::Macro(m) if m.mac.path.segments.last().is_some_and(|s| s.ident == "compile_error"))
    }

    #[test]
    fn a_main_the_attribute_cannot_serve_is_kept_nested_in_a_plain_main() {
        let user_main = quote! {
            /// Docs stay.
            async fn main<T>(args: Vec<String>) -> i32 {
                let kept_body = args.len();
                kept_body as i32
            }
        };
        let items = expand(user_main.clone());
        let (errors, rest): (Vec<_>, Vec<_>) = items.iter().partition(|i| is_compile_error(i));
        assert_eq!(
            errors.len(),
            3,
            "async is fine; arguments, generics and i32 are not"
        );
        let [Item::Fn(stand_in)] = rest.as_slice() else {
            panic!("one stand-in `main`, got {} items", rest.len());
        };
        assert_eq!(stand_in.sig.ident, "main");
        assert!(stand_in.sig.asyncness.is_none() && stand_in.sig.inputs.is_empty());
        assert!(matches!(stand_in.sig.output, syn::ReturnType::Default));
        let [Stmt::Item(Item::Fn(nested))] = stand_in.block.stmts.as_slice() else {
            panic!("the user's `main` is the stand-in's only statement");
        };
        let reparsed: syn::ItemFn = syn::parse2(user_main).expect("the case parses");
        assert_eq!(
            nested.to_token_stream().to_string(),
            reparsed.to_token_stream().to_string(),
            "the user's `main` is kept as written"
        );
    }

    #[test]
    fn a_handler_the_attribute_cannot_serve_is_kept_beside_a_plain_main() {
        let handler = quote! {
            async fn predict(row: Vec<f32>) -> f32 { row[0] }
        };
        let items = expand(handler.clone());
        let rest: Vec<_> = items.iter().filter(|i| !is_compile_error(i)).collect();
        let [Item::Fn(kept), Item::Fn(stand_in)] = rest.as_slice() else {
            panic!("the handler and a stand-in `main`");
        };
        let reparsed: syn::ItemFn = syn::parse2(handler).expect("the case parses");
        assert_eq!(
            kept.to_token_stream().to_string(),
            reparsed.to_token_stream().to_string()
        );
        assert_eq!(
            stand_in.to_token_stream().to_string(),
            quote!(
                fn main() {}
            )
            .to_string()
        );
    }

    #[test]
    fn another_item_is_kept_as_it_is() {
        let items = expand(quote!(
            struct Handler;
        ));
        let rest: Vec<_> = items.iter().filter(|i| !is_compile_error(i)).collect();
        assert!(
            matches!(rest.as_slice(), [Item::Struct(s)] if s.ident == "Handler"),
            "{}",
            rest.len()
        );
    }
}
