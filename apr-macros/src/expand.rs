//! The generated `main`: the user's `main` body run once, then the default
//! protocol served; or, for a handler, the handler served.
//!
//! ```text
//! fn main() -> ::std::process::ExitCode {
//!     <the 64-byte aligned static holding the model bytes>
//!     fn __apr_lambda_main() -> <user's return type> { <user's body> }   // `async fn` for async
//!     ::apr_lambda::__private::process_start();
//!     if let Err(code) = ::apr_lambda::__private::init_outcome(__apr_lambda_main()) { return code; }
//!     ::apr_lambda::__private::run(<bytes>, ::apr_lambda::__private::Config::new().max_batch(N))
//! }
//! ```
//!
//!
//! For a handler `[async] fn NAME(request: T, model: &Model[, context: &Context]) -> Result<R, E>`,
//! kept as written:
//!
//! ```text
//! fn main() -> ::std::process::ExitCode {
//!     <the 64-byte aligned static holding the model bytes>
//!     ::apr_lambda::__private::process_start();
//!     ::apr_lambda::__private::run_handler(<bytes>, <config>, |model, request, context| async move {
//!         NAME(request, model, &context).await    // no `.await` for a sync handler
//!     })
//! }
//! ```
//!
//! Everything is reached through the facade by absolute path (or the
//! `crate = "..."` path), never through names the user must import.

use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{AttrStyle, ItemFn};

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
    // Trait-bound errors about the request, answer and error types name the
    // type and the bound (`run_handler`'s); they are reported at the attribute.
    let serve = quote_spanned! {function.sig.span()=>
        #krate::__private::run_handler(
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
