//! The generated `main`: the user's `main` body run once, then the default
//! protocol served; or, for a handler, the handler served.
//!
//! What the generated code calls (every name under `__private`), in which
//! order, and the shape of the expansion, are the macro's private contract
//! with the facade, described once on `apr_lambda::__private` (`src/lib.rs`
//! at the workspace root). The calls written here must stay in step with it.
//! Everything is reached through the facade by absolute path (or the
//! `crate = "..."` path), never through names the user must import.

use proc_macro2::{Literal, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{AttrStyle, GenericArgument, ItemFn, PathArguments, ReturnType, Token, Type};

use crate::args::NameList;
use crate::model_file::EmbeddedModel;

/// The serving configuration, as written in the attribute.
#[derive(Default)]
pub(crate) struct Settings<'a> {
    /// `max_batch = N`.
    pub(crate) max_batch: Option<usize>,
    /// `labels = [...]`.
    pub(crate) labels: Option<&'a NameList>,
    /// `feature_names = [...]`.
    pub(crate) feature_names: Option<&'a NameList>,
}

impl Settings<'_> {
    /// `Config::new()` and a builder call per setting.
    fn config(&self, krate: &TokenStream) -> TokenStream {
        let mut config = quote!(#krate::__private::Config::new());
        if let Some(n) = self.max_batch {
            config.extend(quote!(.max_batch(#n)));
        }
        if let Some(labels) = self.labels {
            let names = &labels.names;
            config.extend(quote!(.labels(&[#(#names),*])));
        }
        if let Some(feature_names) = self.feature_names {
            let names = &feature_names.names;
            config.extend(quote!(.feature_names(&[#(#names),*])));
        }
        config
    }
}

/// The path through which the generated code reaches the facade.
pub(crate) fn crate_path(path: Option<&syn::Path>) -> TokenStream {
    match path {
        Some(path) => path.to_token_stream(),
        None => quote!(::apr_lambda),
    }
}

/// The `main` that embeds `model` and serves it after running the user's body once.
///
/// `model` is `None` when validation failed: the expansion then embeds no
/// bytes, so the only error the user sees is the macro's (plus any in their
/// own body, which is still type-checked).
pub(crate) fn main(
    function: ItemFn,
    krate: &TokenStream,
    model: Option<&EmbeddedModel>,
    settings: &Settings<'_>,
) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;

    // Outer attributes stay on the generated `main` (lint levels apply to the
    // nested body function too); inner ones (`#![...]` in the body) become
    // outer attributes of the body function.
    let (outer, inner): (Vec<_>, Vec<_>) = attrs
        .into_iter()
        .partition(|attr| matches!(attr.style, AttrStyle::Outer));
    let inner = inner.into_iter().map(|mut attr| {
        attr.style = AttrStyle::Outer;
        attr
    });

    let asyncness = sig.asyncness;
    let output = &sig.output;
    let call_body = if asyncness.is_some() {
        quote!(#krate::__private::block_on(__apr_lambda_main()))
    } else {
        quote!(__apr_lambda_main())
    };

    let (embed, bytes) = embedded_bytes(model);
    let config = settings.config(krate);

    quote! {
        #(#outer)*
        #vis fn main() -> ::std::process::ExitCode {
            #embed

            // The user's `main` body, run exactly once before serving.
            #(#inner)*
            #asyncness fn __apr_lambda_main() #output #block

            // The cold-start clock starts here, before anything else runs.
            #krate::__private::process_start();
            if let ::core::result::Result::Err(__apr_lambda_exit) =
                #krate::__private::init_outcome(#call_body)
            {
                return __apr_lambda_exit;
            }
            #krate::__private::run(#bytes, #config)
        }
    }
}

/// The handler, kept as written, and the `main` that embeds `model` and
/// serves the handler.
pub(crate) fn handler(
    function: ItemFn,
    takes_context: bool,
    krate: &TokenStream,
    model: Option<&EmbeddedModel>,
    settings: &Settings<'_>,
) -> TokenStream {
    let name = &function.sig.ident;
    let (embed, bytes) = embedded_bytes(model);
    let config = settings.config(krate);
    let context_param = if takes_context {
        quote!(__apr_lambda_context)
    } else {
        quote!(_)
    };
    let arguments = if takes_context {
        quote!(
            __apr_lambda_request,
            __apr_lambda_model,
            &__apr_lambda_context
        )
    } else {
        quote!(__apr_lambda_request, __apr_lambda_model)
    };
    let call = if function.sig.asyncness.is_some() {
        quote!(#name(#arguments).await)
    } else {
        quote!(#name(#arguments))
    };
    // `run_handler`'s answer and error parameters are named with the
    // handler's own return type, so that rustc reports an unsatisfied bound
    // on them (`R: Serialize`, `E: Display`, `Send`, `'static`) at that type.
    // Other bound errors (the request type's, a future that is not `Send`)
    // are reported at the attribute.
    let (answer, error) = answer_and_error(&function.sig.output);
    let serve = quote! {
        #krate::__private::run_handler::<_, #answer, #error, _, _>(
            #bytes,
            #config,
            |__apr_lambda_model, __apr_lambda_request, #context_param| async move { #call },
        )
    };
    quote! {
        #function

        /// Serves the `#[apr_lambda]` handler.
        fn main() -> ::std::process::ExitCode {
            #embed
            // The cold-start clock starts here, before anything else runs.
            #krate::__private::process_start();
            #serve
        }
    }
}

/// `run_handler`'s answer and error type arguments for a handler returning
/// `output`: `R` and `E` of `-> Result<R, E>` as written, or `_` where one
/// is not written (`-> io::Result<R>`, an alias) or cannot be named in the
/// generated `main` (it mentions a lifetime or `impl Trait`), spanned at the
/// return type. Either way rustc reports an unsatisfied bound on it there.
fn answer_and_error(output: &ReturnType) -> (TokenStream, TokenStream) {
    let ReturnType::Type(_, ty) = output else {
        // Not a handler's: `signature::check` rejects it first.
        return (quote!(_), quote!(_));
    };
    let written: Vec<&Type> = match result_arguments(ty) {
        Some(arguments) => arguments
            .iter()
            .filter_map(|argument| match argument {
                GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
        None => Vec::new(),
    };
    let argument = |written: &Type| {
        if nameable(written) {
            written.to_token_stream()
        } else {
            quote_spanned!(written.span()=> _)
        }
    };
    let unwritten = || quote_spanned!(ty.span()=> _);
    match written.as_slice() {
        [answer, error] => (argument(answer), argument(error)),
        // `R` alone (`io::Result<R>`): the error type is the alias's.
        [answer] => (argument(answer), unwritten()),
        _ => (unwritten(), unwritten()),
    }
}

/// The generic arguments of `ty` when it is a path whose last segment is
/// `Result` (the only return type `signature::check` lets through).
fn result_arguments(ty: &Type) -> Option<&Punctuated<GenericArgument, Token![,]>> {
    match ty {
        Type::Paren(paren) => result_arguments(&paren.elem),
        Type::Group(group) => result_arguments(&group.elem),
        Type::Path(path) => match &path.path.segments.last()?.arguments {
            PathArguments::AngleBracketed(arguments) => Some(&arguments.args),
            _ => None,
        },
        _ => None,
    }
}

/// Whether `ty`, written in the handler's signature, means the same in the
/// generated `main`: it names no lifetime but `'static` (the handler's own
/// lifetime parameters are not in scope there) and no `impl Trait`.
fn nameable(ty: &Type) -> bool {
    fn tokens_nameable(tokens: TokenStream) -> bool {
        let mut after_quote = false;
        for token in tokens {
            let ok = match &token {
                TokenTree::Group(group) => tokens_nameable(group.stream()),
                TokenTree::Ident(ident) if after_quote => ident == "static",
                TokenTree::Ident(ident) => ident != "impl" && ident != "_",
                TokenTree::Punct(_) | TokenTree::Literal(_) => true,
            };
            if !ok {
                return false;
            }
            after_quote = matches!(&token, TokenTree::Punct(punct) if punct.as_char() == '\'');
        }
        true
    }
    tokens_nameable(ty.to_token_stream())
}

/// The items that hold the model bytes, and the `&'static [u8]` expression
/// that reads them.
fn embedded_bytes(model: Option<&EmbeddedModel>) -> (TokenStream, TokenStream) {
    let aligned = quote! {
        /// 64-byte alignment for the embedded model, so tensors are used in place.
        #[repr(C, align(64))]
        struct __AprAligned<T: ?::core::marker::Sized>(T);
    };
    match model {
        Some(EmbeddedModel::V2 { absolute_path }) => (
            quote! {
                #aligned
                static __APR_MODEL: &__AprAligned<[u8]> =
                    &__AprAligned(*::core::include_bytes!(#absolute_path));
            },
            quote!(&__APR_MODEL.0),
        ),
        Some(EmbeddedModel::Converted {
            original_path,
            converted,
        }) => {
            let converted = Literal::byte_string(converted);
            (
                quote! {
                    #aligned
                    // The v1 original, converted to v2 at compile time (below).
                    // Including it makes cargo rebuild when it changes.
                    const _: &[u8] = ::core::include_bytes!(#original_path);
                    static __APR_MODEL: &__AprAligned<[u8]> = &__AprAligned(*#converted);
                },
                quote!(&__APR_MODEL.0),
            )
        }
        None => (TokenStream::new(), quote!(&[])),
    }
}

#[cfg(test)]
mod tests {
    use super::answer_and_error;
    use quote::quote;
    use syn::ReturnType;

    /// `run_handler`'s answer and error arguments for `-> #output`, as text.
    fn arguments(output: proc_macro2::TokenStream) -> (String, String) {
        let output: ReturnType = syn::parse2(quote!(-> #output)).expect("a return type");
        let (answer, error) = answer_and_error(&output);
        (answer.to_string(), error.to_string())
    }

    fn pair(answer: &str, error: &str) -> (String, String) {
        (answer.to_owned(), error.to_owned())
    }

    #[test]
    fn the_answer_and_error_types_are_named_as_written() {
        assert_eq!(
            arguments(quote!(Result<Price, apr_lambda::Error>)),
            pair("Price", "apr_lambda :: Error")
        );
        assert_eq!(
            arguments(quote!(
                std::result::Result<Vec<&'static str>, Box<dyn std::error::Error + Send>>
            )),
            pair(
                "Vec < & 'static str >",
                "Box < dyn std :: error :: Error + Send >"
            )
        );
        assert_eq!(arguments(quote!((Result<u8, E>))), pair("u8", "E"));
    }

    #[test]
    fn a_type_that_cannot_be_named_in_main_is_inferred() {
        // The handler's lifetime parameters are not in scope in `main`.
        assert_eq!(arguments(quote!(Result<Row<'m>, E>)), pair("_", "E"));
        assert_eq!(arguments(quote!(Result<u8, impl Display>)), pair("u8", "_"));
        // An alias that fixes the error type, or both.
        assert_eq!(arguments(quote!(io::Result<u8>)), pair("u8", "_"));
        assert_eq!(arguments(quote!(fmt::Result)), pair("_", "_"));
    }
}
