//! The attribute's arguments: `model = "path"`, `crate = "path"`,
//! `features = N`, `max_batch = N`, `labels = ["...", ...]` and
//! `feature_names = ["...", ...]`, parsed into [`MacroArgs`].
//!
//! Every mistake is a `syn::Error` at the token that is wrong: the name of an
//! unknown or repeated argument, the value of the wrong kind, or the whole
//! attribute when `model` is missing.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitStr, Meta, Token};

/// The one-line summary of the accepted arguments, repeated in errors.
const ACCEPTED: &str = "`model = \"path\"` (required), `crate = \"path\"`, `features = N`, \
     `max_batch = N`, `labels = [\"...\", ...]` and `feature_names = [\"...\", ...]`";

/// The parsed arguments of one `#[apr_lambda(...)]`.
pub(crate) struct MacroArgs {
    /// The `model = "..."` literal, kept whole so every model error points at it.
    pub(crate) model: LitStr,
    /// The path of the facade crate, from `crate = "..."`; `::apr_lambda` when absent.
    pub(crate) crate_path: Option<syn::Path>,
    /// `features = N`: the input width the model must have.
    pub(crate) features: Option<usize>,
    /// `max_batch = N`: the most rows one batch event may carry.
    pub(crate) max_batch: Option<MaxBatch>,
    /// `labels = [...]`: one label per class.
    pub(crate) labels: Option<NameList>,
    /// `feature_names = [...]`: one name per feature.
    pub(crate) feature_names: Option<NameList>,
}

/// `labels = [...]` or `feature_names = [...]` as written: the strings, and
/// the span of the array (where an error about them points).
#[derive(Clone)]
pub(crate) struct NameList {
    /// The names, in order.
    pub(crate) names: Vec<String>,
    /// The span of the `[...]` array.
    pub(crate) span: Span,
}

/// `max_batch = N` as written: the value, and the span of the `N` literal
/// (where an error about its size points).
#[derive(Clone, Copy)]
pub(crate) struct MaxBatch {
    /// `N`, at least 1.
    pub(crate) value: usize,
    /// The span of the `N` literal.
    pub(crate) span: Span,
}

/// The arguments as they are read, before `model` is known to be present.
#[derive(Default)]
struct PartialArgs {
    /// Whether `model` was written at all, valid or not (so an invalid
    /// value is not also reported as missing).
    model_written: bool,
    model: Option<LitStr>,
    crate_path: Option<syn::Path>,
    features: Option<usize>,
    max_batch: Option<MaxBatch>,
    labels: Option<NameList>,
    feature_names: Option<NameList>,
}

/// Arguments that did not parse: the errors, and the `crate = "..."` path
/// when that one was valid (so the fallback expansion still resolves).
pub(crate) struct ArgsError {
    /// Every argument error, combined.
    pub(crate) error: syn::Error,
    /// The valid `crate = "..."` path, if any.
    pub(crate) crate_path: Option<syn::Path>,
}

/// Parses the attribute's argument tokens.
pub(crate) fn parse(tokens: TokenStream) -> Result<MacroArgs, ArgsError> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated
        .parse2(tokens)
        .map_err(|error| ArgsError {
            error,
            crate_path: None,
        })?;
    let mut args = PartialArgs::default();
    let mut errors: Option<syn::Error> = None;
    for meta in metas {
        if let Err(error) = args.apply(meta) {
            push_error(&mut errors, error);
        }
    }
    let crate_path = args.crate_path;
    let fail = |error| {
        Err(ArgsError {
            error,
            crate_path: crate_path.clone(),
        })
    };
    match (args.model, errors) {
        (Some(model), None) => Ok(MacroArgs {
            model,
            crate_path,
            features: args.features,
            max_batch: args.max_batch,
            labels: args.labels,
            feature_names: args.feature_names,
        }),
        (Some(_), Some(errors)) => fail(errors),
        (None, Some(errors)) if args.model_written => fail(errors),
        (None, errors) => {
            let mut missing = syn::Error::new(
                Span::call_site(),
                "missing `model = \"path/to/model.apr\"`: #[apr_lambda] needs the model file to \
                 embed, relative to the directory of the crate's Cargo.toml",
            );
            if let Some(errors) = errors {
                missing.combine(errors);
            }
            fail(missing)
        }
    }
}

/// Adds `error` to the errors collected so far, so one compile shows all of them.
fn push_error(errors: &mut Option<syn::Error>, error: syn::Error) {
    match errors {
        Some(existing) => existing.combine(error),
        None => *errors = Some(error),
    }
}

impl PartialArgs {
    /// Records one `name = value` argument, or says why it cannot be.
    fn apply(&mut self, meta: Meta) -> syn::Result<()> {
        let name_value = match meta {
            Meta::NameValue(name_value) => name_value,
            Meta::Path(path) => {
                let name = path_name(&path);
                self.model_written |= name == "model";
                return Err(syn::Error::new_spanned(
                    &path,
                    format!(
                        "`{name}` needs a value, as in `{}`; #[apr_lambda] accepts {ACCEPTED}",
                        example(&name)
                    ),
                ));
            }
            Meta::List(list) => {
                let name = path_name(&list.path);
                self.model_written |= name == "model";
                return Err(syn::Error::new_spanned(
                    &list,
                    format!(
                        "`{name}(...)` is not an argument form #[apr_lambda] takes; write `{}`",
                        example(&name)
                    ),
                ));
            }
        };
        let name = path_name(&name_value.path);
        let name_span = name_value.path.span();
        let value = &name_value.value;
        match name.as_str() {
            "model" => {
                check_unset(self.model_written, &name, name_span)?;
                self.model_written = true;
                let lit = string_literal(
                    value,
                    &name,
                    "the model file, e.g. `model = \"models/model.apr\"`",
                )?;
                if lit.value().is_empty() {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`model` is empty: give the path of an .apr file, e.g. `model = \"models/model.apr\"`",
                    ));
                }
                self.model = Some(lit);
            }
            "crate" => {
                check_unset(self.crate_path.is_some(), &name, name_span)?;
                let lit = string_literal(
                    value,
                    &name,
                    "the path of the renamed apr-lambda crate, e.g. `crate = \"my_apr\"`",
                )?;
                let path = lit.parse::<syn::Path>().map_err(|_| {
                    syn::Error::new(
                        lit.span(),
                        format!(
                            "`crate = {:?}` is not a path: give the name under which apr-lambda is \
                             available, e.g. `crate = \"my_apr\"` or `crate = \"::my_apr\"`",
                            lit.value()
                        ),
                    )
                })?;
                self.crate_path = Some(path);
            }
            "features" => {
                check_unset(self.features.is_some(), &name, name_span)?;
                self.features = Some(positive_integer(value, &name)?);
            }
            "max_batch" => {
                check_unset(self.max_batch.is_some(), &name, name_span)?;
                self.max_batch = Some(MaxBatch {
                    value: positive_integer(value, &name)?,
                    span: value.span(),
                });
            }
            "labels" => {
                check_unset(self.labels.is_some(), &name, name_span)?;
                self.labels = Some(string_array(value, &name)?);
            }
            "feature_names" => {
                check_unset(self.feature_names.is_some(), &name, name_span)?;
                self.feature_names = Some(string_array(value, &name)?);
            }
            _ => {
                return Err(syn::Error::new(
                    name_span,
                    format!("unknown argument `{name}`: #[apr_lambda] accepts {ACCEPTED}"),
                ))
            }
        }
        Ok(())
    }
}

/// The argument name as written (`crate` included), or the whole path for `a::b`.
fn path_name(path: &syn::Path) -> String {
    match path.get_ident() {
        Some(ident) => ident.to_string(),
        None => quote::ToTokens::to_token_stream(path)
            .to_string()
            .replace(' ', ""),
    }
}

/// How an argument is written, for error messages.
fn example(name: &str) -> String {
    match name {
        "model" => "model = \"models/model.apr\"".to_owned(),
        "crate" => "crate = \"my_apr\"".to_owned(),
        "features" => "features = 4".to_owned(),
        "max_batch" => "max_batch = 1000".to_owned(),
        "labels" => "labels = [\"setosa\", \"versicolor\", \"virginica\"]".to_owned(),
        "feature_names" => "feature_names = [\"sepal_length\", \"sepal_width\"]".to_owned(),
        other => format!("{other} = ..."),
    }
}

/// Fails at the argument's name when it was already given.
fn check_unset(already_set: bool, name: &str, span: Span) -> syn::Result<()> {
    if already_set {
        Err(syn::Error::new(
            span,
            format!("duplicate argument `{name}`: each argument may be given only once"),
        ))
    } else {
        Ok(())
    }
}

/// The string literal `value`, or an error at it saying what was expected.
fn string_literal(value: &Expr, name: &str, what: &str) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{name}` takes a string literal: {what}"),
        )),
    }
}

/// The array of string literals `value` (at least one), or an error at the
/// part that is wrong.
fn string_array(value: &Expr, name: &str) -> syn::Result<NameList> {
    let Expr::Array(array) = value else {
        return Err(syn::Error::new_spanned(
            value,
            format!(
                "`{name}` takes an array of string literals, e.g. `{}`",
                example(name)
            ),
        ));
    };
    if array.elems.is_empty() {
        return Err(syn::Error::new_spanned(
            array,
            format!(
                "`{name}` is empty: give one name per {}",
                what_is_named(name)
            ),
        ));
    }
    let names = array
        .elems
        .iter()
        .map(|elem| match elem {
            Expr::Lit(ExprLit {
                lit: Lit::Str(lit), ..
            }) => Ok(lit.value()),
            other => Err(syn::Error::new_spanned(
                other,
                format!(
                    "`{name}` holds string literals only, e.g. `{}`",
                    example(name)
                ),
            )),
        })
        .collect::<syn::Result<Vec<_>>>()?;
    Ok(NameList {
        names,
        span: array.span(),
    })
}

/// What one name of a list names.
fn what_is_named(name: &str) -> &'static str {
    if name == "labels" {
        "class"
    } else {
        "feature"
    }
}

/// The integer literal `value`, at least 1, or an error at it.
fn positive_integer(value: &Expr, name: &str) -> syn::Result<usize> {
    let wrong_kind = || {
        syn::Error::new_spanned(
            value,
            format!(
                "`{name}` takes a positive integer literal, e.g. `{}`",
                example(name)
            ),
        )
    };
    let Expr::Lit(ExprLit {
        lit: Lit::Int(int), ..
    }) = value
    else {
        return Err(wrong_kind());
    };
    let parsed: usize = int.base10_parse().map_err(|_| wrong_kind())?;
    if parsed == 0 {
        return Err(syn::Error::new(
            int.span(),
            format!("`{name}` must be at least 1"),
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parsed(tokens: TokenStream) -> MacroArgs {
        match parse(tokens) {
            Ok(args) => args,
            Err(args_error) => panic!("valid arguments rejected: {}", args_error.error),
        }
    }

    fn error_of(tokens: TokenStream) -> String {
        match parse(tokens) {
            Ok(_) => panic!("expected an error"),
            Err(args_error) => args_error
                .error
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(" | "),
        }
    }

    #[test]
    fn every_argument_is_read() {
        let args = parsed(quote!(
            model = "m.apr",
            crate = "::renamed",
            features = 4,
            max_batch = 100,
            labels = ["a", "b"],
            feature_names = ["x", "y", "z", "w"]
        ));
        assert_eq!(
            args.labels.map(|l| l.names),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(args.feature_names.map(|l| l.names.len()), Some(4));
        assert_eq!(args.model.value(), "m.apr");
        assert_eq!(
            args.crate_path.map(|p| quote!(#p).to_string()),
            Some(":: renamed".to_owned())
        );
        assert_eq!(args.features, Some(4));
        assert_eq!(args.max_batch.map(|m| m.value), Some(100));
    }

    #[test]
    fn model_alone_is_enough_and_a_trailing_comma_is_fine() {
        let args = parsed(quote!(model = "m.apr",));
        assert!(args.crate_path.is_none() && args.features.is_none() && args.max_batch.is_none());
    }

    #[test]
    fn missing_model_is_an_error() {
        assert!(error_of(quote!()).starts_with("missing `model"));
        assert!(error_of(quote!(features = 3)).starts_with("missing `model"));
    }

    #[test]
    fn an_invalid_model_is_not_also_missing() {
        assert_eq!(
            error_of(quote!(model = 3)),
            "`model` takes a string literal: the model file, e.g. `model = \"models/model.apr\"`"
        );
        assert!(error_of(quote!(model)).starts_with("`model` needs a value"));
        assert!(error_of(quote!(model("x"))).starts_with("`model(...)` is not"));
        assert!(error_of(quote!(model = "")).starts_with("`model` is empty"));
    }

    #[test]
    fn unknown_and_duplicate_arguments_are_errors() {
        assert!(error_of(quote!(model = "m", memory = 1)).starts_with("unknown argument `memory`"));
        assert!(error_of(quote!(model = "m", a::b = 1)).starts_with("unknown argument `a::b`"));
        assert!(error_of(quote!(model = "m", features = 1, features = 2))
            .starts_with("duplicate argument `features`"));
        assert!(error_of(quote!(model = "m", crate = "a", crate = "b"))
            .starts_with("duplicate argument `crate`"));
        assert!(error_of(quote!(model = "m", max_batch = 1, max_batch = 2))
            .starts_with("duplicate argument `max_batch`"));
    }

    #[test]
    fn values_of_the_wrong_kind_are_errors() {
        assert!(error_of(quote!(model = "m", features = "3"))
            .starts_with("`features` takes a positive integer"));
        assert!(error_of(quote!(model = "m", features = 0))
            .starts_with("`features` must be at least 1"));
        assert!(error_of(quote!(model = "m", max_batch = 1.5))
            .starts_with("`max_batch` takes a positive integer"));
        assert!(error_of(quote!(model = "m", crate = apr))
            .starts_with("`crate` takes a string literal"));
        assert!(error_of(quote!(model = "m", crate = "not a path"))
            .starts_with("`crate = \"not a path\"` is not a path"));
    }

    #[test]
    fn name_lists_are_arrays_of_string_literals() {
        assert!(error_of(quote!(model = "m", labels = "a"))
            .starts_with("`labels` takes an array of string literals"));
        assert!(error_of(quote!(model = "m", labels = []))
            .starts_with("`labels` is empty: give one name per class"));
        assert!(error_of(quote!(model = "m", feature_names = ["a", 1]))
            .starts_with("`feature_names` holds string literals only"));
        assert!(
            error_of(quote!(model = "m", labels = ["a"], labels = ["b"]))
                .starts_with("duplicate argument `labels`")
        );
    }

    #[test]
    fn a_valid_crate_path_survives_other_errors() {
        match parse(quote!(crate = "renamed", features = "x")) {
            Ok(_) => panic!("expected an error"),
            Err(args_error) => {
                let path = args_error.crate_path.expect("the crate path is kept");
                assert_eq!(quote!(#path).to_string(), "renamed");
            }
        }
    }

    #[test]
    fn all_errors_are_reported_at_once() {
        let message = error_of(quote!(features = "x", memory = 1));
        assert_eq!(message.matches(" | ").count(), 2, "{message}");
    }
}
