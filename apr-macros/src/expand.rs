//! The generated `main`.
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
//! Everything is reached through the facade by absolute path (or the
//! `crate = "..."` path), never through names the user must import.

use proc_macro2::{Literal, TokenStream};
use quote::{quote, ToTokens};
use syn::{AttrStyle, ItemFn};

use crate::model_file::EmbeddedModel;

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
    max_batch: Option<usize>,
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
    let config = match max_batch {
        Some(n) => quote!(#krate::__private::Config::new().max_batch(#n)),
        None => quote!(#krate::__private::Config::new()),
    };

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
        Some(EmbeddedModel::ConvertedV1 {
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
